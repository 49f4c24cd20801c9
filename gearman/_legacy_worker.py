"""The python-gearman 2.x worker surface, as a mixin of ``gearman.GearmanWorker``.

``register_task(task, callback)`` registers ``callback(worker, job)`` where
``job`` is a :class:`gearman.job.GearmanJob` (attributes ``handle``, ``task``,
``unique``, ``data``, ``connection``); ``work(poll_timeout=60.0)`` loops over
jobs until ``after_poll`` or ``after_job`` returns False.  The hooks
``on_job_execute``, ``on_job_exception`` and ``on_job_complete`` and the
``send_job_*`` methods behave as in python-gearman.

Jobs are grabbed by the compiled ``WorkerEngine`` and run through the PECL
worker's job runner, so a worker may mix ``register_task`` and ``addFunction``
functions: each callback gets its own kind of job object.

What the mixin needs from the PECL worker it is mixed into: ``self._engine``
(a ``gearman._core.WorkerEngine``), ``self._lock`` (a re-entrant
``gearman._core.ClientLock``), ``self._callbacks`` (function name bytes ->
``(callable, context)``), ``self._grab(timeout)`` (one PECL job -- with its
public ``send*`` methods and its ``_conn`` slot -- or None after ``timeout``
seconds), ``self._run_job(pecl_job)`` and ``self._work_one()``.  Its own
state is declared in ``_init_legacy_worker()``, which ``gearman.GearmanWorker``
calls.

Differences from python-gearman, all deliberate (docs/migration.md, section 2):

* ``register_task('name')`` and ``register_task(b'name')`` are the same
  function (pygearman died on the first job of a str registration).
* A callback that returns None completes the job with an empty result; one
  whose result the encoder refuses fails the job (WORK_FAIL, logged) instead
  of killing ``work()`` with TypeError.
* A failing callback is logged (python-gearman swallowed it, issue #4).
* ``send_job_exception`` sends WORK_EXCEPTION only: gearmand 1.1 treats it as
  final and would answer a following WORK_FAIL with ERROR.  Sends after the
  job ended are ignored (no stray WORK_COMPLETE after ``send_job_failure``).
* A server that goes away mid-loop is reconnected with backoff instead of
  killing ``work()``; ServerUnavailable is raised when, at the start of a
  round (every ``poll_timeout`` seconds), no server can be reached
  (``establish_worker_connections`` returned none).
* ``shutdown()`` during ``work()`` (from a signal handler or another thread)
  ends ``work()`` after the running job, which returns None; pygearman kept
  polling until ``poll_timeout`` and then raised ServerUnavailable.
* Connections are closed when ``work()`` returns and by ``shutdown()``; the
  worker stays usable (the next ``work()`` reconnects), as in python-gearman.
"""
from __future__ import annotations

import logging
import random
import signal
import sys
import threading
import time
from typing import Any, Callable, Dict, List, Optional, Set, Tuple, Union

from gearman import _config, _core
from gearman import constants as C
from gearman.connection import GearmanConnection
from gearman.connection_manager import GearmanConnectionManager, GearmanWorkerCommandHandler
from gearman.errors import (
    ConnectionError as _GearmanConnectionError,
    GearmanError,
    GearmanTimeoutError,
    InvalidArgumentError,
    InvalidTypeError,
)
from gearman.job import GearmanJob

__all__ = ["LegacyWorkerMixin", "POLL_TIMEOUT_IN_SECONDS"]

log = logging.getLogger("gearman.worker")

#: python-gearman's ``gearman.worker.POLL_TIMEOUT_IN_SECONDS``.
POLL_TIMEOUT_IN_SECONDS = 60.0

_UNSET: Any = object()

#: Longest sleep of a poll step that cannot grab (no function registered, or the
#: job lock held by someone else), so the callback keeps being called.
_IDLE_STEP = 0.2

#: Longest wait of the poll step right after a job for the server's answer to the
#: GRAB that went out with the job's result (see ``_legacy_poll_once``).
_AFTER_JOB_ANSWER_WAIT = 0.2


def _ended(job: Any) -> bool:
    """True once WORK_COMPLETE/FAIL/EXCEPTION went out for ``job``: later sends are dropped."""
    return bool(getattr(job, "_legacy_final", False))


class LegacyWorkerMixin(GearmanConnectionManager):
    """python-gearman's ``GearmanWorker`` methods; mix into the PECL ``GearmanWorker``."""

    _kind = "worker"
    # provided by the PECL worker this is mixed into
    _engine: Any
    _lock: Any
    _callbacks: Dict[bytes, Any]
    _run_job: Callable[[Any], Any]
    _grab: Callable[[Optional[float]], Any]
    _work_one: Callable[[], bool]
    close: Callable[[], None]

    command_handler_class: Any = GearmanWorkerCommandHandler

    def _init_legacy_worker(self, host_list_given: bool) -> None:
        """The mixin's own state (``gearman.GearmanWorker.__init__`` calls it)."""
        self._init_connection_manager()
        #: python-gearman's worker-level job lock: the handler of the connection whose
        #: job is running (None between jobs).  Set by ``set_job_lock`` and by the loop.
        self.command_handler_holding_job_lock: Any = None
        #: python-gearman's shuffled copy of ``connection_list`` of the current round
        self.randomized_connections: Optional[List[GearmanConnection]] = None
        #: the worker was given servers python-gearman's way: ``work()`` loops
        self._host_list_given = host_list_given
        #: register_task's functions: name -> callback(worker, job)
        self._legacy_ability_table: Dict[bytes, Callable[..., Any]] = {}
        #: jobs run by work() so far (after_job is called when it moves)
        self._legacy_jobs_done = 0
        #: work() is running (shutdown() then only asks it to stop)
        self._legacy_working = False
        #: shutdown() asked the running work() to stop
        self._legacy_stop_requested = False
        #: the job assigned in the last poll step and not run yet (a PECL job), or None
        self._legacy_assigned: Any = None
        #: after a job: the connection whose GRAB answer the next step waits for
        #: (_UNSET: no job just ended)
        self._legacy_after_job: Any = _UNSET
        #: (thread id, legacy job, PECL job) of the job running now, or None
        self._legacy_running: Optional[Tuple[int, Any, Any]] = None

    # -- connections ---------------------------------------------------------------------

    def add_connection(self, hostport_tuple: Any) -> GearmanConnection:
        """Add a server (``'host[:port]'``, ``(host, port)`` or dict); return its connection.

        A dict with ``keyfile``, ``certfile`` and ``ca_certs`` all set makes a
        TLS connection to that server (see :func:`gearman.util.tls_context`).
        A worker given its servers this way is a python-gearman worker:
        ``work()`` without arguments loops as python-gearman's did.
        """
        view = self._legacy_add(_config.parse_server(hostport_tuple))
        self._host_list_given = True
        return view

    def shutdown(self) -> None:
        """Close every connection; during ``work()``, end it first.

        Called while ``work()`` runs (from a signal handler, as OpenVDM's
        workers do on SIGINT, or from another thread): the running job
        finishes and its result is sent, then ``work()`` returns None and
        closes the connections.  Called by the running job's own callback or
        hooks, the job is dropped instead (see :meth:`_legacy_abandon`): the
        connections close now, nothing more is sent for it, gearmand re-queues
        it.  Otherwise the connections are closed now.

        The worker stays usable: the next ``work()`` reconnects, as in
        python-gearman.
        """
        self.command_handler_holding_job_lock = None
        running = self._legacy_running
        if running is not None and running[0] == threading.get_ident():
            self._legacy_abandon(running[1], running[2])
            return
        if self._legacy_working:
            # Never close sockets under a grab() in progress (a signal handler
            # runs inside it): stop the loop; work() closes them on its way out.
            self._legacy_stop_requested = True
            self._legacy_wake()
            return
        self._legacy_disconnect()

    def _legacy_abandon(self, job: GearmanJob, pecl_job: Any) -> None:
        """shutdown() called by a job's own callback or hooks: drop the job, as python-gearman did.

        python-gearman closed the sockets at once, so the job's answer (the
        WORK_FAIL or WORK_COMPLETE its hooks send next) was never written and
        gearmand gave the job to another worker.  gmtasks' ``Task`` wrapper
        calls ``worker.shutdown()`` when a callback raises precisely so that
        the job "goes back into the queue".  Here: nothing more is sent for
        this job, the connections are closed now (gearmand re-queues it), and
        a ``work()`` in progress ends after the job.
        """
        job._legacy_final = True
        job._legacy_abandoned = True
        if pecl_job is not None:
            pecl_job._finished = True            # the engine must not answer it either
        if self._legacy_working:
            self._legacy_stop_requested = True
        self._legacy_disconnect()

    def _legacy_wake(self) -> None:
        """End a poll step in progress (PECL ``stop()``'s effect, without calling a method
        named ``stop``: applications' subclasses use that name for a flag, as OpenVDM does)."""
        self._engine.stopping = True
        self._engine.wake()

    def _legacy_disconnect(self) -> None:
        """Close the connections but keep the worker usable (the engine reconnects)."""
        with self._lock:
            self._engine.disconnect()

    # -- abilities ----------------------------------------------------------------------

    @property
    def worker_abilities(self) -> Dict[str, Callable[..., Any]]:
        """``{task name (str): callback}`` of the functions registered with register_task."""
        return {name.decode("utf-8", "surrogateescape"): cb
                for name, cb in self._legacy_ability_table.items()}

    def register_task(self, task: Union[str, bytes], callback: Callable[..., Any]) -> Union[str, bytes]:
        """Serve ``task`` with ``callback(worker, job)``; return ``task``.

        ``task`` may be str or bytes (the same function either way).  The
        servers learn the change before the next grab.  Raises InvalidTypeError
        if ``callback`` is not callable, InvalidArgumentError for a bad name.
        """
        if not callable(callback):
            raise InvalidTypeError("callback must be callable")
        name = _core.validate_function_name(task)
        with self._lock:
            self._legacy_ability_table[name] = callback
            self._callbacks[name] = (self._legacy_run_job, None)
            self._engine.functions[name] = 0
            self._engine.abilities_changed()
        return task

    def unregister_task(self, task: Union[str, bytes]) -> Union[str, bytes]:
        """Stop serving ``task``; return it."""
        name = _core.validate_function_name(task)
        with self._lock:
            self._legacy_ability_table.pop(name, None)
            self._callbacks.pop(name, None)
            self._engine.functions.pop(name, None)
            self._engine.abilities_changed()
        return task

    def set_client_id(self, client_id: Union[str, bytes]) -> Union[str, bytes]:
        """Name this worker (SET_CLIENT_ID, listed by the admin ``workers`` command); return it.

        Sent at once on live connections and on every (re)connect.  Raises
        InvalidArgumentError for an empty id, one over 254 bytes, or one with a
        NUL byte or line break.
        """
        raw = client_id.encode("utf-8") if isinstance(client_id, str) else client_id
        if not isinstance(raw, bytes):
            raise InvalidTypeError(f"client id must be str or bytes, not {type(client_id).__name__}")
        if not 0 < len(raw) <= C.GEARMAN_MAX_IDENTIFIER or any(b in raw for b in (b"\0", b"\r", b"\n")):
            raise InvalidArgumentError("client id must be 1..254 bytes without NUL or line breaks")
        with self._lock:
            self._engine.client_id = raw
            for c in self._engine.servers:
                if c.connected:
                    try:
                        self._engine.send(c, C.GEARMAN_COMMAND_SET_CLIENT_ID, raw)
                    except GearmanError:
                        pass        # it is sent again when the engine reconnects
        return client_id

    @property
    def worker_client_id(self) -> Optional[str]:
        """The id set with :meth:`set_client_id`, or None."""
        raw = self._engine.client_id
        return None if raw is None else raw.decode("utf-8", "surrogateescape")

    # -- the work loop --------------------------------------------------------------------

    def work(self, poll_timeout: Any = _UNSET) -> Optional[bool]:
        """Work jobs.

        python-gearman style (the worker was built with a host list, or
        ``poll_timeout`` is given): python-gearman 2.0.2's loop.  Each round
        (``poll_timeout`` seconds, default 60, None = no limit) calls
        :meth:`establish_worker_connections` and raises ServerUnavailable if it
        returned none, then :meth:`poll_connections_until_stopped`, which runs
        jobs and calls ``after_poll(any_activity)`` before the first poll and
        after each one (after a job, ``after_poll(True)`` then ``after_job()``).
        The loop ends when one of them returns False, or on ``stop()`` /
        ``shutdown()`` (from another thread or a signal handler); then the
        connections are closed and None is returned.

        PECL style (``GearmanWorker()`` plus ``addServer``, no argument): handle
        one job; True when a job was received and answered, whatever its
        callback did (a raised callback is answered with WORK_EXCEPTION and
        logged), False when no job could be handled (``returnCode()`` says why).
        """
        if poll_timeout is _UNSET:
            if not self._host_list_given:
                return bool(self._work_one())
            poll_timeout = POLL_TIMEOUT_IN_SECONDS
        timeout = None if poll_timeout is None else float(poll_timeout)
        jobs_seen = [self._legacy_jobs_done]

        def continue_while_connections_alive(any_activity: bool) -> bool:
            # python-gearman's closure: after_job once per finished job
            done = self._legacy_jobs_done
            if done != jobs_seen[0]:
                jobs_seen[0] = done
                return bool(self.after_poll(any_activity)) and bool(self.after_job())
            return bool(self.after_poll(any_activity))

        engine = self._engine
        wakeup_fd = None
        if threading.current_thread() is threading.main_thread():
            # a signal landing just before grab() blocks must still wake it (a
            # handler may call shutdown()): the signal module writes to our wake-up socket
            wakeup_fd = signal.set_wakeup_fd(engine.wake_fd(), warn_on_full_buffer=False)
        self._legacy_working = True
        worker_connections: List[GearmanConnection] = []
        try:
            # the loop grabs again after every job: the GRAB rides with the result
            engine.eager_grab = True
            continue_working = True
            while continue_working:
                worker_connections = self.establish_worker_connections()
                continue_working = self.poll_connections_until_stopped(
                    worker_connections, continue_while_connections_alive, timeout=timeout)
        finally:
            self._legacy_working = False
            self._legacy_stop_requested = False
            self._legacy_after_job = _UNSET
            self.command_handler_holding_job_lock = None
            engine.eager_grab = False
            engine.stopping = False         # this stop() was consumed by this work()
            if wakeup_fd is not None:
                signal.set_wakeup_fd(wakeup_fd)
            # python-gearman closed its connections when work() ended (which
            # also returns a job assigned to a GRAB in flight to the queue)
            self._legacy_disconnect()
        return None

    # -- python-gearman's connection management, the worker's steps --------------------

    def establish_worker_connections(self) -> List[GearmanConnection]:
        """Return the reachable connections, shuffled (python-gearman 2.0.2).

        Shuffles ``connection_list`` into ``randomized_connections`` and keeps
        each connection :meth:`establish_connection` accepts (those that raise
        ConnectionError are skipped).  ``work()`` calls it at the start of
        every round; override it to choose servers.
        """
        self.randomized_connections = list(self.connection_list)
        random.shuffle(self.randomized_connections)
        output_connections = []
        for current_connection in self.randomized_connections:
            try:
                output_connections.append(self.establish_connection(current_connection))
            except _GearmanConnectionError:
                pass
        return output_connections

    def _legacy_connect(self, core_connection: Any) -> None:
        """Check the server accepts connections (TLS: completes the handshake); the engine
        connects it at its next poll.

        Raises gearman.errors.ConnectionError if it refuses or does not answer
        within ``connect_timeout``.
        """
        try:
            _core.check_reachable(core_connection)     # as the engine connects: TLS included
        except GearmanError as exc:
            raise _GearmanConnectionError(str(exc)) from exc

    def _legacy_alive(self, connections: List[GearmanConnection]) -> bool:
        # a round starts when establish_worker_connections found a reachable server
        return bool(connections)

    def _legacy_still_alive(self, connections: List[GearmanConnection]) -> bool:
        # Deliberate difference: python-gearman dropped a failed connection for
        # the rest of the round and raised ServerUnavailable when none was left.
        # The engine reconnects it with backoff, so the round goes on; the next
        # round's establish_worker_connections decides whether any server is up.
        return True

    def poll_connections_until_stopped(self, submitted_connections: Any, callback_fxn: Any,
                                       timeout: Optional[float] = None) -> bool:
        """Grab and run jobs until ``callback_fxn(any_activity)`` returns False or ``timeout`` passes.

        python-gearman 2.0.2's cycle per job: the worker takes the job lock and
        asks for a job, the callback runs (``has_job_lock()`` True: awaiting a
        job), the job is assigned and run, the lock is released and the
        callback runs again.  When the callback stops the loop while a job was
        assigned but not started, the connections are closed so gearmand gives
        the job to another worker, as python-gearman's closing did.
        See :meth:`GearmanConnectionManager.poll_connections_until_stopped`.
        """
        try:
            return super().poll_connections_until_stopped(submitted_connections, callback_fxn,
                                                           timeout=timeout)
        finally:
            if self._legacy_assigned is not None:
                self._legacy_assigned = None
                self.command_handler_holding_job_lock = None
                self._legacy_disconnect()

    def _legacy_poll_once(self, connections: List[GearmanConnection], timeout: Optional[float]
                          ) -> Tuple[Set[GearmanConnection], Set[GearmanConnection],
                                     Set[GearmanConnection], bool]:
        """One step of python-gearman's job cycle (see :meth:`poll_connections_until_stopped`).

        A job assigned in the previous step runs now; otherwise wait up to
        ``timeout`` s (None: no limit) for a job and take the job lock for it.
        Returns ``(connection with the job, set(), connections that failed,
        stopped)``; ``stopped`` is True when ``stop()``/``shutdown()`` ended it.
        """
        engine = self._engine
        stop_asked = self._legacy_stop_requested or engine.stopping
        assigned = self._legacy_assigned
        if stop_asked:
            return set(), set(), set(), True
        wrap = self._wrap_connection
        if assigned is not None:
            self._legacy_assigned = None
            self._legacy_run_locked(assigned)
            view = wrap(getattr(assigned, "_conn", None))
            # the next step looks for the server's answer to the GRAB sent with the result
            self._legacy_after_job = view
            return ({view} if view is not None else set()), set(), set(), False
        after_job, self._legacy_after_job = self._legacy_after_job, _UNSET
        if after_job is not _UNSET:
            # python-gearman's next poll after a job had activity whatever came: the
            # server answered the GRAB at once (JOB_ASSIGN, or NO_JOB when the queue
            # is empty).  So this step waits only for that answer, and reports
            # activity even without a job: callbacks that count polls to stop
            # (chenchiyuan/django-gearman's worker) stop right after their last job,
            # not after poll_timeout.
            timeout = _AFTER_JOB_ANSWER_WAIT if timeout is None else \
                min(timeout, _AFTER_JOB_ANSWER_WAIT)
        before = {c.key: c.generation for c in engine.servers if c.connected}
        job = None
        if not engine.functions or self.command_handler_holding_job_lock is not None:
            # nothing to grab, or the job lock is held elsewhere (set_job_lock):
            # idle as python-gearman's poll did, without grabbing
            time.sleep(_IDLE_STEP if timeout is None else min(max(timeout, 0.0), _IDLE_STEP))
        else:
            with self._lock:
                job = self._grab(_config.seconds_to_engine(timeout))   # a poll step waits `timeout`
        stopped = job is None and (engine.stopping or self._legacy_stop_requested)
        rd: Set[GearmanConnection] = set()
        if job is None and after_job is not _UNSET and after_job is not None and not stopped:
            rd.add(after_job)               # the answer to the GRAB (NO_JOB): activity
        if job is not None:
            view = wrap(getattr(job, "_conn", None))
            handler = self._legacy_handlers().get(view) if view is not None else None
            self.command_handler_holding_job_lock = handler if handler is not None else \
                self.command_handler_class(connection_manager=self)
            self._legacy_assigned = job
            if view is not None:
                rd.add(view)
        after = {c.key: c.generation for c in engine.servers if c.connected}
        failed = {k for k, gen in before.items() if after.get(k) != gen}
        ex = {v for v in map(wrap, engine.servers) if v is not None and v.key in failed}
        return rd, set(), ex, stopped

    def _legacy_run_locked(self, pecl_job: Any) -> None:
        """Run one job (the job lock is held since it was assigned); release the lock."""
        try:
            with self._lock:
                self._run_job(pecl_job)
        finally:
            self.command_handler_holding_job_lock = None
            self._legacy_jobs_done += 1

    def handle_error(self, current_connection: GearmanConnection) -> None:
        """A connection failed: release the job lock if its handler held it (python-gearman)."""
        holder = self.command_handler_holding_job_lock
        if holder is not None and self._legacy_handlers().get(current_connection) is holder:
            self.command_handler_holding_job_lock = None
        super().handle_error(current_connection)

    # -- python-gearman's job lock --------------------------------------------------------

    def set_job_lock(self, command_handler: Any, lock: bool) -> bool:
        """Take (``lock`` True) or release the worker-level job lock for ``command_handler``.

        python-gearman 2.0.2's rules: False if the handler is not one of this
        worker's live connections' (``handler_to_connection_map``), if taking a
        lock someone holds, or if releasing a lock the handler does not hold;
        else True.  While the lock is held by a handler outside a job, the
        loop grabs no job.
        """
        if command_handler not in self.handler_to_connection_map:
            return False
        holder = self.command_handler_holding_job_lock
        if (lock and holder is not None) or (not lock and holder != command_handler):
            return False
        self.command_handler_holding_job_lock = command_handler if lock else None
        return True

    def has_job_lock(self) -> bool:
        """True while some handler holds the job lock (a job is running)."""
        return self.command_handler_holding_job_lock is not None

    def check_job_lock(self, command_handler: Any) -> bool:
        """True if ``command_handler`` holds the job lock."""
        return bool(self.command_handler_holding_job_lock == command_handler)

    def create_job(self, command_handler: Any, job_handle: Any, task: Any, unique: Any,
                   data: Any) -> GearmanJob:
        """Build a job of ``job_class`` on the connection of ``command_handler`` (python-gearman)."""
        connection = self.handler_to_connection_map.get(command_handler)
        job: GearmanJob = self.job_class(connection, job_handle, task, unique, data)
        return job

    def after_poll(self, any_activity: bool) -> bool:
        """Called before each round and after each wait; return False to leave ``work()``."""
        return True

    def after_job(self) -> bool:
        """Called after each job; return False to leave ``work()``."""
        return True

    # -- running one job ----------------------------------------------------------------

    def _legacy_run_job(self, pecl_job: Any, _context: Any) -> None:
        """Adapter registered in ``_callbacks`` for every register_task function."""
        raw = pecl_job.workload()
        decode_failure = None
        try:
            data = self.data_encoder.decode(raw)
        except Exception:
            data = raw
            decode_failure = sys.exc_info()
        job = self.job_class(self._wrap_connection(getattr(pecl_job, "_conn", None)),
                             pecl_job.handle(), pecl_job.functionName(), pecl_job.unique(), data)
        job._pecl = pecl_job
        job._legacy_final = False
        outer = self._legacy_running
        self._legacy_running = (threading.get_ident(), job, pecl_job)
        try:
            if decode_failure is not None:
                self.on_job_exception(job, decode_failure)
            else:
                self.on_job_execute(job)
        except (_GearmanConnectionError, GearmanTimeoutError):
            raise                       # the connection is gone: nothing more can be sent
        except Exception:
            if job._legacy_final:
                raise
            self.on_job_exception(job, sys.exc_info())
        finally:
            self._legacy_running = outer
        if not job._legacy_final:
            log.warning("job %s (%s) was neither completed nor failed by the worker's hooks; "
                        "sending WORK_FAIL", job.handle, job.task)
            self.send_job_failure(job)

    def on_job_execute(self, current_job: GearmanJob) -> bool:
        """Run the job's callback; route to :meth:`on_job_complete` or :meth:`on_job_exception`."""
        try:
            callback = self._legacy_ability_table[_core.validate_function_name(current_job.task)]
            job_result = callback(self, current_job)
        except Exception:
            return self.on_job_exception(current_job, sys.exc_info())
        return self.on_job_complete(current_job, job_result)

    def on_job_exception(self, current_job: GearmanJob, exc_info: Any) -> bool:
        """The callback raised: log it, send WORK_FAIL, return False."""
        log.error("task %s (job %s) raised", current_job.task, current_job.handle, exc_info=exc_info)
        self.send_job_failure(current_job)
        return False

    def on_job_complete(self, current_job: GearmanJob, job_result: Any) -> bool:
        """The callback returned: send WORK_COMPLETE with the encoded result, return True."""
        self.send_job_complete(current_job, job_result)
        return True

    # -- sending updates ----------------------------------------------------------------------

    def send_job_status(self, current_job: GearmanJob, numerator: Union[int, float],
                        denominator: Union[int, float], poll_timeout: Optional[float] = None) -> None:
        """Send WORK_STATUS ``numerator/denominator`` (numbers; floats are truncated).

        Each ``send_job_*`` returns once the kernel took the packet; ``poll_timeout``
        is accepted for compatibility (the engine's ``io_timeout`` bounds the
        wait).  Raises InvalidTypeError for non-numbers, LostConnectionError if
        the server went away (it re-queues the job).
        """
        for value in (numerator, denominator):
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise InvalidTypeError("numerator and denominator must be numbers")
        self._legacy_send(current_job, C.GEARMAN_COMMAND_WORK_STATUS, int(numerator), int(denominator))

    def send_job_data(self, current_job: GearmanJob, data: Any,
                      poll_timeout: Optional[float] = None) -> None:
        """Send WORK_DATA with ``data_encoder.encode(data)``."""
        if _ended(current_job):
            return
        self._legacy_send(current_job, C.GEARMAN_COMMAND_WORK_DATA, self.data_encoder.encode(data))

    def send_job_warning(self, current_job: GearmanJob, data: Any,
                         poll_timeout: Optional[float] = None) -> None:
        """Send WORK_WARNING with ``data_encoder.encode(data)``."""
        if _ended(current_job):
            return
        self._legacy_send(current_job, C.GEARMAN_COMMAND_WORK_WARNING, self.data_encoder.encode(data))

    def send_job_complete(self, current_job: GearmanJob, data: Any,
                          poll_timeout: Optional[float] = None) -> None:
        """Finish the job with WORK_COMPLETE and ``data_encoder.encode(data)``.

        Raises whatever the encoder raises (TypeError for a non-bytes result
        with the default encoder) before anything is sent.  Once the job ended
        (completed or failed), does nothing: the encoder is not called either.
        """
        if _ended(current_job):
            return
        self._legacy_send(current_job, C.GEARMAN_COMMAND_WORK_COMPLETE,
                          self.data_encoder.encode(data), final=True)

    def send_job_failure(self, current_job: GearmanJob, poll_timeout: Optional[float] = None) -> None:
        """Finish the job with WORK_FAIL."""
        self._legacy_send(current_job, C.GEARMAN_COMMAND_WORK_FAIL, final=True)

    def send_job_exception(self, current_job: GearmanJob, data: Any,
                           poll_timeout: Optional[float] = None) -> None:
        """Finish the job with WORK_EXCEPTION carrying ``data_encoder.encode(data)``.

        Clients that asked for exceptions get the payload; gearmand tells the
        others WORK_FAIL.  An empty payload sends WORK_FAIL.
        """
        if _ended(current_job):
            return
        payload = self.data_encoder.encode(data)
        if not payload:
            self.send_job_failure(current_job)
            return
        self._legacy_send(current_job, C.GEARMAN_COMMAND_WORK_EXCEPTION, payload, final=True)

    def wait_until_updates_sent(self, multiple_gearman_jobs: Any,
                                poll_timeout: Optional[float] = None) -> None:
        """Return at once: each ``send_job_*`` already waited until the kernel took its packet."""

    _PECL_SENDERS = {
        C.GEARMAN_COMMAND_WORK_STATUS: "sendStatus",
        C.GEARMAN_COMMAND_WORK_DATA: "sendData",
        C.GEARMAN_COMMAND_WORK_WARNING: "sendWarning",
        C.GEARMAN_COMMAND_WORK_COMPLETE: "sendComplete",
        C.GEARMAN_COMMAND_WORK_FAIL: "sendFail",
        C.GEARMAN_COMMAND_WORK_EXCEPTION: "sendException",
    }

    def _legacy_send(self, current_job: GearmanJob, cmd: int, *args: Any, final: bool = False) -> None:
        if getattr(current_job, "_legacy_abandoned", False):
            return                      # shutdown() from inside the job: gearmand re-queues it
        pecl = getattr(current_job, "_pecl", None)
        if pecl is not None:
            # through the PECL job: it ignores sends after the job ended
            getattr(pecl, self._PECL_SENDERS[cmd])(*args)
        else:
            # a GearmanJob built by hand: write straight to its server
            if getattr(current_job, "_legacy_final", False):
                return
            core = self._legacy_core_of(current_job.connection)
            if core is None:
                raise InvalidArgumentError(f"job {current_job.handle!r} has no connection of this worker")
            wire = [str(a) if isinstance(a, int) else a for a in args]
            self._engine.send(core, cmd, current_job.handle, *wire)
        if final:
            current_job._legacy_final = True
