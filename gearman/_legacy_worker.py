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

What the mixin needs from the class it is mixed into (``GearmanWorker``):
``self._engine`` (a ``gearman._core.WorkerEngine``), ``self._lock`` (a
re-entrant ``gearman._core.ClientLock``), ``self._callbacks`` (function name bytes -> ``(callable, context)``)
and ``self._run_job(pecl_job)``; the PECL job class
``gearman.worker.GearmanJob`` with its public ``send*`` methods and its
``_conn`` slot; and, for the ``work()`` dispatch, either a ``_work_one()``
method or a ``work()`` later in the MRO (the PECL one-job ``work``), plus the
``_host_list_given`` flag set by ``__init__``.  It defines no ``__init__``.

Differences from python-gearman, all deliberate (PYTHON_GEARMAN_API.md 14):

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
  round (every ``poll_timeout`` seconds), no server can be reached.
* Connections are closed when ``work()`` returns and by ``shutdown()`` only
  if the engine has ``disconnect()`` (closing without tearing the engine down);
  without it they stay open after ``work()``, and ``shutdown()`` is final.
"""
from __future__ import annotations

import logging
import socket
import sys
import time
from typing import Any, Callable, Dict, List, Optional, Union

from gearman import _core
from gearman import constants as C
from gearman.connection import GearmanConnection, add_server_with_tls
from gearman.connection_manager import GearmanConnectionManager
from gearman.errors import (
    ConnectionError as _GearmanConnectionError,
    GearmanError,
    GearmanTimeoutError,
    InvalidArgumentError,
    InvalidTypeError,
    InvalidWorkerState,
    ServerUnavailable,
)
from gearman.job import GearmanJob
from gearman.util import disambiguate_server_parameter, host_tls_context

__all__ = ["LegacyWorkerMixin", "POLL_TIMEOUT_IN_SECONDS"]

log = logging.getLogger("gearman.worker")

#: python-gearman's ``gearman.worker.POLL_TIMEOUT_IN_SECONDS``.
POLL_TIMEOUT_IN_SECONDS = 60.0

_UNSET: Any = object()
_PECL_JOB: Any = None       # gearman.worker.GearmanJob, imported on first use (import cycle)


def _ended(job: Any) -> bool:
    """True once WORK_COMPLETE/FAIL/EXCEPTION went out for ``job``: later sends are dropped."""
    return bool(getattr(job, "_legacy_final", False))


def _pecl_job_class() -> Any:
    global _PECL_JOB
    if _PECL_JOB is None:
        from gearman.worker import GearmanJob as pecl_job
        _PECL_JOB = pecl_job
    return _PECL_JOB


class LegacyWorkerMixin(GearmanConnectionManager):
    """python-gearman's ``GearmanWorker`` methods; mix into the PECL ``GearmanWorker``."""

    # provided by the class this is mixed into (GearmanWorker)
    _engine: Any
    _lock: Any
    _callbacks: Dict[bytes, Any]
    _run_job: Callable[[Any], Any]

    # -- connections ---------------------------------------------------------------------

    @property
    def connection_list(self) -> List[GearmanConnection]:
        """One :class:`GearmanConnection` per server, in the order added."""
        return [v for v in map(self._wrap_connection, self._engine.servers) if v is not None]

    def add_connection(self, hostport_tuple: Any) -> GearmanConnection:
        """Add a server (``'host[:port]'``, ``(host, port)`` or dict); return its connection.

        A dict with ``keyfile``, ``certfile`` and ``ca_certs`` all set makes a
        TLS connection to that server (see :func:`gearman.util.tls_context`).
        A worker given its servers this way is a python-gearman worker:
        ``work()`` without arguments loops as python-gearman's did.
        """
        host, port = disambiguate_server_parameter(hostport_tuple)
        tls = host_tls_context(hostport_tuple)
        with self._lock:
            view = self._wrap_connection(add_server_with_tls(self._engine, host, port, tls))
            self._host_list_given = True
        assert view is not None
        return view

    def shutdown(self) -> None:
        """Close every connection.

        With an engine that can disconnect without being torn down
        (``WorkerEngine.disconnect``), the worker stays usable and the next
        ``work()`` reconnects, as in python-gearman.  Otherwise the worker is
        closed for good and a later ``work()`` raises InvalidWorkerState rather
        than returning at once (which would make a retry loop spin).
        """
        if self._legacy_disconnect():
            return
        self.__dict__["_legacy_closed"] = True
        close = getattr(self, "close", None)
        if close is not None:
            close()
        else:
            self._engine.close()

    def _legacy_disconnect(self) -> bool:
        """Close the connections but keep the worker usable, if the engine can; True if done."""
        disconnect = getattr(self._engine, "disconnect", None)
        if disconnect is None:
            return False
        with self._lock:
            disconnect()
        return True

    # -- abilities ----------------------------------------------------------------------

    def _legacy_abilities(self) -> Dict[bytes, Callable[..., Any]]:
        table = self.__dict__.get("_legacy_ability_table")
        if table is None:
            table = self.__dict__["_legacy_ability_table"] = {}
        return table

    @property
    def worker_abilities(self) -> Dict[str, Callable[..., Any]]:
        """``{task name (str): callback}`` of the functions registered with register_task."""
        return {name.decode("utf-8", "surrogateescape"): cb
                for name, cb in self._legacy_abilities().items()}

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
            self._legacy_abilities()[name] = callback
            self._callbacks[name] = (self._legacy_run_job, None)
            self._engine.functions[name] = 0
            self._engine.abilities_changed()
        return task

    def unregister_task(self, task: Union[str, bytes]) -> Union[str, bytes]:
        """Stop serving ``task``; return it."""
        name = _core.validate_function_name(task)
        with self._lock:
            self._legacy_abilities().pop(name, None)
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
        ``poll_timeout`` is given): loop until :meth:`after_poll` or
        :meth:`after_job` returns False, then return None.  ``poll_timeout``
        (seconds, default 60, None = no limit) is the length of one round:
        ``after_poll(False)`` is called when no job came for that long, and each
        round starts by checking that a server is reachable, raising
        ServerUnavailable if none is.  ``stop()`` from another thread ends the
        loop too.

        PECL style (``GearmanWorker()`` plus ``addServer``, no argument): handle
        one job and return True/False (see the PECL ``work``).
        """
        if poll_timeout is _UNSET:
            if not getattr(self, "_host_list_given", False):
                work_one = getattr(self, "_work_one", None)
                if work_one is not None:
                    return bool(work_one())
                # the PECL one-job work() later in the MRO, which the mixin's own
                # bases (all mypy sees) do not have
                return bool(getattr(super(), "work")())
            poll_timeout = POLL_TIMEOUT_IN_SECONDS
        if self.__dict__.get("_legacy_closed"):
            raise InvalidWorkerState("this worker was shut down; create a new GearmanWorker")
        try:
            # the loop grabs again after every job: the GRAB rides with the result
            self._engine.eager_grab = True
            self._legacy_work(None if poll_timeout is None else float(poll_timeout))
        finally:
            self._engine.eager_grab = False
            # python-gearman closed its connections when work() ended (which
            # also returns a job assigned to a GRAB in flight to the queue)
            self._legacy_disconnect()
        return None

    def _legacy_work(self, poll_timeout: Optional[float]) -> None:
        engine = self._engine
        pecl_job = _pecl_job_class()
        while True:
            self._legacy_check_reachable()
            if not self.after_poll(False):
                return
            deadline = None if poll_timeout is None else time.monotonic() + poll_timeout
            while True:
                if deadline is None:
                    remaining = -1.0
                else:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        break                   # next round: check the servers again
                found = None
                if not engine.functions:
                    # nothing to grab: idle like python-gearman's poll loop did
                    time.sleep(0.2 if remaining < 0 else min(remaining, 0.2))
                    if getattr(engine, "stopping", False):
                        return
                else:
                    with self._lock:
                        found = engine.grab(remaining, True)
                        if found is not None:
                            found._worker = self
                            self._run_job(found)
                if found is not None:
                    if not self.after_job():
                        return
                elif engine.functions and (deadline is None or time.monotonic() < deadline):
                    return                      # woken up early: stop() was called
                if not self.after_poll(found is not None):
                    return

    def _legacy_check_reachable(self) -> None:
        """Raise ServerUnavailable unless some server is connected or accepts a connection."""
        engine = self._engine
        if not engine.servers:
            raise ServerUnavailable("Found no valid connections in list: []")
        if any(c.connected for c in engine.servers):
            return
        for c in engine.servers:
            try:
                socket.create_connection((c.host, c.port), timeout=engine.connect_timeout).close()
                return
            except OSError:
                continue
        raise ServerUnavailable(f"Found no valid connections in list: {self.connection_list!r}")

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
        if not job._legacy_final:
            log.warning("job %s (%s) was neither completed nor failed by the worker's hooks; "
                        "sending WORK_FAIL", job.handle, job.task)
            self.send_job_failure(job)

    def on_job_execute(self, current_job: GearmanJob) -> bool:
        """Run the job's callback; route to :meth:`on_job_complete` or :meth:`on_job_exception`."""
        try:
            callback = self._legacy_abilities()[_core.validate_function_name(current_job.task)]
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

    _PECL_SENDERS = {
        C.GEARMAN_COMMAND_WORK_STATUS: "sendStatus",
        C.GEARMAN_COMMAND_WORK_DATA: "sendData",
        C.GEARMAN_COMMAND_WORK_WARNING: "sendWarning",
        C.GEARMAN_COMMAND_WORK_COMPLETE: "sendComplete",
        C.GEARMAN_COMMAND_WORK_FAIL: "sendFail",
        C.GEARMAN_COMMAND_WORK_EXCEPTION: "sendException",
    }

    def _legacy_send(self, current_job: GearmanJob, cmd: int, *args: Any, final: bool = False) -> None:
        pecl = getattr(current_job, "_pecl", None)
        if pecl is not None:
            # through the PECL job: it ignores sends after the job ended
            getattr(pecl, self._PECL_SENDERS[cmd])(*args)
        else:
            # a GearmanJob built by hand: write straight to its server
            if getattr(current_job, "_legacy_final", False):
                return
            core = self._legacy_core_connection(current_job.connection)
            if core is None:
                raise InvalidArgumentError(f"job {current_job.handle!r} has no connection of this worker")
            wire = [str(a) if isinstance(a, int) else a for a in args]
            self._engine.send(core, cmd, current_job.handle, *wire)
        if final:
            current_job._legacy_final = True        # type: ignore[attr-defined]

    def _legacy_core_connection(self, connection: Any) -> Any:
        if connection is None:
            return None
        core = getattr(connection, "_core", connection)
        for c in self._engine.servers:
            if c is core:
                return c
        key = getattr(connection, "key", None)
        for c in self._engine.servers:
            if c.key == key:
                return c
        return None
