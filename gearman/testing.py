"""Real gearmand servers for tests: the helpers behind cygearman's pytest plugin.

The fixtures (``gearmand``, ``gearmand_factory``, ``gearman_client``,
``gearman_worker``, ``free_port``) come from the plugin module
``_cygearman_pytest``, which installing cygearman registers through the
``pytest11`` entry point ``gearman``, so any test suite can use real gearmand
servers without a conftest.py::

    import gearman

    def test_my_job_is_queued(gearmand):
        client = gearman.GearmanClient()
        client.addServer("127.0.0.1", gearmand.port)
        handle = client.doBackground("resize", b"photo.jpg")
        assert handle.startswith("H:")
        assert "resize\\t1\\t0\\t0" in gearmand.admin("status")

    def test_background_job_survives_a_crash(gearmand_factory):
        server = gearmand_factory(persistent=True)      # -q libsqlite3
        ...                                             # submit a background job
        server.kill()                                   # SIGKILL: a crash
        server.restart()                                # same port, same queue file
        assert "resize\\t1\\t0\\t0" in server.admin("status")

Fixtures:

``gearmand``
    One :class:`GearmandServer` for the whole session.  It is shared, so use
    function names no other test uses, and never stop or kill it.
``gearmand_factory(persistent=False, extra_args=(), **kw)``
    Starts more servers (keyword arguments as for :class:`GearmandServer`);
    each is killed and its files removed after the test.  Kill, pause and
    restart them freely.
``gearman_client`` / ``gearman_worker``
    A ``gearman.GearmanClient()`` / ``gearman.GearmanWorker()`` with the
    session server added, closed after the test.
``free_port``
    A TCP port on 127.0.0.1 where nothing listened when it was picked.

The plugin costs nothing to a session that uses none of them: it lives outside
this package and imports it (and so the compiled core) only when a test first
asks for a fixture.  ``-p no:gearman`` turns it off; with
``PYTEST_DISABLE_PLUGIN_AUTOLOAD=1``, ``-p gearman`` turns it on (the older
``-p gearman.testing`` still works there).

A missing gearmand binary is an error (:class:`GearmandNotFound`, naming the
Debian package ``gearman-job-server``), never a skip: a suite that silently
skips its server tests proves nothing.  Set ``$GEARMAND`` to use another
binary.

:class:`GearmandServer` also works in scripts and benchmarks, without pytest.
This file imports nothing else of cygearman and talks to gearmand over its own
socket (the test harness must not depend on the code it tests), but importing
it as ``gearman.testing`` runs ``gearman/__init__.py``, which loads the
compiled core.
"""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import weakref
from typing import IO, Any, Callable, Dict, List, Optional, Sequence, Tuple

__all__ = [
    "GearmandNotFound",
    "GearmandStartError",
    "GearmandServer",
    "find_gearmand",
    "free_port",
    "hold_lock",
    "wait_until",
]

#: Where Debian, and a source build, put gearmand; searched after $PATH
#: because sbin folders are often missing from a non-root user's PATH.
_SEARCH = ("/usr/sbin/gearmand", "/usr/local/sbin/gearmand")

_INSTALL_HINT = ("install the Debian/Ubuntu package gearman-job-server "
                 "(sudo apt-get install gearman-job-server), or set GEARMAND "
                 "to the path of a gearmand binary")

#: Admin commands whose reply is a listing ended by a line holding only ".".
#: Every other command answers with one "OK ..." or "ERR ..." line.
_LISTINGS = frozenset({"status", "workers", "show jobs", "show unique jobs"})

#: How long one start attempt on a port we picked ourselves may take before
#: we assume another process took the port between our probe and gearmand's
#: bind (gearmand itself would keep retrying bind() for about 20 s).  A
#: healthy gearmand answers within a fraction of a second.
_PICKED_PORT_PATIENCE = 5.0


class GearmandNotFound(RuntimeError):
    """No gearmand binary was found; the message says how to install one."""


class GearmandStartError(RuntimeError):
    """gearmand did not come up; the message holds its stderr and log tail."""


def _is_executable(path: str) -> bool:
    return os.path.isfile(path) and os.access(path, os.X_OK)


def find_gearmand() -> str:
    """Return the path of the gearmand binary to run.

    Looks at ``$GEARMAND`` (a path, or a name looked up in PATH), then PATH,
    then ``/usr/sbin/gearmand`` and ``/usr/local/sbin/gearmand``.  An explicit
    ``$GEARMAND`` that does not resolve is an error rather than a fallback, so
    a typo never silently tests against another gearmand.

    Raises:
        GearmandNotFound: nothing found; the message names the Debian package
            ``gearman-job-server`` and the install command.
    """
    env = os.environ.get("GEARMAND")
    if env:
        found = env if os.sep in env else shutil.which(env)
        if found and _is_executable(found):
            return found
        raise GearmandNotFound(f"GEARMAND={env!r} is not an executable gearmand; {_INSTALL_HINT}")
    found = shutil.which("gearmand")
    if found:
        return found
    for path in _SEARCH:
        if _is_executable(path):
            return path
    raise GearmandNotFound(f"gearmand was not found in PATH or {', '.join(_SEARCH)}; "
                           f"{_INSTALL_HINT}")


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 where nothing listened a moment ago.

    The port is only probed (bound to port 0, then released), so another
    process may take it afterwards; callers that start a server on it must
    be ready to retry.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(predicate: Callable[[], Any], timeout: float = 10.0,
               interval: float = 0.02) -> bool:
    """Poll ``predicate`` until it is truthy or ``timeout`` seconds pass.

    Returns True as soon as the predicate is truthy, False on timeout (so a
    test writes ``assert wait_until(...)``).  Exceptions from the predicate
    propagate.
    """
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


def hold_lock(obj: Any, seconds: float) -> threading.Thread:
    """Stand for another thread's call on ``obj`` (a client, worker or ``Admin``): a thread
    holds the object's lock for ``seconds``.  Returns that thread once it holds the lock,
    so a call made next has to wait for it (its timeout counts that wait:
    docs/reliability.md §5); ``join()`` it at the end."""
    held = threading.Event()

    def hold() -> None:
        with obj._lock:
            held.set()
            time.sleep(seconds)

    thread = threading.Thread(target=hold, daemon=True, name="cygearman-hold-lock")
    thread.start()
    if not held.wait(10):
        raise RuntimeError(f"could not take the lock of {obj!r} within 10 s")
    return thread


class _Handle:
    """What must be cleaned up if the server object is lost.

    Kept apart from GearmandServer so the weakref finalizer can hold it
    without keeping the server itself alive.
    """

    def __init__(self, tmpdir: str) -> None:
        self.tmpdir = tmpdir
        self.proc: "Optional[subprocess.Popen[bytes]]" = None
        self.stderr: Optional[IO[bytes]] = None
        # A forked child (os.fork in a test) inherits this object and runs
        # finalizers at its exit: it must not kill its parent's gearmand.
        self.owner = os.getpid()

    def reap(self, kill_timeout: float = 10.0) -> None:
        """SIGKILL the process if alive and wait for it (no zombie); close stderr."""
        proc, self.proc = self.proc, None
        if proc is not None and os.getpid() == self.owner:
            if proc.poll() is None:
                try:
                    proc.kill()
                except ProcessLookupError:
                    pass
            try:
                proc.wait(kill_timeout)
            except subprocess.TimeoutExpired:
                pass   # uninterruptible sleep; subprocess's own cleanup reaps it later
        if self.stderr is not None:
            self.stderr.close()
            self.stderr = None

    def finalize(self) -> None:
        """Kill the process and remove the temporary folder (finalizer / atexit)."""
        if os.getpid() != self.owner:
            return
        self.reap()
        shutil.rmtree(self.tmpdir, ignore_errors=True)


class GearmandServer:
    """One real gearmand on 127.0.0.1, its files in a private temporary folder.

    Args:
        port: the port to listen on; 0 (the default) picks a free one.
        persistent: use the libsqlite3 queue (``-q libsqlite3``) in the
            temporary folder, so background jobs survive kill and restart.
        extra_args: more gearmand command-line arguments.
        job_retries: ``--job-retries`` (None: gearmand's default).
        threads: ``--threads`` (None: gearmand's default).
        verbose: ``--verbose`` level of the log file.
        start: start now (the default) or wait for :meth:`start`.
        startup_timeout: seconds :meth:`start` may take in all.

    The process runs in the foreground as our child.  It is killed at
    interpreter exit, or when this object is garbage-collected, even if a test
    crashed before its teardown.  As a context manager it starts on entry (if
    needed) and is killed, with its folder removed, on exit.

    Raises:
        GearmandNotFound: no gearmand binary.
        GearmandStartError: (when ``start``) gearmand did not come up.
    """

    def __init__(self, port: int = 0, *, persistent: bool = False,
                 extra_args: Sequence[str] = (), job_retries: Optional[int] = None,
                 threads: Optional[int] = None, verbose: str = "INFO",
                 start: bool = True, startup_timeout: float = 15.0) -> None:
        if isinstance(extra_args, (str, bytes)):
            # A string would be split into one-character arguments.
            raise TypeError("extra_args must be a sequence of strings, not a string")
        self.binary: str = find_gearmand()
        self.host: str = "127.0.0.1"
        self.port: int = int(port)
        self.persistent = persistent
        self.extra_args: List[str] = [str(a) for a in extra_args]
        self.job_retries = job_retries
        self.threads = threads
        self.verbose = verbose
        self.startup_timeout = startup_timeout
        self.tmpdir: str = tempfile.mkdtemp(prefix="gearmand-")
        self.log_path: str = os.path.join(self.tmpdir, "gearmand.log")
        self.pid_path: str = os.path.join(self.tmpdir, "gearmand.pid")
        self.config_path: str = os.path.join(self.tmpdir, "gearmand.conf")
        self.stderr_path: str = os.path.join(self.tmpdir, "gearmand.stderr")
        self.queue_path: str = os.path.join(self.tmpdir, "queue.sqlite")
        # gearmand reads /etc/gearmand.conf by default, which may be missing
        # or hold settings meant for a production server: give it an empty one.
        with open(self.config_path, "w"):
            pass
        self._lock = threading.RLock()
        self._handle = _Handle(self.tmpdir)
        # weakref.finalize runs at garbage collection and, through its own
        # atexit hook, at interpreter exit: no gearmand outlives the tests.
        self._finalizer = weakref.finalize(self, self._handle.finalize)
        if start:
            self.start()

    # -- state -----------------------------------------------------------------

    @property
    def address(self) -> str:
        """Return ``"127.0.0.1:PORT"``."""
        return f"{self.host}:{self.port}"

    @property
    def pid(self) -> Optional[int]:
        """Return the pid of the running gearmand, or None when it is not running."""
        proc = self._handle.proc
        return proc.pid if proc is not None and proc.poll() is None else None

    def is_running(self) -> bool:
        """Return True while our gearmand process is alive (not necessarily answering)."""
        proc = self._handle.proc
        return proc is not None and proc.poll() is None

    def command(self) -> List[str]:
        """Return the gearmand command line for the current port."""
        cmd = [self.binary, f"--listen={self.host}", f"--port={self.port}",
               f"--log-file={self.log_path}", f"--pid-file={self.pid_path}",
               f"--config-file={self.config_path}", f"--verbose={self.verbose}"]
        if self.threads is not None:
            cmd.append(f"--threads={self.threads}")
        if self.job_retries is not None:
            cmd.append(f"--job-retries={self.job_retries}")
        if self.persistent:
            cmd += ["--queue-type=libsqlite3", f"--libsqlite3-db={self.queue_path}"]
        return cmd + self.extra_args

    # -- lifecycle -------------------------------------------------------------

    def start(self, timeout: Optional[float] = None) -> "GearmandServer":
        """Start gearmand and wait until it answers ``version`` and ``getpid``.

        Port 0 picks a free port; if another process takes it before gearmand
        binds, another port is picked.  A fixed port (or a restart on the same
        port) is retried until the deadline, since it may be briefly held.
        Does nothing if already running.

        Returns:
            self.

        Raises:
            GearmandStartError: not up within ``timeout`` (default
                ``startup_timeout``) seconds, or gearmand exited at once (bad
                arguments); the message holds its stderr and the log tail.
            RuntimeError: called after :meth:`cleanup`.
        """
        with self._lock:
            if not self._finalizer.alive:
                raise RuntimeError(f"{self!r} was cleaned up; create a new GearmandServer")
            if self.is_running():
                return self
            timeout = self.startup_timeout if timeout is None else timeout
            deadline = time.monotonic() + timeout
            pick = self.port == 0
            why = "no attempt made"
            while time.monotonic() < deadline:
                if pick:
                    self.port = free_port()
                    attempt_deadline = min(deadline, time.monotonic() + _PICKED_PORT_PATIENCE)
                else:
                    attempt_deadline = deadline
                log_offset = self._log_size()
                self._spawn()
                state = self._wait_ready(attempt_deadline)
                if state == "ready":
                    return self
                self._handle.reap()
                if state == "exited":
                    log = self._log_since(log_offset)
                    if "bind" not in log:
                        # Bad arguments or a broken install: retrying cannot help.
                        raise GearmandStartError(self._start_failure("gearmand exited at once"))
                    why = "gearmand could not bind the port"
                elif state == "foreign":
                    why = "another server answers on the port"
                else:
                    why = "gearmand did not answer in time"
                time.sleep(0.1)
            raise GearmandStartError(self._start_failure(f"{why} (gave up after {timeout:g} s)"))

    def _spawn(self) -> None:
        if self._handle.stderr is None:
            # A file, not a pipe: nobody reads a pipe while the server runs,
            # and a full pipe would block gearmand.
            self._handle.stderr = open(self.stderr_path, "ab")
        self._handle.proc = subprocess.Popen(
            self.command(), stdin=subprocess.DEVNULL, stdout=self._handle.stderr,
            stderr=self._handle.stderr, cwd=self.tmpdir, close_fds=True)

    def _wait_ready(self, deadline: float) -> str:
        """Return "ready", "exited", "foreign" (someone else's server) or "timeout"."""
        proc = self._handle.proc
        assert proc is not None
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                return "exited"
            try:
                if self._ask("version", 1.0).startswith("OK"):
                    # The port may have been taken by another gearmand between
                    # our probe and our child's bind: check it is our child.
                    pid = self._ask("getpid", 1.0).split()
                    if pid[:1] == ["OK"] and pid[1:] != [str(proc.pid)]:
                        return "foreign"
                    return "ready"
            except OSError:
                pass    # not listening yet
            time.sleep(0.02)
        return "timeout"

    def _start_failure(self, why: str) -> str:
        try:
            with open(self.stderr_path, "rb") as f:
                stderr = f.read()[-4000:].decode("utf-8", "replace").strip()
        except OSError:
            stderr = ""
        return (f"{why}: {' '.join(self.command())}\n"
                f"stderr:\n{stderr or '(empty)'}\nlog tail ({self.log_path}):\n{self.log_tail()}")

    def _log_size(self) -> int:
        try:
            return os.path.getsize(self.log_path)
        except OSError:
            return 0

    def _log_since(self, offset: int) -> str:
        try:
            with open(self.log_path, "rb") as f:
                f.seek(offset)
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def stop(self, timeout: float = 10.0) -> None:
        """Stop gearmand gracefully: SIGTERM, then SIGKILL after ``timeout`` seconds.

        Waits for the process (no zombie).  Keeps the temporary folder, so a
        persistent queue survives for :meth:`restart`.  Does nothing if not running.
        """
        with self._lock:
            proc = self._handle.proc
            if proc is not None and proc.poll() is None:
                try:
                    proc.send_signal(signal.SIGTERM)
                    if sys.platform != "win32":
                        # A paused (SIGSTOPped) server only acts on SIGTERM once resumed.
                        proc.send_signal(signal.SIGCONT)
                except ProcessLookupError:
                    pass
                try:
                    proc.wait(timeout)
                except subprocess.TimeoutExpired:
                    pass    # reap() below sends SIGKILL
            self._handle.reap()

    def kill(self) -> None:
        """Kill gearmand with SIGKILL, simulating a crash (nothing is flushed).

        Waits for the process (no zombie).  Keeps the temporary folder.  Does
        nothing if not running.
        """
        with self._lock:
            self._handle.reap()

    def pause(self) -> None:
        """Freeze gearmand with SIGSTOP: connections stay open but nothing answers.

        Simulates a hung server for timeout tests; :meth:`resume` undoes it.
        """
        if sys.platform == "win32":
            raise RuntimeError("pause() needs SIGSTOP, which Windows does not have")
        with self._lock:
            proc = self._handle.proc
            if proc is not None and self.is_running():
                proc.send_signal(signal.SIGSTOP)
                _wait_stopped(proc.pid)

    def resume(self) -> None:
        """Let a paused gearmand run again (SIGCONT)."""
        if sys.platform == "win32":
            raise RuntimeError("resume() needs SIGCONT, which Windows does not have")
        with self._lock:
            proc = self._handle.proc
            if proc is not None and self.is_running():
                proc.send_signal(signal.SIGCONT)

    def restart(self, same_port: bool = True, *, kill: bool = False) -> "GearmandServer":
        """Stop (SIGTERM, or SIGKILL with ``kill=True``) if running, then start again.

        With ``same_port`` the new process listens on the same port (bind
        failures, e.g. sockets still held, are retried until the startup
        deadline); otherwise a new free port is picked.  A persistent server
        keeps its sqlite queue file, so queued background jobs are replayed.

        Returns:
            self.

        Raises:
            GearmandStartError: as for :meth:`start`.
        """
        with self._lock:
            if kill:
                self.kill()
            else:
                self.stop()
            if not same_port:
                self.port = 0
            return self.start()

    def cleanup(self) -> None:
        """Kill gearmand (if running) and remove its temporary folder.

        The object cannot be started again afterwards.
        """
        with self._lock:
            self._finalizer()

    # -- talking to it ---------------------------------------------------------

    def admin(self, command: str, timeout: float = 10.0) -> str:
        """Send one admin text command (``status``, ``workers``, ``version``...).

        Uses a fresh connection and reads until the reply is complete: one
        ``OK ...`` / ``ERR ...`` line, or a listing ended by a line ``.``.

        Returns:
            The reply as received (with its line ends), e.g.
            ``"fn\\t1\\t0\\t0\\n.\\n"`` for ``status``.

        Raises:
            ValueError: ``command`` holds a line break.
            OSError: the server cannot be reached, closed the connection before
                a complete reply (ConnectionError), or did not finish
                answering within ``timeout`` seconds (TimeoutError).
        """
        return self._ask(command, timeout)

    def status(self) -> Dict[str, Tuple[int, int, int]]:
        """gearmand's ``status`` table: ``{function: (jobs, running, workers)}``:
        the jobs it holds for the function (waiting or running), those
        running, and the workers that registered it."""
        table: Dict[str, Tuple[int, int, int]] = {}
        for line in self.admin("status").splitlines():
            parts = line.split("\t")
            if len(parts) == 4:
                table[parts[0]] = (int(parts[1]), int(parts[2]), int(parts[3]))
        return table

    def queued(self, function: str) -> int:
        """The jobs gearmand holds for ``function``, waiting or running (0 for
        a function it does not know)."""
        return self.status().get(function, (0, 0, 0))[0]

    def _ask(self, command: str, timeout: float) -> str:
        command = command.strip()
        if "\n" in command or "\r" in command:
            raise ValueError(f"one admin command at a time, without line breaks: {command!r}")
        words = " ".join(command.split()).lower()
        deadline = time.monotonic() + timeout
        with socket.create_connection((self.host, self.port), timeout=timeout) as s:
            s.sendall(command.encode("utf-8") + b"\n")
            buf = b""
            while not _reply_complete(buf, words):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"incomplete answer to {command!r} from {self.address}: {buf!r}")
                s.settimeout(left)
                chunk = s.recv(65536)
                if not chunk:
                    raise ConnectionError(f"{self.address} closed the connection before a complete "
                                          f"answer to {command!r}: {buf!r}")
                buf += chunk
        return buf.decode("utf-8", "replace")

    def log_tail(self, lines: int = 30) -> str:
        """Return the last ``lines`` lines of gearmand's log, or ``"(no log)"``."""
        try:
            with open(self.log_path, "rb") as f:
                f.seek(max(0, os.path.getsize(self.log_path) - 64 * 1024))
                return b"".join(f.read().splitlines(True)[-lines:]).decode("utf-8", "replace")
        except OSError:
            return "(no log)"

    # -- protocol ------------------------------------------------------------

    def __enter__(self) -> "GearmandServer":
        self.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.cleanup()

    def __repr__(self) -> str:
        state = "running" if self.is_running() else "stopped"
        return f"<GearmandServer {self.address} {state}{' persistent' if self.persistent else ''}>"


def _wait_stopped(pid: int, timeout: float = 5.0) -> None:
    """Return once process ``pid`` is stopped: kill() only queues SIGSTOP, and a
    gearmand running on another CPU may still answer a request sent just after
    it.  Linux: its state in /proc/PID/stat; elsewhere a short sleep."""
    stat = f"/proc/{pid}/stat"
    if not os.path.exists(stat):
        time.sleep(0.05)
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with open(stat) as f:
                state = f.read().rpartition(")")[2].split()[0]
        except (OSError, IndexError):
            return                  # gone: nothing left to wait for
        if state in ("T", "t"):
            return
        time.sleep(0.001)


def _reply_complete(buf: bytes, words: str) -> bool:
    """Return True once ``buf`` holds the whole reply to the admin command ``words``."""
    first, nl, _ = buf.partition(b"\n")
    if not nl:
        return False
    # An error is one line even for a listing command ("ERR code message");
    # a status line for a function named "ERR..." has a tab, not a space.
    if first.startswith(b"ERR "):
        return True
    is_listing = words in _LISTINGS or (
        # An unknown command: guess from the answer's shape.
        not first.startswith((b"OK", b"ERR")))
    if not is_listing:
        return True
    return buf == b".\n" or buf.endswith((b"\n.\n", b"\n.\r\n")) or buf == b".\r\n"


# -- pytest --------------------------------------------------------------------------

# The fixtures are declared in _cygearman_pytest (outside this package, so that
# loading the plugin imports nothing of cygearman).  Naming this module as a
# plugin (-p gearman.testing, the older spelling) loads that one.
pytest_plugins = ["_cygearman_pytest"]
