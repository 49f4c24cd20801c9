"""python-gearman's job objects: ``GearmanJob`` and ``GearmanJobRequest``.

These are the python-gearman 2.x classes (``gearman.job``), not PECL's
``gearman.GearmanJob`` (``gearman.worker.GearmanJob``), which has methods
``handle()``/``workload()`` where this one has attributes.  A worker callback
registered with ``register_task`` receives this ``GearmanJob``; one registered
with ``addFunction`` receives PECL's.

Types: ``handle``, ``task`` and ``unique`` handed out by the library are
``str``; ``data`` is whatever the ``data_encoder`` decoded (``bytes`` with the
default encoder).
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

__all__ = ["GearmanJob", "GearmanJobRequest"]


class GearmanJob:
    """A job: ``GearmanJob(connection, handle, task, unique, data)``.

    Plain attributes ``connection`` (a :class:`gearman.connection.GearmanConnection`
    or None), ``handle``, ``task``, ``unique`` and ``data``.
    """

    def __init__(self, connection: Any, handle: Any, task: Any, unique: Any, data: Any) -> None:
        self.connection = connection
        self.handle = handle
        self.task = task
        self.unique = unique
        self.data = data
        # The PECL job this one stands for inside a worker (sends go through it).
        self._pecl: Any = None

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

        Background: once the server accepted it (``JOB_CREATED``), or refused it
        (``JOB_FAILED``).  Foreground: ``JOB_COMPLETE`` or ``JOB_FAILED``.
        """
        if self.background:
            return self.state == JOB_CREATED or self.state == JOB_FAILED
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
