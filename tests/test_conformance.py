"""Every door keeps the same promises: the conformance table of docs/reliability.md, run.

tests/conformance_table.py holds the table (faults x doors, each cell the outcome a user
sees and its machine-checkable expectation); this module runs every cell that is not N/A
against real gearmand and asserts it: SIGSTOP for a silent server, a network namespace for
a cut link (root, as test_partition.py), the scripted peer of test_hostile.py for malformed
replies, another thread holding the object's lock, socat before gearmand for TLS. Time
bounds are multiples of the configured timeout T (hang checks, not speed checks); the
commands get their interpreter's start-up on top, measured in this session.

Servers are shared between cells (module scope) where a cell leaves them as it found them:
each cell uses its own function name, and a fault resumes/heals what it stopped.
"""
from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import os
import pathlib
import re
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from typing import Any, Callable, Dict, Iterator, List, NamedTuple, Optional, Tuple

import pytest

import gearman
from gearman import errors
from gearman.admin import Admin
from gearman.aio import AsyncGearmanClient, AsyncGearmanWorker
from gearman.job import GearmanJob, GearmanJobRequest
from gearman.testing import GearmandServer, free_port, hold_lock, wait_until

HERE = pathlib.Path(__file__).resolve().parent


def _load(name: str) -> Any:
    """A helper module of the suite, by path (the suite runs with --import-mode=importlib)."""
    spec = importlib.util.spec_from_file_location(f"cygearman_conformance_{name}", HERE / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


table = _load("conformance_table")
T = 0.5             # every call's timeout, seconds
JOB_WAIT = 20 * T   # how long a worker cell's client waits for a job (its bound is asserted apart)


# -- what a door call ended with --------------------------------------------------------------

class Result(NamedTuple):
    token: str                  # "ok", "raises:Name", "returns:x", "exit:N", "served", "up0:Name"
    names: Tuple[str, ...]      # the exception's class names (MRO), for raises:
    elapsed: float
    err: Any = None             # the exception, the process' stderr, ...
    value: Any = None


def _ok(elapsed: float, value: Any = None) -> Result:
    return Result("ok", (), elapsed, None, value)


def _raised(e: BaseException, elapsed: float) -> Result:
    names = tuple(c.__name__ for c in type(e).__mro__)
    return Result("raises:" + type(e).__name__, names, elapsed, e)


def _timed(fn: Callable[[], Any]) -> Result:
    t0 = time.monotonic()
    try:
        v = fn()
    except Exception as e:  # noqa: BLE001 - the outcome is what we observe
        return _raised(e, time.monotonic() - t0)
    return _ok(time.monotonic() - t0, v)


class Setup:
    """What a fault hands a door: the servers, the call's shape, and hooks."""

    def __init__(self, fn: str, servers: List[Tuple[str, int]], *, calls: int = 1,
                 foreground: bool = False, jobs: int = 1, tls: Any = None,
                 hold: Optional[Callable[[Any], None]] = None,
                 between: Optional[Callable[[], None]] = None,
                 during: Optional[Callable[[], None]] = None, env: Optional[Dict[str, str]] = None,
                 workload: Optional[bytes] = None):
        self.fn, self.servers, self.calls = fn, servers, calls
        self.workload = workload        # None: each door's own (b"raise" makes the job raise)
        self.foreground, self.jobs, self.tls = foreground, jobs, tls
        self.hold, self.between, self.during = hold, between, during
        self.env = env

    @property
    def spec(self) -> str:
        return ",".join(f"{h}:{p}" for h, p in self.servers)

    def data(self, default: bytes) -> bytes:
        return default if self.workload is None else self.workload

    def run_calls(self, one: Callable[[int], Result], obj: Any = None) -> List[Result]:
        """Run ``calls`` calls; the lock holder, the mid-call trigger and the between-calls
        step run where the fault wants them."""
        out = []
        for i in range(self.calls):
            if i:
                if self.between:
                    self.between()
            if self.hold and obj is not None:
                self.hold(obj)
            th = None
            if self.during:
                th = threading.Thread(target=self.during, daemon=True)
                th.start()
            out.append(one(i))
            if th is not None:
                th.join(30)
        return out


# -- client doors: each performs ``setup.calls`` calls on one object, timeout T ----------------

def _pecl(setup: Setup) -> Any:
    c = gearman.GearmanClient(ssl_context=setup.tls and setup.tls.context(), connect_timeout=2 * T)
    for h, p in setup.servers:
        c.addServer(h, p)
    c.setTimeout(int(T * 1000))
    return c


def d_pecl_do(setup: Setup) -> List[Result]:
    c = _pecl(setup)
    call = c.doNormal if setup.foreground else c.doBackground
    try:
        return setup.run_calls(lambda i: _timed(lambda: call(setup.fn, setup.data(b"x%d" % i))), c)
    finally:
        c.close()


def d_pecl_job_status(setup: Setup) -> List[Result]:
    c = _pecl(setup)
    try:
        return setup.run_calls(lambda i: _timed(lambda: c.jobStatus("H:conformance:%d" % (i + 1))), c)
    finally:
        c.close()


def d_pecl_ping(setup: Setup) -> List[Result]:
    c = _pecl(setup)
    try:
        return setup.run_calls(lambda i: _timed(lambda: c.ping(b"x")), c)
    finally:
        c.close()


def d_pecl_status_unique(setup: Setup) -> List[Result]:
    c = _pecl(setup)
    try:
        return setup.run_calls(lambda i: _timed(lambda: c.jobStatusByUniqueKey("u-" + setup.fn)), c)
    finally:
        c.close()


def d_pecl_tasks(setup: Setup) -> List[Result]:
    c = _pecl(setup)
    add = c.addTask if setup.foreground else c.addTaskBackground

    def one(i: int) -> Result:
        tasks = [add(setup.fn, setup.data(b"t%d-%d" % (i, k))) for k in range(setup.jobs)]
        r = _timed(c.runTasks)
        if r.token != "ok":
            return r._replace(value=tasks)
        failed = [t for t in tasks if t.returnCode() != gearman.GEARMAN_SUCCESS]
        if failed:
            # runTasks reports job outcomes in the tasks (PECL's contract): the first failure
            e = getattr(failed[0], "exception", None)
            if isinstance(e, BaseException):
                return _raised(e, r.elapsed)._replace(value=tasks)
            rc = failed[0].returnCode()
            name = next((n for n in dir(gearman.constants) if n.startswith("GEARMAN_")
                         and not n.startswith("GEARMAN_COMMAND_") and getattr(gearman.constants, n) == rc), str(rc))
            return Result(f"returns:task:{name}", (), r.elapsed, None, tasks)
        return r._replace(value=tasks)

    try:
        return setup.run_calls(one, c)
    finally:
        c.close()


def d_submit_batch(setup: Setup) -> List[Result]:
    c = _pecl(setup)
    try:
        return setup.run_calls(lambda i: _timed(lambda: c.submit_batch(
            setup.fn, [b"b%d-%d" % (i, k) for k in range(setup.jobs)])), c)
    finally:
        c.close()


def _pg(setup: Setup) -> Any:
    if setup.tls is not None:
        hosts: List[Any] = [{"host": h, "port": p, "keyfile": setup.tls.path("client.key"),
                             "certfile": setup.tls.path("client.pem"),
                             "ca_certs": setup.tls.path("ca.pem")} for h, p in setup.servers]
    else:
        hosts = [f"{h}:{p}" for h, p in setup.servers]
    return gearman.GearmanClient(hosts)


def _pg_result(requests: List[Any], r: Result) -> Result:
    if r.token != "ok":
        return r
    if any(q.timed_out for q in requests):
        return r._replace(token="returns:timed_out", value=requests)
    if any(q.state == gearman.JOB_FAILED for q in requests):
        return r._replace(token="returns:failed", value=requests)
    return r._replace(value=requests)


def d_pg_submit_job(setup: Setup) -> List[Result]:
    c = _pg(setup)

    def one(i: int) -> Result:
        got: List[Any] = []
        r = _timed(lambda: got.append(c.submit_job(setup.fn, setup.data(b"p%d" % i), background=not setup.foreground,
                                                   poll_timeout=T)))
        return _pg_result(got, r)

    try:
        return setup.run_calls(one, c)
    finally:
        c.shutdown()


def d_pg_submit_multiple(setup: Setup) -> List[Result]:
    c = _pg(setup)

    def one(i: int) -> Result:
        got: List[Any] = []
        jobs = [{"task": setup.fn, "data": setup.data(b"m%d-%d" % (i, k))} for k in range(setup.jobs)]
        r = _timed(lambda: got.extend(c.submit_multiple_jobs(jobs, background=not setup.foreground,
                                                             poll_timeout=T)))
        return _pg_result(got, r)

    try:
        return setup.run_calls(one, c)
    finally:
        c.shutdown()


def d_pg_get_job_status(setup: Setup) -> List[Result]:
    c = _pg(setup)

    def one(i: int) -> Result:
        # a request for a job of this server (python-gearman's get_job_status needs its
        # connection): the handle is one gearmand does not know
        conn = c.connection_list[0] if c.connection_list else None
        req = GearmanJobRequest(GearmanJob(conn, "H:conformance:%d" % (i + 1), setup.fn, "u", b""))
        r = _timed(lambda: c.get_job_status(req, poll_timeout=T))
        return _pg_result([req], r)

    try:
        return setup.run_calls(one, c)
    finally:
        c.shutdown()


def _aio(setup: Setup, body: Callable[[AsyncGearmanClient, int], Any]) -> List[Result]:
    async def main() -> List[Result]:
        c = AsyncGearmanClient(setup.spec or None, timeout=T, connect_timeout=2 * T,
                               ssl_context=setup.tls and setup.tls.context())
        try:
            out = []
            for i in range(setup.calls):
                if i and setup.between:
                    setup.between()
                th = None
                if setup.during:
                    th = threading.Thread(target=setup.during, daemon=True)
                    th.start()
                t0 = time.monotonic()
                try:
                    v = await body(c, i)
                    out.append(_ok(time.monotonic() - t0, v))
                except Exception as e:  # noqa: BLE001
                    out.append(_raised(e, time.monotonic() - t0))
                if th is not None:
                    th.join(30)
            return out
        finally:
            await c.close()

    return asyncio.run(main())


def d_aio_do(setup: Setup) -> List[Result]:
    return _aio(setup, lambda c, i: (c.do_normal if setup.foreground else c.do_background)(
        setup.fn, setup.data(b"a%d" % i)))


def d_aio_submit_many(setup: Setup) -> List[Result]:
    async def body(c: AsyncGearmanClient, i: int) -> Any:
        handles = await c.submit_many(setup.fn, [b"s%d-%d" % (i, k) for k in range(setup.jobs)])
        return handles, dict(c.last_batch_errors)

    out = []
    for r in _aio(setup, body):
        if r.token == "ok" and None in r.value[0]:
            # by design the jobs not accepted come back as None, their errors kept aside
            errs = r.value[1]
            r = Result("returns:None", (), r.elapsed, errs, r.value[0])
        out.append(r)
    return out


def d_aio_job_status(setup: Setup) -> List[Result]:
    return _aio(setup, lambda c, i: c.job_status("H:conformance:%d" % (i + 1)))


def _env(extra: Optional[Dict[str, str]] = None) -> Dict[str, str]:
    env = dict(os.environ)
    env.pop("GEARMAN_SERVERS", None)
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra or {})
    return env


def _cli_argv(setup: Setup, *args: str) -> List[str]:
    argv = [sys.executable, "-m", "gearman"]
    if setup.servers:
        argv += ["-s", setup.spec]
    if setup.tls is not None:
        argv += ["--ssl-ca", setup.tls.path("ca.pem")]
    return argv + list(args)


def _run(argv: List[str], setup: Setup, stdin: bytes = b"") -> Result:
    t0 = time.monotonic()
    p = subprocess.run(argv, input=stdin, capture_output=True, timeout=60, env=_env(setup.env),
                       cwd="/")     # outside the source tree: the installed gearman
    return Result(f"exit:{p.returncode}", (), time.monotonic() - t0, p.stderr.decode(errors="replace"),
                  p.stdout)


def _netns_argv(argv: List[str]) -> List[str]:
    """Run argv in a new network namespace whose loopback is up and empty: nothing listens
    on localhost:4730 there, whatever this machine runs (root, as the netns cells)."""
    return ["unshare", "--net", "sh", "-c", 'ip link set lo up && exec "$@"', "sh", *argv]


def d_cli_submit(setup: Setup) -> List[Result]:
    def one(i: int) -> Result:
        if setup.jobs > 1:
            argv = _cli_argv(setup, "submit", "-b", "-n", "-q", "-t", str(T), setup.fn)
            return _run(argv, setup, b"".join(b"l%d-%d\n" % (i, k) for k in range(setup.jobs)))
        argv = _cli_argv(setup, "submit", "-q", "-t", str(T), *([] if setup.foreground else ["-b"]),
                         setup.fn, setup.data(b"c%d" % i).decode())
        if not setup.servers:
            argv = _netns_argv(argv)
        return _run(argv, setup)
    return setup.run_calls(one)


def d_cli_status(setup: Setup) -> List[Result]:
    def one(i: int) -> Result:
        argv = _cli_argv(setup, "status", "-t", str(T))
        if not setup.servers:
            argv = _netns_argv(argv)
        return _run(argv, setup)
    return setup.run_calls(one)


def d_admin(setup: Setup) -> List[Result]:
    def one(i: int) -> Result:
        def call() -> Any:
            with Admin(setup.spec or None, timeout=T, ssl_context=setup.tls and setup.tls.context()) as a:
                return a.status()
        return _timed(call)
    return setup.run_calls(one)


_EXPORTER_SCRAPE = textwrap.dedent("""
    import sys, time, urllib.request
    url = sys.argv[1]
    deadline = time.monotonic() + 30
    while True:                      # the exporter is up: it answers (start-up not counted)
        try:
            urllib.request.urlopen(url.replace("/metrics", "/"), timeout=5).read()
            break
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
    t0 = time.monotonic()
    body = urllib.request.urlopen(url, timeout=60).read().decode()
    print("ELAPSED", time.monotonic() - t0)
    print(body)
""")


def d_exporter(setup: Setup) -> List[Result]:
    port = free_port()
    exporter = _cli_argv(setup, "exporter", "--listen", f"127.0.0.1:{port}", "-t", str(T))
    scrape = [sys.executable, "-c", _EXPORTER_SCRAPE, f"http://127.0.0.1:{port}/metrics"]
    if setup.servers:
        proc = subprocess.Popen(exporter, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            out = subprocess.run(scrape, capture_output=True, timeout=60).stdout.decode()
        finally:
            proc.terminate()
            proc.wait(10)
    else:
        # both in one new network namespace (see _netns_argv)
        script = (f"{' '.join(map(_q, exporter))} 2>/dev/null & pid=$!; "
                  f"{' '.join(map(_q, scrape))}; kill $pid; wait $pid")
        out = subprocess.run(_netns_argv(["sh", "-c", script]), capture_output=True, timeout=60,
                             env=_env()).stdout.decode()
    m = re.search(r"^ELAPSED (\S+)", out, re.M)
    assert m, out
    elapsed = float(m.group(1))
    ups = dict(re.findall(r'^gearman_up\{server="([^"]+)"\} (\S+)', out, re.M))
    errs = re.findall(r'^gearman_exporter_scrape_errors_total\{error="([^"]+)",server="[^"]+"\} (\S+)',
                      out, re.M)
    errs += [(e, v) for _s, e, v in re.findall(
        r'^gearman_exporter_scrape_errors_total\{server="([^"]+)",error="([^"]+)"\} (\S+)', out, re.M)]
    down = [s for s, v in ups.items() if float(v) == 0]
    if down:
        return [Result("up0:" + (errs[0][0] if errs else "?"), tuple(e for e, _ in errs), elapsed, out,
                       down)]
    return [Result("ok", (), elapsed, out, ups)]


def _q(s: str) -> str:
    import shlex
    return shlex.quote(s)


CLIENT_DOORS: Dict[str, Callable[[Setup], List[Result]]] = {
    "pecl_do": d_pecl_do, "pecl_job_status": d_pecl_job_status, "pecl_ping": d_pecl_ping,
    "pecl_status_unique": d_pecl_status_unique, "pecl_tasks": d_pecl_tasks,
    "submit_batch": d_submit_batch, "pg_submit_job": d_pg_submit_job,
    "pg_submit_multiple": d_pg_submit_multiple, "pg_get_job_status": d_pg_get_job_status,
    "aio_do": d_aio_do, "aio_submit_many": d_aio_submit_many, "aio_job_status": d_aio_job_status,
    "cli_submit": d_cli_submit, "cli_status": d_cli_status, "admin": d_admin, "exporter": d_exporter,
}
SUBPROCESS_DOORS = {"cli_submit", "cli_status", "cli_worker"}


# -- worker doors: start(servers, fn) -> a running worker with stop() --------------------------

_JOBS_PY = textwrap.dedent("""
    def job(job, context):
        if job.workload() == b"raise":
            raise RuntimeError("boom from the job")
        return b"ok:" + job.workload()
""")


def _callback(job: Any, context: Any = None) -> bytes:
    if job.workload() == b"raise":
        raise RuntimeError("boom from the job")
    return b"ok:" + job.workload()


class Running:
    def __init__(self, stop: Callable[[], Any], alive: Callable[[], bool], log: Callable[[], str]):
        self.stop, self.alive, self.log = stop, alive, log


def w_pecl_work(servers: List[Tuple[str, int]], fn: str, tmp: pathlib.Path) -> Running:
    w = gearman.GearmanWorker(connect_timeout=2 * T)
    for h, p in servers:
        w.addServer(h, p)
    w.addFunction(fn, _callback)
    th = threading.Thread(target=w.serve, kwargs={"handle_signals": False}, daemon=True)
    th.start()

    def stop() -> None:
        w.stop()
        th.join(10)
        w.close()
    return Running(stop, th.is_alive, lambda: "")


def w_pg_work(servers: List[Tuple[str, int]], fn: str, tmp: pathlib.Path) -> Running:
    w = gearman.GearmanWorker([f"{h}:{p}" for h, p in servers])
    w.register_task(fn, lambda worker, job: _callback_pg(job))
    th = threading.Thread(target=w.work, kwargs={"poll_timeout": T}, daemon=True)
    th.start()

    def stop() -> None:
        w.shutdown()
        th.join(10)
    return Running(stop, th.is_alive, lambda: "")


def _callback_pg(job: Any) -> bytes:
    if job.data == b"raise":
        raise RuntimeError("boom from the job")
    return b"ok:" + job.data


def w_aio_worker(servers: List[Tuple[str, int]], fn: str, tmp: pathlib.Path) -> Running:
    w = AsyncGearmanWorker(",".join(f"{h}:{p}" for h, p in servers) or None, connect_timeout=2 * T)
    w.register(fn, _callback)
    loop = asyncio.new_event_loop()
    th = threading.Thread(target=loop.run_until_complete, args=(w.run(),), daemon=True)
    th.start()

    def stop() -> None:
        loop.call_soon_threadsafe(w.stop)
        th.join(10)
        loop.close()
    return Running(stop, th.is_alive, lambda: "")


def w_cli_worker(servers: List[Tuple[str, int]], fn: str, tmp: pathlib.Path) -> Running:
    (tmp / "conformance_jobs.py").write_text(_JOBS_PY)
    argv = [sys.executable, "-m", "gearman.runner", "-f", f"{fn}=conformance_jobs:job"]
    if servers:
        argv += ["-s", ",".join(f"{h}:{p}" for h, p in servers)]
    else:
        argv = _netns_argv(argv)
    log = open(tmp / "runner.log", "wb")
    proc = subprocess.Popen(argv, cwd=tmp, env=_env(), stdout=log, stderr=subprocess.STDOUT)

    def stop() -> None:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
        log.close()
    return Running(stop, lambda: proc.poll() is None, lambda: (tmp / "runner.log").read_text())


WORKER_DOORS: Dict[str, Callable[..., Running]] = {
    "pecl_work": w_pecl_work, "pg_work": w_pg_work, "aio_worker": w_aio_worker,
    "cli_worker": w_cli_worker,
}


def _workers(server: GearmandServer, fn: str) -> int:
    for line in server.admin("status").splitlines():
        parts = line.split("\t")
        if parts[0] == fn:
            return int(parts[3])
    return 0


def _submit(server: GearmandServer, fn: str, data: bytes) -> Result:
    """A PECL client's foreground job on ``server``: how the worker cells see a job served."""
    c = gearman.GearmanClient(connect_timeout=2 * T)
    c.addServer(server.host, server.port)
    c.setTimeout(int(JOB_WAIT * 1000))
    try:
        return _timed(lambda: c.doNormal(fn, data))
    finally:
        c.close()


def _served(results: List[Result], data: List[bytes]) -> Result:
    bad = [(r, d) for r, d in zip(results, data) if r.token != "ok" or r.value != b"ok:" + d]
    worst = max(r.elapsed for r in results)
    if bad:
        return Result("not served", (), worst, bad)
    return Result("served", (), worst, None, [r.value for r in results])


# -- the world the faults build on: servers shared by the cells ----------------------------------

class World:
    def __init__(self, tmp: pathlib.Path):
        self.tmp = tmp
        self.a = GearmandServer()           # healthy, never stopped
        self.b = GearmandServer()           # the one the faults stop and resume
        self.r = GearmandServer()           # the one restarted
        self._tls: Any = None
        self._front: Any = None
        self._hostile: Any = None
        self._netns: Any = None
        self.startup = self._measure_startup()

    def _measure_startup(self) -> float:
        """The interpreter's start-up with cygearman imported: a no-op run of the command
        (its --version), the worst of three; the commands' cells get 3 of it on top."""
        worst = 0.0
        for _ in range(3):
            t0 = time.monotonic()
            subprocess.run([sys.executable, "-m", "gearman", "--version"], capture_output=True,
                           timeout=60, env=_env(), check=True)
            worst = max(worst, time.monotonic() - t0)
        return worst

    @property
    def tls(self) -> Any:
        if self._tls is None:
            if shutil.which("socat") is None or shutil.which("openssl") is None:
                pytest.fail("the TLS cells need socat and openssl (apt-get install socat openssl)")
            tls_mod = _load("test_tls")
            (self.tmp / "certs").mkdir()
            self._tls = tls_mod.Certs(self.tmp / "certs")
            self._front = tls_mod.TlsFront(self._tls, self.r.port)
        return self._tls

    @property
    def front(self) -> Any:
        _ = self.tls                    # made with the certificates
        return self._front

    @property
    def hostile(self) -> Any:
        if self._hostile is None:
            self._hostile = _load("test_hostile").HostileServer(_malformed_script, max_connections=1000)
        return self._hostile

    @property
    def netns(self) -> Any:
        if self._netns is None:
            # test_partition.py decides whether this machine can (root and iproute2): it
            # skips there as here, only the cut-link cells
            partition = _load("test_partition")
            (self.tmp / "netns").mkdir()
            self._netns = partition.NetnsGearmand(self.tmp / "netns")
        return self._netns

    def close(self) -> None:
        for s in (self.a, self.b, self.r):
            s.resume()
            s.cleanup()
        if self._front is not None:
            self._front.close()
        if self._hostile is not None:
            self._hostile.closed.set()
            self._hostile.acceptor.join(5)
            self._hostile.listener.close()
        if self._netns is not None:
            self._netns.heal()
            self._netns.close()


def _malformed_script(peer: Any) -> None:
    """Answer the first real request with a packet of bad magic (text admin commands: with a
    binary packet) and then say nothing: what a broken or foreign server does."""
    try:
        first = peer.sock.recv(4, socket.MSG_PEEK)
    except OSError:
        return
    if first and first != b"\x00REQ":
        peer.sock.recv(4096)
        peer.send(b"\x00RES\x00\x00\x00\x13\x00\x00\x00\x00garbage\n")
        peer.stall()
        return
    while True:
        p = peer.read_packet(timeout=30)
        if p is None:
            return
        if p[0] == 26:                                  # OPTION_REQ: as gearmand answers
            peer.send(b"\x00RES" + (27).to_bytes(4, "big") + len(p[1][0]).to_bytes(4, "big") + p[1][0],
                      hostile=False)
            continue
        peer.send(b"\x00XYZ\x00\x00\x00\x08\x00\x00\x00\x04abcd")     # bad magic
        peer.stall()
        return


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    w = World(tmp_path_factory.mktemp("conformance"))
    yield w
    w.close()


@pytest.fixture
def cell_fn() -> str:
    return "conf-" + uuid.uuid4().hex[:12]


@pytest.fixture(autouse=True)
def _no_env_servers(monkeypatch: pytest.MonkeyPatch) -> None:
    # "no server configured" means none: not one from the environment
    monkeypatch.delenv("GEARMAN_SERVERS", raising=False)


def _addr(s: Any) -> Tuple[str, int]:
    return (getattr(s, "host", "127.0.0.1"), s.port)


@contextlib.contextmanager
def paused(*servers: GearmandServer) -> Iterator[None]:
    for s in servers:
        s.pause()
    try:
        yield
    finally:
        for s in servers:
            s.resume()


def _hold_lock(obj: Any) -> None:
    """Another thread's call holds the object for 6 T (its lock: PECL, python-gearman, Admin)."""
    hold_lock(obj, 6 * T)


def _when_queued(servers: List[Any], fn: str, act: Callable[[Any], None]) -> Callable[[], None]:
    """A mid-call trigger: once one of ``servers`` holds the call's job (it answered
    JOB_CREATED), ``act(that server)``."""
    def trigger() -> None:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            for s in servers:
                if s.queued(fn) >= 1:
                    act(s)
                    return
            time.sleep(0.01)
    return trigger


def _raising_worker(server: GearmandServer, fn: str) -> Callable[[], None]:
    w = gearman.GearmanWorker()
    w.addServer(server.host, server.port)
    w.addFunction(fn, _callback)
    th = threading.Thread(target=w.serve, kwargs={"handle_signals": False}, daemon=True)
    th.start()
    assert wait_until(lambda: _workers(server, fn) >= 1, timeout=10)

    def stop() -> None:
        w.stop()
        th.join(10)
        w.close()
    return stop


class Observed(NamedTuple):
    results: List[Result]
    fate: Dict[str, Any]


def run_client_cell(world: World, fault: str, door: str, fn: str) -> Observed:
    a, b = world.a, world.b
    call = CLIENT_DOORS[door]
    fate: Dict[str, Any] = {}
    if fault == "no_server":
        return Observed(call(Setup(fn, [])), fate)
    if fault == "refused_alone":
        with socket.socket() as held:               # bound, not listening: refused, held
            held.bind(("127.0.0.1", 0))
            out = call(Setup(fn, [held.getsockname()]))
        fate["healthy"] = a.queued(fn)
        return Observed(out, fate)
    if fault == "refused_pool":
        with socket.socket() as held:
            held.bind(("127.0.0.1", 0))
            out = call(Setup(fn, [held.getsockname(), _addr(a)]))
        fate["healthy"] = a.queued(fn)
        return Observed(out, fate)
    if fault == "silent_alone":
        with paused(b):
            out = call(Setup(fn, [_addr(b)]))
        return Observed(out, fate)
    if fault == "silent_pool":
        with paused(b):
            out = call(Setup(fn, [_addr(b), _addr(a)], calls=2))
        fate["healthy"] = a.queued(fn)
        return Observed(out, fate)
    if fault == "silent_mid":
        stopped: List[Any] = []

        def act(s: Any) -> None:
            s.pause()
            stopped.append(s)
        try:
            out = call(Setup(fn, [_addr(b), _addr(a)], foreground=True,
                             during=_when_queued([b, a], fn, act)))
        finally:
            for s in stopped:
                s.resume()
        fate["kept"] = sum(s.queued(fn) for s in stopped) if stopped else None
        return Observed(out, fate)
    if fault in ("restart", "restart_tls"):
        r = world.r
        if fault == "restart":
            setup = Setup(fn, [_addr(r)], calls=2, between=r.restart)
        else:
            setup = Setup(fn, [("127.0.0.1", world.front.port)], calls=2, tls=world.tls,
                          between=r.restart)
        return Observed(call(setup), fate)
    if fault == "cut_mid":
        ns = world.netns
        try:
            out = call(Setup(fn, [(ns.ip, ns.port)], foreground=True,
                             during=_when_queued([_NsQueue(ns)], fn, lambda s: ns.cut())))
        finally:
            ns.heal()
        return Observed(out, fate)
    if fault == "malformed":
        return Observed(call(Setup(fn, [("127.0.0.1", world.hostile.port)])), fate)
    if fault == "lock_held":
        return Observed(call(Setup(fn, [_addr(a)], hold=_hold_lock)), fate)
    if fault == "bulk_timeout":
        with paused(b):
            out = call(Setup(fn, [_addr(a), _addr(b)], jobs=20))
        fate["healthy"] = a.queued(fn)
        return Observed(out, fate)
    if fault == "job_raises":
        stop = _raising_worker(a, fn)
        try:
            out = call(Setup(fn, [_addr(a)], foreground=True, workload=b"raise"))
        finally:
            stop()
        return Observed(out, fate)
    raise AssertionError(f"no client fault {fault}")


class _NsQueue:
    """queued() of the namespace's gearmand, asked over the link (before it is cut)."""

    def __init__(self, ns: Any):
        self.ns = ns

    def queued(self, fn: str) -> int:
        try:
            for s in Admin(f"{self.ns.ip}:{self.ns.port}", timeout=2).status():
                if s.name == fn:
                    return int(s.total)
        except errors.GearmanError:
            pass
        return 0


def run_worker_cell(world: World, fault: str, door: str, fn: str, tmp: pathlib.Path) -> Observed:
    start = WORKER_DOORS[door]
    a, b = world.a, world.b
    fate: Dict[str, Any] = {}
    if fault == "no_server":
        if door == "pecl_work":
            w = gearman.GearmanWorker()
            w.addFunction(fn, _callback)
            w.setTimeout(int(T * 1000))
            r = _timed(w.work)
            return Observed([r._replace(token=f"returns:{r.value}", value=w.returnCode())], fate)
        if door == "pg_work":
            w = gearman.GearmanWorker([])
            w.register_task(fn, lambda worker, job: b"")
            return Observed([_timed(lambda: w.work(poll_timeout=T))], fate)
        if door == "aio_worker":
            aw = AsyncGearmanWorker()
            aw.register(fn, _callback)
            return Observed([_timed(lambda: asyncio.run(aw.run()))], fate)
        running = start([], fn, tmp)
        time.sleep(4 * T)           # it must not have given up: it retries localhost:4730
        alive, log = running.alive(), running.log()
        running.stop()
        ok = alive and "localhost:4730" in log
        return Observed([Result("retries" if ok else "gave up", (), 0.0, log)], fate)
    if fault == "refused_alone":
        port = free_port()
        if door == "pecl_work":
            w = gearman.GearmanWorker(connect_timeout=2 * T)
            w.addServer("127.0.0.1", port)
            w.addFunction(fn, _callback)
            w.setTimeout(int(T * 1000))
            r = _timed(w.work)
            w.close()
            return Observed([r._replace(token=f"returns:{r.value}", value=w.returnCode())], fate)
        if door == "pg_work":
            w = gearman.GearmanWorker([f"127.0.0.1:{port}"])
            w.register_task(fn, lambda worker, job: b"")
            return Observed([_timed(lambda: w.work(poll_timeout=T))], fate)
        running = start([("127.0.0.1", port)], fn, tmp)
        try:
            time.sleep(2 * T)                       # it retries meanwhile
            late = GearmandServer(port=port)
            try:
                t0 = time.monotonic()
                assert wait_until(lambda: _workers(late, fn) >= 1, timeout=JOB_WAIT), running.log()
                res = _submit(late, fn, b"late")
                res = res._replace(elapsed=time.monotonic() - t0)
            finally:
                late.cleanup()
        finally:
            running.stop()
        return Observed([_served([res], [b"late"])], fate)
    if fault in ("refused_pool", "worker_silent_pair"):
        held = socket.socket()
        held.bind(("127.0.0.1", 0))
        other = held.getsockname() if fault == "refused_pool" else _addr(b)
        running = start([other, _addr(a)], fn, tmp)
        try:
            assert wait_until(lambda: _workers(a, fn) >= 1, timeout=JOB_WAIT), running.log()
            ctx = paused(b) if fault == "worker_silent_pair" else contextlib.nullcontext()
            with ctx:
                data = [b"j%d" % i for i in range(3)]
                results = [_submit(a, fn, d) for d in data]
        finally:
            running.stop()
            held.close()
        return Observed([_served(results, data)], fate)
    if fault == "restart":
        r = world.r
        running = start([_addr(r)], fn, tmp)
        try:
            assert wait_until(lambda: _workers(r, fn) >= 1, timeout=JOB_WAIT), running.log()
            first = _submit(r, fn, b"before")
            r.restart()
            t0 = time.monotonic()
            second = _submit(r, fn, b"after")
            second = second._replace(elapsed=time.monotonic() - t0)
        finally:
            running.stop()
        return Observed([_served([first, second], [b"before", b"after"])], fate)
    if fault == "job_raises":
        running = start([_addr(a)], fn, tmp)
        try:
            assert wait_until(lambda: _workers(a, fn) >= 1, timeout=JOB_WAIT), running.log()
            raised = _submit(a, fn, b"raise")
            nxt = _submit(a, fn, b"next")
        finally:
            running.stop()
        fate["raised"] = raised
        return Observed([_served([nxt], [b"next"])], fate)
    raise AssertionError(f"no worker fault {fault}")


# -- checking a cell ----------------------------------------------------------------------------

def _names(e: Any) -> Tuple[str, ...]:
    return tuple(c.__name__ for c in type(e).__mro__)


def _matches(r: Result, token: str) -> bool:
    if "|" in token:            # a race the cell names: either outcome
        return any(_matches(r, t) for t in token.split("|"))
    token, _, inner = token.partition("/")
    if token.startswith("raises:"):
        if token[len("raises:"):] not in r.names:
            return False
        per_job = getattr(r.err, "errors", None)
    else:
        if r.token != token:
            return False
        per_job = r.err if isinstance(r.err, dict) else None
    if inner:
        # every error carried per job (BatchError.errors, a batch timeout's errors,
        # submit_many's last_batch_errors) is the one the cell names
        return bool(per_job) and all(inner in _names(e) for e in per_job.values())
    return True


def check_cell(world: World, fault: str, door: str, observed: Observed) -> None:
    exp = table.cell_of(fault, door).expect
    results = observed.results
    shown = [(r.token, round(r.elapsed / T, 2), str(r.err)[:300] if r.err is not None else None)
             for r in results]
    bound = exp.max_t * T + (3 * world.startup if door in SUBPROCESS_DOORS else 0.0)
    if exp.result.startswith("then:"):
        # two calls: the first answered, the second ended as the cell says
        assert len(results) == 2 and results[0].token == "ok", shown
        assert _matches(results[1], exp.result[len("then:"):]), (exp.result, shown)
        assert results[1].elapsed <= bound, (shown, bound)
    elif exp.result.startswith("first:"):
        tok = exp.result[len("first:"):]
        assert len(results) == 2, shown
        assert results[0].token == "ok" or _matches(results[0], tok), shown
        assert results[1].token == "ok", shown
        assert sum(r.elapsed for r in results) <= bound, (shown, bound)
    else:
        for r in results:
            assert _matches(r, exp.result), (exp.result, shown)
            assert r.elapsed <= bound, (shown, bound)
    fate = exp.fate
    if fate == "healthy":
        assert observed.fate.get("healthy", 0) >= 1, observed.fate
    elif fate == "none":
        assert observed.fate.get("healthy", 0) == 0, observed.fate
    elif fate == "kept":
        assert observed.fate.get("kept") is None or observed.fate["kept"] >= 1, observed.fate
    elif fate == "handles":
        r = results[0]
        accepted = _accepted(r)
        assert accepted >= 1 and observed.fate["healthy"] == accepted, (accepted, observed.fate, shown)
    elif fate == "next":
        raised = observed.fate["raised"]
        assert raised.token != "ok" and any(n in raised.names for n in ("JobExceptionError", "JobFailedError")), \
            raised


def _accepted(r: Result) -> int:
    """How many jobs of a timed-out bulk call the healthy server accepted, as the door says."""
    if r.err is not None and getattr(r.err, "handles", None) is not None:
        return sum(h is not None for h in r.err.handles)
    if isinstance(r.value, list) and r.value and isinstance(r.value[0], GearmanJobRequest):
        return sum(not q.timed_out for q in r.value)
    if isinstance(r.value, list) and r.value and hasattr(r.value[0], "jobHandle"):
        return sum(bool(t.jobHandle()) for t in r.value)
    if isinstance(r.value, bytes):          # the command's handles, one a line
        return len(r.value.split())
    return -1


# -- the table itself: one source for the docs and these tests ---------------------------------

def test_the_table_covers_every_fault_and_door() -> None:
    table.check()
    for _f, d in table.runnable():
        kind = {d_: k for d_, _, k in table.DOORS}[d]
        assert d in (WORKER_DOORS if kind == "worker" else CLIENT_DOORS), d


def test_the_docs_hold_the_rendered_table() -> None:
    doc = (HERE.parent / "docs" / "reliability.md").read_text(encoding="utf-8")
    assert table.block(doc) == table.render(), \
        "docs/reliability.md's conformance table is stale: run scripts/conformance_table.py --write"


@pytest.mark.parametrize("fault,door", table.runnable(), ids=[f"{f}-{d}" for f, d in table.runnable()])
def test_cell(world: World, fault: str, door: str, cell_fn: str, tmp_path: pathlib.Path) -> None:
    kind = {d: k for d, _, k in table.DOORS}[door]
    if kind == "worker":
        observed = run_worker_cell(world, fault, door, cell_fn, tmp_path)
    else:
        observed = run_client_cell(world, fault, door, cell_fn)
    check_cell(world, fault, door, observed)
