"""The python-gearman 2.x client surface, as a mixin of ``gearman.GearmanClient``.

``submit_job``, ``submit_multiple_jobs``, ``submit_multiple_requests``,
``wait_until_jobs_accepted``, ``wait_until_jobs_completed``, ``get_job_status``
and ``get_job_statuses`` work on :class:`gearman.job.GearmanJobRequest` objects
as python-gearman's did, on the same compiled engine as the PECL API: every
request becomes one engine task, a batch is written pipelined and waited for
in one engine run.

What the mixin needs from the class it is mixed into: ``self._engine`` (a
``gearman._core.ClientEngine``) and ``self._lock`` (a re-entrant lock,
``gearman._core.ClientLock``), as ``GearmanClient`` makes them.  It defines no ``__init__``.

Differences from python-gearman, all deliberate (docs/migration.md, section 2):

* A job the server refuses (``ERROR``, e.g. QUEUE_ERROR from ``maxqueue``)
  ends ``JOB_FAILED`` with ``request.error`` set, instead of waiting forever.
* WORK_EXCEPTION reaches the client (the client sends OPTION_REQ "exceptions"):
  the request ends ``JOB_FAILED`` with ``exception`` set to the decoded payload.
* Server choice: a job with a caller-given unique goes to the server its
  (function, unique) hashes to, so coalescing works across a pool; other jobs
  are spread round-robin.  A server that is down is skipped.
* Default uniques are made by the core (UUID-formatted), not from
  ``os.urandom(random_unique_bytes)``; the attribute is kept.
* Timed-out requests stay attached to the client: waiting again on them
  (``submit_multiple_requests`` or ``wait_until_jobs_completed``) resumes.
  Until they end, a PECL ``runTasks()`` on the same client waits for them too.
* A request whose connection broke while it ran is ``JOB_UNKNOWN`` with
  ``timed_out`` False (2.0.2 set ``timed_out`` too).  When every connection
  broke, ServerUnavailable is raised only if no server answers on a new
  connection; otherwise the requests are returned, ready to be submitted
  again (the docs' "Recovering from failed connections" recipe).
"""
from __future__ import annotations

import time
from typing import Any, Dict, List, Optional, Sequence, Set, Tuple

from gearman import _config, _core
from gearman.connection import GearmanConnection
from gearman.connection_manager import GearmanConnectionManager
from gearman.constants import (
    JOB_COMPLETE,
    JOB_CREATED,
    JOB_FAILED,
    JOB_PENDING,
    JOB_UNKNOWN,
    PRIORITY_NAME,
    PRIORITY_NONE,
)
from gearman.errors import (
    ConnectionError as _GearmanConnectionError,
    ExceededConnectionAttempts,
    GearmanError,
    GearmanTimeoutError,
    InvalidPriorityError,
    ServerError,
    ServerUnavailable,
)
from gearman.job import GearmanJobRequest, as_identifier
from gearman.protocol import submit_cmd_for_background_priority

__all__ = ["LegacyClientMixin", "RANDOM_UNIQUE_BYTES"]

#: python-gearman's ``gearman.client.RANDOM_UNIQUE_BYTES``.
RANDOM_UNIQUE_BYTES = 16

# the core's task states (Task.state), exported by gearman._core
_TS_QUEUED = _core.TASK_STATE_QUEUED
_TS_CREATED = _core.TASK_STATE_CREATED
_TS_DONE = _core.TASK_STATE_DONE
_EV = _core.EVENT_INDEX


def _check_multiple(requests: Any, what: str = "job requests") -> None:
    # python-gearman asserted the same: a generator would be consumed twice.
    if not isinstance(requests, (list, tuple, set, frozenset)):
        raise TypeError(f"Expected multiple {what} (list, tuple or set), "
                        f"got {type(requests).__name__}")


def _timed_out_unaccepted(request: GearmanJobRequest) -> bool:
    """A request still ``JOB_PENDING`` whose task the engine ended at a deadline (its
    server was silent): it is sent again when it is submitted again."""
    t = request._task
    return (request.state == JOB_PENDING and t is not None and t.state == _TS_DONE
            and isinstance(t.exception, GearmanTimeoutError))


def _incomplete_in_time(request: GearmanJobRequest) -> bool:
    """``timed_out`` after a completion wait: not complete, and not lost.

    python-gearman 2.0.2 also flagged a request whose connection broke
    (``JOB_UNKNOWN``) as timed out; its docs (``check_request_status``, the
    "Recovering from failed connections" recipe) tell the two apart, and so do we.
    A background job the server refused (``JOB_FAILED``) is not complete (it
    was not queued) and did not time out either.
    """
    return not request.complete and request.state != JOB_UNKNOWN and request.state != JOB_FAILED


class LegacyClientMixin(GearmanConnectionManager):
    """python-gearman's ``GearmanClient`` methods, mixed into ``gearman.GearmanClient``
    on top of the PECL client (``_engine``, ``_lock``, ``close()``)."""

    _kind = "client"
    # provided by the PECL client this is mixed into
    _engine: Any
    _lock: Any
    close: Any
    _default_servers: Any

    def _init_legacy_client(self, random_unique_bytes: int) -> None:
        """The mixin's own state (``gearman.GearmanClient.__init__`` calls it)."""
        self._init_connection_manager()
        #: python-gearman's setting; uniques are generated by the core (docs/api.md)
        self.random_unique_bytes = random_unique_bytes
        #: python-gearman's per-request failover queue: always empty (the engine fails over)
        self.request_to_rotating_connection_queue: Dict[Any, Any] = {}
        #: keys of the servers whose packets reached a request in the current poll step
        self._legacy_active: Set[str] = set()
        #: the engine callback table of every legacy request, made on first use
        self._legacy_cb_table: Optional[List[Any]] = None

    def _legacy_lock(self, deadline: Optional[float], requests: Sequence[GearmanJobRequest]) -> bool:
        """Take the client's lock within ``deadline``: python-gearman's calls count
        waiting for another thread's call in their ``poll_timeout``.  False (the
        requests marked ``timed_out``, nothing sent) when it did not come in time."""
        left = _config.remaining(deadline)
        if self._lock.acquire(True, left):
            return True
        for r in requests:
            r.timed_out = True
        return False

    # -- connections -------------------------------------------------------------------

    def add_connection(self, hostport_tuple: Any) -> GearmanConnection:
        """Add a server (``'host[:port]'``, ``(host, port)`` or dict); return its connection.

        A dict with ``keyfile``, ``certfile`` and ``ca_certs`` all set makes a
        TLS connection to that server (see :func:`gearman.util.tls_context`).
        No I/O happens until a request needs the server.
        """
        wrapped = self._legacy_add(_config.parse_server(hostport_tuple))
        self._engine.exceptions = True
        return wrapped

    def shutdown(self) -> None:
        """Close every connection; requests still waiting end with a lost-connection error."""
        self.close()

    # -- submitting --------------------------------------------------------------------

    def submit_job(self, task: Any, data: Any, unique: Any = None,
                   priority: Optional[str] = PRIORITY_NONE, background: bool = False,
                   wait_until_complete: bool = True, max_retries: int = 0,
                   poll_timeout: Optional[float] = None) -> GearmanJobRequest:
        """Submit one job and return its :class:`GearmanJobRequest`.

        ``task`` and ``unique`` are str or bytes; ``data`` goes through
        ``data_encoder.encode``.  ``priority`` is ``PRIORITY_NONE``/``LOW``/``HIGH``
        (anything else raises InvalidPriorityError, a KeyError as in python-gearman
        and an InvalidArgumentError, before anything is sent).  The call always waits until the server
        accepted the job (JOB_CREATED), and with ``wait_until_complete`` (the
        default; ignored for background jobs) until it completed or failed.
        ``poll_timeout`` (seconds, None = no limit) covers both waits; when it
        runs out the request is returned with ``timed_out`` set, not raised.

        Raises ServerUnavailable when no server can be reached,
        ExceededConnectionAttempts when the connection broke after the job was
        sent ``max_retries + 1`` times, TypeError / InvalidArgumentError for bad
        arguments, and whatever ``data_encoder`` raises.
        """
        request = self._legacy_request(task, data, unique, priority, background, max_retries)
        self.submit_multiple_requests([request], wait_until_complete=wait_until_complete,
                                      poll_timeout=poll_timeout)
        return request

    def submit_multiple_jobs(self, jobs_to_submit: Sequence[Dict[str, Any]],
                             background: bool = False, wait_until_complete: bool = True,
                             max_retries: int = 0,
                             poll_timeout: Optional[float] = None) -> List[GearmanJobRequest]:
        """Submit many jobs at once (pipelined); return their requests in input order.

        ``jobs_to_submit`` is a list/tuple/set of dicts with ``task``, ``data`` and
        optionally ``unique`` and ``priority``; ``background`` applies to all.
        Waiting, timeouts and errors as in :meth:`submit_job`.
        """
        _check_multiple(jobs_to_submit, "jobs")
        requests = [self._legacy_request(info["task"], info["data"], info.get("unique"),
                                         info.get("priority", PRIORITY_NONE), background,
                                         max_retries)
                    for info in jobs_to_submit]
        self.submit_multiple_requests(requests, wait_until_complete=wait_until_complete,
                                      poll_timeout=poll_timeout)
        return requests

    def submit_multiple_requests(self, job_requests: Sequence[GearmanJobRequest],
                                 wait_until_complete: bool = True,
                                 poll_timeout: Optional[float] = None) -> Sequence[GearmanJobRequest]:
        """Send every ``JOB_UNKNOWN`` request, then wait as :meth:`submit_job` does.

        Requests already sent are not sent again, so calling this again on
        timed-out requests simply goes on waiting for them.  Returns
        ``job_requests`` itself.
        """
        _check_multiple(job_requests)
        requests = list(job_requests)
        deadline = _config.deadline(poll_timeout)
        if not self._legacy_lock(deadline, requests):
            return job_requests
        try:
            self._legacy_wait(requests, deadline, until_complete=wait_until_complete, resend=True)
            if wait_until_complete:
                for r in requests:
                    r.timed_out = _incomplete_in_time(r)
            else:
                for r in requests:
                    r.timed_out = r.state == JOB_PENDING
        finally:
            self._lock.release()
        return job_requests

    def wait_until_jobs_accepted(self, job_requests: Sequence[GearmanJobRequest],
                                 poll_timeout: Optional[float] = None) -> Sequence[GearmanJobRequest]:
        """Send every ``JOB_UNKNOWN`` request and wait until none is ``JOB_PENDING``.

        Returns ``job_requests``; those still pending when ``poll_timeout`` ran
        out have ``timed_out`` set.  Raises as :meth:`submit_job`.
        """
        _check_multiple(job_requests)
        deadline = _config.deadline(poll_timeout)
        if not self._legacy_lock(deadline, job_requests):
            return job_requests
        try:
            self._legacy_wait(list(job_requests), deadline, until_complete=False, resend=True)
            for r in job_requests:
                r.timed_out = r.state == JOB_PENDING
        finally:
            self._lock.release()
        return job_requests

    def wait_until_jobs_completed(self, job_requests: Sequence[GearmanJobRequest],
                                  poll_timeout: Optional[float] = None) -> Sequence[GearmanJobRequest]:
        """Wait until every sent request is ``complete`` (nothing is sent or re-sent).

        Returns ``job_requests``; the incomplete ones have ``timed_out`` set.  A
        request whose connection broke goes back to ``JOB_UNKNOWN`` (with
        ``timed_out`` False: it did not time out, its outcome is unknown), ready
        to be sent again with :meth:`submit_multiple_requests` if its
        ``max_connection_attempts`` allow.  If no server is left connected and
        none answers on a new connection, ServerUnavailable is raised as
        python-gearman did.
        """
        _check_multiple(job_requests)
        deadline = _config.deadline(poll_timeout)
        if not self._legacy_lock(deadline, job_requests):
            return job_requests
        try:
            self._legacy_wait(list(job_requests), deadline, until_complete=True, resend=False)
            for r in job_requests:
                r.timed_out = _incomplete_in_time(r)
        finally:
            self._lock.release()
        return job_requests

    def send_job_request(self, current_request: GearmanJobRequest) -> GearmanJobRequest:
        """Queue one request for sending (written by the next wait); return it.

        Raises ExceededConnectionAttempts once ``max_connection_attempts`` sends
        were made, ServerUnavailable when no server can be reached,
        TypeError / InvalidArgumentError for bad task, unique or data.
        """
        if current_request.connection_attempts >= current_request.max_connection_attempts:
            raise ExceededConnectionAttempts(
                f"Exceeded {current_request.max_connection_attempts} connection attempt(s) "
                f":: {current_request!r}")
        engine = self._engine
        job = current_request.job
        cmd = submit_cmd_for_background_priority(current_request.background,
                                                 current_request.priority)
        data = self.data_encoder.encode(job.data)
        given_unique = job.unique or None
        with self._lock:
            self._default_servers()         # none given: GEARMAN_SERVERS, as every door
            if not engine.servers:
                raise ServerUnavailable("Found no valid connections in list: []")
            task = engine.new_submit(cmd, job.task, data, given_unique, current_request)
            task.callbacks = self._legacy_callbacks()
            if given_unique is None:
                job.unique = task.unique()
            current_request._task = task
            current_request.connection_attempts += 1
            current_request.timed_out = False
            current_request.state = JOB_PENDING
            engine.submit(task)
            if task.state == _TS_DONE and isinstance(task.exception, ServerUnavailable):
                current_request.state = JOB_UNKNOWN
                raise task.exception
        return current_request

    # -- status ------------------------------------------------------------------------

    def get_job_status(self, current_request: GearmanJobRequest,
                       poll_timeout: Optional[float] = None) -> GearmanJobRequest:
        """Ask the server for the status of one request; return it with ``status`` updated.

        See :meth:`get_job_statuses`.
        """
        return self.get_job_statuses([current_request], poll_timeout=poll_timeout)[0]

    def get_job_statuses(self, job_requests: Sequence[GearmanJobRequest],
                         poll_timeout: Optional[float] = None) -> List[GearmanJobRequest]:
        """Send GET_STATUS for every request (pipelined) and wait for the answers.

        Each request needs ``job.handle`` and a server: ``job.connection`` (one of
        this client's ``connection_list``, as python-gearman required) or else the
        server this client remembers for the handle.  ``status`` becomes
        ``{'handle', 'known', 'running', 'numerator', 'denominator',
        'time_received'}``; a finished job is ``known=False``.  On timeout the
        request keeps its old ``status`` and gets ``timed_out=True``.  Returns the
        requests as a list.  Raises KeyError for a request without handle or
        server, ServerUnavailable when no asked server could be reached.
        """
        _check_multiple(job_requests)
        requests = list(job_requests)
        deadline = _config.deadline(poll_timeout)
        if not self._legacy_lock(deadline, requests):
            return requests
        try:
            engine = self._engine
            self._default_servers()         # none given: GEARMAN_SERVERS, as every door
            if not engine.servers:
                raise ServerUnavailable("Found no valid connections in list: []")
            tasks = []
            for r in requests:
                r.status["last_time_received"] = r.status.get("time_received")
                handle = r.job.handle
                if not handle:
                    raise KeyError(f"request has no job handle: {r!r}")
                conn = self._legacy_core_of(r.job.connection)
                if conn is None:
                    # str(): a handle is a job.Identifier (a str subclass), which the
                    # engine's typed argument refuses
                    conn = engine.server_of(str.__str__(handle) if isinstance(handle, str)
                                            else bytes(handle).decode("utf-8", "surrogateescape"))
                if conn is None:
                    raise KeyError(f"no server of this client holds job {handle!r}")
                t = engine.new_request(_core.KIND_STATUS, handle, r)
                engine.submit_to(conn, t)
                tasks.append(t)
            self._legacy_run(tasks, deadline, [])
            failures = []
            for t in tasks:
                r = t.context
                if t.state != _TS_DONE:
                    engine.abandon(t)
                    r.timed_out = True
                elif isinstance(t.exception, GearmanTimeoutError):
                    r.timed_out = True          # a silent server: a timeout, not a failure
                elif t.exception is not None:
                    r.timed_out = True
                    failures.append(t.exception)
                else:
                    r.status = {
                        "handle": as_identifier(t.handle),
                        "known": bool(t.isKnown()),
                        "running": bool(t.isRunning()),
                        "numerator": t.taskNumerator(),
                        "denominator": t.taskDenominator(),
                        "time_received": time.time(),
                    }
                    r.timed_out = False
            if failures and len(failures) == len(tasks):
                exc = failures[0]
                raise ServerUnavailable(f"Found no valid connections in list: {exc}") from exc
        finally:
            self._lock.release()
        return requests

    # -- python-gearman's poll loop, on the engine ------------------------------------
    # (poll_connections_until_stopped / poll_connections_once / establish_connection
    # are GearmanConnectionManager's; these are the client's two steps)

    def _legacy_connect(self, core_connection: Any) -> None:
        """Open the engine's connection to one server with an ECHO round trip.

        Raises gearman.errors.ConnectionError if it cannot be reached within
        ``connect_timeout``.
        """
        with self._lock:
            engine = self._engine
            probe = engine.new_request(_core.KIND_ECHO, b"")
            try:
                engine.submit_to(core_connection, probe)
                engine.run([probe], float(engine.connect_timeout))
            except GearmanError as exc:
                if probe.state != _TS_DONE:
                    engine.abandon(probe)
                raise _GearmanConnectionError(
                    f"could not connect to {core_connection.key}: {exc}") from exc
            if probe.exception is not None:
                raise _GearmanConnectionError(
                    f"could not connect to {core_connection.key}: {probe.exception}") from probe.exception

    def _legacy_poll_once(self, connections: List[GearmanConnection], timeout: Optional[float]
                          ) -> Tuple[Set[GearmanConnection], Set[GearmanConnection],
                                     Set[GearmanConnection], bool]:
        """Wait (up to ``timeout`` s, None = no limit) for I/O and process it.

        Every answer is applied to its request (state, result, updates) by the
        request callbacks while the engine dispatches it.  Returns the
        connections that delivered packets and those that failed during the
        step; a request whose connection failed is settled as python-gearman
        did (``JOB_UNKNOWN``; a server ERROR: ``JOB_FAILED`` with ``error``).
        """
        engine = self._engine
        with self._lock:
            active = self._legacy_active
            active.clear()
            before = {c.key: c.generation for c in engine.servers if c.connected}
            # log the tasks that end in this step (only while it runs: other
            # calls of this client do not pay for the log)
            engine.finished_log = []
            try:
                try:
                    ready = engine.wait_ready(-1.0 if timeout is None else max(0.0, float(timeout)))
                except GearmanError:
                    ready = False           # no connection left to wait on
                if ready:
                    engine.run_nonblocking(None)
                finished = engine.take_finished()
            finally:
                engine.finished_log = None
            self._legacy_settle(finished)
            after = {c.key: c.generation for c in engine.servers if c.connected}
            wrap = self._wrap_connection
            rd = {v for v in map(wrap, engine.servers) if v is not None and v.key in active}
            failed_keys = {k for k, gen in before.items() if after.get(k) != gen}
            ex = {v for v in map(wrap, engine.servers) if v is not None and v.key in failed_keys}
            ex |= {c for c in connections if not c.connected}
        return rd, set(), ex, False

    @staticmethod
    def _legacy_settle(finished: List[Any]) -> None:
        """Apply engine-side endings (lost connection, server ERROR) to the requests they hit.

        ``finished``: the engine tasks that ended during a poll step.
        """
        for t in finished:
            r = t.context
            if not isinstance(r, GearmanJobRequest) or r._task is not t:
                continue
            exc = t.exception
            if exc is None or (r.state != JOB_PENDING and r.state != JOB_CREATED):
                continue
            if isinstance(exc, ServerError):
                r.error = exc
                r.state = JOB_FAILED
            else:
                r.state = JOB_UNKNOWN       # the connection broke: outcome unknown

    # -- internals ---------------------------------------------------------------------

    def _legacy_request(self, task: Any, data: Any, unique: Any, priority: Optional[str],
                        background: bool, max_retries: int) -> GearmanJobRequest:
        if priority not in PRIORITY_NAME:
            raise InvalidPriorityError(f"priority must be PRIORITY_NONE, PRIORITY_LOW or "
                                       f"PRIORITY_HIGH, not {priority!r}")
        job = self.job_class(connection=None, handle=None, task=task, unique=unique, data=data)
        request: GearmanJobRequest = self.job_request_class(
            job, initial_priority=priority, background=background, max_attempts=max_retries + 1)
        return request

    def _legacy_callbacks(self) -> List[Any]:
        """The engine callback table shared by every legacy request of this client."""
        table = self._legacy_cb_table
        if table is not None:
            return table
        wrap = self._wrap_connection
        servers = self._engine.servers
        active = self._legacy_active

        def created(t: Any, r: GearmanJobRequest) -> None:
            active.add(t.server)
            job = r.gearman_job
            job.handle = t.handle
            key = t.server
            for c in servers:
                if c.key == key:
                    job.connection = wrap(c)
                    break
            if r.state == JOB_PENDING:
                r.state = JOB_CREATED

        def data(t: Any, r: GearmanJobRequest) -> None:
            active.add(t.server)
            r.data_updates.append(self.data_encoder.decode(t.data()))

        def warning(t: Any, r: GearmanJobRequest) -> None:
            active.add(t.server)
            r.warning_updates.append(self.data_encoder.decode(t.data()))

        def status(t: Any, r: GearmanJobRequest) -> None:
            active.add(t.server)
            r.status = {
                "handle": as_identifier(t.handle),
                "known": True,
                "running": True,
                "numerator": t.taskNumerator(),
                "denominator": t.taskDenominator(),
                "time_received": time.time(),
            }

        def complete(t: Any, r: GearmanJobRequest) -> None:
            active.add(t.server)
            r.result = self.data_encoder.decode(t.result)
            r.state = JOB_COMPLETE

        def fail(t: Any, r: GearmanJobRequest) -> None:
            active.add(t.server)
            if t.exception is not None:
                r.error = t.exception        # the server refused the job (ERROR packet)
            r.state = JOB_FAILED

        def exception(t: Any, r: GearmanJobRequest) -> None:
            active.add(t.server)
            r.exception = self.data_encoder.decode(t.data())
            r.state = JOB_FAILED

        table = [None] * len(_core.EVENTS)
        table[_EV["created"]] = created
        table[_EV["data"]] = data
        table[_EV["warning"]] = warning
        table[_EV["status"]] = status
        table[_EV["complete"]] = complete
        table[_EV["fail"]] = fail
        table[_EV["exception"]] = exception
        self._legacy_cb_table = table
        return table

    def _legacy_run(self, wait: List[Any], deadline: Optional[float], barriers: List[Any]) -> bool:
        """Drive the engine until every task in ``wait`` finished; False on timeout.

        ``barriers`` (echo requests) are abandoned when the call does not end
        normally, so their late answers are dropped.
        """
        if not wait:
            return True
        try:
            self._engine.run(wait, _config.remaining(deadline))
        except GearmanTimeoutError:
            for b in barriers:
                self._engine.abandon(b)
            return False
        except BaseException:
            for b in barriers:
                self._engine.abandon(b)
            raise
        return True

    def _legacy_wait(self, requests: List[GearmanJobRequest], deadline: Optional[float],
                     until_complete: bool, resend: bool) -> None:
        """The acceptance and completion waits of python-gearman, on the engine.

        Until complete: wait for the requests' tasks themselves (one engine run
        for the whole batch).  Until accepted: background tasks end at
        JOB_CREATED; for foreground ones an ECHO_REQ is queued behind them on
        each connection involved, and since gearmand answers a connection's
        requests in order, its ECHO_RES means every JOB_CREATED (or ERROR) before
        it has arrived.  A task the engine moved to another server (failover)
        gets a new barrier in the next round.
        """
        engine = self._engine
        if resend:
            for r in requests:
                if r.state == JOB_UNKNOWN or _timed_out_unaccepted(r):
                    self.send_job_request(r)
        lost_running = False
        timed_out: Set[Any] = set()         # tasks ended by a deadline, settled once
        while True:
            wait: List[Any] = []
            barrier_servers: Set[str] = set()
            for r in requests:
                t = r._task
                if t is None or t.state == _TS_DONE:
                    continue
                if until_complete:
                    if r.state == JOB_PENDING or r.state == JOB_CREATED:
                        wait.append(t)
                elif r.state == JOB_PENDING:
                    if t.background:
                        wait.append(t)
                    elif t.state == _TS_QUEUED:
                        barrier_servers.add(t.server)
            barriers: List[Any] = []
            for c in engine.servers:
                if c.key in barrier_servers:
                    b = engine.new_request(_core.KIND_ECHO, b"")
                    engine.submit_to(c, b)
                    barriers.append(b)
            wait.extend(barriers)
            if not wait:
                break
            in_time = self._legacy_run(wait, deadline, barriers)
            for r in requests:
                t = r._task
                if t is None or t.state != _TS_DONE or t.exception is None:
                    continue
                if r.state != JOB_PENDING and r.state != JOB_CREATED:
                    continue            # already settled (an ERROR packet failed it)
                exc = t.exception
                if isinstance(exc, ServerUnavailable):
                    r.state = JOB_UNKNOWN
                    raise exc
                if isinstance(exc, GearmanTimeoutError):
                    # the engine gave up on it at the deadline (a silent server):
                    # python-gearman's contract, a pending request with timed_out
                    # set, never an exception; submitting it again sends it again
                    if t not in timed_out:
                        timed_out.add(t)
                        # python-gearman kept waiting for a pending request and
                        # never resent it: its send again costs no attempt
                        # (attempts count connections that broke)
                        if r.connection_attempts > 0:
                            r.connection_attempts -= 1
                    continue
                if isinstance(exc, ServerError):
                    r.error = exc
                    r.state = JOB_FAILED
                elif isinstance(exc, ConnectionError):
                    # python-gearman put the request back to UNKNOWN; during the
                    # acceptance wait it was sent again (one more attempt).
                    r.state = JOB_UNKNOWN
                    if t.handle or not resend:
                        lost_running = True
                    else:
                        try:
                            self.send_job_request(r)
                        except ExceededConnectionAttempts as limit:
                            raise limit from exc
                else:
                    raise exc
            if not in_time:
                break
        if lost_running and not self._legacy_reachable(deadline):
            raise ServerUnavailable(
                f"Found no valid connections in list: {self.connection_list!r}")

    def _legacy_reachable(self, deadline: Optional[float]) -> bool:
        """True if a server is connected, or answers an ECHO on a new connection now.

        After every connection broke during a wait, python-gearman raised
        ServerUnavailable.  A server that answers again (a network blip, a
        proxy or load balancer that dropped the connection, a restart that is
        already over) is no reason to: the lost requests are returned as
        ``JOB_UNKNOWN`` and can be submitted again.  The probe is an ECHO
        round trip through the engine (so TLS servers are probed over TLS, and
        a server that is dying -- its listener still accepting for an instant
        -- does not pass), one server after the other, each bounded by
        ``connect_timeout`` and the caller's deadline.
        """
        engine = self._engine
        if any(c.connected for c in engine.servers):
            return True
        for c in list(engine.servers):
            limit = float(engine.connect_timeout)
            remaining = _config.remaining(deadline)
            if remaining >= 0:
                if remaining == 0:
                    return False
                limit = min(limit, remaining)
            probe = engine.new_request(_core.KIND_ECHO, b"")
            try:
                engine.submit_to(c, probe)
                engine.run([probe], limit)
            except GearmanError:
                pass
            if probe.state == _TS_DONE:
                if probe.exception is None:
                    return True
            else:
                engine.abandon(probe)
        return False
