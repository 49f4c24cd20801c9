"""``cygearman-worker`` (gearman.runner) against a real gearmand: the import path, logging.

The runner is started the way its console script starts it: by a launcher file in
a ``bin/`` directory of its own (so ``sys.path[0]`` is that directory, not the
working directory, as for the installed ``cygearman-worker``), from an ``app/``
directory that holds ``mymodule.py``.
"""
import os
import subprocess
import sys
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


def _serve_two_jobs(gearmand, client, app, *flags):
    """Run the runner for two jobs (one good, one raising); return its stderr."""
    fn = "run-" + uuid.uuid4().hex[:10]
    proc = _start(app, "-s", gearmand.address, "-f", f"{fn}=mymodule:reverse", "--max-jobs", "2",
                  *flags)
    try:
        def registered():
            return proc.poll() is not None or any(
                s.name == fn and s.workers for s in Admin(gearmand.address).status())
        assert wait_until(registered, 30) and proc.poll() is None, proc.communicate(timeout=10)
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

