"""``cygearman-worker`` (gearman.runner) against a real gearmand: the import path, logging.

The runner is started the way its console script starts it: by a launcher file in
a ``bin/`` directory of its own (so ``sys.path[0]`` is that directory, not the
working directory, as for the installed ``cygearman-worker``), from an ``app/``
directory that holds ``mymodule.py``.
"""
import os
import subprocess
import sys
import time
import uuid

import pytest

from gearman import errors, runner
from gearman.admin import Admin
from gearman.testing import wait_until

LAUNCHER = "import sys\nfrom gearman.runner import main\nsys.exit(main())\n"

MODULE = '''\
import logging

log = logging.getLogger("mymodule")


def reverse(job, context):
    log.debug("reversing %d bytes", len(job.workload()))
    if job.workload() == b"boom":
        raise RuntimeError("boom from mymodule")
    return job.workload()[::-1]
'''


@pytest.fixture
def app(tmp_path):
    """``(launcher, app_dir)``: a stand-in for the console script, and the user's code."""
    bin_dir, app_dir = tmp_path / "bin", tmp_path / "app"
    bin_dir.mkdir()
    app_dir.mkdir()
    (bin_dir / "cygearman-worker").write_text(LAUNCHER)
    (app_dir / "mymodule.py").write_text(MODULE)
    return bin_dir / "cygearman-worker", app_dir


def _env():
    env = dict(os.environ)
    env.pop("GEARMAN_SERVERS", None)
    env.pop("PYTHONPATH", None)
    return env


def _start(app, *args):
    launcher, app_dir = app
    return subprocess.Popen([sys.executable, str(launcher), *args], cwd=app_dir, env=_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_registered(proc, gearmand, fn):
    """Wait until the runner serves fn (or fail with what it printed if it exited)."""
    def registered():
        return proc.poll() is not None or any(
            s.name == fn and s.workers for s in Admin(gearmand.address).status())
    assert wait_until(registered, 30) and proc.poll() is None, proc.communicate(timeout=10)


def _serve_two_jobs(gearmand, client, app, *flags):
    """Run the runner for two jobs (one good, one raising); return its stderr."""
    fn = "run-" + uuid.uuid4().hex[:10]
    proc = _start(app, "-s", gearmand.address, "-f", f"{fn}=mymodule:reverse", "--max-jobs", "2",
                  *flags)
    try:
        _wait_registered(proc, gearmand, fn)
        assert client.doNormal(fn, b"abc") == b"cba"
        with pytest.raises((errors.JobExceptionError, errors.JobFailedError)):
            client.doNormal(fn, b"boom")
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=10)
    assert proc.returncode == 0, err
    return fn, err


def test_the_runner_imports_modules_from_the_working_directory(gearmand, client, app):
    # Before the fix: "cannot load 'mymodule:reverse': No module named 'mymodule'" (exit 2).
    fn, err = _serve_two_jobs(gearmand, client, app)
    assert "No module named" not in err
    assert f"serves {fn!r} with {fn}=mymodule:reverse" in err          # INFO, the default level


def test_a_raising_callback_is_logged_with_its_traceback(gearmand, client, app):
    fn, err = _serve_two_jobs(gearmand, client, app)
    assert f"callback for {fn!r} raised" in err
    assert "Traceback (most recent call last)" in err
    assert "RuntimeError: boom from mymodule" in err


def test_quiet_and_verbose_switches(gearmand, client, app):
    _, err = _serve_two_jobs(gearmand, client, app, "-q")
    assert " INFO " not in err                                       # no "serves ..." line
    assert "RuntimeError: boom from mymodule" in err                 # errors still show
    _, err = _serve_two_jobs(gearmand, client, app, "-v")
    assert "mymodule DEBUG reversing 3 bytes" in err                 # the user's own DEBUG logs
    _, err = _serve_two_jobs(gearmand, client, app, "-qq")
    assert "RuntimeError: boom from mymodule" in err


def test_a_bad_function_spec_is_a_usage_error(app, gearmand):
    proc = _start(app, "-s", gearmand.address, "-f", "x=nosuchmodule_xyz:f")
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 2
    assert "cannot load 'x=nosuchmodule_xyz:f': No module named 'nosuchmodule_xyz'" in err
    proc = _start(app, "-s", gearmand.address, "-f", "mymodule:reverse", "--log-level", "loud")
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 2 and "unknown level 'loud'" in err


def test_working_directory_on_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", ["/nonexistent/bin"])
    runner.working_directory_on_path()
    assert sys.path == [str(tmp_path), "/nonexistent/bin"]
    runner.working_directory_on_path()                               # once, not twice
    assert sys.path == [str(tmp_path), "/nonexistent/bin"]
    monkeypatch.setattr(sys, "path", ["", "/nonexistent/bin"])       # python -m: '' is the cwd
    runner.working_directory_on_path()
    assert sys.path == ["", "/nonexistent/bin"]



def _scrape(port):
    """``{(name, labels): value}`` of the runner's /metrics, over real HTTP."""
    import urllib.request

    from prometheus_client.parser import text_string_to_metric_families

    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_metrics_port_serves_the_workers_job_counters(gearmand, client, app):
    from gearman.testing import free_port

    fn = "run-" + uuid.uuid4().hex[:10]
    port = free_port()
    proc = _start(app, "-s", gearmand.address, "-f", f"{fn}=mymodule:reverse",
                  "--metrics-port", str(port))
    try:
        _wait_registered(proc, gearmand, fn)
        assert client.doNormal(fn, b"abc") == b"cba"
        assert client.doNormal(fn, b"xy") == b"yx"
        with pytest.raises((errors.JobExceptionError, errors.JobFailedError)):
            client.doNormal(fn, b"boom")
        done = ("gearman_worker_jobs_finished_total", (("function", fn), ("outcome", "completed")))
        raised = ("gearman_worker_jobs_finished_total", (("function", fn), ("outcome", "raised")))
        # the worker counts a job once its answer went out: the client may see it first
        assert wait_until(lambda: _scrape(port).get(raised) == 1, 10)
        samples = _scrape(port)
        assert samples[done] == 2
        assert samples[("gearman_worker_jobs_grabbed_total", (("function", fn),))] == 3
        assert samples[("gearman_worker_jobs_started_total", (("function", fn),))] == 3
        assert samples[("gearman_worker_jobs_in_progress", (("function", fn),))] == 0
        assert samples[("gearman_worker_job_duration_seconds_count",
                        (("function", fn), ("outcome", "completed")))] == 2
        assert samples[("gearman_worker_job_duration_seconds_bucket",
                        (("function", fn), ("le", "+Inf"), ("outcome", "raised")))] == 1
        assert any(name == "process_cpu_seconds_total" for name, _ in samples)
        proc.terminate()            # SIGTERM: a graceful stop
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=10)
    assert proc.returncode == 0, err
    assert f"serves its job metrics on http://127.0.0.1:{port}/metrics" in err


def test_metrics_port_out_of_range_is_a_usage_error(app, gearmand):
    proc = _start(app, "-s", gearmand.address, "-f", "mymodule:reverse",
                  "--metrics-port", "65535", "-p", "2")
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 2
    assert "--metrics-port" in err


def _two_taken_ports():
    """Two adjacent loopback ports, both bound and listening (the caller closes them)."""
    import socket
    for _ in range(50):
        first = socket.socket()
        first.bind(("127.0.0.1", 0))
        port = first.getsockname()[1]
        second = socket.socket()
        try:
            second.bind(("127.0.0.1", port + 1))
        except OSError:
            first.close()
            second.close()
            continue
        first.listen(1)
        second.listen(1)
        return port, (first, second)
    raise RuntimeError("no two adjacent free ports")


def test_a_process_that_cannot_serve_is_not_restarted(app, gearmand):
    """Its configuration cannot work (here: its metrics port is taken): each process
    exits with 2, the runner starts no other and exits 2, instead of restarting them
    every half second for ever."""
    pytest.importorskip("prometheus_client")
    port, held = _two_taken_ports()
    try:
        proc = _start(app, "-s", gearmand.address, "-f", "mymodule:reverse", "-p", "2",
                      "--metrics-port", str(port))
        try:
            _, err = proc.communicate(timeout=60)
        finally:
            proc.kill()
    finally:
        for sock in held:
            sock.close()
    assert proc.returncode == 2, err
    assert err.count("cannot serve") == 2, err
    assert err.count("could not serve (see above); not starting another") == 2, err
    assert "starting another" not in err.replace("not starting another", ""), err


def _stderr_after(app, seconds, *args):
    proc = _start(app, *args)
    try:
        time.sleep(seconds)
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=30)
    return err


def test_a_worker_says_which_servers_it_uses_and_that_it_cannot_reach_them(app, dead_port):
    """The tools' rule (docs/design.md): -s, else GEARMAN_SERVERS, else localhost:4730,
    logged at start; a server it cannot reach is logged, not waited on silently."""
    err = _stderr_after(app, 2, "-s", f"127.0.0.1:{dead_port}", "-f", "mymodule:reverse")
    assert f"servers: 127.0.0.1:{dead_port} (--servers)" in err, err
    assert f"could not connect to 127.0.0.1:{dead_port}" in err, err
    err = _stderr_after(app, 1, "-f", "mymodule:reverse")
    assert "servers: localhost:4730 (the default: no --servers and no GEARMAN_SERVERS)" in err, err
