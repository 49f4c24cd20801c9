"""python-gearman's job objects: ``GearmanJob`` and ``GearmanJobRequest``.

These are the python-gearman 2.x classes (``gearman.job``), not PECL's
``gearman.GearmanJob`` (``gearman.worker.GearmanJob``), which has methods
``handle()``/``workload()`` where this one has attributes.  A worker callback
registered with ``register_task`` receives this ``GearmanJob``; one registered
with ``addFunction`` receives PECL's.

Types: ``handle``, ``task`` and ``unique`` are :class:`Identifier` objects
(a ``str`` that also behaves as the UTF-8 ``bytes`` pygearman handed out, see
docs/migration.md, "Identifiers"); ``data`` is whatever the ``data_encoder``
decoded (``bytes`` with the default encoder).
"""
from __future__ import annotations

import collections
from typing import Any, Deque, Dict, Optional

from gearman.constants import (
    JOB_COMPLETE,
    JOB_CREATED,
    JOB_FAILED,
    JOB_UNKNOWN,
    PRIORITY_NONE,
)

__all__ = ["GearmanJob", "GearmanJobRequest", "Identifier", "as_identifier"]

_BYTES_LIKE = (bytes, bytearray, memoryview)


class Identifier(str):
    """A job handle, task name or unique: a ``str`` that code written for bytes also accepts.

    python-gearman 2.x on Python 2 handed out ``str`` (bytes); its Python 3
    fork pygearman hands out ``bytes``; code ported to either is in use.  An
    Identifier is the text, and additionally:

    * ``.decode(encoding='utf-8', errors='strict')`` returns the plain ``str``
      (pygearman code: ``job.unique.decode()``);
    * it compares equal to its UTF-8 bytes as well as to the ``str``
      (``job.task == b'resize'`` and ``job.task == 'resize'`` both hold);
    * ``bytes(ident)``, ``b'%s' % ident`` and ``ident + b'...'`` /
      ``b'...' + ident`` give bytes.

    It *is* a ``str``: ``json.dumps``, ``'%s' % ident``, ``ident + ','``,
    ``isinstance(ident, str)`` work as with any string.  Its hash is the
    ``str`` hash, which CPython makes equal to the hash of the same ASCII text
    as ``bytes``: an ASCII identifier finds a dict entry keyed by either form.
    A non-ASCII identifier hashes as its ``str`` only, so it finds ``str`` keys
    but not ``bytes`` keys.  ``isinstance(ident, bytes)`` is False, and bytes
    methods other than ``decode`` (``startswith(b'H:')``...) are ``str``'s.
    Bytes that are not UTF-8 are kept through ``surrogateescape``: ``bytes(ident)``
    gives them back unchanged.
    """

    __slots__ = ()

    def decode(self, encoding: str = "utf-8", errors: str = "strict") -> str:
        """Return the identifier as a plain ``str`` (bytes code calls ``.decode()``)."""
        if encoding.lower().replace("-", "").replace("_", "") in ("utf8", "ascii") \
                and errors == "strict" and self.isascii():
            return str.__str__(self)
        return bytes(self).decode(encoding, errors)

    def __bytes__(self) -> bytes:
        return self.encode("utf-8", "surrogateescape")

    def __eq__(self, other: object) -> bool:
        if isinstance(other, _BYTES_LIKE):
            return bytes(self) == bytes(other)
        return str.__eq__(self, other)

    def __ne__(self, other: object) -> bool:
        equal = self.__eq__(other)
        return equal if equal is NotImplemented else not equal

    __hash__ = str.__hash__

    def __add__(self, other: Any) -> Any:
        if isinstance(other, _BYTES_LIKE):
            return bytes(self) + bytes(other)
        return str.__add__(self, other)

    def __radd__(self, other: Any) -> Any:
        if isinstance(other, _BYTES_LIKE):
            return bytes(other) + bytes(self)
        if isinstance(other, str):
            return other + str.__str__(self)
        return NotImplemented

    def __reduce__(self) -> Any:
        return (Identifier, (str.__str__(self),))


def as_identifier(value: Any) -> Any:
    """``value`` as an :class:`Identifier` if it is str or bytes-like; anything else unchanged."""
    if type(value) is Identifier or value is None:
        return value
    if isinstance(value, str):
        return Identifier(value)
    if isinstance(value, _BYTES_LIKE):
        return Identifier(bytes(value).decode("utf-8", "surrogateescape"))
    return value


class GearmanJob:
    """A job: ``GearmanJob(connection, handle, task, unique, data)``.

    Attributes ``connection`` (a :class:`gearman.connection.GearmanConnection`
    or None), ``handle``, ``task``, ``unique`` and ``data``.  ``handle``,
    ``task`` and ``unique`` hold :class:`Identifier` objects: a str or bytes
    assigned to them is converted, so they serve str and bytes code alike.
    """

    # A worker's bookkeeping (gearman._legacy_worker), declared here with their defaults so
    # that a job_class whose __init__ does not call this one still has them:
    #: the PECL job this one stands for inside a worker (sends go through it)
    _pecl: Any = None
    #: WORK_COMPLETE/FAIL/EXCEPTION went out: later sends are dropped
    _legacy_final: bool = False
    #: shutdown() from inside the job: nothing more is sent, gearmand re-queues it
    _legacy_abandoned: bool = False

    def __init__(self, connection: Any, handle: Any, task: Any, unique: Any, data: Any) -> None:
        self.connection = connection
        self.handle = handle
        self.task = task
        self.unique = unique
        self.data = data

    @property
    def handle(self) -> Any:
        """The job handle (an :class:`Identifier`), or None before the server gave one."""
        return self.__dict__["handle"]

    @handle.setter
    def handle(self, value: Any) -> None:
        self.__dict__["handle"] = as_identifier(value)

    @property
    def task(self) -> Any:
        """The function name (an :class:`Identifier`)."""
        return self.__dict__["task"]

    @task.setter
    def task(self, value: Any) -> None:
        self.__dict__["task"] = as_identifier(value)

    @property
    def unique(self) -> Any:
        """The unique ID (an :class:`Identifier`), or None/'' when none was given yet."""
        return self.__dict__["unique"]

    @unique.setter
    def unique(self, value: Any) -> None:
        self.__dict__["unique"] = as_identifier(value)

    def to_dict(self) -> Dict[str, Any]:
        """Return ``{'task', 'job_handle', 'unique', 'data'}``."""
        return dict(task=self.task, job_handle=self.handle, unique=self.unique, data=self.data)

    def __repr__(self) -> str:
        return (f"<GearmanJob connection/handle=({self.connection!r}, {self.handle!r}), "
                f"task={self.task}, unique={self.unique}, data={self.data!r}>")


class GearmanJobRequest:
    """A client's request for a job: its state and what the server reported.

    ``GearmanJobRequest(gearman_job, initial_priority=PRIORITY_NONE, background=False,
    max_attempts=1)``.  Attributes: ``job`` / ``gearman_job``, ``priority``,
    ``background``, ``connection_attempts``, ``max_connection_attempts``,
    ``state`` (a ``JOB_*`` string), ``result`` (decoded WORK_COMPLETE payload),
    ``exception`` (decoded WORK_EXCEPTION payload), ``data_updates`` and
    ``warning_updates`` (deques, in arrival order), ``status`` (dict with
    ``handle``, ``known``, ``running``, ``numerator``, ``denominator``,
    ``time_received``), ``timed_out`` and ``complete``.

    cygearman adds ``error``: the :class:`gearman.errors.ServerError` (for
    example ``QueueFullError``) when the server refused the job; such a request
    is ``JOB_FAILED`` instead of waiting forever as python-gearman's did.
    """

    def __init__(self, gearman_job: GearmanJob, initial_priority: Optional[str] = PRIORITY_NONE,
                 background: bool = False, max_attempts: int = 1) -> None:
        self.gearman_job = gearman_job
        self.priority = initial_priority
        self.background = background
        self.connection_attempts = 0
        self.max_connection_attempts = max_attempts
        self._task: Any = None       # the engine task of the latest send
        self.initialize_request()

    def initialize_request(self) -> None:
        """Forget every answer: state back to ``JOB_UNKNOWN``, updates emptied."""
        self.result: Any = None
        self.exception: Any = None
        self.error: Optional[BaseException] = None
        self.warning_updates: Deque[Any] = collections.deque()
        self.data_updates: Deque[Any] = collections.deque()
        self.status: Dict[str, Any] = {}
        self.state: str = JOB_UNKNOWN
        self.timed_out: bool = False

    def reset(self) -> None:
        """As :meth:`initialize_request`, and forget the handle and connection too."""
        self.initialize_request()
        self.gearman_job.connection = None
        self.gearman_job.handle = None
        self._task = None

    @property
    def job(self) -> GearmanJob:
        """The :class:`GearmanJob` this request submits."""
        return self.gearman_job

    @property
    def unique(self) -> Any:
        """The job's unique (``job.unique``).

        Not in python-gearman, whose own docs read ``job_request.unique``
        (``check_request_status`` in docs/client.rst) and so raised AttributeError.
        """
        return self.gearman_job.unique

    @property
    def complete(self) -> bool:
        """True when nothing more will happen to the request.

        Exactly python-gearman's meaning.  Background: True once the server
        accepted the job (``JOB_CREATED``) and for no other state; a background
        job the server refused (``JOB_FAILED``, ``error`` set) was not queued,
        so it is not complete.  Foreground: ``JOB_COMPLETE`` or ``JOB_FAILED``.
        """
        if self.background:
            return self.state == JOB_CREATED
        return self.state == JOB_COMPLETE or self.state == JOB_FAILED

    # Deprecated in python-gearman 2.0.1; kept because old code still reads them.
    @property
    def status_updates(self) -> Deque[Any]:
        """Deprecated: a deque holding ``(numerator, denominator)`` of the last status."""
        out: Deque[Any] = collections.deque()
        if self.status:
            out.append((self.status.get("numerator", 0), self.status.get("denominator", 0)))
        return out

    @property
    def server_status(self) -> Dict[str, Any]:
        """Deprecated name of :attr:`status`."""
        return self.status

    def __repr__(self) -> str:
        job = self.gearman_job
        return (f"<GearmanJobRequest task={job.task!r}, unique={job.unique!r}, "
                f"priority={self.priority!r}, background={self.background!r}, "
                f"state={self.state!r}, timed_out={self.timed_out!r}>")
