"""Real gearmand servers for tests: a pytest plugin and the helpers behind it.

Registered through the ``pytest11`` entry point, so installing cygearman makes
these fixtures available to any test suite::

    def test_submit(gearmand):
        client = gearman.GearmanClient()
        client.addServer("127.0.0.1", gearmand.port)
        assert client.doBackground("work", b"x").startswith("H:")

Fixtures: ``gearmand`` (one server for the session; do not kill it),
``gearmand_factory`` (``gearmand_factory(persistent=False, extra_args=())``:
more servers, stopped after the test; kill/restart them freely),
``gearman_client`` and ``gearman_worker`` (connected to ``gearmand``),
``free_port`` (a port where nothing listens).  A missing gearmand binary is an
error naming the Debian package, never a skip.  This module imports no
compiled code at import time.
"""
from __future__ import annotations

import atexit
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import weakref
from typing import Any, Callable, Iterator, List, Optional, Sequence

import pytest

__all__ = [
    "GearmandNotFound",
    "GearmandServer",
    "find_gearmand",
    "free_port",
    "wait_until",
]

_SEARCH = ("/usr/sbin/gearmand", "/usr/local/sbin/gearmand", "/usr/bin/gearmand")
_LIVE: "weakref.WeakSet[GearmandServer]" = weakref.WeakSet()


class GearmandNotFound(RuntimeError):
    """Raised when no gearmand binary can be found."""


def find_gearmand() -> str:
    """Return the path of gearmand (``$GEARMAND``, PATH, then the sbin folders).

    Raises GearmandNotFound naming the Debian package to install.
    """
    env = os.environ.get("GEARMAND")
    if env:
        if os.path.isfile(env) and os.access(env, os.X_OK):
            return env
        raise GearmandNotFound(f"GEARMAND={env!r} is not an executable file")
    found = shutil.which("gearmand")
    if found:
        return found
    for path in _SEARCH:
        if os.path.isfile(path) and os.access(path, os.X_OK):
            return path
    raise GearmandNotFound(
        "gearmand was not found: install the Debian package gearman-job-server "
        "(apt-get install gearman-job-server) or set GEARMAND to its path")


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 where nothing listens right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(predicate: Callable[[], Any], timeout: float = 10.0, interval: float = 0.02) -> bool:
    """Poll ``predicate`` until it is true or ``timeout`` seconds pass; return its last truth."""
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


class GearmandServer:
    """One real gearmand on 127.0.0.1, its files in a private temporary folder.

    ``GearmandServer(port=None, persistent=False, extra_args=(), job_retries=None,
    threads=None)``; ``start()`` is called by the constructor unless
    ``start=False``.  Use as a context manager to stop it at the end.
    """

    def __init__(self, port: Optional[int] = None, *, persistent: bool = False,
                 extra_args: Sequence[str] = (), job_retries: Optional[int] = None,
                 threads: Optional[int] = None, start: bool = True,
                 startup_timeout: float = 15.0) -> None:
        self.binary = find_gearmand()
        self.host = "127.0.0.1"
        self.port = port or 0
        self.persistent = persistent
        self.extra_args = list(extra_args)
        self.job_retries = job_retries
        self.threads = threads
        self.startup_timeout = startup_timeout
        self.tmpdir = tempfile.mkdtemp(prefix="gearmand-")
        self.log_path = os.path.join(self.tmpdir, "gearmand.log")
        self.pid_path = os.path.join(self.tmpdir, "gearmand.pid")
        self.config_path = os.path.join(self.tmpdir, "gearmand.conf")
        self.queue_path = os.path.join(self.tmpdir, "queue.sqlite")
        with open(self.config_path, "w"):
            pass     # gearmand reads a config file; an empty one keeps it from the system's
        self.process: Optional[subprocess.Popen] = None
        _LIVE.add(self)
        if start:
            self.start()

    @property
    def address(self) -> str:
        """``"127.0.0.1:PORT"``."""
        return f"{self.host}:{self.port}"

    @property
    def pid(self) -> Optional[int]:
        return self.process.pid if self.process is not None else None

    def _command(self) -> List[str]:
        cmd = [self.binary, f"--listen={self.host}", f"--port={self.port}",
               f"--log-file={self.log_path}", f"--pid-file={self.pid_path}",
               f"--config-file={self.config_path}", "--verbose=INFO"]
        if self.threads is not None:
            cmd.append(f"--threads={self.threads}")
        if self.job_retries is not None:
            cmd.append(f"--job-retries={self.job_retries}")
        if self.persistent:
            cmd += ["--queue-type=libsqlite3", f"--libsqlite3-db={self.queue_path}"]
        return cmd + self.extra_args

    def start(self) -> "GearmandServer":
        """Start gearmand and wait until it answers ``version``.

        A port of 0 picks a free one (retrying if another process takes it
        first).  Raises RuntimeError with the log's tail if it does not come up.
        """
        if self.is_running():
            return self
        pick = self.port == 0
        last_error = ""
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if pick:
                self.port = free_port()
            self.process = subprocess.Popen(self._command(), stdin=subprocess.DEVNULL,
                                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            if self._wait_ready(min(deadline, time.monotonic() + 10.0)):
                return self
            last_error = self._stop_process()
            # A fixed port may still be in TIME_WAIT after a restart: retry it.
            time.sleep(0.1)
        raise RuntimeError(f"gearmand did not start on {self.address}: {last_error}\n"
                           f"log tail:\n{self.log_tail()}")

    def _wait_ready(self, deadline: float) -> bool:
        while time.monotonic() < deadline:
            if self.process is None or self.process.poll() is not None:
                return False
            try:
                if self.admin("version", timeout=1.0).startswith("OK"):
                    return True
            except OSError:
                pass
            time.sleep(0.02)
        return False

    def _stop_process(self) -> str:
        err = ""
        if self.process is None:
            return err
        if self.process.poll() is None:
            self.process.kill()
        try:
            _, stderr = self.process.communicate(timeout=10)
            err = (stderr or b"").decode("utf-8", "replace").strip()
        except subprocess.TimeoutExpired:
            pass
        self.process = None
        return err

    def is_running(self) -> bool:
        """True while the gearmand process is alive."""
        return self.process is not None and self.process.poll() is None

    def stop(self, timeout: float = 10.0) -> None:
        """Stop gearmand: SIGTERM, then SIGKILL after ``timeout`` seconds."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
        self._stop_process()

    def kill(self) -> None:
        """Kill gearmand with SIGKILL (a crash: nothing is flushed)."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
        self._stop_process()

    def restart(self, kill: bool = False) -> "GearmandServer":
        """Stop (or kill) and start again on the same port and with the same queue file."""
        self.kill() if kill else self.stop()
        return self.start()

    def admin(self, command: str, timeout: float = 10.0) -> str:
        """Send one admin text command on a fresh connection; return the whole reply.

        A listing ends with a line holding only ``.``; other replies are one line.
        Raises OSError if the server cannot be reached or does not answer in time.
        """
        with socket.create_connection((self.host, self.port), timeout=timeout) as s:
            s.sendall(command.encode("utf-8") + b"\r\n")
            buf = b""
            deadline = time.monotonic() + timeout
            while True:
                if buf.startswith((b"OK", b"ERR")) and buf.endswith(b"\n"):
                    break
                if buf == b".\n" or buf.endswith(b"\n.\n"):
                    break
                if time.monotonic() > deadline:
                    raise TimeoutError(f"no complete answer to {command!r}: {buf!r}")
                chunk = s.recv(65536)
                if not chunk:
                    break
                buf += chunk
        return buf.decode("utf-8", "replace")

    def log_tail(self, lines: int = 30) -> str:
        """The last lines of gearmand's log."""
        try:
            with open(self.log_path, "rb") as f:
                return b"".join(f.readlines()[-lines:]).decode("utf-8", "replace")
        except OSError:
            return "(no log)"

    def cleanup(self) -> None:
        """Kill the server and remove its temporary folder."""
        self.kill()
        shutil.rmtree(self.tmpdir, ignore_errors=True)

    def __enter__(self) -> "GearmandServer":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.cleanup()

    def __repr__(self) -> str:
        return f"<GearmandServer {self.address} {'running' if self.is_running() else 'stopped'}>"


@atexit.register
def _kill_leftovers() -> None:
    for server in list(_LIVE):
        try:
            server.cleanup()
        except Exception:   # noqa: BLE001 - best effort at exit
            pass


# -- pytest fixtures ------------------------------------------------------------------

@pytest.fixture(scope="session")
def gearmand() -> Iterator[GearmandServer]:
    """One real gearmand for the whole session (shared: use unique function names)."""
    server = GearmandServer()
    try:
        yield server
    finally:
        server.cleanup()


@pytest.fixture
def gearmand_factory() -> Iterator[Callable[..., GearmandServer]]:
    """Start more gearmand servers: ``gearmand_factory(persistent=False, extra_args=())``."""
    servers: List[GearmandServer] = []

    def make(**kwargs: Any) -> GearmandServer:
        server = GearmandServer(**kwargs)
        servers.append(server)
        return server

    try:
        yield make
    finally:
        for server in servers:
            server.cleanup()


@pytest.fixture(name="free_port")
def free_port_fixture() -> int:
    """A port on 127.0.0.1 where nothing listens."""
    return free_port()


@pytest.fixture
def gearman_client(gearmand: GearmandServer) -> Iterator[Any]:
    """A ``gearman.GearmanClient`` connected to the session's gearmand."""
    import gearman

    client = gearman.GearmanClient()
    client.addServer(gearmand.host, gearmand.port)
    try:
        yield client
    finally:
        client.close()


@pytest.fixture
def gearman_worker(gearmand: GearmandServer) -> Iterator[Any]:
    """A ``gearman.GearmanWorker`` connected to the session's gearmand."""
    import gearman

    worker = gearman.GearmanWorker()
    worker.addServer(gearmand.host, gearmand.port)
    try:
        yield worker
    finally:
        worker.close()
