"""The one exception tree of cygearman.

Every failure raises a subclass of :class:`GearmanError`, which carries the
PECL/libgearman return code in ``code``.  Leaves also inherit the builtin
exception a caller would naturally catch (``TimeoutError``, ``ConnectionError``,
``ValueError``, ``TypeError``).  python-gearman's names are kept; its
``ConnectionError`` shadowed the builtin without inheriting it, ours inherits it.
The compiled core imports these classes; they are defined only here.
"""
from __future__ import annotations

import builtins
from typing import Any, Dict, List, Optional, Type

from gearman import constants as _c

__all__ = [
    "GearmanError",
    "GearmanException",
    "ConnectionError",
    "ServerUnavailable",
    "ServerSilentError",
    "LostConnectionError",
    "NoServersError",
    "ProtocolError",
    "UnknownCommandError",
    "PacketTooLargeError",
    "ProtocolLostConnectionError",
    "UnknownCommandLostConnectionError",
    "PacketTooLargeLostConnectionError",
    "GearmanTimeoutError",
    "InvalidArgumentError",
    "InvalidPriorityError",
    "InvalidTypeError",
    "ServerError",
    "QueueFullError",
    "JobFailedError",
    "JobExceptionError",
    "BatchError",
    "ExceededConnectionAttempts",
    "InvalidClientState",
    "InvalidWorkerState",
    "InvalidAdminClientState",
]


class GearmanError(Exception):
    """Raised when any Gearman operation fails; ``code`` is the PECL return code."""

    code: int = _c.GEARMAN_UNKNOWN_STATE

    def __init__(self, message: str = "", code: Optional[int] = None, **extra: Any) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        for key, value in extra.items():
            setattr(self, key, value)

    def __str__(self) -> str:
        return self.message


#: PECL's name for the same class (``GearmanException``).
GearmanException = GearmanError


class ConnectionError(GearmanError, builtins.ConnectionError):
    """Raised when a connection to a job server fails or breaks."""

    code = _c.GEARMAN_LOST_CONNECTION


class ServerUnavailable(ConnectionError):
    """Raised when no job server in the pool could be reached."""

    code = _c.GEARMAN_COULD_NOT_CONNECT


class LostConnectionError(ConnectionError):
    """Raised when a server went away after a request was written: its outcome is unknown."""

    code = _c.GEARMAN_LOST_CONNECTION


class NoServersError(GearmanError):
    """Raised when an operation needs a server and none was added."""

    code = _c.GEARMAN_NO_SERVERS


class ProtocolError(GearmanError):
    """Raised when a peer sends bytes that are not valid Gearman protocol."""

    code = _c.GEARMAN_INVALID_PACKET


class UnknownCommandError(ProtocolError):
    """Raised when a packet carries a command number the protocol does not define."""

    code = _c.GEARMAN_INVALID_COMMAND


class PacketTooLargeError(ProtocolError):
    """Raised when a payload received (one packet's, or a do* result's WORK_DATA chunks together) exceeds ``max_packet_size``."""

    code = _c.GEARMAN_DATA_TOO_LARGE


# A request in flight on a connection that was dropped because the server broke
# the protocol fails with one of these: a LostConnectionError (outcome unknown,
# ``handle`` set if the job was accepted) that is also the ProtocolError that
# broke the connection, so the caller learns the cause from the type, the
# message and ``__cause__`` alike.

class ProtocolLostConnectionError(ProtocolError, LostConnectionError):
    """Raised for a request in flight on a connection dropped because the server sent bytes that are not Gearman."""


class UnknownCommandLostConnectionError(UnknownCommandError, ProtocolLostConnectionError):
    """Raised for a request in flight on a connection dropped because the server sent an unknown command."""


class PacketTooLargeLostConnectionError(PacketTooLargeError, ProtocolLostConnectionError):
    """Raised for a request in flight on a connection dropped because the server sent a packet over ``max_packet_size``."""


def _lost_connection_error(message: str, cause: Optional[BaseException] = None,
                          **extra: Any) -> "LostConnectionError":
    """The error for a request whose connection broke after it was sent.

    A plain :class:`LostConnectionError` unless ``cause`` is a
    :class:`ProtocolError`: then the matching ``*LostConnectionError`` (also an
    instance of the cause's class), with the cause's text appended to
    ``message`` and chained as ``__cause__``.
    """
    if not isinstance(cause, ProtocolError):
        return LostConnectionError(message, **extra)
    if isinstance(cause, PacketTooLargeError):
        cls: Type[LostConnectionError] = PacketTooLargeLostConnectionError
    elif isinstance(cause, UnknownCommandError):
        cls = UnknownCommandLostConnectionError
    else:
        cls = ProtocolLostConnectionError
    err = cls(f"{message}: {cause}", code=cause.code, **extra)
    err.__cause__ = cause
    return err


class GearmanTimeoutError(GearmanError, builtins.TimeoutError):
    """Raised when a call did not finish within its timeout."""

    code = _c.GEARMAN_TIMEOUT
    #: False: the request never reached the server (safe to submit again);
    #: None: it may have (its outcome is unknown)
    submitted: Optional[bool] = None
    #: for ``submit_batch``: every job's handle (None where not accepted) ...
    handles: Optional[List[Optional[str]]] = None
    #: ... and, per job not accepted, why
    errors: Optional[Dict[int, "GearmanError"]] = None


class ServerSilentError(GearmanTimeoutError):
    """Raised when a call timed out on a server that answered nothing since the request was written (it is demoted)."""


class InvalidArgumentError(GearmanError, ValueError):
    """Raised when an argument has the right type but a value Gearman cannot carry."""

    code = _c.GEARMAN_INVALID_ARGUMENT


class InvalidPriorityError(InvalidArgumentError, KeyError):
    """Raised when a python-gearman priority is not PRIORITY_NONE, PRIORITY_LOW or PRIORITY_HIGH (a KeyError too, as python-gearman raised)."""


def no_engine_error(kind: str) -> InvalidArgumentError:
    """The error of a client or worker whose base ``__init__`` never ran (a subclass
    that does not call it): the same text the compiled calls raise."""
    return InvalidArgumentError(f"this {kind} has no engine: Gearman{kind.capitalize()}.__init__ "
                                f"was not called (a subclass must call it)")


class InvalidTypeError(GearmanError, TypeError):
    """Raised when an argument has a type the API does not accept."""

    code = _c.GEARMAN_INVALID_ARGUMENT


class ServerError(GearmanError):
    """Raised when the server answers a request with an ERROR packet (``server_code`` holds its code)."""

    code = _c.GEARMAN_SERVER_ERROR
    server_code: str = ""


class QueueFullError(ServerError):
    """Raised when the server refuses a job because the function's queue is full (``maxqueue``)."""

    code = _c.GEARMAN_QUEUE_ERROR


class JobFailedError(GearmanError):
    """Raised when a foreground job ended with WORK_FAIL (``handle`` names it)."""

    code = _c.GEARMAN_WORK_FAIL
    handle: str = ""


class JobExceptionError(JobFailedError):
    """Raised when a foreground job ended with WORK_EXCEPTION (``payload`` holds the worker's bytes)."""

    code = _c.GEARMAN_WORK_EXCEPTION
    payload: bytes = b""


class BatchError(GearmanError):
    """Raised when some jobs of a batch were not accepted.

    ``handles`` lists the handle of every job (None where it failed) and
    ``errors`` maps each failed index to its GearmanError.
    """

    handles: List[Optional[str]] = []
    errors: Dict[int, "GearmanError"] = {}


class ExceededConnectionAttempts(GearmanError):
    """Raised when a python-gearman request was sent more than ``max_retries + 1`` times."""


class InvalidClientState(GearmanError):
    """Raised when a python-gearman client is asked something its state does not allow."""


class InvalidWorkerState(GearmanError):
    """Raised when a python-gearman worker is asked something its state does not allow."""


class InvalidAdminClientState(GearmanError):
    """Raised when an admin request gets an unexpected or no answer."""


# Maps the code string of a server ERROR packet to the exception raised for it.
SERVER_ERROR_CLASSES = {"QUEUE_ERROR": QueueFullError}
