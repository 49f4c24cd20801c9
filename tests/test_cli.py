"""The ``cygearman`` command line, run as ``python -m gearman`` subprocesses against real gearmand.

Terminal output (the progress bar, ``top``'s live view) is checked in a real
pseudo-terminal, and ``top`` once more inside tmux, whose screen shows what
the ANSI redraw really produced; pipes get plain lines.
"""
import fcntl
import json
import os
import select
import shlex
import shutil
import signal
import socket
import struct
import subprocess
import sys
import termios
import time
import uuid

import pytest

import gearman
from gearman import errors
from gearman.admin import Admin
from gearman.testing import wait_until

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_UNREACHABLE, EXIT_JOB_FAILED, EXIT_TIMEOUT = 0, 1, 2, 3, 4, 5


def _name(prefix="cli"):
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def _env(extra=None):
    env = dict(os.environ)
    env.pop("GEARMAN_SERVERS", None)
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra or {})
    return env


@pytest.fixture
def cli(tmp_path):
    """``cli(*args, input=b"", env=None) -> CompletedProcess`` (bytes), run outside the source tree."""
    def run(*args, input=b"", env=None, timeout=60):
        return subprocess.run([sys.executable, "-m", "gearman", *map(str, args)], input=input,
                              capture_output=True, timeout=timeout, env=_env(env), cwd=tmp_path)
    return run


def _status(server, fn):
    for s in Admin(server.address, timeout=10).status():
        if s.name == fn:
            return s
    return None


def _workers_for(server, fn):
    s = _status(server, fn)
    return s.workers if s else 0


# -- a real terminal ---------------------------------------------------------------------------

class Pty:
    """A command whose stdin, stdout and stderr are a pseudo-terminal it controls."""

    def __init__(self, argv, cwd, env=None, rows=40, cols=120):
        master, slave = os.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))

        def controlling_tty():
            os.setsid()
            fcntl.ioctl(0, termios.TIOCSCTTY, 0)     # so ^C on the terminal is SIGINT

        self.proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, cwd=cwd,
                                     env=_env(env), preexec_fn=controlling_tty, close_fds=True)
        os.close(slave)
        self.master = master
        self.out = b""

    def read_until(self, predicate, timeout=30.0):
        """Read output until ``predicate(all_output)`` holds or time runs out; return it."""
        deadline = time.monotonic() + timeout
        while not predicate(self.out):
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            ready, _, _ = select.select([self.master], [], [], left)
            if ready:
                try:
                    data = os.read(self.master, 65536)
                except OSError:           # EIO: the other side is closed
                    data = b""
                if not data:
                    return predicate(self.out)
                self.out += data
        return True

    def write(self, data):
        os.write(self.master, data)

    def wait(self, timeout=30.0):
        """Read to the end and return the exit code."""
        self.read_until(lambda out: False, timeout=0.0)
        deadline = time.monotonic() + timeout
        while self.proc.poll() is None and time.monotonic() < deadline:
            self.read_until(lambda out: False, timeout=0.1)
        self.read_until(lambda out: False, timeout=0.2)
        return self.proc.wait(max(deadline - time.monotonic(), 0.1))

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        os.close(self.master)


@pytest.fixture
def pty_run(tmp_path):
    started = []

    def start(*args, env=None):
        p = Pty([sys.executable, "-m", "gearman", *map(str, args)], cwd=tmp_path, env=env)
        started.append(p)
        return p

    yield start
    for p in started:
        p.close()


# -- submit ------------------------------------------------------------------------------------

def test_submit_runs_a_job_and_prints_its_result_exactly(cli, gearmand, run_worker):
    fn = _name()
    run_worker({fn: lambda job, ctx: job.workload()[::-1] + b"\x00\xff"})
    r = cli("submit", fn, "hello", "-s", gearmand.address)
    assert (r.returncode, r.stdout) == (EXIT_OK, b"olleh\x00\xff"), r.stderr
    r = cli("submit", fn, "-s", gearmand.address, input=b"from stdin")      # data from stdin
    assert (r.returncode, r.stdout) == (EXIT_OK, b"nidts morf\x00\xff"), r.stderr


def test_submit_json(cli, gearmand, run_worker):
    fn = _name()
    run_worker({fn: lambda job, ctx: job.workload().upper(), fn + "b": lambda job, ctx: b"\xff"})
    r = cli("submit", fn, "abc", "--json", "-s", gearmand.address)
    assert r.returncode == EXIT_OK, r.stderr
    out = json.loads(r.stdout)
    assert out["ok"] is True and out["result"] == "ABC" and out["handle"].startswith("H:")
    r = cli("submit", fn + "b", "x", "--json", "-s", gearmand.address)
    assert json.loads(r.stdout)["result_base64"] == "/w=="


def test_submit_uses_gearman_servers_env(cli, gearmand, run_worker):
    fn = _name()
    run_worker({fn: lambda job, ctx: b"env ok"})
    r = cli("submit", fn, "x", env={"GEARMAN_SERVERS": gearmand.address})
    assert (r.returncode, r.stdout) == (EXIT_OK, b"env ok"), r.stderr


def test_submit_job_failures_exit_4(cli, gearmand, run_worker):
    fn = _name()

    def work(job, ctx):
        if job.workload() == b"raise":
            raise RuntimeError("boom")
        job.sendFail()

    run_worker({fn: work})
    r = cli("submit", fn, "fail", "-s", gearmand.address)
    assert r.returncode == EXIT_JOB_FAILED
    assert b"WORK_FAIL" in r.stderr and r.stdout == b""
    r = cli("submit", fn, "raise", "-s", gearmand.address)
    assert r.returncode == EXIT_JOB_FAILED
    assert b"boom" in r.stderr


def test_submit_background_priorities_and_unique(cli, gearmand):
    fn = _name()
    r = cli("submit", fn, "x", "--background", "-s", gearmand.address)
    assert r.returncode == EXIT_OK, r.stderr
    handle = r.stdout.decode().strip()
    assert handle.startswith("H:")
    assert cli("submit", fn, "x", "-b", "--high", "-s", gearmand.address).returncode == 0
    assert cli("submit", fn, "x", "-b", "-L", "-s", gearmand.address).returncode == 0
    prio = [p for p in Admin(gearmand.address).priority_status() if p.name == fn][0]
    assert (prio.high, prio.normal, prio.low) == (1, 1, 1)
    unique = "u-" + uuid.uuid4().hex
    a = cli("submit", fn, "1", "-b", "-u", unique, "-s", gearmand.address)
    b = cli("submit", fn, "2", "-b", "--unique", unique, "--json", "-s", gearmand.address)
    assert json.loads(b.stdout)["handle"] == a.stdout.decode().strip()      # coalesced
    assert unique in Admin(gearmand.address).show_unique_jobs()
    assert cli("submit", fn, "-b", "-I", "-L", "x").returncode == EXIT_USAGE


def test_submit_lines_in_the_foreground(cli, gearmand, run_worker):
    fn = _name()
    run_worker({fn: lambda job, ctx: job.workload().upper()})
    r = cli("submit", fn, "--lines", "-s", gearmand.address, input=b"one\r\ntwo\n\nthree")
    assert r.returncode == EXIT_OK, r.stderr
    assert r.stdout == b"ONE\nTWO\nTHREE\n"                # input order; empty line skipped
    # Pipes get plain lines, never a redrawn bar; a short run only its summary.
    assert r.stderr.startswith(b"cygearman: done 3/3 jobs in ") and b"jobs/s" in r.stderr
    assert b"\r" not in r.stderr and r.stderr.count(b"\n") == 1
    r = cli("submit", fn, "-n", "--json", "-q", "-s", gearmand.address, input=b"a\nb\n")
    rows = [json.loads(line) for line in r.stdout.splitlines()]
    assert [(x["index"], x["result"]) for x in rows] == [(0, "A"), (1, "B")]
    assert r.stderr == b""


def test_submit_lines_reports_each_failure_and_exits_4(cli, gearmand, run_worker):
    fn = _name()

    def work(job, ctx):
        if job.workload() == b"bad":
            job.sendFail()
            return None
        return job.workload()

    run_worker({fn: work})
    r = cli("submit", fn, "-n", "-s", gearmand.address, input=b"ok1\nbad\nok2\n")
    assert r.returncode == EXIT_JOB_FAILED
    assert r.stdout == b"ok1\nok2\n"
    assert b"job 1:" in r.stderr


def test_bulk_background_from_a_file_over_pipes(cli, gearmand, tmp_path):
    fn, n = _name(), 3000
    path = tmp_path / "jobs.txt"
    path.write_bytes(b"".join(b"job %d\n" % i for i in range(n)))
    r = cli("submit", fn, "-b", "--file", path, "-s", gearmand.address)
    assert r.returncode == EXIT_OK, r.stderr
    handles = r.stdout.decode().split()
    assert len(handles) == n and len(set(handles)) == n
    assert all(h.startswith("H:") for h in handles)
    err = r.stderr.decode()
    assert "\r" not in err and "\x1b" not in err
    # Plain progress lines come every few seconds (see test_plain_progress_lines...),
    # never one per tenth: a short run prints its summary and nothing else before it
    # but such lines.
    *before, summary = err.splitlines()
    assert summary.startswith(f"cygearman: submitted {n}/{n} background jobs in ")
    assert all(line.startswith("submitted: ") and "(100%)" not in line for line in before)
    assert _status(gearmand, fn).total == n


def test_bulk_background_json(cli, gearmand):
    fn = _name()
    r = cli("submit", fn, "-b", "-n", "--json", "-s", gearmand.address, input=b"a\nb\nc\n")
    rows = [json.loads(line) for line in r.stdout.splitlines()]
    assert [x["index"] for x in rows] == [0, 1, 2]
    assert all(x["ok"] and x["handle"].startswith("H:") for x in rows)


def test_bulk_background_shows_a_progress_bar_on_a_terminal(pty_run, gearmand, tmp_path):
    fn, n = _name(), 3000
    path = tmp_path / "jobs.txt"
    path.write_bytes(b"".join(b"%d\n" % i for i in range(n)))
    p = pty_run("submit", fn, "-b", "--file", path, "-s", gearmand.address)
    assert p.wait() == EXIT_OK, p.out
    out = p.out.decode()
    final = f"] {n}/{n} 100%"
    assert final in out, out
    assert "\r" + "submitted [" in out and "#" * 10 in out and "jobs/s" in out
    assert "\x1b[K" in out                                 # redrawn in place
    assert "H:" not in out                                 # no flood of handles on a terminal
    assert f"submitted {n}/{n} background jobs" in out
    assert _status(gearmand, fn).total == n
    p = pty_run("submit", fn, "-b", "-n", "--handles", "--file", path, "-s", gearmand.address)
    assert p.wait() == EXIT_OK
    assert p.out.count(b"H:") == n


def test_bulk_with_a_full_queue_exits_4(cli, gearmand):
    fn = _name()
    Admin(gearmand.address).maxqueue(fn, 2, 2, 2)
    r = cli("submit", fn, "-b", "-n", "-s", gearmand.address, input=b"1\n2\n3\n4\n")
    assert r.returncode == EXIT_JOB_FAILED, r.stderr
    assert len(r.stdout.split()) == 2
    assert b"submitted 2/4" in r.stderr and b"2 jobs were not accepted (the first: job 2)" in r.stderr


def test_the_progress_bar_counts_accepted_jobs(pty_run, gearmand, dead_port, tmp_path):
    path = tmp_path / "jobs.txt"
    path.write_bytes(b"".join(b"%d\n" % i for i in range(300)))
    # A dead server: no job is accepted, and the bar never claims otherwise.
    p = pty_run("submit", _name(), "-b", "--file", path, "-s", f"127.0.0.1:{dead_port}")
    assert p.wait() == EXIT_UNREACHABLE, p.out
    out = p.out.decode()
    assert "] 0/300   0%" in out and "300/300" not in out and "100%" not in out, out
    assert "300 jobs were not accepted (the first: job 0): " in out
    assert "submitted 0/300 background jobs" in out
    # A full queue: the bar ends at the two jobs gearmand took.
    fn = _name()
    Admin(gearmand.address).maxqueue(fn, 2, 2, 2)
    p = pty_run("submit", fn, "-b", "--file", path, "-s", gearmand.address)
    assert p.wait() == EXIT_JOB_FAILED, p.out
    out = p.out.decode()
    assert "] 2/300   1%" in out and "300/300" not in out, out
    assert "submitted 2/300 background jobs" in out


def test_plain_progress_lines_come_every_few_seconds():
    """Off a terminal, a line every PLAIN_PROGRESS_EVERY seconds, none at 100% (the
    caller's summary follows), instead of a line per tenth of the jobs."""
    import io

    from gearman.cli._common import PLAIN_PROGRESS_EVERY, Progress

    now = [100.0]
    out = io.StringIO()
    p = Progress(300, "submitted", out, tty=False, clock=lambda: now[0])
    for done in range(1, 300):
        now[0] += 0.001
        p.update(done)
    assert out.getvalue() == ""                                 # 300 jobs, 0.3 s: no line
    now[0] = 100.0 + PLAIN_PROGRESS_EVERY
    p.update(150)
    now[0] += 1.0
    p.update(200)
    now[0] = 100.0 + 2 * PLAIN_PROGRESS_EVERY + 0.1
    p.update(250)
    now[0] += PLAIN_PROGRESS_EVERY
    p.update(300)
    p.finish()
    lines = out.getvalue().splitlines()
    assert [line.split(",")[0] for line in lines] == ["submitted: 150/300 jobs (50%)",
                                                      "submitted: 250/300 jobs (83%)"]


def test_submit_timeout_exits_5(cli, gearmand):
    r = cli("submit", _name(), "x", "--timeout", "0.3", "-s", gearmand.address)
    assert r.returncode == EXIT_TIMEOUT, r.stderr


def test_submit_says_when_no_worker_serves_the_function(cli, gearmand, run_worker):
    fn = _name()
    r = cli("submit", fn, "x", "--timeout", "4", "-s", gearmand.address)
    assert r.returncode == EXIT_TIMEOUT, r.stderr
    assert (f"cygearman: waiting for a worker: none serves {fn!r} on {gearmand.address}; the job "
            f"waits until one does (Ctrl-C stops, -t SECONDS limits the wait)").encode() in r.stderr
    r = cli("submit", fn, "x", "-q", "--timeout", "3", "-s", gearmand.address)
    assert r.returncode == EXIT_TIMEOUT and b"waiting for a worker" not in r.stderr
    # A worker that takes its time: no notice (someone serves the function).
    slow = _name()
    run_worker({slow: lambda job, ctx: (time.sleep(3), b"slow done")[1]})
    r = cli("submit", slow, "x", "-s", gearmand.address)
    assert (r.returncode, r.stdout) == (EXIT_OK, b"slow done"), r.stderr
    assert b"waiting for a worker" not in r.stderr
    # Bulk foreground jobs wait for a worker too.
    r = cli("submit", fn, "-n", "--timeout", "4", "-s", gearmand.address, input=b"a\nb\n")
    assert r.returncode == EXIT_TIMEOUT and b"waiting for a worker: none serves" in r.stderr


def test_submit_without_timeout_ends_on_a_silent_server_and_waits_for_a_slow_worker(
        cli, gearmand, gearmand_factory, run_worker):
    """No -t: a server that stops answering ends the submit within a round or two of
    SILENT_CHECK (exit 3, naming it); a job a worker takes longer than a round over is
    waited for."""
    from gearman.cli._common import SILENT_CHECK
    server = gearmand_factory()
    server.pause()
    try:
        started = time.monotonic()
        r = cli("submit", _name(), "x", "-s", server.address)
        elapsed = time.monotonic() - started
    finally:
        server.resume()
    assert r.returncode == EXIT_UNREACHABLE, r.stderr
    assert f"{server.address} answered nothing".encode() in r.stderr
    assert elapsed < 3 * SILENT_CHECK
    slow = _name()
    run_worker({slow: lambda job, ctx: (time.sleep(SILENT_CHECK + 1), b"slow done")[1]})
    r = cli("submit", slow, "x", "-q", "-s", gearmand.address)
    assert (r.returncode, r.stdout) == (EXIT_OK, b"slow done"), r.stderr


def test_submit_on_a_terminal_says_it_reads_stdin(pty_run, gearmand, run_worker):
    fn = _name()
    run_worker({fn: lambda job, ctx: job.workload()[::-1]})
    p = pty_run("submit", fn, "-s", gearmand.address)
    assert p.read_until(lambda out: b"reading the workload from stdin; end it with Ctrl-D"
                        in out), p.out
    p.write(b"abc\n")
    p.write(b"\x04")                                        # ^D: end of input
    assert p.wait() == EXIT_OK, p.out
    assert b"\ncba" in p.out.replace(b"\r\n", b"\n")
    p = pty_run("submit", fn, "-n", "-s", gearmand.address)
    assert p.read_until(lambda out: b"reading the workloads from stdin, one per line" in out), p.out
    p.write(b"\x04")
    assert p.wait() == EXIT_OK, p.out


def test_submit_to_an_unreachable_server_exits_3(cli, dead_port):
    r = cli("submit", _name(), "x", "-s", f"127.0.0.1:{dead_port}")
    assert r.returncode == EXIT_UNREACHABLE
    assert b"could not connect" in r.stderr or b"reached" in r.stderr
    assert b"waiting for a worker" not in r.stderr


def test_logging_goes_to_stderr_with_v_and_q(gearmand_factory, tmp_path):
    """The library logs through a NullHandler; the command line shows its records
    (here: a worker that lost its server) at WARNING, and -q hides them."""
    def lost_server(*flags):
        server = gearmand_factory()
        fn = _name()
        proc = _start_work(tmp_path, "-f", fn, "-s", server.address, *flags)
        try:
            assert wait_until(lambda: _workers_for(server, fn) == 1 or proc.poll() is not None, 30)
            server.stop()
            time.sleep(2)                    # the worker notices and tries to reconnect
        finally:
            proc.send_signal(signal.SIGTERM)
            _, err = proc.communicate(timeout=30)
        assert proc.returncode == EXIT_OK, err
        return err.decode()

    err = lost_server()
    assert "cygearman: WARNING: gearman." in err and "lost job server" in err, err
    assert "lost job server" not in lost_server("-q")


def test_log_levels():
    import logging

    from gearman.cli import log_level

    assert log_level(0, 0) == logging.WARNING
    assert (log_level(1, 0), log_level(2, 0), log_level(5, 0)) == (logging.INFO, logging.DEBUG,
                                                                  logging.DEBUG)
    assert (log_level(0, 1), log_level(0, 9)) == (logging.ERROR, logging.CRITICAL)


@pytest.mark.parametrize("args", [
    ["submit"],                                              # no function
    ["submit", "fn", "--bogus"],
    ["submit", "fn", "x", "--ssl-key", "k.pem"],             # key without certificate
    ["submit", "fn", "x", "--ssl-ca", "/no/such/ca.pem"],
    ["submit", "fn", "x", "--file", "/no/such/file"],
    ["maxqueue", "fn", "1", "2", "3", "4"],
    ["top", "--interval", "0"],
    ["nonsense"],
    [],
])
def test_usage_errors_exit_2(cli, args):
    r = cli(*args)
    assert r.returncode == EXIT_USAGE, (r.stdout, r.stderr)
    assert b"usage:" in r.stderr


def test_version_flag(cli):
    r = cli("--version")
    assert r.returncode == 0 and r.stdout.decode().startswith("cygearman ")


# -- work ---------------------------------------------------------------------------------------

def _start_work(tmp_path, *args):
    return subprocess.Popen([sys.executable, "-m", "gearman", "work", *map(str, args)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_env(), cwd=tmp_path)


def test_work_runs_a_command_per_job(gearmand, tmp_path, client):
    fn = _name()
    proc = _start_work(tmp_path, "-f", fn, "--count", "2", "-s", gearmand.address, "--",
                       "tr", "a-z", "A-Z")
    try:
        assert wait_until(lambda: _workers_for(gearmand, fn) == 1 or proc.poll() is not None, 30)
        assert client.doNormal(fn, b"hello") == b"HELLO"
        assert client.doNormal(fn, b"binary\x00ok") == b"BINARY\x00OK"
        assert proc.wait(30) == EXIT_OK                  # --count 2: done
    finally:
        proc.kill()
        proc.communicate()


def test_work_nonzero_exit_fails_the_job_and_sets_env(gearmand, tmp_path, client):
    fn = _name()
    script = 'if [ "$(cat)" = bad ]; then exit 3; fi; printf "%s %s" "$GEARMAN_FUNCTION" "$GEARMAN_HANDLE"'
    proc = _start_work(tmp_path, "-f", fn, "-c", "2", "--shell", "-s", gearmand.address, "--", script)
    try:
        assert wait_until(lambda: _workers_for(gearmand, fn) == 1 or proc.poll() is not None, 30)
        with pytest.raises(errors.JobFailedError):
            client.doNormal(fn, b"bad")
        task = client.addTask(fn, b"good")
        client.runTasks()
        assert task.data() == f"{fn} {task.jobHandle()}".encode()
        assert proc.wait(30) == EXIT_OK
        assert b"exited with status 3" in proc.stderr.read()
    finally:
        proc.kill()
        proc.communicate()


def test_work_without_command_echoes(gearmand, tmp_path, client):
    fn1, fn2 = _name(), _name()
    proc = _start_work(tmp_path, "-f", fn1, "-f", fn2, "-c", "2", "--id", "echoer",
                       "-s", gearmand.address)
    try:
        assert wait_until(lambda: _workers_for(gearmand, fn2) == 1 or proc.poll() is not None, 30)
        ids = [w.client_id for w in Admin(gearmand.address).workers() if fn1 in w.functions]
        assert ids == ["echoer"]
        assert client.doNormal(fn1, b"ping") == b"ping"
        assert client.doNormal(fn2, b"pong") == b"pong"
        assert proc.wait(30) == EXIT_OK
    finally:
        proc.kill()
        proc.communicate()


def test_work_stops_gracefully_on_sigterm(gearmand, tmp_path):
    fn = _name()
    proc = _start_work(tmp_path, "-f", fn, "-s", gearmand.address, "--", "cat")
    try:
        assert wait_until(lambda: _workers_for(gearmand, fn) == 1 or proc.poll() is not None, 30)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == EXIT_OK
        assert wait_until(lambda: _workers_for(gearmand, fn) == 0, 10)
    finally:
        proc.kill()
        proc.communicate()


def test_work_job_timeout_kills_the_command(gearmand, tmp_path, client):
    fn = _name()
    proc = _start_work(tmp_path, "-f", fn, "-c", "1", "--job-timeout", "0.5",
                       "-s", gearmand.address, "--", "sleep", "60")
    try:
        assert wait_until(lambda: _workers_for(gearmand, fn) == 1 or proc.poll() is not None, 30)
        with pytest.raises(errors.JobFailedError):
            client.doNormal(fn, b"")
        assert proc.wait(30) == EXIT_OK
    finally:
        proc.kill()
        proc.communicate()


def test_work_unreachable_and_bad_commands(cli, dead_port, gearmand):
    r = cli("work", "-f", "x", "-s", f"127.0.0.1:{dead_port}", "--", "cat")
    assert r.returncode == EXIT_UNREACHABLE and b"could not connect" in r.stderr
    r = cli("work", "-f", "x", "-s", gearmand.address, "--", "no-such-command-xyz")
    assert r.returncode == EXIT_USAGE and b"command not found" in r.stderr
    r = cli("work", "-s", gearmand.address, "--", "cat")          # no -f
    assert r.returncode == EXIT_USAGE


# -- admin commands ----------------------------------------------------------------------------

def test_status_table_and_json(cli, gearmand, client):
    fn = _name()
    client.doBackground(fn, b"1")
    client.doHighBackground(fn, b"2")
    r = cli("status", "-s", gearmand.address)
    assert r.returncode == EXIT_OK, r.stderr
    lines = r.stdout.decode().splitlines()
    assert lines[0].split() == ["FUNCTION", "TOTAL", "RUNNING", "WAITING", "WORKERS"]
    row = [line for line in lines if line.startswith(fn + " ")]
    assert [x.split() for x in row] == [[fn, "2", "0", "2", "0"]]
    # aligned: every row as wide as the header's columns
    assert row[0].index("2", len(fn)) + 1 == lines[0].index("TOTAL") + len("TOTAL")
    r = cli("status", "--priority", "--json", "-s", gearmand.address)
    out = json.loads(r.stdout)
    assert out["servers"] == {gearmand.address: {"ok": True}}
    item = [f for f in out["functions"] if f["name"] == fn][0]
    assert item == {"name": fn, "total": 2, "running": 0, "waiting": 2, "workers": 0,
                    "high": 1, "normal": 1, "low": 0}


def test_status_over_a_pool_with_an_unreachable_server(cli, gearmand_factory, free_port):
    s1, s2 = gearmand_factory(), gearmand_factory()
    fn = _name()
    for s, n in ((s1, 1), (s2, 2)):
        with gearman.GearmanClient() as c:
            c.addServer("127.0.0.1", s.port)
            for i in range(n):
                c.doBackground(fn, b"%d" % i)
    dead = f"127.0.0.1:{free_port}"
    pool = f"{s1.address},{dead},{s2.address}"
    r = cli("status", "-s", pool, "--timeout", "5")
    assert r.returncode == EXIT_UNREACHABLE
    assert dead.encode() in r.stderr
    row = [line.split() for line in r.stdout.decode().splitlines() if line.startswith(fn)]
    assert row == [[fn, "3", "0", "3", "0"]]                # summed over the live servers
    r = cli("status", "--per-server", "-s", pool)
    rows = sorted(line.split()[:3] for line in r.stdout.decode().splitlines() if fn in line)
    assert rows == sorted([[s1.address, fn, "1"], [s2.address, fn, "2"]])
    r = cli("status", "--json", "-s", pool)
    out = json.loads(r.stdout)
    assert out["servers"][dead]["ok"] is False
    assert out["servers"][dead]["error_type"] == "ServerUnavailable"
    assert [f["total"] for f in out["functions"] if f["name"] == fn] == [3]
    r = cli("status", "-s", f"{s1.address},{s2.address}")
    assert r.returncode == EXIT_OK


@pytest.mark.parametrize("command", [["status"], ["status", "--per-server"], ["workers"],
                                     ["jobs"], ["jobs", "--unique"], ["version"]])
def test_a_table_of_no_server_is_not_printed(cli, dead_port, command):
    r = cli(*command, "-s", f"127.0.0.1:{dead_port}")
    assert r.returncode == EXIT_UNREACHABLE
    assert r.stdout == b"" and b"could not connect" in r.stderr


def test_status_of_a_frozen_server_exits_3(cli, gearmand_factory):
    """A server that answers nothing is as good as unreachable: exit 3, as `submit` (and the
    same ServerSilentError every door raises: docs/reliability.md §11)."""
    server = gearmand_factory()
    server.pause()
    try:
        r = cli("status", "-s", server.address, "--timeout", "0.5")
    finally:
        server.resume()
    assert r.returncode == EXIT_UNREACHABLE, r.stderr
    assert b"answered nothing" in r.stderr


def test_workers(cli, gearmand, tmp_path):
    fn = _name()
    proc = _start_work(tmp_path, "-f", fn, "--id", "cli-worker", "-s", gearmand.address)
    try:
        assert wait_until(lambda: _workers_for(gearmand, fn) == 1 or proc.poll() is not None, 30)
        r = cli("workers", "-s", gearmand.address)
        assert r.returncode == EXIT_OK
        lines = r.stdout.decode().splitlines()
        assert lines[0].split() == ["SERVER", "FD", "IP", "CLIENT-ID", "FUNCTIONS"]
        mine = [line.split() for line in lines if fn in line]
        assert len(mine) == 1 and mine[0][3:] == ["cli-worker", fn]
        assert not any(line.split()[3] == "-" and len(line.split()) == 4 for line in lines[1:])
        r = cli("workers", "--all", "--json", "-s", gearmand.address)
        ws = json.loads(r.stdout)["workers"]
        assert any(w["client_id"] is None and w["functions"] == [] for w in ws)
        assert any(w["client_id"] == "cli-worker" and w["functions"] == [fn] for w in ws)
    finally:
        proc.terminate()
        proc.wait(30)


def test_jobs_and_unique_jobs(cli, gearmand, client):
    fn, unique = _name(), "uq-" + uuid.uuid4().hex
    handle = client.doBackground(fn, b"x", unique)
    r = cli("jobs", "-s", gearmand.address)
    assert r.returncode == EXIT_OK
    assert [line.split()[1:] for line in r.stdout.decode().splitlines()
            if f" {handle} " in line] == [[handle, "0", "no", "yes"]]
    r = cli("jobs", "--json", "-s", gearmand.address)
    jobs = [j for j in json.loads(r.stdout)["jobs"] if j["handle"] == handle]
    assert jobs == [{"server": gearmand.address, "handle": handle, "retries": 0,
                     "ignored": False, "queued": True}]
    r = cli("jobs", "--unique", "-s", gearmand.address)
    assert unique in r.stdout.decode().split()


def test_cancel(cli, gearmand, client):
    fn = _name()
    handle = client.doBackground(fn, b"x")
    r = cli("cancel", handle, "-s", gearmand.address)
    assert r.returncode == EXIT_OK, r.stderr
    assert r.stdout.decode() == f"cancelled {handle} on {gearmand.address}\n"
    assert [j.ignored for j in Admin(gearmand.address).show_jobs() if j.handle == handle] == [True]
    r = cli("cancel", "H:nowhere:1", "-s", gearmand.address)
    assert r.returncode == EXIT_ERROR and b"UNKNOWN_JOB" in r.stderr


def test_cancel_ambiguous_handle_needs_server(cli, gearmand_factory):
    s1, s2 = gearmand_factory(), gearmand_factory()
    fn = _name()
    handles = []
    for s in (s1, s2):
        with gearman.GearmanClient() as c:
            c.addServer("127.0.0.1", s.port)
            handles.append(c.doBackground(fn, b"x"))
    assert handles[0] == handles[1]
    pool = f"{s1.address},{s2.address}"
    r = cli("cancel", handles[0], "-s", pool)
    assert r.returncode == EXIT_USAGE and b"several servers" in r.stderr
    r = cli("cancel", handles[0], "-s", pool, "--server", s2.address, "--json")
    assert r.returncode == EXIT_OK
    assert json.loads(r.stdout) == {"ok": True, "handle": handles[0], "server": s2.address}


def test_version(cli, gearmand, dead_port):
    r = cli("version", "-s", gearmand.address)
    assert r.returncode == EXIT_OK
    row = r.stdout.decode().splitlines()[1].split()
    assert row[0] == gearmand.address and row[2] == str(gearmand.pid) and row[3] == "INFO"
    r = cli("version", "--json", "-s", f"{gearmand.address},127.0.0.1:{dead_port}")
    assert r.returncode == EXIT_UNREACHABLE
    out = json.loads(r.stdout)
    assert out["servers"][gearmand.address]["pid"] == gearmand.pid
    assert out["servers"][f"127.0.0.1:{dead_port}"]["ok"] is False
    assert out["client"] == gearman.__version__


def test_maxqueue(cli, gearmand):
    fn = _name()
    r = cli("maxqueue", fn, "1", "-s", gearmand.address)
    assert r.returncode == EXIT_OK, r.stderr
    assert b"high=1 normal=1 low=1" in r.stdout
    assert cli("submit", fn, "a", "-b", "-s", gearmand.address).returncode == EXIT_OK
    r = cli("submit", fn, "b", "-b", "-s", gearmand.address)
    assert r.returncode == EXIT_JOB_FAILED and b"QUEUE_ERROR" in r.stderr
    r = cli("maxqueue", fn, "0", "5", "-s", gearmand.address)     # high unlimited, normal 5, low unlimited
    assert b"high=unlimited normal=5 low=unlimited" in r.stdout
    assert cli("submit", fn, "b", "-b", "-s", gearmand.address).returncode == EXIT_OK
    r = cli("maxqueue", fn, "0", "--json", "-s", gearmand.address)
    assert json.loads(r.stdout) == {"servers": {gearmand.address: {"ok": True}}}


def test_create_and_drop_function(cli, gearmand, dead_port):
    fn = _name()
    assert cli("create-function", fn, "-s", gearmand.address).returncode == EXIT_OK
    assert _status(gearmand, fn) is not None
    r = cli("drop-function", fn, "-s", gearmand.address)
    assert r.returncode == EXIT_OK and r.stdout.decode() == f"dropped {fn} on {gearmand.address}\n"
    assert _status(gearmand, fn) is None
    r = cli("drop-function", fn, "-s", gearmand.address)
    assert r.returncode == EXIT_ERROR and b"not found" in r.stderr
    r = cli("drop-function", fn, "-s", f"127.0.0.1:{dead_port}")
    assert r.returncode == EXIT_UNREACHABLE


# -- top ----------------------------------------------------------------------------------------

def test_top_once(cli, gearmand_factory, free_port):
    s1 = gearmand_factory()
    fn = _name()
    with gearman.GearmanClient() as c:
        c.addServer("127.0.0.1", s1.port)
        c.doBackground(fn, b"x")
    r = cli("top", "--once", "-s", s1.address)
    assert r.returncode == EXIT_OK, r.stderr
    out = r.stdout.decode()
    assert "\x1b" not in out
    rows = [line.split() for line in out.splitlines() if line.startswith(s1.address)]
    assert len(rows) == 1 and rows[0][:2] == [s1.address, "up"] and rows[0][3] == str(s1.pid)
    assert rows[0][-1] == "1"                               # JOBS
    assert [line.split() for line in out.splitlines() if line.startswith(fn)] == [[fn, "1", "0", "1", "0"]]
    dead = f"127.0.0.1:{free_port}"
    r = cli("top", "--once", "-s", f"{s1.address},{dead}", "--timeout", "5")
    assert r.returncode == EXIT_UNREACHABLE
    assert any(line.startswith(dead) and "DOWN" in line for line in r.stdout.decode().splitlines())
    assert "1 unreachable" in r.stdout.decode()
    head = r.stdout.decode().splitlines()[0]
    assert head.endswith("1 unreachable")           # one frame: no "every 2 s", no "q quits"


def test_top_batch_frames_over_a_pipe(cli, gearmand):
    r = cli("top", "-n", "2", "--interval", "0.1", "-s", gearmand.address)
    assert r.returncode == EXIT_OK
    assert r.stdout.decode().count("cygearman top") == 2
    assert r.stdout.decode().count("0 unreachable - every 0.1 s\n") == 2     # no "q quits"


def test_top_live_in_a_terminal_quits_on_q(pty_run, gearmand, client):
    fn = _name()
    client.doBackground(fn, b"x")
    p = pty_run("top", "--interval", "0.2", "-s", gearmand.address)
    assert p.read_until(lambda out: fn.encode() in out and b"WAITING" in out), p.out
    assert b"\x1b[?1049h" in p.out                           # the alternate screen
    assert b"0 unreachable - every 0.2 s - q quits" in p.out
    client.doBackground(fn, b"y")                           # a later frame shows the change
    assert p.read_until(lambda out: out.count(b"cygearman top") >= 3), p.out
    p.write(b"q")
    assert p.wait() == EXIT_OK
    assert p.out.rstrip().endswith(b"\x1b[?1049l")           # the screen is restored


def test_top_live_exits_on_ctrl_c(pty_run, gearmand):
    p = pty_run("top", "--interval", "0.2", "-s", gearmand.address)
    assert p.read_until(lambda out: b"FUNCTION" in out), p.out
    p.write(b"\x03")                                        # ^C on a terminal: SIGINT
    assert p.wait() == EXIT_OK
    assert b"\x1b[?1049l" in p.out


def test_status_in_a_terminal_is_a_table(pty_run, gearmand, client):
    fn = _name()
    client.doBackground(fn, b"x")
    p = pty_run("status", "-s", gearmand.address)
    assert p.wait() == EXIT_OK
    lines = p.out.decode().splitlines()
    assert lines[0].split() == ["FUNCTION", "TOTAL", "RUNNING", "WAITING", "WORKERS"]
    assert [line.split() for line in lines if line.startswith(fn)] == [[fn, "1", "0", "1", "0"]]


@pytest.fixture
def tmux(tmp_path):
    if shutil.which("tmux") is None:
        pytest.skip("tmux is not installed")
    sock = f"cyg-{uuid.uuid4().hex[:8]}"

    def run(*args, check=True):
        return subprocess.run(["tmux", "-L", sock, *args], capture_output=True, timeout=30,
                              check=check, cwd=tmp_path)
    yield run
    run("kill-server", check=False)


def test_top_screen_in_tmux(tmux, gearmand, client, tmp_path):
    fn = _name()
    client.doBackground(fn, b"x")
    client.doBackground(fn, b"y")
    env = " ".join(f"{k}={shlex.quote(v)}" for k, v in _env().items()
                   if k in ("PYTHONPATH", "PATH", "HOME", "LANG"))
    command = (f"env {env} {shlex.quote(sys.executable)} -m gearman top --interval 0.2 "
               f"-s {gearmand.address}")
    tmux("new-session", "-d", "-s", "top", "-x", "120", "-y", "40", "-c", str(tmp_path), command)

    def screen():
        return tmux("capture-pane", "-p", "-t", "top", check=False).stdout.decode()

    assert wait_until(lambda: fn in screen(), 30), screen()
    shown = screen().splitlines()
    assert shown[0].startswith("cygearman top")
    row = [line.split() for line in shown if line.startswith(fn)]
    assert row == [[fn, "2", "0", "2", "0"]]
    header = [line for line in shown if line.startswith("SERVER")]
    assert header and header[0].split() == ["SERVER", "STATE", "VERSION", "PID", "CONNS", "WORKERS", "JOBS"]
    tmux("send-keys", "-t", "top", "q")
    assert wait_until(lambda: tmux("has-session", "-t", "top", check=False).returncode != 0, 30)


# -- TLS ----------------------------------------------------------------------------------------

@pytest.fixture
def tls_front(gearmand, tmp_path, free_port):
    """A socat TLS listener before the session gearmand: (address, ca_path)."""
    if shutil.which("socat") is None or shutil.which("openssl") is None:
        pytest.skip("socat and openssl are needed for the TLS front")
    ca_key, ca, key, csr, cert = (str(tmp_path / n) for n in
                                  ("ca.key", "ca.pem", "srv.key", "srv.csr", "srv.pem"))
    ext = tmp_path / "ext.cnf"
    ext.write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")

    def run(*a):
        subprocess.run(a, check=True, capture_output=True, timeout=60)
    run("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", ca_key,
        "-out", ca, "-days", "2", "-subj", "/CN=cygearman test CA")
    run("openssl", "req", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", csr,
        "-subj", "/CN=localhost")
    run("openssl", "x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial",
        "-out", cert, "-days", "2", "-extfile", str(ext))
    proc = subprocess.Popen(
        ["socat", f"OPENSSL-LISTEN:{free_port},bind=127.0.0.1,reuseaddr,fork,cert={cert},"
                  f"key={key},verify=0", f"TCP:127.0.0.1:{gearmand.port}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def listening():
        try:
            socket.create_connection(("127.0.0.1", free_port), timeout=1).close()
            return True
        except OSError:
            return False
    try:
        assert wait_until(listening, timeout=10), "socat did not start"
        yield f"127.0.0.1:{free_port}", ca
    finally:
        proc.kill()
        proc.wait(10)


def test_submit_and_status_over_tls(cli, tls_front, gearmand, run_worker):
    address, ca = tls_front
    fn = _name()
    run_worker({fn: lambda job, ctx: b"secure " + job.workload()})
    r = cli("submit", fn, "hi", "-s", address, "--ssl-ca", ca)
    assert (r.returncode, r.stdout) == (EXIT_OK, b"secure hi"), r.stderr
    r = cli("submit", fn, "-b", "-n", "--ssl-ca", ca, "-s", address, input=b"1\n2\n")
    assert r.returncode == EXIT_OK, r.stderr
    r = cli("status", "--ssl-ca", ca, "-s", address, "--json")
    assert r.returncode == EXIT_OK, r.stderr
    assert any(f["name"] == fn for f in json.loads(r.stdout)["functions"])
    # The wrong CA: the handshake fails, which is "unreachable".
    r = cli("status", "--ssl", "-s", address)
    assert r.returncode == EXIT_UNREACHABLE and b"TLS" in r.stderr


def test_console_script_is_installed_when_ci_asks(tmp_path):
    # scripts/test.sh installs the wheel: the `cygearman` console script must
    # be declared ([project.scripts] cygearman = "gearman.cli:main") and run.
    if os.environ.get("CYGEARMAN_REQUIRE_INSTALLED") != "1":
        return
    from importlib.metadata import entry_points
    found = entry_points()
    # (Python 3.9: a dict of groups; 3.10 and later: select())
    group = found.select(group="console_scripts") if hasattr(found, "select") \
        else found.get("console_scripts", [])
    scripts = {e.name: e.value for e in group}
    assert scripts.get("cygearman") == "gearman.cli:main", scripts
    exe = os.path.join(os.path.dirname(sys.executable), "cygearman")
    r = subprocess.run([exe, "--version"], capture_output=True, timeout=60, cwd=tmp_path)
    assert r.returncode == 0 and r.stdout.startswith(b"cygearman ")
