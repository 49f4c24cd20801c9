"""python-gearman's ``GearmanAdminClient``: gearmand's administrative text protocol.

One blocking connection to one server, opened on first use.  Answers are read
with the compiled codec (``PacketReader(allow_text=True)``), which takes admin
text lines and binary packets from the same stream and drops the ``\\r`` that
gearmand 1.1 puts before ``\\n`` after ``OK``/``ERR``; so ``send_maxqueue``
works against today's gearmand (python-gearman raised ProtocolError there,
issue #31) and ``get_workers`` accepts client ids with spaces (issue #66).

Every call waits at most ``poll_timeout`` seconds, then raises
:class:`gearman.errors.InvalidAdminClientState` and drops the connection (a late
answer must not be taken for the next command's).  An unreachable server, or
one that closes the connection, raises :class:`gearman.errors.ServerUnavailable`;
the next call connects again.
"""
from __future__ import annotations

import socket
import ssl
import threading
import time
from typing import Any, Dict, List, Optional, Tuple

from gearman import _core
from gearman._servers import parse_host_entry
from gearman.connection import GearmanConnection
from gearman.util import host_tls_context
from gearman.connection_manager import GearmanConnectionManager
from gearman.errors import (
    InvalidAdminClientState,
    InvalidArgumentError,
    ProtocolError,
    ServerUnavailable,
)
from gearman.protocol import (
    GEARMAN_COMMAND_ECHO_REQ,
    GEARMAN_COMMAND_ECHO_RES,
    GEARMAN_COMMAND_TEXT_COMMAND,
    GEARMAN_SERVER_COMMAND_CANCEL_JOB,
    GEARMAN_SERVER_COMMAND_GETPID,
    GEARMAN_SERVER_COMMAND_MAXQUEUE,
    GEARMAN_SERVER_COMMAND_SHOW_JOBS,
    GEARMAN_SERVER_COMMAND_SHOW_UNIQUE_JOBS,
    GEARMAN_SERVER_COMMAND_SHUTDOWN,
    GEARMAN_SERVER_COMMAND_STATUS,
    GEARMAN_SERVER_COMMAND_VERSION,
    GEARMAN_SERVER_COMMAND_WORKERS,
)

__all__ = ["GearmanAdminClient", "ECHO_STRING", "DEFAULT_ADMIN_CLIENT_TIMEOUT"]

ECHO_STRING = "ping? pong!"
DEFAULT_ADMIN_CLIENT_TIMEOUT = 10.0

_TEXT = 0   # PacketReader's command number for an admin text line


class GearmanAdminClient(GearmanConnectionManager):
    """Administrative client for exactly one job server.

    ``GearmanAdminClient(host_list=None, poll_timeout=10.0)``; ``host_list`` holds
    one server in any host form (``'host'``, ``'host:port'``, ``(host, port)``,
    dict; a dict with ``keyfile``, ``certfile`` and ``ca_certs`` connects with
    TLS), or is that server itself; ``ssl_context`` (an :class:`ssl.SSLContext`)
    connects with TLS the way ``GearmanClient(ssl_context=...)`` does.  Raises
    :class:`gearman.errors.InvalidArgumentError` (a GearmanError and a
    ValueError) for zero or several servers.  Usable as a context manager.
    """

    def __init__(self, host_list: Any = None, poll_timeout: float = DEFAULT_ADMIN_CLIENT_TIMEOUT,
                 timeout: Optional[float] = None,
                 ssl_context: Optional[ssl.SSLContext] = None) -> None:
        if timeout is not None:          # the keyword of python-gearman < 2.0
            poll_timeout = timeout
        if isinstance(host_list, (str, dict)):
            host_list = [host_list]
        entries = list(host_list or [])
        if len(entries) != 1:
            raise InvalidArgumentError(
                f"GearmanAdminClient takes exactly one server, got {len(entries)}")
        host, port = parse_host_entry(entries[0])
        self.poll_timeout: float = float(poll_timeout)
        entry = entries[0]
        if isinstance(entry, dict):
            self.current_connection = GearmanConnection(
                host, port, entry.get("keyfile"), entry.get("certfile"), entry.get("ca_certs"))
        else:
            self.current_connection = GearmanConnection(host, port)
        # an explicit context (as on GearmanClient / GearmanWorker) wins over
        # the python-gearman style keyfile/certfile/ca_certs dict
        self._tls = ssl_context if ssl_context is not None else host_tls_context(entry)
        self._sock: Optional[socket.socket] = None
        self._reader: Any = None
        self._lock = threading.RLock()

    # -- python-gearman surface ---------------------------------------------------

    @property
    def connection_list(self) -> List[GearmanConnection]:
        """The one server, as a list."""
        return [self.current_connection]

    @property
    def admin_client_timeout(self) -> float:
        """Alias of ``poll_timeout`` (python-gearman's error message used this name)."""
        return self.poll_timeout

    def ping_server(self) -> float:
        """Send ECHO_REQ ``"ping? pong!"``; return the round trip in seconds (float).

        Raises InvalidAdminClientState if the echo differs or times out,
        ServerUnavailable if the server cannot be reached.
        """
        with self._lock:
            start = time.perf_counter()
            deadline = self._begin()
            self._send(_core.pack_request(GEARMAN_COMMAND_ECHO_REQ, ECHO_STRING))
            cmd, args = self._read(deadline)
            if cmd != GEARMAN_COMMAND_ECHO_RES:
                self._drop()
                raise InvalidAdminClientState(
                    f"Received an unexpected response... got command {cmd!r}, "
                    f"expecting command {GEARMAN_COMMAND_ECHO_REQ!r}")
            echoed = args[0].decode("utf-8", "surrogateescape")
            if echoed != ECHO_STRING:
                raise InvalidAdminClientState(
                    f"Echo string mismatch: got {echoed}, expected {ECHO_STRING}")
            return time.perf_counter() - start

    def send_maxqueue(self, task: Any, max_size: Any) -> str:
        """Limit the queue of ``task`` to ``max_size`` jobs (<= 0: unlimited); return ``'OK'``.

        Raises ProtocolError for any other answer.
        """
        line = self._one_line(f"{GEARMAN_SERVER_COMMAND_MAXQUEUE} {_word(task)} {int(max_size)}")
        if line != "OK":
            raise ProtocolError(f"Expected 'OK', received: {line}")
        return line

    def send_shutdown(self, graceful: bool = True) -> None:
        """Ask the server to shut down (``shutdown [graceful]``); return None whatever it says.

        gearmand >= 1.1.15 no longer has the command (answers ERR UNKNOWN_COMMAND).
        """
        command = GEARMAN_SERVER_COMMAND_SHUTDOWN + (" graceful" if graceful else "")
        with self._lock:
            deadline = self._begin()
            self._send_line(command)
            try:
                self._read(deadline)
            except ServerUnavailable:
                pass            # a server that obeyed closes the connection
            self._drop()
        return None

    def get_status(self) -> Tuple[Dict[str, Any], ...]:
        """Return one dict per function: ``{'task', 'queued', 'running', 'workers'}``.

        ``queued`` counts running jobs too, as gearmand reports it.  Raises
        ProtocolError for a malformed or ERR answer.
        """
        out = []
        for line in self._listing(GEARMAN_SERVER_COMMAND_STATUS):
            tokens = line.split("\t")
            if len(tokens) != 4:
                raise ProtocolError(f"Received {len(tokens)} tokens, expected 4 tokens: {tokens!r}")
            task, queued, running, workers = tokens
            out.append({"task": task, "queued": int(queued), "running": int(running),
                        "workers": int(workers)})
        return tuple(out)

    def get_version(self) -> str:
        """Return the server's answer to ``version`` as is, e.g. ``'OK 1.1.20+ds'``."""
        return self._one_line(GEARMAN_SERVER_COMMAND_VERSION)

    def get_workers(self) -> Tuple[Dict[str, Any], ...]:
        """Return one dict per connection: ``{'file_descriptor', 'ip', 'client_id', 'tasks'}``.

        ``client_id`` is ``'-'`` if the peer never set one; ``tasks`` is a tuple
        of function names.  Every connection is listed, clients and this admin
        connection included.  Raises ProtocolError for a malformed or ERR answer.
        """
        out = []
        for line in self._listing(GEARMAN_SERVER_COMMAND_WORKERS):
            tokens = line.split(" ")
            # "FD IP ID : F1 F2"; an id may itself contain spaces, so the
            # separator is the first ':' token after the id.
            try:
                colon = tokens.index(":", 3)
            except ValueError:
                raise ProtocolError(f"Malformed worker response: {tokens!r}") from None
            out.append({"file_descriptor": tokens[0], "ip": tokens[1],
                        "client_id": " ".join(tokens[2:colon]),
                        "tasks": tuple(t for t in tokens[colon + 1:] if t)})
        return tuple(out)

    def get_pid(self) -> str:
        """Return the server's answer to ``getpid`` as is, e.g. ``'OK 12345'``."""
        return self._one_line(GEARMAN_SERVER_COMMAND_GETPID)

    def cancel_job(self, handle: Any) -> str:
        """Send ``cancel job HANDLE``; return the answer: ``'OK'`` or ``'ERR UNKNOWN_JOB'``.

        gearmand fails the job towards waiting clients but removes it only when
        a worker would have taken it (see PROTOCOL.md 3.11).
        """
        return self._one_line(f"{GEARMAN_SERVER_COMMAND_CANCEL_JOB} {_word(handle)}")

    def get_jobs(self) -> Tuple[Dict[str, Any], ...]:
        """Return one dict per job: ``{'handle', 'queued', 'canceled', 'enabled'}``.

        The keys are python-gearman's; gearmand's columns really are handle,
        retries, ignore and queued-in-persistent-store.
        """
        out = []
        for line in self._listing(GEARMAN_SERVER_COMMAND_SHOW_JOBS):
            tokens = line.split("\t")
            if len(tokens) != 4:
                raise ProtocolError(f"Received {len(tokens)} tokens, expected 4 tokens: {tokens!r}")
            handle, queued, canceled, enabled = tokens
            out.append({"handle": handle, "queued": int(queued), "canceled": int(canceled),
                        "enabled": int(enabled)})
        return tuple(out)

    def get_unique_jobs(self) -> Tuple[Dict[str, Any], ...]:
        """Return one ``{'unique': str}`` per job known to the server."""
        return tuple({"unique": line} for line in self._listing(GEARMAN_SERVER_COMMAND_SHOW_UNIQUE_JOBS))

    def shutdown(self) -> None:
        """Close the connection (the next call opens a new one)."""
        with self._lock:
            self._drop()

    close = shutdown

    def __enter__(self) -> "GearmanAdminClient":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.shutdown()

    def __repr__(self) -> str:
        c = self.current_connection
        return f"<GearmanAdminClient {c.gearman_host}:{c.gearman_port}>"

    # -- I/O -------------------------------------------------------------------------

    def _begin(self) -> float:
        """Connect if needed; return the deadline of the call (monotonic seconds)."""
        deadline = time.monotonic() + self.poll_timeout
        if self._sock is None:
            c = self.current_connection
            try:
                sock = socket.create_connection((c.gearman_host, c.gearman_port),
                                                timeout=max(self.poll_timeout, 0.001))
            except OSError as exc:
                raise ServerUnavailable(
                    f"Found no valid connections in list: {self.connection_list!r} ({exc})") from exc
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self._tls is not None:
                try:
                    sock.settimeout(max(deadline - time.monotonic(), 0.001))
                    sock = self._tls.wrap_socket(sock, server_hostname=c.gearman_host)
                except (OSError, ValueError) as exc:
                    sock.close()
                    raise ServerUnavailable(
                        f"TLS handshake with {c.gearman_host}:{c.gearman_port} failed: {exc}") from exc
            self._sock = sock
            self._reader = _core.PacketReader(magic=b"\0RES", allow_text=True)
        return deadline

    def _drop(self) -> None:
        sock, self._sock = self._sock, None
        self._reader = None
        if sock is not None:
            try:
                sock.close()
            except OSError:
                pass

    def _send(self, data: bytes) -> None:
        assert self._sock is not None
        try:
            self._sock.sendall(data)
        except OSError as exc:
            self._drop()
            raise ServerUnavailable(f"lost the admin connection: {exc}") from exc

    def _send_line(self, line: str) -> None:
        if "\n" in line or "\r" in line:
            raise InvalidArgumentError("an admin command argument must not contain a line break")
        # CRLF: gearmand 1.1's "create function" drops a character on LF-only lines.
        self._send(line.encode("utf-8") + b"\r\n")

    def _read(self, deadline: float) -> Tuple[int, Tuple[bytes, ...]]:
        """Return the next text line or packet; raises on timeout, EOF or bad bytes."""
        while True:
            try:
                item: Optional[Tuple[int, Tuple[bytes, ...]]] = self._reader.gets()
            except ProtocolError:
                self._drop()
                raise
            if item is not None:
                return item
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self._drop()
                raise InvalidAdminClientState(
                    f"Admin client timed out after {self.poll_timeout:f} second(s)")
            assert self._sock is not None
            self._sock.settimeout(remaining)
            try:
                data = self._sock.recv(65536)
            except socket.timeout:
                continue
            except OSError as exc:
                self._drop()
                raise ServerUnavailable(f"lost the admin connection: {exc}") from exc
            if not data:
                self._drop()
                raise ServerUnavailable("the server closed the admin connection")
            self._reader.feed(data)

    def _read_line(self, deadline: float) -> str:
        cmd, args = self._read(deadline)
        if cmd != _TEXT:
            self._drop()
            raise InvalidAdminClientState(
                f"Received an unexpected response... got command {cmd!r}, "
                f"expecting command {GEARMAN_COMMAND_TEXT_COMMAND!r}")
        return args[0].decode("utf-8", "surrogateescape")

    def _one_line(self, command: str) -> str:
        with self._lock:
            deadline = self._begin()
            self._send_line(command)
            return self._read_line(deadline)

    def _listing(self, command: str) -> List[str]:
        """Send a listing command; return its lines up to the final '.'."""
        with self._lock:
            deadline = self._begin()
            self._send_line(command)
            lines: List[str] = []
            while True:
                line = self._read_line(deadline)
                if line == ".":
                    return lines
                if not lines and line.startswith("ERR "):
                    # an error answer is a single line: there is no '.' to wait for
                    raise ProtocolError(f"{command!r}: {line.replace('+', ' ')}")
                lines.append(line)


def _word(value: Any) -> str:
    """An argument of an admin command: str, bytes (UTF-8) or a number; no spaces."""
    text = value.decode("utf-8", "surrogateescape") if isinstance(value, (bytes, bytearray)) \
        else str(value)
    if not text or any(ch in text for ch in " \t\r\n"):
        raise InvalidArgumentError(f"admin command argument {text!r} must be one non-empty word")
    return text
