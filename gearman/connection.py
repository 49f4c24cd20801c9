"""python-gearman's ``GearmanConnection``, as a view of one of the engine's connections.

In python-gearman every client, worker and admin client owned a list of
``GearmanConnection`` objects (``connection_list``) and code read
``gearman_host``, ``gearman_port`` and ``connected`` from them, or handed one
to ``GearmanJob(connection, ...)`` to ask a job's status.  In cygearman the
compiled engine owns the sockets; a ``GearmanConnection`` names one of its
servers and reports that server's live state.  Sockets are opened, closed and
reconnected by the engine only: :meth:`GearmanConnection.close` and
:meth:`GearmanConnection.connect` are kept for compatibility and do no I/O.
"""
from __future__ import annotations

from typing import Any, Dict, Optional

from gearman import _config
from gearman.constants import DEFAULT_GEARMAN_PORT
from gearman.errors import ServerUnavailable

__all__ = ["GearmanConnection"]


class GearmanConnection:
    """One job server of a client, worker or admin client.

    ``GearmanConnection(host, port=4730, keyfile=None, certfile=None, ca_certs=None)``.
    Attributes: ``gearman_host``, ``gearman_port``, ``keyfile``, ``certfile``,
    ``ca_certs``, ``use_ssl`` and the read-only property ``connected``.
    Raises :class:`gearman.errors.ServerUnavailable` when ``host`` is None, as
    python-gearman did.
    """

    #: python-gearman refused to reconnect within this many seconds of the previous
    #: attempt.  Kept as an attribute only: the engine backs off with jitter instead.
    connect_cooldown_seconds: float = 1.0

    def __init__(self, host: Optional[str] = None, port: int = DEFAULT_GEARMAN_PORT,
                 keyfile: Optional[str] = None, certfile: Optional[str] = None,
                 ca_certs: Optional[str] = None) -> None:
        if host is None:
            raise ServerUnavailable("No host specified")
        self.gearman_host: str = host
        self.gearman_port: int = int(port)
        self.keyfile = keyfile
        self.certfile = certfile
        self.ca_certs = ca_certs
        self.use_ssl = bool(keyfile and certfile and ca_certs)
        self._core: Any = None      # the engine's Connection once bound

    @classmethod
    def _bind(cls, core_connection: Any, tls: Optional[Dict[str, Any]] = None) -> "GearmanConnection":
        """Return a view of an engine connection (used by client, worker and jobs).

        ``tls``: None for a plain connection; for a TLS one, a dict with the
        ``keyfile``, ``certfile`` and ``ca_certs`` it was added with (values
        None when the TLS context came from ``ssl_context=``).  ``use_ssl`` is
        True exactly for TLS connections.
        """
        self = cls.__new__(cls)
        self.gearman_host = core_connection.host
        self.gearman_port = core_connection.port
        tls_files = tls or {}
        self.keyfile = tls_files.get("keyfile")
        self.certfile = tls_files.get("certfile")
        self.ca_certs = tls_files.get("ca_certs")
        self.use_ssl = tls is not None
        self._core = core_connection
        return self

    @property
    def connected(self) -> bool:
        """True while the engine holds an established socket to this server."""
        return bool(self._core is not None and self._core.connected)

    @property
    def key(self) -> str:
        """``host:port`` in lower case: the name the engine routes by."""
        return _config.routing_key(self.gearman_host, self.gearman_port)

    def connect(self) -> None:
        """Do nothing: the engine connects when a request needs this server."""

    def close(self) -> None:
        """Do nothing: the owner's ``shutdown()`` closes its connections."""

    def __eq__(self, other: object) -> bool:
        if isinstance(other, GearmanConnection):
            return self.key == other.key
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self.key)

    def __repr__(self) -> str:
        return (f"<GearmanConnection {self.gearman_host}:{self.gearman_port} "
                f"connected={self.connected}>")
