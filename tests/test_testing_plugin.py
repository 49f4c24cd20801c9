"""Tests of the pytest plugin (_cygearman_pytest) and gearman.testing, against real gearmand.

They talk to gearmand through GearmandServer's own admin socket and
hand-built binary packets, never through the library under test (importing
gearman.testing loads the compiled core, though).  The plugin's wiring, and
what loading it costs a session that does not use it, is checked in child
pytest sessions at the end.
"""
import os
import socket
import struct
import subprocess
import sys
import textwrap
import uuid
from importlib.machinery import EXTENSION_SUFFIXES

import pytest

import gearman.testing as gt
from gearman.testing import GearmandNotFound, GearmandServer, GearmandStartError, find_gearmand

SUBMIT_JOB_BG = 18
JOB_CREATED = 8


def submit_background(server, fn, unique, data):
    """Submit a background job with a raw SUBMIT_JOB_BG packet; return its handle."""
    body = fn.encode() + b"\0" + unique.encode() + b"\0" + data
    with socket.create_connection((server.host, server.port), timeout=10) as s:
        s.sendall(b"\0REQ" + struct.pack(">II", SUBMIT_JOB_BG, len(body)) + body)
        header = recv_exactly(s, 12)
        magic, ptype, size = header[:4], *struct.unpack(">II", header[4:])
        assert (magic, ptype) == (b"\0RES", JOB_CREATED), header
        return recv_exactly(s, size).decode()


def recv_exactly(sock, n):
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        assert chunk, f"connection closed after {buf!r}"
        buf += chunk
    return buf


def status_of(server, fn):
    """The ``status`` line for ``fn``, or None."""
    for line in server.admin("status").splitlines():
        if line.split("\t")[0] == fn:
            return line
    return None


def process_gone(pid):
    """True if ``pid`` no longer exists, not even as a zombie."""
    # A zombie (killed but never waited for) still has its /proc entry.
    return not os.path.exists(f"/proc/{pid}")


def unique_name():
    return "t-" + uuid.uuid4().hex[:12]


# -- the session server ---------------------------------------------------------------

def test_session_server_answers_version_and_is_ours(gearmand):
    assert gearmand.is_running()
    assert gearmand.admin("version").startswith("OK ")
    assert gearmand.admin("getpid") == f"OK {gearmand.pid}\n"
    assert gearmand.address == f"127.0.0.1:{gearmand.port}"
    assert gearmand.host == "127.0.0.1"


def test_session_server_files_are_private(gearmand):
    assert os.path.dirname(gearmand.log_path) == gearmand.tmpdir
    assert os.path.getsize(gearmand.log_path) > 0
    # gearmand was pointed at our own (empty) config file, not /etc/gearmand.conf
    assert os.path.getsize(gearmand.config_path) == 0
    assert f"--config-file={gearmand.config_path}" in gearmand.command()


# -- admin() --------------------------------------------------------------------------

def test_admin_reads_whole_listings_and_single_lines(gearmand):
    fn = unique_name()
    submit_background(gearmand, fn, unique_name(), b"x")
    status = gearmand.admin("status")
    assert status.endswith("\n.\n")
    assert f"{fn}\t1\t0\t0" in status.splitlines()
    assert gearmand.admin("workers").endswith(".\n")
    assert gearmand.admin("bogus command").startswith("ERR ")
    assert gearmand.admin("version").count("\n") == 1


def test_admin_status_listing_with_a_function_named_like_a_reply(gearmand):
    # A status line starting "OK" must not be taken for a one-line reply.
    fn = "OK" + unique_name()
    submit_background(gearmand, fn, unique_name(), b"x")
    lines = gearmand.admin("status").splitlines()
    assert lines[-1] == "."
    assert f"{fn}\t1\t0\t0" in lines


def test_status_table_and_queued(gearmand):
    fn = unique_name()
    for _ in range(2):
        submit_background(gearmand, fn, unique_name(), b"x")
    assert gearmand.status()[fn] == (2, 0, 0)
    assert gearmand.queued(fn) == 2
    assert gearmand.queued(fn + "-unknown") == 0


def test_admin_rejects_line_breaks(gearmand):
    with pytest.raises(ValueError):
        gearmand.admin("status\nshutdown")


def test_admin_on_a_dead_port_raises_oserror(gearmand_factory):
    server = gearmand_factory()
    server.kill()
    with pytest.raises(OSError):
        server.admin("version", timeout=2)


# -- factory, kill, restart ------------------------------------------------------------

def test_factory_servers_get_distinct_ports_and_processes(gearmand, gearmand_factory):
    a, b = gearmand_factory(), gearmand_factory()
    assert len({gearmand.port, a.port, b.port}) == 3
    assert len({gearmand.pid, a.pid, b.pid}) == 3
    for server in (a, b):
        assert server.admin("getpid") == f"OK {server.pid}\n"
    assert a.tmpdir != b.tmpdir


def test_factory_passes_options_to_gearmand(gearmand_factory):
    server = gearmand_factory(threads=1, job_retries=2, extra_args=["--round-robin"])
    cmd = server.command()
    assert {"--threads=1", "--job-retries=2", "--round-robin"} <= set(cmd)
    assert server.admin("version").startswith("OK")


def test_kill_then_restart_on_the_same_port(gearmand_factory):
    server = gearmand_factory()
    port, old_pid = server.port, server.pid
    server.kill()
    assert not server.is_running() and server.pid is None
    assert process_gone(old_pid)          # killed and reaped: no zombie
    with pytest.raises(OSError):
        server.admin("version", timeout=2)
    server.restart()
    assert server.port == port
    assert server.pid != old_pid
    assert server.admin("getpid") == f"OK {server.pid}\n"


def test_restart_a_running_server_with_clients_connected(gearmand_factory):
    server = gearmand_factory()
    port = server.port
    # Open connections at restart leave sockets on the server's port behind.
    conns = [socket.create_connection((server.host, port), timeout=5) for _ in range(3)]
    try:
        server.restart(kill=True)
        assert server.port == port
        assert server.admin("version").startswith("OK")
        server.restart()                  # SIGTERM this time
        assert server.port == port
        assert server.admin("version").startswith("OK")
    finally:
        for c in conns:
            c.close()


def test_restart_on_a_new_port(gearmand_factory):
    server = gearmand_factory()
    port = server.port
    server.restart(same_port=False)
    assert server.port != port
    assert server.admin("getpid") == f"OK {server.pid}\n"


def test_stop_is_graceful_and_reaps(gearmand_factory):
    server = gearmand_factory()
    pid = server.pid
    server.stop()
    assert not server.is_running()
    assert process_gone(pid)
    assert "Shutdown complete" in server.log_tail()
    server.stop()                         # stopping twice is harmless
    server.kill()


def test_pause_makes_the_server_hang_and_resume_revives_it(gearmand_factory):
    server = gearmand_factory()
    server.pause()
    try:
        if os.path.exists(f"/proc/{server.pid}/stat"):
            # pause() returns once the process is stopped, not when SIGSTOP is
            # merely queued (a request sent right after must not be answered)
            with open(f"/proc/{server.pid}/stat") as f:
                assert f.read().rpartition(")")[2].split()[0] in ("T", "t")
        with pytest.raises(OSError):      # TimeoutError: connected, but no answer
            server.admin("version", timeout=0.5)
    finally:
        server.resume()
    assert server.admin("version").startswith("OK")


def test_stop_works_on_a_paused_server(gearmand_factory):
    server = gearmand_factory()
    pid = server.pid
    server.pause()
    server.stop(timeout=5)
    assert process_gone(pid)


def test_persistent_queue_keeps_a_background_job_across_kill_and_restart(gearmand_factory):
    fn = unique_name()
    server = gearmand_factory(persistent=True)
    assert server.persistent
    handle = submit_background(server, fn, "uniq", b"data")
    assert handle.startswith("H:")
    assert status_of(server, fn) == f"{fn}\t1\t0\t0"
    server.kill()
    server.restart()
    assert status_of(server, fn) == f"{fn}\t1\t0\t0"
    assert os.path.exists(server.queue_path)


def test_non_persistent_server_loses_the_job_on_a_crash(gearmand_factory):
    # The contrast that shows the previous test measures the sqlite queue.
    fn = unique_name()
    server = gearmand_factory()
    submit_background(server, fn, "uniq", b"data")
    assert status_of(server, fn) == f"{fn}\t1\t0\t0"
    server.kill()
    server.restart()
    assert status_of(server, fn) is None


# -- start failures and port races ----------------------------------------------------

def test_bad_arguments_fail_at_once_with_gearmands_message(gearmand_factory):
    with pytest.raises(GearmandStartError) as ei:
        gearmand_factory(extra_args=["--no-such-option"])
    assert "no-such-option" in str(ei.value)
    assert "log tail" in str(ei.value)


def test_extra_args_must_not_be_a_string():
    with pytest.raises(TypeError):
        GearmandServer(extra_args="--round-robin", start=False)


def test_a_port_held_by_another_gearmand_is_a_clear_error(gearmand):
    with pytest.raises(GearmandStartError) as ei:
        GearmandServer(port=gearmand.port, startup_timeout=1.5)
    assert "another server answers" in str(ei.value)
    assert gearmand.admin("getpid") == f"OK {gearmand.pid}\n"   # untouched


def test_a_picked_port_taken_meanwhile_is_replaced(gearmand, monkeypatch):
    # Simulate losing the race between probing a port and gearmand binding
    # it: the first "free" port is the session server's.
    real = gt.free_port
    offered = iter([gearmand.port])
    monkeypatch.setattr(gt, "free_port", lambda: next(offered, None) or real())
    with GearmandServer() as server:
        assert server.port != gearmand.port
        assert server.admin("getpid") == f"OK {server.pid}\n"


def test_context_manager_and_cleanup():
    with GearmandServer(start=False) as server:
        assert server.is_running()
        pid, tmpdir = server.pid, server.tmpdir
    assert process_gone(pid)
    assert not os.path.exists(tmpdir)
    with pytest.raises(RuntimeError):
        server.start()


def test_dead_port_refuses_connections(dead_port):
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", dead_port), timeout=5).close()


# -- find_gearmand ---------------------------------------------------------------------

def test_find_gearmand_with_a_bogus_env_path_names_the_package(monkeypatch, tmp_path):
    monkeypatch.setenv("GEARMAND", str(tmp_path / "no-such-gearmand"))
    monkeypatch.setenv("PATH", "")
    with pytest.raises(GearmandNotFound) as ei:
        find_gearmand()
    assert isinstance(ei.value, RuntimeError)
    assert "gearman-job-server" in str(ei.value)
    assert "apt-get install gearman-job-server" in str(ei.value)


def test_find_gearmand_with_nothing_installed_names_the_package(monkeypatch):
    monkeypatch.delenv("GEARMAND", raising=False)
    monkeypatch.setenv("PATH", "")
    monkeypatch.setattr(gt, "_SEARCH", ("/nonexistent/sbin/gearmand",))
    with pytest.raises(GearmandNotFound, match="gearman-job-server"):
        find_gearmand()
    with pytest.raises(GearmandNotFound):
        GearmandServer(start=False)


def test_find_gearmand_honours_the_env_variable(monkeypatch, gearmand):
    monkeypatch.setenv("GEARMAND", gearmand.binary)
    monkeypatch.setenv("PATH", "")
    assert find_gearmand() == gearmand.binary


# -- process hygiene and plugin wiring (in child processes) -----------------------------

def python_env():
    """Environment for a child Python that imports the same gearman as we do."""
    env = dict(os.environ)
    root = os.path.dirname(os.path.dirname(os.path.abspath(gt.__file__)))
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [root, env.get("PYTHONPATH")]))
    return env


def load_testing_alone():
    """Source that loads testing.py by path, without the gearman package."""
    return textwrap.dedent(f"""
        import importlib.util, sys
        spec = importlib.util.spec_from_file_location("gt_alone", {gt.__file__!r})
        gt = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(gt)
    """)


def test_testing_py_itself_imports_nothing_of_gearman(tmp_path):
    code = load_testing_alone() + textwrap.dedent("""
        assert not any(m == "gearman" or m.startswith("gearman.") for m in sys.modules), sorted(sys.modules)
        print("ok")
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


@pytest.mark.parametrize("ending", [
    "pass",                                         # forgot to stop it
    "raise SystemExit(3)",                          # exiting on an error
    "del s; import gc; gc.collect(); print('collected', flush=True)",   # object lost
])
def test_leftover_servers_are_killed_when_python_exits(tmp_path, ending):
    code = load_testing_alone() + textwrap.dedent(f"""
        s = gt.GearmandServer()
        print(s.pid, s.tmpdir, flush=True)
        {ending}
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60, cwd=tmp_path)
    pid, tmpdir = out.stdout.split()[:2]
    assert process_gone(int(pid)), out.stderr
    assert not os.path.exists(tmpdir)


def test_a_forked_child_does_not_kill_its_parents_server(tmp_path):
    code = load_testing_alone() + textwrap.dedent("""
        import os
        s = gt.GearmandServer()
        child = os.fork()
        if child == 0:
            sys.exit(0)                 # runs finalizers and atexit in the child
        os.waitpid(child, 0)
        print(s.admin("getpid").split()[1] == str(s.pid), flush=True)
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "True"


PLUGIN = "_cygearman_pytest"


def run_pytest(folder, env, *extra):
    """A child pytest session over ``folder`` (its cwd), the plugin loaded as users get it."""
    args = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *extra, str(folder)]
    # Installed, the entry point registers the plugin; from a bare source tree
    # it must be named, and naming it as well would register it twice (an error).
    if not child_sees_entry_point(env, folder):
        args[3:3] = ["-p", PLUGIN]
    return subprocess.run(args, capture_output=True, text=True, timeout=120, cwd=folder, env=env)


def child_sees_entry_point(env, cwd):
    """True if a child Python with ``env`` finds the plugin's pytest11 entry point."""
    code = f"PLUGIN = {PLUGIN!r}\n" + textwrap.dedent("""
        import importlib.metadata as m
        eps = m.entry_points()
        eps = eps.select(group="pytest11") if hasattr(eps, "select") else eps.get("pytest11", ())
        print(any(ep.name == "gearman" and ep.value == PLUGIN for ep in eps))
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60, cwd=cwd, env=env)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip() == "True"


def test_a_users_test_file_gets_the_fixtures(tmp_path):
    record = tmp_path / "pids.txt"
    (tmp_path / "test_user.py").write_text(textwrap.dedent(f"""
        import socket

        def test_uses_session_server(gearmand):
            assert gearmand.admin("version").startswith("OK")
            with open({str(record)!r}, "a") as f:
                f.write(f"{{gearmand.pid}}\\n")

        def test_uses_factory(gearmand_factory, gearmand):
            server = gearmand_factory(persistent=True)
            assert server.port != gearmand.port
            server.kill()               # the fixture's teardown copes with this
            with open({str(record)!r}, "a") as f:
                f.write(f"{{gearmand.pid}}\\n")

        def test_free_port(free_port):
            with socket.socket() as s:
                assert s.connect_ex(("127.0.0.1", free_port)) != 0
    """))
    out = run_pytest(tmp_path, python_env())
    assert out.returncode == 0, out.stdout + out.stderr
    assert "3 passed" in out.stdout
    pids = set(record.read_text().split())
    assert len(pids) == 1                 # one session server for both tests
    assert process_gone(int(pids.pop()))  # stopped at the end of the session


# -- what the plugin costs a session that does not use it --------------------------------

CYGEARMAN_MODULES = 'sorted(m for m in sys.modules if m == "gearman" or m.startswith("gearman."))'


def test_importing_the_plugin_imports_nothing_of_cygearman(tmp_path):
    code = f"import sys, {PLUGIN}\nprint({CYGEARMAN_MODULES})"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60, cwd=tmp_path, env=python_env())
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def write_users_suite(folder, record):
    """A project's own tests, one of which uses a fixture of ours (deselected by
    ``-k "not fixture"``); conftest.py records what cygearman left in sys.modules."""
    (folder / "conftest.py").write_text(textwrap.dedent(f"""
        import sys

        def pytest_unconfigure(config):
            with open({str(record)!r}, "w") as f:
                f.write(repr({CYGEARMAN_MODULES}))
    """))
    (folder / "test_own.py").write_text(textwrap.dedent(f"""
        import sys

        def test_own_code(request):
            assert request.config.pluginmanager.get_plugin("gearman") is not None \\
                or request.config.pluginmanager.get_plugin({PLUGIN!r}) is not None
            assert sum([1, 2]) == 3

        def test_own_code_too():
            assert {CYGEARMAN_MODULES} == []

        def test_uses_our_fixture(gearmand):
            assert gearmand.admin("version").startswith("OK")
    """))


def test_a_session_that_uses_no_fixture_imports_nothing_of_cygearman(tmp_path):
    record = tmp_path / "modules.txt"
    write_users_suite(tmp_path, record)
    out = run_pytest(tmp_path, python_env(), "-k", "not fixture")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "2 passed, 1 deselected" in out.stdout
    assert record.read_text() == "[]"              # no gearman, no gearman._core
    # ...and the same session, a fixture used: it works, and only then loads the library
    out = run_pytest(tmp_path, python_env())
    assert out.returncode == 0, out.stdout + out.stderr
    assert "3 passed" in out.stdout
    assert "'gearman._core'" in record.read_text()


@pytest.mark.parametrize("core", ["missing", "broken"])
def test_a_missing_or_broken_core_does_not_break_other_projects_tests(tmp_path, core):
    # An environment where cygearman is installed but its compiled core is
    # missing (a wheel for another Python, a source tree never built) or broken
    # (a truncated file): a copy of the package without a working _core comes
    # first on sys.path, the plugin (outside the package) is loaded as usual.
    site = tmp_path / "site"
    package = site / "gearman"
    package.mkdir(parents=True)
    real = os.path.dirname(os.path.abspath(gt.__file__))
    for name in os.listdir(real):
        if name.endswith(".py"):
            (package / name).write_bytes(open(os.path.join(real, name), "rb").read())
    if core == "broken":
        (package / ("_core" + EXTENSION_SUFFIXES[0])).write_bytes(b"not a shared object")
    else:
        # fails as an absent file does (an editable install's import finder
        # would otherwise find the real core when this folder has none)
        (package / "_core.py").write_text(
            "raise ModuleNotFoundError(\"No module named 'gearman._core'\", name='gearman._core')\n")
    env = python_env()
    env["PYTHONPATH"] = os.pathsep.join([str(site), env["PYTHONPATH"]])
    check = subprocess.run([sys.executable, "-c", "import gearman"], capture_output=True,
                           text=True, timeout=60, cwd=tmp_path, env=env)
    assert check.returncode != 0 and "ImportError" in check.stderr   # the core really is unusable
    project = tmp_path / "project"
    project.mkdir()
    record = tmp_path / "modules.txt"
    write_users_suite(project, record)
    out = run_pytest(project, env)
    # the project's own tests run and pass; the one that asks for our fixture
    # gets the import error (an error at setup, not a crash of the session)
    assert out.returncode == 1, out.stdout + out.stderr
    assert "2 passed, 1 error" in out.stdout, out.stdout + out.stderr
    assert "test_uses_our_fixture" in out.stdout
    if core == "missing":
        assert "gearman._core, is missing" in out.stdout
