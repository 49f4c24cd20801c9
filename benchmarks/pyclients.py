"""Python benchmark clients: one workload, timed in this process, one JSON line out.

Run by ``benchmarks/run.py``, once per measurement, with the interpreter that
has the library under test::

    python benchmarks/pyclients.py CLIENT WORKLOAD PORT N WARMUP PAYLOAD_BYTES FUNCTION \
        [ROUNDS [START_AT [PREFIX]]]

CLIENT is ``cygearman`` (this repository, PECL-style API), ``pygearman``
(python-gearman fork, from the peers' venv) or ``gear`` (OpenStack gear, from
the peers' venv).  The first two are both imported as ``gearman``, which is
why each runs in its own interpreter.  WORKLOAD is ``background``,
``normal`` or ``status`` (sequential, every client), or one of the pipelined
background submissions (see ``benchmarks/README.md``):

- cygearman ``tasks`` / ``tasks-u``: ``addTaskBackground`` N times, then
  ``runTasks()``; ``-u`` gives caller-made uniques PREFIX0, PREFIX1, ...
  (PREFIX defaults to ``u``), otherwise the library generates them;
- cygearman ``batch`` / ``batch-u``: ``submit_batch(fn, workloads)``, with
  ``uniques=`` for ``-u`` (the lists are built before the clock starts);
- pygearman ``multiple``: ``submit_multiple_jobs(..., background=True,
  wait_until_complete=False)`` (the job dicts are built before the clock).

The pipelined workloads split N into ROUNDS rounds of N/ROUNDS jobs (default
1), and with START_AT (Unix time, 0 = now) wait until then to start the timed
section, so that several processes can start together.

Only the measured loop sits between the two clock readings; connecting and
``WARMUP`` operations come before it.  The printed line carries ``ops``,
``seconds`` (``time.perf_counter``), the process's ``cpu_user`` and
``cpu_sys`` seconds over the loop (``getrusage``, all threads), and the
imported module's file and version, so that the report can show which
library was really measured.  The pipelined workloads add ``t_start`` /
``t_end`` (Unix time of the timed section), ``late`` (how far past START_AT
it began) and, for ``tasks``, the ``runTasks()``-only part (``run_seconds``,
``run_cpu_user``, ``run_cpu_sys``).
"""
from __future__ import annotations

import json
import os
import resource
import sys
import threading
import time
from typing import Any, Callable, Dict, List, Optional, Tuple

def _rusage() -> Tuple[float, float]:
    """(user, system) CPU seconds this process has used so far."""
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime, ru.ru_stime


def _timed(op: Callable[[], Any], n: int, warmup: int) -> Tuple[Dict[str, float], Any]:
    """Call ``op`` ``warmup`` times untimed, then ``n`` times timed.

    Returns ({"seconds", "cpu_user", "cpu_sys"} of the timed loop, last result).
    """
    last: Any = None
    for _ in range(warmup):
        last = op()
    c0 = _rusage()
    t0 = time.perf_counter()
    for _ in range(n):
        last = op()
    t1 = time.perf_counter()
    c1 = _rusage()
    return {"seconds": t1 - t0, "cpu_user": c1[0] - c0[0], "cpu_sys": c1[1] - c0[1]}, last


def _wait_until(start_at: float) -> None:
    """Sleep until Unix time ``start_at`` (no-op for 0 or a time already past)."""
    if start_at > 0:
        delay = start_at - time.time()
        if delay > 0:
            time.sleep(delay)


def _pipelined(submit: Callable[[int], Any], rounds: int, start_at: float,
               run: Optional[Callable[[], Any]] = None) -> Dict[str, Any]:
    """Time ``rounds`` calls of ``submit(r)`` (and of ``run()`` after each, timed apart too).

    ``submit(r)`` queues or sends round r; ``run``, if given, is the call that
    sends what was queued and waits for every answer (``runTasks``), whose
    time and CPU are also reported on their own.
    """
    _wait_until(start_at)
    run_s, run_u, run_k = 0.0, 0.0, 0.0
    c0 = _rusage()
    e0 = time.time()
    t0 = time.perf_counter()
    for r in range(rounds):
        submit(r)
        if run is not None:
            rc0 = _rusage()
            ra = time.perf_counter()
            run()
            run_s += time.perf_counter() - ra
            rc1 = _rusage()
            run_u += rc1[0] - rc0[0]
            run_k += rc1[1] - rc0[1]
    t1 = time.perf_counter()
    e1 = time.time()
    c1 = _rusage()
    out: Dict[str, Any] = {"seconds": t1 - t0, "cpu_user": c1[0] - c0[0], "cpu_sys": c1[1] - c0[1],
                           "rounds": rounds, "t_start": e0, "t_end": e1,
                           "late": max(0.0, e0 - start_at) if start_at > 0 else 0.0}
    if run is not None:
        out.update(run_seconds=run_s, run_cpu_user=run_u, run_cpu_sys=run_k)
    return out


# --- cygearman (this repository) -------------------------------------------------------------


def run_cygearman(workload: str, port: int, n: int, warmup: int, payload: bytes,
                  fn: str, rounds: int = 1, start_at: float = 0.0, prefix: str = "u") -> Dict[str, Any]:
    """Measure cygearman's PECL-style API (``doBackground`` / ``doNormal`` / ``jobStatus``,
    ``addTaskBackground`` + ``runTasks``) and its batch call ``submit_batch``."""
    import gearman  # this repository's package, found through PYTHONPATH
    from gearman import _core

    if not getattr(_core, "COMPILED", False):
        raise RuntimeError("gearman._core is not the compiled core")
    c = gearman.GearmanClient()
    c.addServer("127.0.0.1", port)
    c.setTimeout(60000)  # ms: no call may hang the run
    if workload == "background":
        timing, _ = _timed(lambda: c.doBackground(fn, payload), n, warmup)
    elif workload == "normal":
        timing, last = _timed(lambda: c.doNormal(fn, payload), n, warmup)
        if last != payload:
            raise RuntimeError(f"bad echo: {last!r}")
    elif workload == "status":
        handle = c.doBackground(fn, payload)
        timing, last = _timed(lambda: c.jobStatus(handle), n, warmup)
        if not last[0]:
            raise RuntimeError(f"job unknown: {last!r}")
    elif workload in ("tasks", "tasks-u"):
        per = n // rounds
        add = c.addTaskBackground
        if workload == "tasks-u":
            names = [f"{prefix}{i}" for i in range(per * rounds)]  # built before the clock
            for i in range(warmup):
                add(fn, payload, None, f"w{prefix}{i}")

            def submit(r: int) -> None:
                for u in names[r * per:(r + 1) * per]:
                    add(fn, payload, None, u)
        else:
            for _ in range(warmup):
                add(fn, payload)

            def submit(r: int) -> None:
                for _ in range(per):
                    add(fn, payload)
        if warmup:
            c.runTasks()
        timing = _pipelined(submit, rounds, start_at, run=c.runTasks)
        if c.returnCode() != gearman.GEARMAN_SUCCESS:
            raise RuntimeError(f"runTasks: {c.returnCode()} {c.error()}")
    elif workload in ("batch", "batch-u"):
        per = n // rounds
        if warmup:
            c.submit_batch(fn, [payload] * warmup,
                           uniques=[f"w{prefix}{i}" for i in range(warmup)] if workload == "batch-u" else None)
        # the argument lists are built before the clock starts, one per round
        loads = [[payload] * per for _ in range(rounds)]
        uniques: List[Optional[List[str]]] = [
            [f"{prefix}{i}" for i in range(r * per, (r + 1) * per)] if workload == "batch-u" else None
            for r in range(rounds)]
        got: List[List[Any]] = []
        timing = _pipelined(lambda r: got.append(c.submit_batch(fn, loads[r], uniques=uniques[r])),
                            rounds, start_at)
        handles = [h for hs in got for h in hs]
        if len(handles) != per * rounds or not all(handles):
            raise RuntimeError(f"submit_batch: {sum(map(bool, handles))} handles for {per * rounds} jobs")
    elif workload in ("aio-many", "aio-gather"):
        import asyncio

        from gearman.aio import AsyncGearmanClient
        per = n // rounds
        loads = [[payload] * per for _ in range(rounds)]
        ac = AsyncGearmanClient(f"127.0.0.1:{port}", timeout=120)
        loop = asyncio.new_event_loop()
        got = []

        async def gather_bg(load: List[bytes]) -> List[str]:
            # one coroutine per job, all in flight at once: the engine pipelines them
            return await asyncio.gather(*[ac.do_background(fn, p) for p in load])

        one = ac.submit_many if workload == "aio-many" else None
        if warmup:
            loop.run_until_complete(ac.submit_many(fn, [payload] * warmup))

        def submit_round(r: int) -> None:
            coro = ac.submit_many(fn, loads[r]) if one is not None else gather_bg(loads[r])
            got.append(loop.run_until_complete(coro))

        try:
            timing = _pipelined(submit_round, rounds, start_at)
        finally:
            loop.run_until_complete(ac.close())
            loop.close()
        handles = [h for hs in got for h in hs]
        if len(handles) != per * rounds or not all(handles):
            raise RuntimeError(f"{workload}: {sum(map(bool, handles))} handles for {per * rounds} jobs")
    else:
        raise ValueError(workload)
    version = getattr(gearman, "__version__", "?")
    return dict(timing, version=f"cygearman {version}", module=gearman.__file__)


# --- pygearman (python-gearman fork, PyPI "pygearman") ----------------------------------------


def run_pygearman(workload: str, port: int, n: int, warmup: int, payload: bytes,
                  fn: str, rounds: int = 1, start_at: float = 0.0, prefix: str = "u") -> Dict[str, Any]:
    """Measure pygearman's ``submit_job`` / ``get_job_status`` / ``submit_multiple_jobs``."""
    import gearman  # pygearman, from the peers' venv
    from importlib.metadata import version

    c = gearman.GearmanClient([f"127.0.0.1:{port}"])
    if workload == "background":

        def op() -> Any:
            return c.submit_job(fn, payload, background=True, wait_until_complete=False, poll_timeout=60.0)

        timing, last = _timed(op, n, warmup)
        if last.state != gearman.constants.JOB_CREATED:
            raise RuntimeError(f"job not created: {last.state}")
    elif workload == "normal":

        def op() -> Any:
            return c.submit_job(fn, payload, poll_timeout=60.0)

        timing, last = _timed(op, n, warmup)
        if last.result != payload:
            raise RuntimeError(f"bad echo: {last.result!r} ({last.state})")
    elif workload == "status":
        request = c.submit_job(fn, payload, background=True, wait_until_complete=False, poll_timeout=60.0)
        timing, last = _timed(lambda: c.get_job_status(request, poll_timeout=60.0), n, warmup)
        if not last.status.get("known"):
            raise RuntimeError(f"job unknown: {last.status!r}")
    elif workload == "multiple":
        per = n // rounds
        if warmup:
            c.submit_multiple_jobs([dict(task=fn, data=payload) for _ in range(warmup)],
                                   background=True, wait_until_complete=False, poll_timeout=60.0)
        jobs = [[dict(task=fn, data=payload) for _ in range(per)] for _ in range(rounds)]
        got: List[Any] = []

        def submit(r: int) -> None:
            got.extend(c.submit_multiple_jobs(jobs[r], background=True, wait_until_complete=False,
                                              poll_timeout=120.0))

        timing = _pipelined(submit, rounds, start_at)
        created = sum(1 for req in got if req.state == gearman.constants.JOB_CREATED)
        if created != per * rounds:
            raise RuntimeError(f"submit_multiple_jobs: {created} of {per * rounds} created")
    else:
        raise ValueError(workload)
    return dict(timing, version=f"pygearman {version('pygearman')}", module=gearman.__file__)


# --- gear (OpenStack) ---------------------------------------------------------------------------


def run_gear(workload: str, port: int, n: int, warmup: int, payload: bytes,
             fn: str, rounds: int = 1, start_at: float = 0.0, prefix: str = "u") -> Dict[str, Any]:
    """Measure gear's ``submitJob``; its client has no status call, so GET_STATUS is sent by hand.

    gear reads replies on its own thread; a foreground job or a status request is
    complete when that thread has handled the answer, which it signals here
    through an ``Event`` (gear's own ``Job`` has no blocking wait).
    """
    import gear
    from importlib.metadata import version

    done = threading.Event()

    class Client(gear.Client):  # type: ignore[misc]
        """gear client that wakes the caller when a job or a status request completes."""

        def handleWorkComplete(self, packet: Any) -> Any:
            job = super().handleWorkComplete(packet)
            done.set()
            return job

        def handleWorkFail(self, packet: Any) -> Any:
            job = super().handleWorkFail(packet)
            done.set()
            return job

        def handleStatusRes(self, packet: Any) -> Any:
            job = super().handleStatusRes(packet)
            done.set()
            return job

    c = Client("bench")
    c.addServer("127.0.0.1", port)
    c.waitForServer(timeout=30)
    name = fn.encode()
    try:
        if workload == "background":
            timing, last = _timed(lambda: _gear_submit(c, gear, name, payload, True), n, warmup)
            if not last.handle:
                raise RuntimeError("job not created")
        elif workload == "normal":

            def op() -> Any:
                done.clear()
                job = _gear_submit(c, gear, name, payload, False)
                if not done.wait(60):
                    raise TimeoutError("gear: no WORK_COMPLETE in 60 s")
                return job

            timing, last = _timed(op, n, warmup)
            if b"".join(last.data) != payload:
                raise RuntimeError(f"bad echo: {last.data!r}")
        elif workload == "status":
            job = _gear_submit(c, gear, name, payload, True)
            status = gear.Packet(gear.constants.REQ, gear.constants.GET_STATUS, job.handle)

            def op() -> Any:
                done.clear()
                c.sendPacket(status, job.connection)
                if not done.wait(60):
                    raise TimeoutError("gear: no STATUS_RES in 60 s")
                return job

            timing, last = _timed(op, n, warmup)
            if not last.known:
                raise RuntimeError("job unknown")
        else:
            raise ValueError(workload)
    finally:
        c.shutdown()
    return dict(timing, version=f"gear {version('gear')}", module=gear.__file__)


def _gear_submit(c: Any, gear: Any, name: bytes, payload: bytes, background: bool) -> Any:
    """Submit one job through gear (blocks until JOB_CREATED) and return it."""
    job = gear.Job(name, payload)
    c.submitJob(job, background=background, timeout=60)
    return job


RUNNERS: Dict[str, Callable[..., Dict[str, Any]]] = {
    "cygearman": run_cygearman,
    "pygearman": run_pygearman,
    "gear": run_gear,
}


def main(argv: list[str]) -> int:
    """Parse the positional arguments, run one measurement, print its JSON line."""
    if not 7 <= len(argv) <= 10 or argv[0] not in RUNNERS:
        print(__doc__, file=sys.stderr)
        return 2
    client, workload = argv[0], argv[1]
    port, n, warmup, size = (int(a) for a in argv[2:6])
    fn = argv[6]
    rounds = max(1, int(argv[7])) if len(argv) > 7 else 1
    start_at = float(argv[8]) if len(argv) > 8 else 0.0
    prefix = argv[9] if len(argv) > 9 else "u"
    payload = b"x" * size
    if workload not in ("background", "normal", "status"):
        n = n // rounds * rounds  # the pipelined workloads run whole rounds
    line: Dict[str, Any] = {"client": client, "workload": workload, "ops": n, "pid": os.getpid()}
    line.update(RUNNERS[client](workload, port, n, warmup, payload, fn, rounds, start_at, prefix))
    print(json.dumps(line), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
