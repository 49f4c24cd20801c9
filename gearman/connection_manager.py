"""python-gearman's ``gearman.connection_manager``: data encoders and the shared base class.

``DataEncoder`` is the hook legacy code subclasses to put objects on the wire
(JSON, pickle...): set it as the ``data_encoder`` class attribute of a client,
worker or admin client subclass.  It is applied to every job *payload*
(submitted data, ``job.data`` in the worker, results, data/warning updates,
exception payloads) and to nothing else (task names, uniques, handles, status
numbers and admin text are never encoded).

``GearmanConnectionManager`` is kept as the common base class name so that
``isinstance(obj, GearmanConnectionManager)`` and the class attributes legacy
subclasses override (``data_encoder``, ``job_class``, ``job_request_class``,
``connection_class``) keep working.  It defines no ``__init__``: the concrete
classes own their construction.
"""
from __future__ import annotations

import logging
from typing import Any, List, Optional

from gearman.connection import GearmanConnection
from gearman.job import GearmanJob, GearmanJobRequest

__all__ = ["DataEncoder", "NoopEncoder", "GearmanConnectionManager"]

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


class GearmanConnectionManager:
    """Common base of ``GearmanClient``, ``GearmanWorker`` and ``GearmanAdminClient``.

    Class attributes a subclass may override: ``data_encoder`` (a
    :class:`DataEncoder` class), ``job_class`` and ``job_request_class`` (used
    by the client to build requests), ``connection_class``.  The
    ``command_handler_class`` of python-gearman's per-connection state machines
    is ``None``: the compiled engine replaces them.
    """

    data_encoder: Any = NoopEncoder
    connection_class: Any = GearmanConnection
    job_class: Any = GearmanJob
    job_request_class: Any = GearmanJobRequest
    command_handler_class: Any = None

    @property
    def connection_list(self) -> List[GearmanConnection]:
        """One :class:`GearmanConnection` per server, in the order added."""
        return []

    def establish_connection(self, current_connection: GearmanConnection) -> GearmanConnection:
        """Return ``current_connection``: connections are opened by the engine when needed."""
        return current_connection

    def on_gearman_error(self, error_code: Any, error_text: Any) -> bool:
        """Log a server ERROR packet and return False (python-gearman's hook)."""
        log.error("Received error from server: %s: %s", error_code, error_text)
        return False

    def shutdown(self) -> None:
        """Close every connection."""

    def _wrap_connection(self, core_connection: Optional[Any]) -> Optional[GearmanConnection]:
        """The (cached) :class:`GearmanConnection` view of an engine connection."""
        if core_connection is None:
            return None
        cache = self.__dict__.get("_legacy_connection_views")
        if cache is None:
            cache = self.__dict__["_legacy_connection_views"] = {}
        view = cache.get(core_connection.key)
        if view is None or view._core is not core_connection:
            view = cache[core_connection.key] = GearmanConnection._bind(core_connection)
        return view
