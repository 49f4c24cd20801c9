"""Interop with the reference peers: Debian's `gearman` CLI (client and ``-w`` worker) and PHP's
PECL gearman extension (2.1.0 on libgearman 1.1.20), all through a real gearmand.

What each direction proves:

* our client  -> ``gearman -w`` worker: a libgearman worker reads our submissions byte-exactly;
* ``gearman`` CLI client -> our worker: libgearman's client accepts our WORK_* packets;
* PHP client  -> our worker, PHP worker -> our client: the PECL surface we mirror agrees with ours;
* the seed's PHP example, run unchanged except for the server address, against our worker.

A missing reference tool is a failure that names the Debian package, never a skip.
"""
import base64
import json
import os
import queue
import shutil
import socket
import struct
import subprocess
import threading
import uuid
from pathlib import Path

import pytest

import gearman
from gearman import errors
from gearman.testing import wait_until

pytestmark = pytest.mark.interop

PHP_DIR = Path(__file__).resolve().parent / "php"

#: Upper bound for one reference-tool run; far above what any of them needs.
RUN_TIMEOUT = 30.0


# --- reference tools ------------------------------------------------------------------

def require_tool(name, package):
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"`{name}` is not installed: install the Debian package {package} "
                    f"(apt-get install {package})", pytrace=False)
    return path


def gearman_cli():
    return require_tool("gearman", "gearman-tools")


_php_checked = []


def require_php():
    if _php_checked:
        return _php_checked[0]
    php = require_tool("php", "php-gearman")
    probe = subprocess.run([php, "-r", 'echo extension_loaded("gearman") ? "yes" : "no";'],
                           capture_output=True, timeout=RUN_TIMEOUT)
    if probe.stdout != b"yes":
        pytest.fail("PHP has no gearman extension: install the Debian package php-gearman "
                    f"(php said {probe.stdout!r} {probe.stderr!r})", pytrace=False)
    _php_checked.append(php)
    return php


def run(args, *, timeout=RUN_TIMEOUT, **kw):
    """Run a reference tool to completion; a run that does not end in time fails the test."""
    try:
        return subprocess.run([str(a) for a in args], capture_output=True, timeout=timeout, **kw)
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"{args!r} did not finish within {timeout} s "
                    f"(stdout {exc.stdout!r}, stderr {exc.stderr!r})", pytrace=False)


def php_env(server):
    return dict(os.environ, GEARMAN_PORT=str(server.port))


def php_client(server, *args):
    """Run tests/php/client.php; return its JSON answer."""
    proc = run([require_php(), PHP_DIR / "client.php", *args], env=php_env(server))
    assert proc.returncode == 0, (proc.returncode, proc.stdout, proc.stderr)
    assert proc.stderr == b"", proc.stderr       # PECL reports trouble as PHP warnings
    return json.loads(proc.stdout)


# --- helpers -----------------------------------------------------------------------------

def function_status(server, name):
    """(queued+running, running, available workers) from gearmand's ``status``; zeros if absent."""
    for line in server.admin("status").splitlines():
        fields = line.split("\t")
        if len(fields) == 4 and fields[0] == name:
            return tuple(int(f) for f in fields[1:])
    return (0, 0, 0)


def wait_for_worker(server, name, proc=None):
    """Wait until a worker has registered ``name`` (reference workers register lazily)."""
    def registered():
        if proc is not None and proc.poll() is not None:
            pytest.fail(f"worker process exited with {proc.returncode} before registering {name!r}",
                        pytrace=False)
        return function_status(server, name)[2] >= 1
    assert wait_until(registered), f"no worker registered {name!r} on {server.address}"


@pytest.fixture
def spawn(tmp_path):
    """Start a background process (output to files); every one is ended at teardown."""
    procs = []

    def start(args, **kw):
        n = len(procs)
        out = open(tmp_path / f"proc{n}.out", "wb")
        err = open(tmp_path / f"proc{n}.err", "wb")
        proc = subprocess.Popen([str(a) for a in args], stdout=out, stderr=err,
                                stdin=subprocess.DEVNULL, **kw)
        proc.out_path, proc.err_path = out.name, err.name
        procs.append((proc, out, err))
        return proc

    yield start
    for proc, out, err in procs:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        out.close()
        err.close()


@pytest.fixture
def our_worker(gearmand):
    """Our PECL worker in a thread: ``our_worker({name: cb}, server=None, **addServer_kw)``.

    (conftest's ``our_worker`` without the addServer keywords; ``fn`` and ``client`` come
    from conftest.)
    """
    started = []

    def start(functions, server=None, **add_server_kw):
        w = gearman.GearmanWorker()
        w.addServer("127.0.0.1", (server or gearmand).port, **add_server_kw)
        for name, cb in functions.items():
            w.addFunction(name, cb)
        w.setTimeout(100)
        stop = threading.Event()

        def loop():
            while not stop.is_set():
                w.work()

        th = threading.Thread(target=loop, daemon=True)
        th.start()
        started.append((w, stop, th))
        return w

    yield start
    for w, stop, th in started:
        stop.set()
        w.stop()
        th.join(10)
        assert not th.is_alive(), "worker thread did not stop"
        w.close()


# --- 1. our client against the `gearman -w` worker ----------------------------------------

@pytest.fixture
def cli_worker(gearmand, spawn):
    """``cli_worker(name, *command)``: a ``gearman -w`` worker running ``command`` per job."""
    def start(name, *command):
        proc = spawn([gearman_cli(), "-h", "127.0.0.1", "-p", gearmand.port, "-w", "-f", name,
                      "--", *command])
        wait_for_worker(gearmand, name, proc)
        return proc
    return start


def test_client_do_normal_against_cli_worker_rev(client, cli_worker, fn):
    cli_worker(fn, "rev")
    assert client.doNormal(fn, "hello world") == b"dlrow olleh"
    assert client.doNormal(fn, b"abc\ndef\n") == b"cba\nfed\n"
    assert client.returnCode() == gearman.GEARMAN_SUCCESS


def test_client_do_normal_binary_against_cli_worker_cat(client, cli_worker, fn):
    cli_worker(fn, "cat")
    payload = bytes(range(256)) * 64       # every byte value, NULs included
    assert client.doNormal(fn, payload) == payload


def test_client_background_against_cli_worker(client, cli_worker, fn, tmp_path):
    record = tmp_path / "record"
    cli_worker(fn, "sh", "-c", 'cat >> "$0"', record)
    handle = client.doBackground(fn, b"background payload")
    assert isinstance(handle, str) and handle
    assert client.returnCode() == gearman.GEARMAN_SUCCESS
    assert wait_until(lambda: not client.jobStatus(handle)[0]), "background job never finished"
    assert client.jobStatus(handle) == [False, False, 0, 0]
    assert record.read_bytes() == b"background payload"


def test_client_gets_fail_from_cli_worker_command_failure(client, cli_worker, fn):
    cli_worker(fn, "sh", "-c", "exit 3")
    with pytest.raises(errors.JobFailedError) as info:
        client.doNormal(fn, b"x")
    assert not isinstance(info.value, errors.JobExceptionError)
    assert client.returnCode() == gearman.GEARMAN_WORK_FAIL


# --- 2. the `gearman` CLI client against our worker ----------------------------------------

def cli_client(server, *args, timeout=RUN_TIMEOUT):
    return run([gearman_cli(), "-h", "127.0.0.1", "-p", server.port, *args], timeout=timeout)


def test_cli_client_against_our_worker(gearmand, our_worker, fn):
    seen = []

    def work(job, ctx):
        seen.append((job.functionName(), job.workload()))
        return job.workload()[::-1] + b"!"

    our_worker({fn: work})
    proc = cli_client(gearmand, "-f", fn, "hello world")
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, b"dlrow olleh!", b"")
    assert seen == [(fn, b"hello world")]


def test_cli_client_unique_and_lines_reach_our_worker(gearmand, our_worker, fn):
    seen = []

    def work(job, ctx):
        seen.append((job.workload(), job.unique()))
        return job.workload().upper()

    our_worker({fn: work})
    proc = cli_client(gearmand, "-u", "my-unique-key", "-f", fn, "abc")
    assert (proc.returncode, proc.stdout) == (0, b"ABC")
    assert seen.pop() == (b"abc", "my-unique-key")

    # -N: one job per stdin line, newline stripped; the CLI sends a generated UUID unique
    proc = run([gearman_cli(), "-h", "127.0.0.1", "-p", gearmand.port, "-N", "-f", fn],
               input=b"one\ntwo\n")
    assert (proc.returncode, proc.stdout) == (0, b"ONETWO")
    assert [w for w, _ in seen] == [b"one", b"two"]
    for _, unique in seen:
        assert str(uuid.UUID(unique)) == unique


def test_cli_client_background_against_our_worker(gearmand, our_worker, fn):
    seen = queue.Queue()
    our_worker({fn: lambda job, ctx: seen.put(job.workload())})
    proc = cli_client(gearmand, "-b", "-f", fn, "in the background")
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, b"", b"")
    assert seen.get(timeout=15) == b"in the background"


def test_cli_client_streams_data_and_status_from_our_worker(gearmand, our_worker, fn):
    def work(job, ctx):
        job.sendData(b"one,")
        job.sendStatus(1, 3)
        job.sendData(b"two,")
        job.sendStatus(2, 3)
        job.sendWarning(b"careful")
        return b"three"

    our_worker({fn: work})
    proc = cli_client(gearmand, "-f", fn, "x")
    assert proc.returncode == 0
    # The CLI write(2)s data chunks at once and printf(3)s "N% Complete" lines into the stdio
    # buffer, flushed at exit, so the two streams are checked apart, each in its own order.
    lines = proc.stdout.split(b"\n")
    assert lines[1:] == [b"66% Complete", b""]
    assert lines[0] == b"one,two,three33% Complete"
    assert proc.stderr == b"careful"             # WORK_WARNING goes to stderr


def test_cli_client_reports_fail_from_our_worker(gearmand, our_worker, fn):
    our_worker({fn: lambda job, ctx: job.sendFail()})
    proc = cli_client(gearmand, "-f", fn, "x")
    assert (proc.returncode, proc.stdout, proc.stderr) == (1, b"", b"Job failed\n")


def test_cli_client_reports_callback_error_when_exception_handler_off(gearmand, our_worker,
                                                                     spawn, fn):
    """DESIGN: with the exception handler off, a raising callback ends the job with WORK_FAIL.

    The CLI (a libgearman client without the "exceptions" option) then says "Job failed".
    """
    called = threading.Event()

    def work(job, ctx):
        called.set()
        raise RuntimeError("kaboom")

    our_worker({fn: work}, setupExceptionHandler=False)
    proc = spawn([gearman_cli(), "-h", "127.0.0.1", "-p", gearmand.port, "-f", fn, "x"])
    assert called.wait(15), "our worker never got the CLI's job"
    assert wait_until(lambda: function_status(gearmand, fn)[0] == 0), "gearmand kept the job"
    try:
        proc.wait(10)      # gearmand's WORK_FAIL is already on its way: ms, not seconds
    except subprocess.TimeoutExpired:
        pytest.fail("gearmand dropped the job but the CLI never ended: our worker sent "
                    "WORK_EXCEPTION (which reaches this client as an unmatchable WORK_FAIL "
                    "'handle\\0') although addServer(setupExceptionHandler=False)", pytrace=False)
    assert proc.returncode == 1
    assert Path(proc.out_path).read_bytes() == b""
    assert Path(proc.err_path).read_bytes() == b"Job failed\n"


def test_cli_client_cannot_see_work_exception(gearmand, our_worker, spawn, fn):
    """With the exception handler on (default) a raising callback sends WORK_EXCEPTION.

    The CLI does not ask for exceptions, so gearmand turns it into WORK_FAIL "handle\\0", which
    libgearman 1.1.20 cannot match (docs/protocol.md §3.9): the CLI waits forever although gearmand
    has already dropped the job.  This pins that behaviour, which is why the exception handler
    must be turned off for workers serving libgearman clients that lack the option.
    """
    called = threading.Event()

    def work(job, ctx):
        called.set()
        raise RuntimeError("kaboom")

    our_worker({fn: work})
    proc = spawn([gearman_cli(), "-h", "127.0.0.1", "-p", gearmand.port, "-f", fn, "x"])
    assert called.wait(15), "our worker never got the CLI's job"
    assert wait_until(lambda: function_status(gearmand, fn)[0] == 0), "gearmand kept the job"
    with pytest.raises(subprocess.TimeoutExpired):
        proc.wait(2)     # gearmand's WORK_FAIL is already sent: a client that saw it would exit


# --- 3. PHP client against our worker ------------------------------------------------------

def test_php_client_do_normal_against_our_worker(gearmand, our_worker, fn):
    def work(job, ctx):
        return job.workload()[::-1] + b"|" + job.unique().encode()

    our_worker({fn: work})
    payload = bytes(range(256))
    out = php_client(gearmand, "do", fn, base64.b64encode(payload).decode(), "php-unique")
    assert out["rc"] == gearman.GEARMAN_SUCCESS
    assert base64.b64decode(out["result"]) == payload[::-1] + b"|php-unique"


def test_php_client_do_normal_sees_exception_and_fail(gearmand, our_worker, fn):
    def boom(job, ctx):
        raise RuntimeError("kaboom")

    our_worker({fn + ".boom": boom, fn + ".fail": lambda job, ctx: job.sendFail()})
    x = base64.b64encode(b"x").decode()
    assert php_client(gearmand, "do", fn + ".boom", x) == {"result": "",
                                                          "rc": gearman.GEARMAN_WORK_EXCEPTION}
    assert php_client(gearmand, "do", fn + ".fail", x) == {"result": "",
                                                          "rc": gearman.GEARMAN_WORK_FAIL}


def test_php_client_background_and_job_status(gearmand, our_worker, client, fn):
    seen, running, release = [], threading.Event(), threading.Event()

    def work(job, ctx):
        seen.append((job.functionName(), job.workload()))
        job.sendStatus(1, 2)
        running.set()
        if not release.wait(30):
            raise RuntimeError("the test never released the job")
        return b"done"

    our_worker({fn: work})
    out = php_client(gearmand, "background", fn, "php background")
    assert out["rc"] == gearman.GEARMAN_SUCCESS and out["handle"]
    handle = out["handle"]
    assert running.wait(15), "our worker never got PHP's background job"
    # gearmand has processed WORK_STATUS once our own client sees it; then PHP must see it too
    assert wait_until(lambda: client.jobStatus(handle) == [True, True, 1, 2])
    assert php_client(gearmand, "status", handle) == {"status": [True, True, 1, 2],
                                                      "rc": gearman.GEARMAN_SUCCESS}
    release.set()
    assert wait_until(lambda: not client.jobStatus(handle)[0]), "job never finished"
    assert php_client(gearmand, "status", handle) == {"status": [False, False, 0, 0],
                                                      "rc": gearman.GEARMAN_SUCCESS}
    assert seen == [(fn, b"php background")]


def test_php_client_run_tasks_against_our_worker(gearmand, our_worker, fn):
    def chunks(job, ctx):
        job.sendData(b"one,")
        job.sendStatus(1, 3)
        job.sendData(b"two,")
        job.sendStatus(2, 3)
        return b"three"

    our_worker({
        fn + ".chunks": chunks,
        fn + ".rev": lambda job, ctx: job.workload()[::-1],
        fn + ".exc": lambda job, ctx: job.sendException(b"custom payload"),
        fn + ".fail": lambda job, ctx: job.sendFail(),
    })
    out = php_client(gearmand, "tasks", fn + ".chunks", "a", fn + ".rev", "abc",
                     fn + ".exc", "x", fn + ".fail", "y", fn + ".rev", "xyz")
    assert (out["ok"], out["rc"]) == (True, gearman.GEARMAN_SUCCESS)
    by_task = {}
    for event in out["events"]:
        by_task.setdefault(event[1], []).append([event[0]] + event[2:])
    assert by_task == {
        "t0": [["data", "one,"], ["status", 1, 3], ["data", "two,"], ["status", 2, 3],
               ["complete", "three"]],
        "t1": [["complete", "cba"]],
        "t2": [["exception", "custom payload"]],
        "t3": [["fail"]],
        "t4": [["complete", "zyx"]],
    }


# --- 3b. PHP worker against our client -------------------------------------------------------

@pytest.fixture
def php_worker(gearmand, spawn, tmp_path):
    """tests/php/worker.php, registered; ``.fn(name)`` gives its function names."""
    prefix = "php-" + uuid.uuid4().hex[:12]
    record = tmp_path / "php-record"
    proc = spawn([require_php(), PHP_DIR / "worker.php", prefix, record], env=php_env(gearmand))
    for name in ("reverse", "chunks", "unique", "record", "exception", "throw", "fail"):
        wait_for_worker(gearmand, f"{prefix}.{name}", proc)
    proc.fn = lambda name: f"{prefix}.{name}"
    proc.record = record
    return proc


def test_client_do_normal_against_php_worker(client, php_worker):
    payload = bytes(range(256)) * 16
    assert client.doNormal(php_worker.fn("reverse"), payload) == payload[::-1]
    # WORK_DATA chunks and the WORK_COMPLETE payload, concatenated as libgearman does
    assert client.doNormal(php_worker.fn("chunks"), b"x") == b"one,two,three"
    assert client.returnCode() == gearman.GEARMAN_SUCCESS


def test_client_unique_reaches_php_worker(client, php_worker):
    name = php_worker.fn("unique")
    unique, handle, function = client.doNormal(name, b"x", "given-unique").decode().split("|")
    assert (unique, function) == ("given-unique", name)
    assert handle.startswith("H:")
    # no unique given: PHP sees the one we generated, UUID-formatted
    unique = client.doNormal(name, b"x").decode().split("|")[0]
    assert str(uuid.UUID(unique)) == unique


def test_client_background_against_php_worker(client, php_worker):
    handle = client.doBackground(php_worker.fn("record"), b"for php")
    assert isinstance(handle, str) and handle
    assert wait_until(lambda: not client.jobStatus(handle)[0]), "background job never finished"
    assert php_worker.record.read_bytes() == b"for php\n"


def test_client_gets_php_send_exception(client, php_worker):
    with pytest.raises(errors.JobExceptionError) as info:
        client.doNormal(php_worker.fn("exception"), b"bad input")
    assert info.value.payload == b"php says: bad input"
    assert info.value.handle.startswith("H:")
    assert client.returnCode() == gearman.GEARMAN_WORK_EXCEPTION


def test_client_gets_php_thrown_exception(client, php_worker):
    with pytest.raises(errors.JobExceptionError) as info:
        client.doNormal(php_worker.fn("throw"), b"x")
    # PECL reports any PHP exception with this fixed text (docs/protocol.md §6.3)
    assert info.value.payload == b"Unable to add worker function"
    # and the worker, which catches what work() rethrows, still serves jobs
    assert client.doNormal(php_worker.fn("reverse"), b"abc") == b"cba"
    assert b"caught: thrown in PHP" in Path(php_worker.err_path).read_bytes()


def test_client_gets_php_send_fail(client, php_worker):
    with pytest.raises(errors.JobFailedError) as info:
        client.doNormal(php_worker.fn("fail"), b"x")
    assert not isinstance(info.value, errors.JobExceptionError)
    assert client.returnCode() == gearman.GEARMAN_WORK_FAIL


# --- 4. the seed's example --------------------------------------------------------------------

SEED_EXPECTED = (
    "Running: true, numerator: 3, denomintor: 14\n"
    "Running: true, numerator: 6, denomintor: 14\n"
    "Running: true, numerator: 9, denomintor: 14\n"
    "Running: true, numerator: 12, denomintor: 14\n"
    "Running: false, numerator: 0, denomintor: 0\n"
    "done!\n"
)


class StatusPollGate:
    """A loopback TCP proxy before gearmand that holds each GET_STATUS until ``on_poll`` returns.

    Bytes pass unchanged both ways; the client-to-server stream is cut into packets only to
    spot GET_STATUS (type 15).  ``on_poll(n, handle)`` runs for the n-th poll before the
    request is forwarded; its exceptions are kept in ``errors`` (the request still goes on, so
    the PHP script ends and the test reports them).
    """

    HEADER = struct.Struct(">4sII")

    def __init__(self, upstream_port, on_poll):
        self._upstream_port = upstream_port
        self._on_poll = on_poll
        self.polls = 0
        self.errors = []
        self._closed = threading.Event()
        self._sockets = []
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.1)
        self.port = self._listener.getsockname()[1]
        self._threads = [threading.Thread(target=self._accept, daemon=True)]
        self._threads[0].start()

    def _thread(self, target, *args):
        th = threading.Thread(target=target, args=args, daemon=True)
        self._threads.append(th)
        th.start()

    def _accept(self):
        while not self._closed.is_set():
            try:
                down, _ = self._listener.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            down.settimeout(None)
            up = socket.create_connection(("127.0.0.1", self._upstream_port), timeout=10)
            up.settimeout(None)
            self._sockets += [down, up]
            self._thread(self._requests, down, up)
            self._thread(self._pipe, up, down)

    @staticmethod
    def _end(src, dst):
        for sock, how in ((dst, socket.SHUT_WR), (src, socket.SHUT_RD)):
            try:
                sock.shutdown(how)
            except OSError:
                pass

    def _pipe(self, src, dst):
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            pass
        self._end(src, dst)

    def _requests(self, src, dst):
        buf = b""
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                buf += data
                while len(buf) >= 12:
                    magic, ptype, size = self.HEADER.unpack_from(buf)
                    if magic != b"\0REQ":          # admin text: nothing to hold
                        dst.sendall(buf)
                        buf = b""
                        break
                    if len(buf) < 12 + size:
                        break
                    packet, buf = buf[:12 + size], buf[12 + size:]
                    if ptype == 15:
                        self.polls += 1
                        try:
                            self._on_poll(self.polls, packet[12:].decode())
                        except Exception as exc:   # noqa: BLE001 - reported by the test
                            self.errors.append(exc)
                    dst.sendall(packet)
        except OSError:
            pass
        self._end(src, dst)

    def close(self):
        self._closed.set()
        self._listener.close()
        for sock in self._sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        for th in self._threads:
            th.join(10)
        for sock in self._sockets:
            sock.close()
        assert not any(th.is_alive() for th in self._threads), "proxy thread did not stop"


def test_seed_example_output(gearmand_factory, our_worker):
    """The PECL manual's doBackground example, run verbatim but for the server address.

    Determinism: the example sleeps 3 s between jobStatus polls and prints what it sees, so
    the worker's progress must line up with those polls.  Instead of guessing timings, PHP
    talks to gearmand through StatusPollGate, which holds the n-th GET_STATUS until the worker
    has made step n: for polls 1-4 the worker sends WORK_STATUS 3n/14, and for poll 5 it
    completes the job; in each case the gate waits until gearmand itself reports the new state
    (read by our own client on a direct connection) before letting PHP's request through.
    gearmand answers requests in arrival order, so each poll sees exactly its step, however
    slow the machine: no sleep of ours has to match PHP's.
    """
    php = require_php()
    server = gearmand_factory()
    steps = queue.Queue()          # numerators to report; None = complete the job
    acks = queue.Queue()
    assigned = queue.Queue()

    def reverse(job, ctx):
        assigned.put((job.functionName(), job.workload(), job.handle()))
        while True:
            numerator = steps.get(timeout=60)
            if numerator is None:
                return job.workload()[::-1]
            job.sendStatus(numerator, 14)
            acks.put(numerator)

    our_worker({"reverse": reverse}, server=server)
    checker = gearman.GearmanClient()
    checker.addServer("127.0.0.1", server.port)
    checker.setTimeout(10000)
    got = {}

    def on_poll(n, handle):
        if n == 1:
            got["job"] = assigned.get(timeout=30)
            assert got["job"][2] == handle, (got["job"], handle)
        if n <= 4:
            steps.put(3 * n)
            assert acks.get(timeout=30) == 3 * n
            expected = [True, True, 3 * n, 14]
        elif n == 5:
            steps.put(None)
            expected = [False, False, 0, 0]
        else:
            raise AssertionError(f"unexpected poll #{n}")
        assert wait_until(lambda: checker.jobStatus(handle) == expected), \
            f"gearmand never reported {expected} before poll {n}"

    gate = StatusPollGate(server.port, on_poll)
    try:
        proc = run([php, PHP_DIR / "seed_example.php"], timeout=120,
                   env=dict(os.environ, GEARMAN_PORT=str(gate.port)))
    finally:
        steps.put(None)            # never leave the worker waiting, whatever happened
        gate.close()
        checker.close()
    assert gate.errors == []
    assert (proc.returncode, proc.stderr) == (0, b"")
    assert proc.stdout.decode() == SEED_EXPECTED
    assert gate.polls == 5
    assert got["job"][:2] == ("reverse", b"this is a test")
