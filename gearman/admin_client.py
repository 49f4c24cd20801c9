"""python-gearman's ``GearmanAdminClient``: a view on :class:`gearman.admin.Admin`.

One server per admin client, as in python-gearman.  The text commands go
through ``gearman.admin`` (its connection, its parsers, its argument check),
so this module has no socket code of its own; the answers come back in
python-gearman's shapes (tuples of dicts, raw answer lines).  ``ping_server``
sends ECHO_REQ, a binary packet, through the compiled client engine.

gearman.admin's fixes apply here too: ``send_maxqueue`` works against
today's gearmand (python-gearman raised ProtocolError at its ``OK\\r``,
issue #31; the function is created first so the limit sticks) and
``get_workers`` accepts client ids with spaces (issue #66).

Every call waits at most ``poll_timeout`` seconds, then raises
:class:`gearman.errors.InvalidAdminClientState` and drops the connection (a late
answer must not be taken for the next command's).  An unreachable server, or
one that closes the connection, raises :class:`gearman.errors.ServerUnavailable`;
the next call connects again.
"""
from __future__ import annotations

import ssl
import threading
import time
from typing import Any, Dict, List, Optional, Tuple

from gearman import _config, _core
from gearman.admin import Admin, command_word
from gearman.connection import GearmanConnection
from gearman.connection_manager import GearmanAdminClientCommandHandler, GearmanConnectionManager
from gearman.errors import (
    GearmanTimeoutError,
    InvalidAdminClientState,
    InvalidArgumentError,
    LostConnectionError,
    ProtocolError,
    ServerError,
    ServerUnavailable,
)
from gearman.protocol import (
    GEARMAN_SERVER_COMMAND_CANCEL_JOB,
    GEARMAN_SERVER_COMMAND_GETPID,
    GEARMAN_SERVER_COMMAND_SHUTDOWN,
    GEARMAN_SERVER_COMMAND_VERSION,
)

__all__ = ["GearmanAdminClient", "ECHO_STRING", "DEFAULT_ADMIN_CLIENT_TIMEOUT"]

ECHO_STRING = "ping? pong!"
DEFAULT_ADMIN_CLIENT_TIMEOUT = 10.0

#: The shortest wait a call gets (``poll_timeout`` <= 0 means "do not wait": python-gearman
#: timed such calls out at once; gearman.admin needs a positive timeout).
_MIN_TIMEOUT = 0.001


def _raw_error_line(exc: ServerError) -> str:
    """The ``ERR ...`` line a ServerError came from (gearmand writes '+' for spaces)."""
    code = getattr(exc, "server_code", "") or ""
    text = getattr(exc, "text", "") or ""
    if code:
        return f"ERR {code} {text.replace(' ', '+')}".rstrip()
    return f"ERR {text}".rstrip()


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

    command_handler_class: Any = GearmanAdminClientCommandHandler

    def __init__(self, host_list: Any = None, poll_timeout: float = DEFAULT_ADMIN_CLIENT_TIMEOUT,
                 timeout: Optional[float] = None,
                 ssl_context: Optional[ssl.SSLContext] = None) -> None:
        if timeout is not None:          # the keyword of python-gearman < 2.0
            poll_timeout = timeout
        entries = _config.parse_servers(host_list)
        if len(entries) != 1:
            raise InvalidArgumentError(
                f"GearmanAdminClient takes exactly one server, got {len(entries)}")
        server = entries[0]
        host, port = server.host, server.port
        files = server.tls_files or {}
        self.current_connection = GearmanConnection(
            host, port, files.get("keyfile"), files.get("certfile"), files.get("ca_certs"))
        # an explicit context (as on GearmanClient / GearmanWorker) wins over
        # the python-gearman style keyfile/certfile/ca_certs dict
        self._tls = ssl_context if ssl_context is not None else server.tls
        self._init_connection_manager()
        self._engine = None         # admin commands go through gearman.admin.Admin
        self.current_connection.use_ssl = self._tls is not None
        self._admin = Admin([(host, port)], timeout=_MIN_TIMEOUT, ssl_context=self._tls)
        self.poll_timeout = float(poll_timeout)
        self._echo_engine: Any = None
        self._lock = threading.RLock()

    # -- python-gearman surface ---------------------------------------------------

    @property
    def poll_timeout(self) -> float:
        """Seconds each call may take (python-gearman's attribute; may be changed)."""
        return self._poll_timeout

    @poll_timeout.setter
    def poll_timeout(self, value: float) -> None:
        self._poll_timeout = float(value)
        self._admin.timeout = max(self._poll_timeout, _MIN_TIMEOUT)

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
            engine = self._engine_for_echo()
            start = time.perf_counter()
            probe = engine.new_request(_core.KIND_ECHO, ECHO_STRING)
            try:
                engine.submit_to(engine.servers[0], probe)
                engine.run([probe], max(self.poll_timeout, _MIN_TIMEOUT))
            except GearmanTimeoutError:
                engine.abandon(probe)
                engine.close()          # a late echo must not answer the next ping
                raise self._timed_out() from None
            except ServerUnavailable as exc:
                raise self._unavailable(exc) from exc
            if probe.exception is not None:
                raise self._unavailable(probe.exception) from probe.exception
            elapsed = time.perf_counter() - start
            echoed = (probe.result or b"").decode("utf-8", "surrogateescape")
            if echoed != ECHO_STRING:
                raise InvalidAdminClientState(
                    f"Echo string mismatch: got {echoed}, expected {ECHO_STRING}")
            return elapsed

    def send_maxqueue(self, task: Any, max_size: Any) -> str:
        """Limit the queue of ``task`` to ``max_size`` jobs (<= 0: unlimited); return ``'OK'``.

        The limit applies to every priority.  Raises ProtocolError for an
        answer other than OK.
        """
        n = int(max_size)
        self._call(lambda: self._admin.maxqueue(task, n, n, n, per_server=True))
        return "OK"

    def send_shutdown(self, graceful: bool = True) -> None:
        """Ask the server to shut down (``shutdown [graceful]``); return None whatever it says.

        gearmand >= 1.1.15 no longer has the command (answers ERR UNKNOWN_COMMAND).
        """
        command = GEARMAN_SERVER_COMMAND_SHUTDOWN + (" graceful" if graceful else "")
        try:
            self._call(lambda: self._admin.command(command))
        except (ServerUnavailable, ProtocolError):
            pass                # a server that obeyed closes the connection
        self._admin.close()
        return None

    def get_status(self) -> Tuple[Dict[str, Any], ...]:
        """Return one dict per function: ``{'task', 'queued', 'running', 'workers'}``.

        ``queued`` counts running jobs too, as gearmand reports it.  Raises
        ProtocolError for a malformed or ERR answer.
        """
        listing = self._call(lambda: self._admin.status(per_server=True))
        return tuple({"task": f.name, "queued": f.total, "running": f.running,
                      "workers": f.workers} for f in listing)

    def get_version(self) -> str:
        """Return the server's answer to ``version`` as is, e.g. ``'OK 1.1.20+ds'``."""
        return self._line(GEARMAN_SERVER_COMMAND_VERSION)

    def get_workers(self) -> Tuple[Dict[str, Any], ...]:
        """Return one dict per connection: ``{'file_descriptor', 'ip', 'client_id', 'tasks'}``.

        ``client_id`` is ``'-'`` if the peer never set one; ``tasks`` is a tuple
        of function names.  Every connection is listed, clients and this admin
        connection included.  Raises ProtocolError for a malformed or ERR answer.
        """
        listing = self._call(lambda: self._admin.workers(per_server=True))
        return tuple({"file_descriptor": str(w.fd), "ip": w.ip,
                      "client_id": "-" if w.client_id is None else w.client_id,
                      "tasks": tuple(w.functions)} for w in listing)

    def get_pid(self) -> str:
        """Return the server's answer to ``getpid`` as is, e.g. ``'OK 12345'``."""
        return self._line(GEARMAN_SERVER_COMMAND_GETPID)

    def cancel_job(self, handle: Any) -> str:
        """Send ``cancel job HANDLE``; return the answer: ``'OK'`` or ``'ERR UNKNOWN_JOB'``.

        gearmand fails the job towards waiting clients but removes it only when
        a worker would have taken it.  Raises InvalidArgumentError for a handle
        that is not one word (a space, line break or NUL in it).
        """
        return self._line(f"{GEARMAN_SERVER_COMMAND_CANCEL_JOB} {command_word(handle, 'job handle')}")

    def get_jobs(self) -> Tuple[Dict[str, Any], ...]:
        """Return one dict per job: ``{'handle', 'queued', 'canceled', 'enabled'}``.

        The keys are python-gearman's; gearmand's columns really are handle,
        retries, ignore and queued-in-persistent-store.
        """
        listing = self._call(lambda: self._admin.show_jobs(per_server=True))
        return tuple({"handle": j.handle, "queued": j.retries, "canceled": int(j.ignored),
                      "enabled": int(j.queued)} for j in listing)

    def get_unique_jobs(self) -> Tuple[Dict[str, Any], ...]:
        """Return one ``{'unique': str}`` per job known to the server."""
        listing = self._call(lambda: self._admin.show_unique_jobs(per_server=True))
        return tuple({"unique": u} for u in listing)

    def shutdown(self) -> None:
        """Close the connection (the next call opens a new one)."""
        with self._lock:
            self._admin.close()
            if self._echo_engine is not None:
                self._echo_engine.close()

    close = shutdown

    def __enter__(self) -> "GearmanAdminClient":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.shutdown()

    def __repr__(self) -> str:
        c = self.current_connection
        return f"<GearmanAdminClient {c.gearman_host}:{c.gearman_port}>"

    # -- gearman.admin underneath ---------------------------------------------------------

    def _timed_out(self) -> InvalidAdminClientState:
        return InvalidAdminClientState(f"Admin client timed out after {self.poll_timeout:f} second(s)")

    def _unavailable(self, exc: BaseException) -> ServerUnavailable:
        return ServerUnavailable(f"Found no valid connections in list: {self.connection_list!r} ({exc})")

    def _call(self, fetch: Any) -> Any:
        """Run a per-server ``gearman.admin`` call; return this server's value.

        Maps gearman.admin's errors to python-gearman's: a timeout is
        InvalidAdminClientState, an unreachable or closed server
        ServerUnavailable, an ``ERR`` answer ProtocolError.
        """
        with self._lock:
            (value,) = fetch().values()
        if isinstance(value, GearmanTimeoutError):
            raise self._timed_out() from value
        if isinstance(value, (ServerUnavailable, LostConnectionError)):
            raise self._unavailable(value) from value
        if isinstance(value, ServerError):
            raise ProtocolError(str(value)) from value
        if isinstance(value, BaseException):
            raise value
        return value

    def _line(self, command: str) -> str:
        """Send a one-line command; return the answer line as is (an ``ERR`` line too)."""
        with self._lock:
            (value,) = self._admin.command(command).values()
        if isinstance(value, ServerError):
            return _raw_error_line(value)
        if isinstance(value, list):
            return str(value[0])
        return str(self._call(lambda: {"": value}))

    def _engine_for_echo(self) -> Any:
        """The client engine that carries ECHO_REQ (made on first ping)."""
        if self._echo_engine is None:
            engine = _core.ClientEngine()
            engine.connect_timeout = max(self.poll_timeout, _MIN_TIMEOUT)
            c = self.current_connection
            engine.add_server(c.gearman_host, c.gearman_port, self._tls)
            self._echo_engine = engine
        return self._echo_engine
