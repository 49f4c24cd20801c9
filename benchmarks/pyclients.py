"""Python benchmark clients: one workload, timed in this process, one JSON line out.

Run by ``benchmarks/run.py``, once per measurement, with the interpreter that
has the library under test::

    python benchmarks/pyclients.py CLIENT WORKLOAD PORT N WARMUP PAYLOAD_BYTES FUNCTION \
        [ROUNDS [START_AT [PREFIX]]]

CLIENT is ``cygearman`` (this repository, PECL-style API), ``pygearman``
(python-gearman fork, from the peers' venv), ``gear`` (OpenStack gear, from
the peers' venv) or ``aiogear`` (asyncio, from the peers' venv; ``aio-gather``
only).  The first two are both imported as ``gearman``, which is
why each runs in its own interpreter.  WORKLOAD is ``background``,
``normal`` or ``status`` (sequential, every client), or one of the pipelined
background submissions (see ``benchmarks/README.md``):

- cygearman ``tasks`` / ``tasks-u``: ``addTaskBackground`` N times, then
  ``runTasks()``; ``-u`` gives caller-made uniques PREFIX0, PREFIX1, ...
  (PREFIX defaults to ``u``), otherwise the library generates them;
- cygearman ``batch`` / ``batch-u``: ``submit_batch(fn, workloads)``, with
  ``uniques=`` for ``-u`` (the lists are built before the clock starts);
- cygearman ``aio-many`` / ``aio-gather``: ``gearman.aio`` ``submit_many`` /
  ``asyncio.gather`` of ``do_background``; aiogear ``aio-gather``: ``gather``
  of ``submit_job_bg``;
- pygearman ``multiple``: ``submit_multiple_jobs(..., background=True,
  wait_until_complete=False)`` (the job dicts are built before the clock).

cygearman also has ``payload`` (``doNormal`` of a PAYLOAD_BYTES payload N
times, with the process's RSS before and at its peak), ``mem-tasks``,
``mem-batch``, ``mem-flat-batch``, ``mem-flat-tasks`` (memory per pending
job, RSS over many jobs in ROUNDS rounds), and the workers ``worker`` (echo
FUNCTION forever), ``drain-work``, ``drain-grab``, ``drain-aio`` (take WARMUP
queued jobs untimed, then N timed).  ``BENCH_MAX_PACKET_SIZE`` in the
environment sets the client's and worker's ``max_packet_size``.

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


def _wakeups() -> int:
    """Voluntary context switches of this process so far: how often it slept
    (waiting for I/O) and was woken."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_nvcsw


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


def _status_kb(field: str) -> int:
    """A field of /proc/self/status in kB ("VmRSS", "VmHWM"); -1 where there is none."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return -1


def _reset_peak_rss() -> bool:
    """Reset VmHWM to the current RSS (Linux >= 4.0: write 5 to /proc/self/clear_refs)."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _max_packet_size() -> int:
    """``max_packet_size`` for the payload workload's client and worker (run.py sets it)."""
    return int(os.environ.get("BENCH_MAX_PACKET_SIZE", str(64 * 1024 * 1024)))


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
    c = gearman.GearmanClient(max_packet_size=_max_packet_size())
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
    elif workload == "payload":
        timing = _payload_round_trips(c, fn, payload, n, warmup)
    elif workload.startswith("mem-"):
        timing = _memory(gearman, c, workload, fn, payload, n, rounds)
    else:
        raise ValueError(workload)
    version = getattr(gearman, "__version__", "?")
    return dict(timing, version=f"cygearman {version}", module=gearman.__file__)


def _payload_round_trips(c: Any, fn: str, payload: bytes, n: int, warmup: int) -> Dict[str, Any]:
    """``doNormal(fn, payload)`` ``n`` times (a big payload), each result dropped before the next.

    Adds ``rss_base_kb`` (VmRSS with the payload allocated, connected, before
    the first call) and ``rss_peak_kb`` (VmHWM after the last): the peak over the
    base, less the one result alive at a time, is what the library itself held.
    """
    import gearman

    c.setTimeout(300000)
    r: Any = None
    base = _status_kb("VmRSS")
    for _ in range(warmup):
        r = None
        r = c.doNormal(fn, payload)
    c0 = _rusage()
    t0 = time.perf_counter()
    for _ in range(n):
        r = None  # drop the previous result first: one result alive at a time
        r = c.doNormal(fn, payload)
        if c.returnCode() != gearman.GEARMAN_SUCCESS:
            raise RuntimeError(f"doNormal: {c.returnCode()} {c.error()}")
    t1 = time.perf_counter()
    c1 = _rusage()
    if r != payload:
        raise RuntimeError(f"bad echo: {len(r) if r is not None else None} bytes")
    return {"seconds": t1 - t0, "cpu_user": c1[0] - c0[0], "cpu_sys": c1[1] - c0[1],
            "rss_base_kb": base, "rss_peak_kb": _status_kb("VmHWM"), "bytes": len(payload),
            "max_packet_size": c.max_packet_size}


def _memory(gearman: Any, c: Any, workload: str, fn: str, payload: bytes, n: int,
            rounds: int) -> Dict[str, Any]:
    """What pending background jobs cost in memory (one line; "seconds" is the submission time).

    - ``mem-tasks``: ``addTaskBackground`` N times; bytes per pending task by
      tracemalloc (Python allocator, the core's PyMem buffers included) and by
      RSS (a separate pass without tracemalloc); then ``runTasks()``, with the
      peak over that call per task.
    - ``mem-batch``: ``submit_batch(fn, workloads)`` of N jobs (the workload
      list built before); peak over the call per job, and the returned handles
      per job, by tracemalloc and by RSS (VmHWM reset before the call).
    - ``mem-flat-batch`` / ``mem-flat-tasks``: N jobs in ROUNDS rounds of
      ``submit_batch`` / ``addTaskBackground`` + ``runTasks``, results dropped,
      VmRSS sampled after every round.
    """
    import gc
    import tracemalloc

    out: Dict[str, Any] = {}
    c.setTimeout(120000)
    c.submit_batch(fn, [payload] * 100)  # connect, first allocations
    if workload == "mem-tasks":
        add = c.addTaskBackground
        for pass_ in ("rss", "tracemalloc"):
            gc.collect()
            if pass_ == "tracemalloc":
                tracemalloc.start()
                m0 = tracemalloc.get_traced_memory()[0]
            r0 = _status_kb("VmRSS")
            c0 = _rusage()
            t0 = time.perf_counter()
            for _ in range(n):
                add(fn, payload)
            t1 = time.perf_counter()
            c1 = _rusage()
            if pass_ == "rss":
                out.update(seconds=t1 - t0, cpu_user=c1[0] - c0[0], cpu_sys=c1[1] - c0[1],
                           rss_pending_b=1024.0 * (_status_kb("VmRSS") - r0) / n)
                _reset_peak_rss()
                h0 = _status_kb("VmRSS")
                c.runTasks()
                out["rss_run_peak_b"] = 1024.0 * (_status_kb("VmHWM") - h0) / n
            else:
                m1 = tracemalloc.get_traced_memory()[0]
                out["traced_pending_b"] = (m1 - m0) / n
                tracemalloc.reset_peak()
                c.runTasks()
                m2, peak = tracemalloc.get_traced_memory()
                out["traced_run_peak_b"] = (peak - m0) / n
                out["traced_after_run_b"] = (m2 - m0) / n
                tracemalloc.stop()
            if c.returnCode() != gearman.GEARMAN_SUCCESS:
                raise RuntimeError(f"runTasks: {c.returnCode()} {c.error()}")
    elif workload == "mem-batch":
        loads = [payload] * n
        for pass_ in ("rss", "tracemalloc"):
            handles: Any = None
            gc.collect()
            if pass_ == "tracemalloc":
                tracemalloc.start()
                m0 = tracemalloc.get_traced_memory()[0]
            _reset_peak_rss()
            r0 = _status_kb("VmRSS")
            c0 = _rusage()
            t0 = time.perf_counter()
            handles = c.submit_batch(fn, loads)
            t1 = time.perf_counter()
            c1 = _rusage()
            if pass_ == "rss":
                out.update(seconds=t1 - t0, cpu_user=c1[0] - c0[0], cpu_sys=c1[1] - c0[1],
                           rss_call_peak_b=1024.0 * (_status_kb("VmHWM") - r0) / n,
                           rss_result_b=1024.0 * (_status_kb("VmRSS") - r0) / n)
            else:
                m1, peak = tracemalloc.get_traced_memory()
                tracemalloc.stop()
                out.update(traced_call_peak_b=(peak - m0) / n, traced_result_b=(m1 - m0) / n)
            if len(handles) != n or not all(handles):
                raise RuntimeError("submit_batch: a job was not created")
            del handles
    elif workload in ("mem-flat-batch", "mem-flat-tasks"):
        per = n // rounds
        loads = [payload] * per
        samples: List[int] = []
        c0 = _rusage()
        t0 = time.perf_counter()
        for _ in range(rounds):
            if workload == "mem-flat-batch":
                hs = c.submit_batch(fn, loads)
                if len(hs) != per:
                    raise RuntimeError("submit_batch: short result")
                del hs
            else:
                for _ in range(per):
                    c.addTaskBackground(fn, payload)
                if not c.runTasks():
                    raise RuntimeError(f"runTasks: {c.returnCode()} {c.error()}")
            samples.append(_status_kb("VmRSS"))
        t1 = time.perf_counter()
        c1 = _rusage()
        tenth = max(1, rounds // 10)
        out.update(seconds=t1 - t0, cpu_user=c1[0] - c0[0], cpu_sys=c1[1] - c0[1],
                   rss_first_kb=samples[0], rss_tenth_kb=samples[tenth - 1], rss_last_kb=samples[-1],
                   rss_max_kb=max(samples),
                   # growth after the first tenth of the rounds, per job submitted since
                   rss_growth_b=1024.0 * (samples[-1] - samples[tenth - 1]) / (per * (rounds - tenth))
                   if rounds > tenth else 0.0,
                   rss_samples_kb=samples)
    else:
        raise ValueError(workload)
    return out


def run_cygearman_worker(workload: str, port: int, n: int, warmup: int, fn: str) -> Dict[str, Any]:
    """The workers: ``worker`` (echo ``fn`` forever) or a timed drain of N queued jobs.

    ``drain-work``: ``GearmanWorker.addFunction`` + ``work()`` per job, the
    PECL API; ``drain-serve``: the same callback run by ``serve()`` (which
    sends the next GRAB with each result); ``drain-grab``: ``grabJob()`` + ``job.sendComplete()``, no
    callback dispatch (the leanest loop the blocking worker offers);
    ``drain-aio``: ``gearman.aio.AsyncGearmanWorker`` (concurrency 1) with a
    plain function (run in the worker's serving task); ``drain-aioasync``: the
    same with an ``async def`` function (a task per job).  Each takes WARMUP
    jobs untimed, then N timed, every job completing with an empty result.
    ``drain-serve-pK`` is ``drain-serve`` with ``prefetch=K``, ``drain-aio-cK``
    and ``drain-aioasync-cK`` are ``drain-aio`` / ``drain-aioasync`` with
    ``concurrency=K``.
    """
    import gearman
    from gearman import _core

    if not getattr(_core, "COMPILED", False):
        raise RuntimeError("gearman._core is not the compiled core")
    prefetch = concurrency = 1
    if workload.startswith("drain-serve-p"):
        prefetch, workload = int(workload[len("drain-serve-p"):]), "drain-serve"
    elif workload.startswith("drain-aio-c"):
        concurrency, workload = int(workload[len("drain-aio-c"):]), "drain-aio"
    elif workload.startswith("drain-aioasync-c"):
        concurrency, workload = int(workload[len("drain-aioasync-c"):]), "drain-aioasync"
    if workload in ("drain-aio", "drain-aioasync"):
        import asyncio

        from gearman.aio import AsyncGearmanWorker

        marks: Dict[str, Any] = {}

        async def main() -> int:
            w = AsyncGearmanWorker(f"127.0.0.1:{port}", concurrency=concurrency)

            def job(j: Any) -> bytes:
                done = w.jobs_done + 1
                if done == warmup:
                    marks["c0"], marks["t0"], marks["w0"] = _rusage(), time.perf_counter(), _wakeups()
                if done >= warmup + n and "t1" not in marks:
                    marks["t1"], marks["c1"], marks["w1"] = time.perf_counter(), _rusage(), _wakeups()
                    w.stop()
                return b""

            async def async_job(j: Any) -> bytes:
                return job(j)

            w.register(fn, job if workload == "drain-aio" else async_job)
            if not warmup:
                marks["c0"], marks["t0"], marks["w0"] = _rusage(), time.perf_counter(), _wakeups()
            return await w.run()

        asyncio.run(main())
        c0, c1 = marks["c0"], marks["c1"]
        timing = {"seconds": marks["t1"] - marks["t0"], "cpu_user": c1[0] - c0[0],
                  "cpu_sys": c1[1] - c0[1], "wakeups": marks["w1"] - marks["w0"]}
        return dict(timing, version=f"cygearman {gearman.__version__}", module=gearman.__file__)
    w = gearman.GearmanWorker(max_packet_size=_max_packet_size(), prefetch=prefetch)
    w.addServer("127.0.0.1", port)
    if workload == "drain-serve":
        marks = {}
        done = [0]

        def serve_job(job: Any, ctx: Any) -> bytes:
            done[0] += 1
            if done[0] == warmup:
                marks["c0"], marks["t0"], marks["w0"] = _rusage(), time.perf_counter(), _wakeups()
            elif done[0] == warmup + n:
                marks["t1"], marks["c1"], marks["w1"] = time.perf_counter(), _rusage(), _wakeups()
            return b""

        w.addFunction(fn, serve_job)
        w.setTimeout(60000)
        if not warmup:
            marks["c0"], marks["t0"], marks["w0"] = _rusage(), time.perf_counter(), _wakeups()
        w.serve(handle_signals=False, max_jobs=warmup + n)
        c0, c1 = marks["c0"], marks["c1"]
        return {"seconds": marks["t1"] - marks["t0"], "cpu_user": c1[0] - c0[0],
                "cpu_sys": c1[1] - c0[1], "wakeups": marks["w1"] - marks["w0"],
                "version": f"cygearman {gearman.__version__}", "module": gearman.__file__}
    if workload == "worker":
        w.addFunction(fn, lambda job, ctx: job.workload())
        while True:
            if not w.work() and w.returnCode() not in (gearman.GEARMAN_TIMEOUT, gearman.GEARMAN_NO_JOBS):
                raise RuntimeError(f"worker: {w.returnCode()} {w.error()}")
    if workload == "drain-work":
        w.addFunction(fn, lambda job, ctx: b"")
        w.setTimeout(60000)
        work = w.work

        def op() -> None:
            if not work():
                raise RuntimeError(f"work: {w.returnCode()} {w.error()}")

    elif workload == "drain-grab":
        w.register(fn)
        w.setTimeout(60000)
        grab = w.grabJob

        def op() -> None:
            job = grab()
            if job is None:
                raise RuntimeError(f"grabJob: {w.returnCode()} {w.error()}")
            job.sendComplete(b"")

    else:
        raise ValueError(workload)
    timing, _ = _timed(op, n, warmup)
    return dict(timing, version=f"cygearman {gearman.__version__}", module=gearman.__file__)


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


# --- aiogear (PyPI "aiogear", asyncio) ---------------------------------------------------------


def run_aiogear(workload: str, port: int, n: int, warmup: int, payload: bytes,
                fn: str, rounds: int = 1, start_at: float = 0.0, prefix: str = "u") -> Dict[str, Any]:
    """Measure aiogear's ``Client.submit_job_bg``: ``aio-gather`` runs N of them at once with
    ``asyncio.gather`` (each writes its SUBMIT_JOB_BG at once, then awaits JOB_CREATED), the
    same shape as cygearman's ``aio-gather`` row.

    aiogear keeps every registered answer future in one list and matches an
    answer by scanning it from the start; a background job's WORK_COMPLETE
    future is registered too and never resolved, so the scan grows with every
    job the client has submitted (quadratic in N).
    """
    import asyncio

    import aiogear
    from importlib.metadata import version

    if workload != "aio-gather":
        raise ValueError(workload)
    per = n // rounds
    loop = asyncio.new_event_loop()
    got: List[Any] = []

    async def connect() -> Any:
        _, proto = await loop.create_connection(lambda: aiogear.Client(loop), "127.0.0.1", port)
        return proto

    async def gather_bg(k: int) -> List[Any]:
        return await asyncio.gather(*[c.submit_job_bg(fn, payload) for _ in range(k)])

    try:
        c = loop.run_until_complete(connect())
        if warmup:
            loop.run_until_complete(gather_bg(warmup))
        timing = _pipelined(lambda r: got.append(loop.run_until_complete(gather_bg(per))),
                            rounds, start_at)
        loop.run_until_complete(asyncio.wait_for(c.close(), 10))
    finally:
        loop.close()
    handles = [j.handle for js in got for j in js]
    if len(handles) != per * rounds or not all(handles):
        raise RuntimeError(f"aiogear: {sum(map(bool, handles))} handles for {per * rounds} jobs")
    return dict(timing, version=f"aiogear {version('aiogear')}", module=aiogear.__file__)


def run_pyfloor(workload: str, port: int, n: int, warmup: int, payload: bytes,
                fn: str, rounds: int = 1, start_at: float = 0.0, prefix: str = "u") -> Dict[str, Any]:
    """The least a Python client can do per round trip: the ``socket`` module on
    one blocking socket, each request packed with ``struct`` and its answer read
    and framed by hand; no library, no checks beyond the answer's command.
    ``background`` sends SUBMIT_JOB_BG with unique p<i> (nothing coalesces),
    ``status`` GET_STATUS of one queued handle, ``normal`` SUBMIT_JOB (unique
    p<i>) and reads up to WORK_COMPLETE."""
    import socket
    import struct

    sock = socket.create_connection(("127.0.0.1", port), timeout=60)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    buf = bytearray(1 << 16)
    view = memoryview(buf)
    fnb = fn.encode()
    pack = struct.Struct(">4sII").pack
    unpack = struct.Struct(">II").unpack_from
    state = {"start": 0, "end": 0, "i": 0}

    def read() -> Tuple[int, bytes]:
        # one whole packet out of buf (refilled by recv_into as needed)
        while True:
            start, end = state["start"], state["end"]
            if end - start >= 12:
                cmd, size = unpack(buf, start + 4)
                if end - start >= 12 + size:
                    state["start"] = start + 12 + size
                    return cmd, bytes(view[start + 12:start + 12 + size])
            if start:
                buf[:end - start] = buf[start:end]
                state["start"], state["end"] = 0, end - start
            got = sock.recv_into(view[state["end"]:])
            if not got:
                raise RuntimeError("server closed the connection")
            state["end"] += got

    def submit(cmd: int, unique: bytes) -> Tuple[int, bytes]:
        body = fnb + b"\0" + unique + b"\0" + payload
        sock.sendall(pack(b"\0REQ", cmd, len(body)) + body)
        return read()

    def background() -> bytes:
        state["i"] += 1
        cmd, body = submit(18, b"p%d" % state["i"])
        if cmd != 8:
            raise RuntimeError(f"JOB_CREATED expected, got {cmd}")
        return body

    if workload == "background":
        timing, _ = _timed(background, n, warmup)
    elif workload == "status":
        handle = background()
        request = pack(b"\0REQ", 15, len(handle)) + handle

        def status() -> bytes:
            sock.sendall(request)
            cmd, body = read()
            if cmd != 20:
                raise RuntimeError(f"STATUS_RES expected, got {cmd}")
            return body

        timing, last = _timed(status, n, warmup)
        if last.split(b"\0")[1] != b"1":
            raise RuntimeError(f"job unknown: {last!r}")
    elif workload == "normal":
        def normal() -> bytes:
            state["i"] += 1
            cmd, body = submit(7, b"p%d" % state["i"])
            while cmd != 13:
                if cmd not in (8, 12, 28):   # JOB_CREATED, WORK_STATUS, WORK_DATA
                    raise RuntimeError(f"unexpected answer {cmd}")
                cmd, body = read()
            return body[body.index(b"\0") + 1:]

        timing, last = _timed(normal, n, warmup)
        if last != payload:
            raise RuntimeError(f"bad echo: {last!r}")
    else:
        raise ValueError(f"pyfloor has no workload {workload!r}")
    sock.close()
    return dict(timing, version=f"python {sys.version.split()[0]} socket", module=socket.__file__)


RUNNERS: Dict[str, Callable[..., Dict[str, Any]]] = {
    "cygearman": run_cygearman,
    "pygearman": run_pygearman,
    "gear": run_gear,
    "aiogear": run_aiogear,
    "pyfloor": run_pyfloor,
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
    if workload not in ("background", "normal", "status", "payload", "worker") \
            and not workload.startswith("drain-"):
        n = n // rounds * rounds  # the pipelined workloads run whole rounds
    line: Dict[str, Any] = {"client": client, "workload": workload, "ops": n, "pid": os.getpid()}
    if client == "cygearman" and (workload == "worker" or workload.startswith("drain-")):
        line.update(run_cygearman_worker(workload, port, n, warmup, fn))
    else:
        line.update(RUNNERS[client](workload, port, n, warmup, payload, fn, rounds, start_at, prefix))
    print(json.dumps(line), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
