"""python-gearman's ``gearman.connection_manager``: data encoders and the shared base class.

``DataEncoder`` is the hook legacy code subclasses to put objects on the wire
(JSON, pickle...): set it as the ``data_encoder`` class attribute of a client,
worker or admin client subclass.  It is applied to every job *payload*
(submitted data, ``job.data`` in the worker, results, data/warning updates,
exception payloads) and to nothing else (task names, uniques, handles, status
numbers and admin text are never encoded).

``GearmanConnectionManager`` is the common base class of the python-gearman
surface: ``isinstance(obj, GearmanConnectionManager)``, the class attributes
legacy subclasses override (``data_encoder``, ``job_class``,
``job_request_class``, ``connection_class``, ``command_handler_class``) and
the connection-management methods applications call or override
(``establish_connection``, ``poll_connections_until_stopped``,
``poll_connections_once``, ``handle_connection_activity``, ``handle_error``,
``handler_to_connection_map``, ``connection_to_handler_map``) keep
python-gearman 2.0.2's meaning, on top of the compiled engine, which owns the
sockets and does the reading and writing.  Its state is declared in
``_init_connection_manager()``, which the concrete classes call from their
``__init__`` (they own their construction: python-gearman's signatures).
"""
from __future__ import annotations

import logging
from typing import Any, Callable, Dict, Iterable, List, Optional, Set, Tuple

from gearman import _config
from gearman.connection import GearmanConnection
from gearman.errors import ServerUnavailable, no_engine_error
from gearman.job import GearmanJob, GearmanJobRequest
from gearman.util import Stopwatch

__all__ = ["DataEncoder", "NoopEncoder", "GearmanConnectionManager", "GearmanCommandHandler",
           "GearmanClientCommandHandler", "GearmanWorkerCommandHandler",
           "GearmanAdminClientCommandHandler"]

#: ``(read, write, failed)`` connection sets of one poll step, as python-gearman passed them.
ActivitySets = Tuple[Set[GearmanConnection], Set[GearmanConnection], Set[GearmanConnection]]

log = logging.getLogger("gearman.connection_manager")

_BYTES_LIKE = (bytes, bytearray, memoryview, str)


class DataEncoder:
    """Base class of payload encoders; subclasses override both classmethods.

    ``encode(obj)`` returns bytes or str (str is sent as UTF-8); ``decode(data)``
    receives the payload as ``bytes``.  Both are called on the class, so they
    must be classmethods (or staticmethods).
    """

    @classmethod
    def encode(cls, encodable_object: Any) -> Any:
        """Turn an object into the bytes (or str) to send.  Raises NotImplementedError here."""
        raise NotImplementedError

    @classmethod
    def decode(cls, decodable_string: bytes) -> Any:
        """Turn received bytes back into an object.  Raises NotImplementedError here."""
        raise NotImplementedError


class NoopEncoder(DataEncoder):
    """The default encoder: payloads pass through unchanged.

    ``encode`` accepts ``bytes``, ``bytearray``, ``memoryview`` and ``str``
    (sent as UTF-8), ``None`` (sent as an empty payload, so a worker callback
    that returns nothing completes its job instead of dying as it did with
    python-gearman), and a ``reversed()`` iterator over bytes (joined: the
    "reverse" worker of python-gearman's docs returns
    ``reversed(gearman_job.data)``).  Anything else raises ``TypeError``.
    ``decode`` returns the received ``bytes`` as they are.
    """

    @classmethod
    def encode(cls, encodable_object: Any) -> Any:
        """Return the payload unchanged (``None`` -> ``b''``); raises TypeError for other types."""
        if encodable_object is None:
            return b""
        if not isinstance(encodable_object, _BYTES_LIKE):
            if isinstance(encodable_object, reversed):
                try:
                    return bytes(encodable_object)
                except (TypeError, ValueError):
                    pass
            raise TypeError(f"Expecting byte string, got {type(encodable_object)!r}")
        return encodable_object

    @classmethod
    def decode(cls, decodable_string: bytes) -> Any:
        """Return the received bytes unchanged."""
        return decodable_string


class GearmanCommandHandler:
    """One live connection's handler: python-gearman's per-connection state machine, as an identity.

    In python-gearman a handler parsed the packets of one connection; a new one
    was made each time the connection was (re)established, and the manager's
    ``handler_to_connection_map`` / ``connection_to_handler_map`` linked the
    two.  The compiled engine parses and routes packets itself, so a handler
    here holds no protocol state: it stands for one established connection
    (same object while that socket lives, a new one after a reconnect), which
    is what code reading the maps or ``command_handler_holding_job_lock``
    relies on.  ``recv_*`` / ``send_command`` overrides are never called.
    """

    def __init__(self, connection_manager: Any = None) -> None:
        self.connection_manager = connection_manager

    def __repr__(self) -> str:
        return f"<{type(self).__name__} at 0x{id(self):x}>"


class GearmanClientCommandHandler(GearmanCommandHandler):
    """The handler of a client connection (see :class:`GearmanCommandHandler`)."""


class GearmanWorkerCommandHandler(GearmanCommandHandler):
    """The handler of a worker connection (see :class:`GearmanCommandHandler`)."""


class GearmanAdminClientCommandHandler(GearmanCommandHandler):
    """The handler of an admin connection (see :class:`GearmanCommandHandler`)."""


class GearmanConnectionManager:
    """Common base of ``GearmanClient``, ``GearmanWorker`` and ``GearmanAdminClient``.

    Class attributes a subclass may override: ``data_encoder`` (a
    :class:`DataEncoder` class), ``job_class`` and ``job_request_class`` (used
    by the client to build requests and by the worker to build jobs),
    ``command_handler_class`` (instantiated as ``cls(connection_manager=self)``
    once per established connection).  ``connection_class`` is kept for
    reading: connections are views of the engine's (see docs/migration.md).

    Subclasses provide ``_engine`` (a compiled engine, or None), ``_lock`` and
    the role's poll step (``_legacy_poll_once``) and connect step
    (``_legacy_connect``), and call :meth:`_init_connection_manager` once.
    """

    data_encoder: Any = NoopEncoder
    connection_class: Any = GearmanConnection
    job_class: Any = GearmanJob
    job_request_class: Any = GearmanJobRequest
    command_handler_class: Any = GearmanCommandHandler

    _engine: Any
    _lock: Any
    #: what the object is, in messages ("client", "worker")
    _kind = "object"

    def _init_connection_manager(self) -> None:
        """The state every python-gearman object keeps (called by its ``__init__``)."""
        #: (server key, connection generation) -> handler: one per established socket
        self._legacy_handler_cache: Dict[Tuple[str, int], Any] = {}
        #: server key -> the GearmanConnection view of the engine's connection
        self._legacy_connection_views: Dict[str, GearmanConnection] = {}
        #: server key -> keyfile/certfile/ca_certs of a server added from a TLS host dict
        self._legacy_tls_files: Dict[str, Dict[str, Optional[str]]] = {}

    @property
    def connection_list(self) -> List[GearmanConnection]:
        """One :class:`GearmanConnection` per server, in the order added."""
        if self._engine is None:
            return []
        return [self._wrap_connection(c) for c in self._engine.servers]

    def _legacy_add(self, server: "_config.Server") -> GearmanConnection:
        """Add one parsed server to the engine (no I/O); return its view."""
        if self._engine is None:
            raise no_engine_error(self._kind)
        with self._lock:
            core = self._engine.add_server(server.host, server.port, server.tls)
            if server.tls_files is not None and core.ssl_context is server.tls:
                self._legacy_tls_files[core.key] = server.tls_files
            self._legacy_connection_views.pop(core.key, None)   # re-made with its TLS facts
            return self._wrap_connection(core)

    # -- python-gearman's connection management, on the engine ------------------------

    def establish_connection(self, current_connection: GearmanConnection) -> GearmanConnection:
        """Make sure ``current_connection`` is usable; return it (python-gearman 2.0.2).

        A connection that is up is returned at once.  Otherwise the server is
        contacted now (the client opens the engine's connection with an ECHO
        round trip; the worker checks the server accepts connections, and the
        engine connects at its next poll) and a new handler is made for it.
        Raises :class:`gearman.errors.ConnectionError` if the server cannot be
        reached, AssertionError for a connection that is not one of this
        object's (as python-gearman asserted).
        """
        core = self._legacy_core_of(current_connection)
        if core is None:
            raise AssertionError(f"Unknown connection - {current_connection!r}")
        if not core.connected:
            self._legacy_connect(core)
        self._legacy_handlers()
        return current_connection

    def _legacy_connect(self, core_connection: Any) -> None:
        """Reach the server of ``core_connection`` or raise gearman.errors.ConnectionError."""
        raise NotImplementedError

    def _legacy_core_of(self, connection: Any) -> Any:
        """The engine connection behind ``connection`` (a GearmanConnection, or an
        engine connection) if it is one of this object's servers, else None."""
        engine = self._engine
        if engine is None or connection is None:
            return None
        core = connection._core if isinstance(connection, GearmanConnection) else connection
        for c in engine.servers:
            if c is core:
                return c
        key = getattr(connection, "key", None)
        if key is None and hasattr(connection, "gearman_host"):
            key = _config.routing_key(str(connection.gearman_host), connection.gearman_port)
        for c in engine.servers:
            if c.key == key:
                return c
        return None

    def _legacy_handlers(self) -> Dict[GearmanConnection, Any]:
        """``{connection: handler}`` of the connections that are up now.

        A handler lives as long as its socket: one per (server, engine
        connection generation), as python-gearman made one per connect.
        """
        engine = self._engine
        cache = self._legacy_handler_cache
        out: Dict[GearmanConnection, Any] = {}
        live = set()
        for core in (engine.servers if engine is not None else ()):
            if not core.connected:
                continue
            ident = (core.key, core.generation)
            live.add(ident)
            handler = cache.get(ident)
            if handler is None:
                handler = cache[ident] = self.command_handler_class(connection_manager=self)
            out[self._wrap_connection(core)] = handler
        for ident in [i for i in cache if i not in live]:
            del cache[ident]
        return out

    @property
    def connection_to_handler_map(self) -> Dict[GearmanConnection, Any]:
        """``{connection: handler}`` for every established connection (a snapshot)."""
        return self._legacy_handlers()

    @property
    def handler_to_connection_map(self) -> Dict[Any, GearmanConnection]:
        """``{handler: connection}`` for every established connection (a snapshot)."""
        return {h: c for c, h in self._legacy_handlers().items()}

    def poll_connections_until_stopped(self, submitted_connections: Iterable[GearmanConnection],
                                       callback_fxn: Callable[[bool], Any],
                                       timeout: Optional[float] = None) -> bool:
        """Process I/O until ``callback_fxn(any_activity)`` returns False or ``timeout`` passes.

        python-gearman 2.0.2's loop: ``callback_fxn(False)`` is called first,
        then after every poll step with whether anything happened in it (a
        packet arrived, a job ran, a connection failed).  Each step hands the
        step's connection sets to :meth:`handle_connection_activity`; failed
        connections leave the polled set.  Returns True when the time ran out
        with the callback still willing, False when the callback (or, on a
        worker, ``stop()``/``shutdown()``) stopped it.  Raises ServerUnavailable
        when no polled connection is alive (none to begin with, or all failed).
        ``timeout`` None: no limit.
        """
        stopwatch = Stopwatch(timeout)
        polled = list(submitted_connections)
        callback_ok = bool(callback_fxn(False))
        connection_ok = self._legacy_alive(polled)
        while connection_ok and callback_ok:
            remaining = stopwatch.get_time_remaining()
            if remaining is not None and remaining <= 0.0:
                break
            rd, wr, ex, stopped = self._legacy_poll_once(polled, remaining)
            rd, wr, ex = self.handle_connection_activity(rd, wr, ex)
            if ex:
                polled = [c for c in polled if c not in ex]
            if stopped:
                return False
            callback_ok = bool(callback_fxn(bool(rd or wr or ex)))
            connection_ok = self._legacy_still_alive(polled)
        if not connection_ok:
            raise ServerUnavailable(f"Found no valid connections in list: {self.connection_list!r}")
        return bool(connection_ok and callback_ok)

    def poll_connections_once(self, submitted_connections: Iterable[GearmanConnection],
                              timeout: Optional[float] = None) -> ActivitySets:
        """One poll step over ``submitted_connections`` (2.0.2 signature); return ``(rd, wr, ex)``.

        ``rd``: connections that delivered packets, ``ex``: connections that
        failed during the step, ``wr``: always empty (the engine writes).
        """
        rd, wr, ex, _stopped = self._legacy_poll_once(list(submitted_connections), timeout)
        return rd, wr, ex

    def _legacy_alive(self, connections: List[GearmanConnection]) -> bool:
        """python-gearman's ``connection_ok`` before the first step: any of ``connections`` connected."""
        return any(c.connected for c in connections)

    def _legacy_still_alive(self, connections: List[GearmanConnection]) -> bool:
        """python-gearman's ``connection_ok`` after a step (failed connections were dropped)."""
        return self._legacy_alive(connections)

    def _legacy_poll_once(self, connections: List[GearmanConnection],
                          timeout: Optional[float]) -> Tuple[Set[GearmanConnection], Set[GearmanConnection],
                                                             Set[GearmanConnection], bool]:
        """One step of the engine: ``(read, write, failed, stopped)``; role-specific."""
        raise NotImplementedError

    def handle_connection_activity(self, rd_connections: Set[GearmanConnection],
                                   wr_connections: Set[GearmanConnection],
                                   ex_connections: Set[GearmanConnection]) -> ActivitySets:
        """Called after each poll step with its connection sets; return them (python-gearman's hook).

        The engine has already read, written and dispatched everything; this
        calls :meth:`handle_error` for each failed connection and returns
        ``(rd, wr, failed)``.  Override it to observe activity.
        """
        for current_connection in ex_connections:
            self.handle_error(current_connection)
        return rd_connections, wr_connections, ex_connections

    def handle_error(self, current_connection: GearmanConnection) -> None:
        """A connection failed: forget its handler (the engine closed and will reconnect it)."""

    def on_gearman_error(self, error_code: Any, error_text: Any) -> bool:
        """Log a server ERROR packet and return False (python-gearman's hook)."""
        log.error("Received error from server: %s: %s", error_code, error_text)
        return False

    def shutdown(self) -> None:
        """Close every connection."""

    def _wrap_connection(self, core_connection: Any) -> GearmanConnection:
        """The (cached) :class:`GearmanConnection` view of an engine connection."""
        cache = self._legacy_connection_views
        view = cache.get(core_connection.key)
        if view is None or view._core is not core_connection:
            view = cache[core_connection.key] = GearmanConnection._bind(
                core_connection, self._legacy_tls_of(core_connection))
        return view

    def _legacy_tls_of(self, core_connection: Any) -> Optional[Dict[str, Optional[str]]]:
        """TLS files of a server (``{}`` for one whose context came from
        ``ssl_context=``), None for a plain one."""
        files = self._legacy_tls_files.get(core_connection.key)
        if files is not None:
            return files
        return {} if core_connection.ssl_context is not None else None
