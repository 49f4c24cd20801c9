"""The PECL client: ``GearmanClient``'s PECL methods (PEP 8 aliases included) and ``GearmanTask``.

The public ``gearman.GearmanClient`` (``gearman.client``) is this class with
the python-gearman methods added on top (docs/design.md, "Layers").

Blocking calls (``do*``, ``jobStatus``, ``ping``) raise a subclass of
:class:`gearman.errors.GearmanError` on failure and also record the outcome,
so ``returnCode()``, ``error()`` and ``getErrno()`` report the last call as
PECL does.  One lock per client makes it safe to share between threads
(calls are serialised); a callback must not call back into the client that
is running it.
"""
from __future__ import annotations

import inspect
from typing import Any, Callable, List, Optional, Tuple, TypeVar, Union, cast

from gearman import _config, _core, events
from gearman import constants as C
from gearman._aliases import CLIENT_METHODS, TASK_METHODS, add_pep8_aliases
from gearman.errors import (
    no_engine_error,
    BatchError,
    GearmanError,
    GearmanTimeoutError,
    InvalidArgumentError,
    InvalidTypeError,
)

__all__ = ["PeclClient", "GearmanTask", "FOREGROUND", "BACKGROUND", "task_outcome"]

Payload = Union[bytes, bytearray, memoryview, str]
_F = TypeVar("_F", bound=Callable[..., Any])

#: the SUBMIT_JOB* command by priority name, foreground and background
FOREGROUND = {p: cmd for (bg, p), cmd in C.SUBMIT_COMMANDS.items() if not bg}
BACKGROUND = {p: cmd for (bg, p), cmd in C.SUBMIT_COMMANDS.items() if bg}
# the do* commands as module globals: one dict lookup each on the hot path
_SUBMIT_JOB = C.GEARMAN_COMMAND_SUBMIT_JOB
_SUBMIT_JOB_HIGH = C.GEARMAN_COMMAND_SUBMIT_JOB_HIGH
_SUBMIT_JOB_LOW = C.GEARMAN_COMMAND_SUBMIT_JOB_LOW
_SUBMIT_JOB_BG = C.GEARMAN_COMMAND_SUBMIT_JOB_BG
_SUBMIT_JOB_HIGH_BG = C.GEARMAN_COMMAND_SUBMIT_JOB_HIGH_BG
_SUBMIT_JOB_LOW_BG = C.GEARMAN_COMMAND_SUBMIT_JOB_LOW_BG
# Options setOptions() may change (libgearman 1.1.20 set_options semantics).
_SETTABLE = (C.GEARMAN_CLIENT_NON_BLOCKING | C.GEARMAN_CLIENT_UNBUFFERED_RESULT
             | C.GEARMAN_CLIENT_FREE_TASKS | C.GEARMAN_CLIENT_GENERATE_UNIQUE
             | C.GEARMAN_CLIENT_EXCEPTION | C.GEARMAN_CLIENT_SSL)


_EV = _core.EVENT_INDEX

def _two_args(callback: Callable[..., Any]) -> Callable[[Any, Any], Any]:
    """Callbacks take (task, context) or (task): decided once, when set."""
    try:
        sig = inspect.signature(callback)
    except (TypeError, ValueError):
        return callback
    positional = 0
    for p in sig.parameters.values():
        if p.kind is p.VAR_POSITIONAL:
            return callback
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD):
            positional += 1
    if positional >= 2:
        return callback
    return lambda task, context: callback(task)


class GearmanTask(_core.Task):
    """A task of :class:`GearmanClient` (PECL ``GearmanTask``); made by the client."""

    __slots__ = ()
    __module__ = "gearman.client"   # its public home (repr, pickling by reference)


add_pep8_aliases(GearmanTask, [m for m in TASK_METHODS if hasattr(GearmanTask, m)])


#: What a do* call returns for a finished task, or the error it raises (compiled:
#: ``_core.ClientCore``'s do* calls use the same function).
task_outcome = _core.task_outcome


class PeclClient(_core.ClientCore):
    """A Gearman client with PECL's API (the base of ``gearman.GearmanClient``).

    ``addServer()``/``addServers()``; with no server added, the servers
    ``$GEARMAN_SERVERS`` names (``"h1:4730,h2"``), else the first call raises
    NoServersError (docs/design.md, "Configuration").  ``timeout`` is PECL's
    :meth:`setTimeout` in milliseconds; ``connect_timeout`` is in seconds;
    ``keepalive`` and ``tcp_user_timeout`` bound how long a dead peer goes
    unnoticed (docs/reliability.md §5).
    """

    _engine: _core.ClientEngine

    def __init__(self, *, timeout: Optional[int] = None, connect_timeout: float = 5.0,
                 max_packet_size: int = _config.MAX_PACKET_SIZE, ssl_context: Any = None,
                 keepalive: Optional[Tuple[int, int, int]] = _config.KEEPALIVE,
                 tcp_user_timeout: Optional[float] = None) -> None:
        engine = _config.Transport(connect_timeout, max_packet_size, ssl_context, keepalive,
                                   tcp_user_timeout).apply(_core.ClientEngine())
        engine.task_type = GearmanTask
        engine.exceptions = False
        self._engine = engine
        # event listeners (gearman.events): _events, held by the engine
        events.attach(self)
        # self._lock: a _core.ClientLock, made by ClientCore
        # _rc, _error, _errno, _job_handle: fields of _core.ClientCore
        self._options = C.GEARMAN_CLIENT_FREE_TASKS
        self._timeout_ms = -1 if timeout is None else _config.check_ms(timeout)
        self._context: Any = ""
        self._new_tasks = []
        self._cb_table = [None] * len(_core.EVENTS)
        self._has_cb = False        # any(self._cb_table), kept current by its setters

    # -- outcome bookkeeping -------------------------------------------------------

    def _ok(self) -> None:
        self._rc = C.GEARMAN_SUCCESS
        self._error = ""
        self._errno = 0

    def returnCode(self) -> int:
        """Return the code of the last operation (``GEARMAN_SUCCESS``, ``GEARMAN_TIMEOUT``...)."""
        return self._rc

    def error(self) -> Union[str, bool]:
        """Return the last error text; ``False`` on a fresh client, ``''`` after a success."""
        return self._error

    def getErrno(self) -> int:
        """Return the system errno of the last failure (0 if none)."""
        return self._errno

    # -- servers -------------------------------------------------------------------

    def addServer(self, host: Optional[str] = None, port: int = 0,
                  setupExceptionHandler: bool = True) -> bool:
        """Add a job server (no I/O: unlike PECL, a down server is found at first use).

        ``host`` None or '' means localhost, ``port`` 0 means 4730.  Returns True.
        Raises InvalidTypeError / InvalidArgumentError for a bad host or port.
        """
        if host is None or host == "":
            host = C.GEARMAN_DEFAULT_TCP_HOST
        if not isinstance(host, str):
            raise InvalidTypeError(f"host must be a str, not {type(host).__name__}")
        if isinstance(port, bool) or not isinstance(port, int):
            raise InvalidTypeError(f"port must be an int, not {type(port).__name__}")
        if not 0 <= port <= 65535:
            raise InvalidArgumentError(f"port {port} out of range")
        with self._lock:
            self._add(_config.Server(host, port or C.GEARMAN_DEFAULT_TCP_PORT))
            if setupExceptionHandler:
                self._engine.exceptions = True
            self._ok()
        return True

    def addServers(self, servers: Any = None, setupExceptionHandler: bool = True) -> bool:
        """Add servers from ``"h1:4730,h2,[::1]:4731"`` (or any server list
        docs/design.md names); None means localhost:4730, as in PECL."""
        for s in _config.parse_servers(servers) or _config.parse_servers(_config.TOOL_DEFAULT):
            self._add(s)
        if setupExceptionHandler:
            self._engine.exceptions = True
        self._ok()
        return True

    def _add(self, server: _config.Server) -> Any:
        """Add one parsed server (its own TLS context, if any); return the engine's connection."""
        if self._engine is None:
            raise no_engine_error("client")
        with self._lock:
            return self._engine.add_server(server.host, server.port, server.tls)

    def _default_servers(self) -> None:
        """No server added: the servers GEARMAN_SERVERS names (the core's one fallback)."""
        if not self._engine.servers:
            _config.add_to_engine(self._engine, _config.env_servers())

    @property
    def servers(self) -> List[str]:
        """``host:port`` of every server, in the order added."""
        return [c.key for c in self._engine.servers]

    def enableExceptionHandler(self) -> bool:
        """Ask servers for WORK_EXCEPTION packets (sent on every (re)connect)."""
        self._engine.exceptions = True
        return True

    # -- options, timeout, context ---------------------------------------------------

    def options(self) -> int:
        """Return the option bits (``GEARMAN_CLIENT_*``)."""
        return self._options

    def setOptions(self, options: int) -> bool:
        """Replace the settable option bits, as libgearman's set_options does."""
        self._options = (self._options & ~_SETTABLE) | (int(options) & _SETTABLE)
        self._apply_options()
        return True

    def addOptions(self, options: int) -> bool:
        """Turn option bits on."""
        self._options |= int(options) & _SETTABLE
        self._apply_options()
        return True

    def removeOptions(self, options: int) -> bool:
        """Turn option bits off (EXCEPTION and SSL cannot be removed, as in libgearman)."""
        self._options &= ~(int(options) & _SETTABLE & ~(C.GEARMAN_CLIENT_EXCEPTION | C.GEARMAN_CLIENT_SSL))
        self._apply_options()
        return True

    def _apply_options(self) -> None:
        if self._options & C.GEARMAN_CLIENT_EXCEPTION:
            self._engine.exceptions = True

    @property
    def generate_unique(self) -> bool:
        """Whether jobs without a unique get a generated one (default True); False sends ''."""
        return bool(self._engine.generate_unique)

    @generate_unique.setter
    def generate_unique(self, value: bool) -> None:
        self._engine.generate_unique = bool(value)

    def timeout(self) -> int:
        """Return the timeout in milliseconds (-1: none)."""
        return self._timeout_ms

    def setTimeout(self, timeout: int) -> bool:
        """Limit each blocking call to ``timeout`` ms (-1: wait as long as the job runs).

        Unlike libgearman, which restarts its timer on every packet, the limit
        covers the whole call, so no call outlives it.
        """
        self._timeout_ms = _config.check_ms(timeout)
        return True

    def _seconds(self) -> float:
        return _config.ms_to_engine(self._timeout_ms)

    def context(self) -> Any:
        """Return the application context (``''`` when unset)."""
        return self._context

    def setContext(self, context: Any) -> bool:
        """Set the application context."""
        self._context = context
        return True

    data = context          # PECL <= 0.5 names
    setData = setContext

    @property
    def max_packet_size(self) -> int:
        return int(self._engine.max_packet_size)

    # -- the do-family ---------------------------------------------------------------

    def doNormal(self, function_name: Union[str, bytes], workload: Payload,
                 unique: Optional[Union[str, bytes]] = None) -> bytes:
        """Run a job at normal priority and wait for it; return its result (bytes).

        The result is every WORK_DATA payload followed by the WORK_COMPLETE one,
        as libgearman 1.1.20 returns it.  Raises JobFailedError (WORK_FAIL),
        JobExceptionError (WORK_EXCEPTION, ``payload`` set), GearmanTimeoutError,
        ServerUnavailable, LostConnectionError (the outcome is unknown),
        InvalidArgumentError / InvalidTypeError for bad arguments.
        """
        return self._do_wait(_SUBMIT_JOB, function_name, workload, unique)

    def doHigh(self, function_name: Union[str, bytes], workload: Payload,
               unique: Optional[Union[str, bytes]] = None) -> bytes:
        """As :meth:`doNormal`, at high priority."""
        return self._do_wait(_SUBMIT_JOB_HIGH, function_name, workload, unique)

    def doLow(self, function_name: Union[str, bytes], workload: Payload,
              unique: Optional[Union[str, bytes]] = None) -> bytes:
        """As :meth:`doNormal`, at low priority."""
        return self._do_wait(_SUBMIT_JOB_LOW, function_name, workload, unique)

    def do(self, function_name: Union[str, bytes], workload: Payload,
           unique: Optional[Union[str, bytes]] = None) -> bytes:
        """Deprecated PECL name of :meth:`doNormal`."""
        return self.doNormal(function_name, workload, unique)

    def doBackground(self, function_name: Union[str, bytes], workload: Payload,
                     unique: Optional[Union[str, bytes]] = None) -> str:
        """Queue a background job at normal priority; return its job handle (str).

        Returns once the server accepted the job (JOB_CREATED).  A job with the
        same function and unique that is still queued or running is reused: its
        handle comes back and this workload is ignored.  Raises as doNormal.
        """
        return self._do_background(_SUBMIT_JOB_BG, function_name, workload, unique)

    def doHighBackground(self, function_name: Union[str, bytes], workload: Payload,
                         unique: Optional[Union[str, bytes]] = None) -> str:
        """As :meth:`doBackground`, at high priority."""
        return self._do_background(_SUBMIT_JOB_HIGH_BG, function_name, workload, unique)

    def doLowBackground(self, function_name: Union[str, bytes], workload: Payload,
                        unique: Optional[Union[str, bytes]] = None) -> str:
        """As :meth:`doBackground`, at low priority."""
        return self._do_background(_SUBMIT_JOB_LOW_BG, function_name, workload, unique)

    def doJobHandle(self) -> str:
        """Return the handle of the last background do* call ('' if none)."""
        return self._job_handle

    def doStatus(self) -> List[int]:
        """Return ``[numerator, denominator]``: always ``[0, 0]``, as libgearman >= 0.2x."""
        return [0, 0]

    # -- status and echo ------------------------------------------------------------

    def _run_requests(self, tasks: List[Any], left: float) -> None:
        engine = self._engine
        try:
            engine.run(tasks, left)
        except BaseException:
            for t in tasks:
                engine.abandon(t)
            raise

    def jobStatus(self, job_handle: Union[str, bytes]) -> List[Any]:
        """Return ``[known, running, numerator, denominator]`` of a job.

        Asks the server that issued the handle (or, for a handle this client
        did not make, every server: the first that knows it answers).  A
        finished or unknown job gives ``[False, False, 0, 0]``.  Raises
        ServerUnavailable if no server could be asked, GearmanTimeoutError,
        InvalidArgumentError / InvalidTypeError for a bad handle.
        """
        return self._job_status(job_handle)

    def jobStatusByUniqueKey(self, unique_key: Union[str, bytes]) -> List[Any]:
        """Return ``[known, running, numerator, denominator]`` by unique (GET_STATUS_UNIQUE).

        Asks every server (gearmand looks uniques up across functions).
        """
        left = self._begin_call()       # the timeout counts waiting for another thread's call
        try:
            engine = self._engine
            try:
                self._default_servers()
                if not engine.servers:      # (it asks each server: none would be an IndexError)
                    raise _config.no_servers_error()
                tasks = []
                for c in list(engine.servers):
                    t = engine.new_request(_core.KIND_STATUS_UNIQUE, unique_key)
                    engine.submit_to(c, t)
                    tasks.append(t)
                self._run_requests(tasks, left)
                answered = [t for t in tasks if t.exception is None]
                if not answered:
                    raise cast(BaseException, tasks[0].exception)
                for t in answered:
                    if t.isKnown():
                        return [True, bool(t.isRunning()), t.taskNumerator(), t.taskDenominator()]
            except BaseException as exc:
                self._failed(exc)
                raise
            return [False, False, 0, 0]
        finally:
            self._lock.release()

    def ping(self, workload: Payload = b"") -> bool:
        """Send ECHO_REQ to every server and check each echoes it; return True.

        Raises ServerUnavailable / LostConnectionError if a server cannot be
        reached, GearmanError (GEARMAN_ECHO_DATA_CORRUPTION) on a wrong echo.
        """
        left = self._begin_call()       # the timeout counts waiting for another thread's call
        try:
            engine = self._engine
            try:
                self._default_servers()
                tasks = []
                expected = None
                for c in list(engine.servers):
                    t = engine.new_request(_core.KIND_ECHO, workload)
                    expected = t.workload()
                    engine.submit_to(c, t)
                    tasks.append(t)
                if not tasks:
                    engine.submit(engine.new_request(_core.KIND_ECHO, workload))  # raises
                self._run_requests(tasks, left)
                for t in tasks:
                    if t.exception is not None:
                        raise t.exception
                    if t.result != expected:
                        raise GearmanError(f"server {t.server} echoed different bytes",
                                           code=C.GEARMAN_ECHO_DATA_CORRUPTION)
            except BaseException as exc:
                self._failed(exc)
                raise
            self._ok()
            return True
        finally:
            self._lock.release()

    echo = ping  # deprecated PECL name


    # -- concurrent tasks (addTask* + runTasks) ---------------------------------------

    # (the addTask* methods return the engine's task_type, a GearmanTask: the
    # ignore comments say so to mypy, for which _add_submit gives a _core.Task)

    def addTask(self, function_name: Union[str, bytes], workload: Payload, context: Any = None,
                unique: Optional[Union[str, bytes]] = None) -> GearmanTask:
        """Queue a foreground task for :meth:`runTasks` (no I/O); return it.

        Raises InvalidArgumentError / InvalidTypeError for bad arguments.
        """
        return self._add_submit(_SUBMIT_JOB, function_name, workload, context, unique)  # type: ignore[return-value]

    def addTaskHigh(self, function_name: Union[str, bytes], workload: Payload, context: Any = None,
                    unique: Optional[Union[str, bytes]] = None) -> GearmanTask:
        """As :meth:`addTask`, at high priority."""
        return self._add_submit(_SUBMIT_JOB_HIGH, function_name, workload, context, unique)  # type: ignore[return-value]

    def addTaskLow(self, function_name: Union[str, bytes], workload: Payload, context: Any = None,
                   unique: Optional[Union[str, bytes]] = None) -> GearmanTask:
        """As :meth:`addTask`, at low priority."""
        return self._add_submit(_SUBMIT_JOB_LOW, function_name, workload, context, unique)  # type: ignore[return-value]

    def addTaskBackground(self, function_name: Union[str, bytes], workload: Payload,
                          context: Any = None, unique: Optional[Union[str, bytes]] = None) -> GearmanTask:
        """Queue a background task: it finishes at JOB_CREATED (created callback)."""
        return self._add_submit(_SUBMIT_JOB_BG, function_name, workload, context, unique)  # type: ignore[return-value]

    def addTaskHighBackground(self, function_name: Union[str, bytes], workload: Payload,
                              context: Any = None, unique: Optional[Union[str, bytes]] = None) -> GearmanTask:
        """As :meth:`addTaskBackground`, at high priority."""
        return self._add_submit(_SUBMIT_JOB_HIGH_BG, function_name, workload, context, unique)  # type: ignore[return-value]

    def addTaskLowBackground(self, function_name: Union[str, bytes], workload: Payload,
                             context: Any = None, unique: Optional[Union[str, bytes]] = None) -> GearmanTask:
        """As :meth:`addTaskBackground`, at low priority."""
        return self._add_submit(_SUBMIT_JOB_LOW_BG, function_name, workload, context, unique)  # type: ignore[return-value]

    def addTaskStatus(self, job_handle: Union[str, bytes], context: Any = None) -> GearmanTask:
        """Queue a status query; the status callback gets isKnown()/isRunning()/numbers."""
        try:
            task = self._engine.new_request(_core.KIND_STATUS, job_handle, context)
        except GearmanError as exc:
            self._failed(exc)
            raise
        if self._has_cb:
            task.callbacks = self._cb_table
        self._new_tasks.append(task)
        return cast(GearmanTask, task)

    def runTasks(self) -> bool:
        """Submit every added task (in the order added, pipelined over all servers) and
        process answers until all tasks finished or a callback paused.

        Returns True; ``returnCode()`` is GEARMAN_SUCCESS, or GEARMAN_PAUSE (or the
        callback's code) when a callback paused -- the next runTasks() re-delivers that
        event and goes on.  Job outcomes go to callbacks and task state; only
        transport failures raise (ServerUnavailable, LostConnectionError: the
        affected tasks carry the error too), and GearmanTimeoutError.  An exception
        raised by a callback propagates; the client stays usable.
        """
        left = self._begin_call()       # the timeout counts waiting for another thread's call
        try:
            engine = self._engine
            try:
                self._default_servers()
                new, self._new_tasks = self._new_tasks, []
                engine.submit_all(new)
                if self._options & C.GEARMAN_CLIENT_NON_BLOCKING:
                    rc = engine.run_nonblocking(None)
                    if rc == C.GEARMAN_IO_WAIT:
                        self._rc = C.GEARMAN_IO_WAIT
                        self._error = ""
                        return True
                else:
                    rc = engine.run(None, left)
                if rc == C.GEARMAN_PAUSE:
                    self._rc = engine.pause_code
                    self._error = ""
                    return True
                exc = _core.first_connection_error(new)
                if exc is not None:
                    raise exc
            except BaseException as exc:
                self._failed(exc)
                raise
            self._ok()
            return True
        finally:
            self._lock.release()

    def submit_batch(self, function_name: Union[str, bytes], workloads: Any, *,
                     uniques: Optional[List[Any]] = None, priority: str = "normal",
                     progress: Optional[Callable[[int, int], Any]] = None,
                     progress_every: int = 1000) -> List[str]:
        """Queue many background jobs of one function, pipelined over all servers.

        Returns the job handles, in the order of ``workloads``.  No per-job
        objects are made: this is the fast path for bulk submission.  Jobs
        with a unique in ``uniques`` (None or '' entries get a generated one)
        are routed by hash, as ``doBackground`` routes them.
        ``progress(done, total)`` is called every ``progress_every`` answers.
        Raises BatchError (with ``handles`` and ``errors``) if any job was not
        accepted, GearmanTimeoutError, NoServersError, and
        InvalidArgumentError / InvalidTypeError before anything is sent.
        """
        if priority not in BACKGROUND:
            raise InvalidArgumentError(f"priority must be one of {sorted(BACKGROUND)}")
        left = self._begin_call()       # the timeout counts waiting for another thread's call
        try:
            engine = self._engine
            try:
                if not engine.servers:
                    self._default_servers()
                batch = engine.submit_batch(BACKGROUND[priority], function_name, workloads,
                                            uniques, progress, progress_every)
                try:
                    engine.run(None, left)
                except GearmanTimeoutError as timeout:
                    # what was accepted stays known: the handles, and per job
                    # not accepted, why (the engine's, for every door)
                    engine.batch_timed_out(batch, timeout)
                    raise
                except BaseException:
                    engine.abandon_batch(batch)
                    raise
                if batch.errors:
                    first = batch.errors[min(batch.errors)]
                    raise BatchError(
                        f"{len(batch.errors)} of {batch.n} jobs were not accepted; "
                        f"first: {first}", code=first.code,
                        handles=batch.handles, errors=batch.errors)
            except BaseException as exc:
                self._failed(exc)
                raise
            self._ok()
            return cast(List[str], batch.handles)   # every job was accepted
        finally:
            self._lock.release()

    def wait(self) -> bool:
        """Wait (up to the timeout) until a connection can make progress.

        For non-blocking use: ``runTasks()`` returned with GEARMAN_IO_WAIT; call
        ``wait()`` then ``runTasks()`` again.  Returns False on timeout.
        """
        try:
            left = self._begin_call()   # the timeout counts waiting for another thread's call
        except GearmanTimeoutError:
            return False                # (recorded: GEARMAN_TIMEOUT)
        try:
            try:
                ready = self._engine.wait_ready(left)
            except GearmanError as exc:
                self._failed(exc)
                return False
            if not ready:
                self._rc = C.GEARMAN_TIMEOUT
                return False
            self._ok()
            return True
        finally:
            self._lock.release()

    def _set_callback(self, event: int, callback: Optional[Callable[..., Any]]) -> bool:
        if callback is not None and not callable(callback):
            raise InvalidTypeError("callback must be callable")
        self._cb_table[event] = _two_args(callback) if callback is not None else None
        self._has_cb = any(self._cb_table)
        return True

    def setCreatedCallback(self, callback: Callable[..., Any]) -> bool:
        """Call ``callback(task[, context])`` when a task's job is created."""
        return self._set_callback(_EV["created"], callback)

    def setDataCallback(self, callback: Callable[..., Any]) -> bool:
        """Call it for each WORK_DATA (``task.data()`` holds the chunk)."""
        return self._set_callback(_EV["data"], callback)

    def setWarningCallback(self, callback: Callable[..., Any]) -> bool:
        """Call it for each WORK_WARNING."""
        return self._set_callback(_EV["warning"], callback)

    def setStatusCallback(self, callback: Callable[..., Any]) -> bool:
        """Call it for each WORK_STATUS and for status tasks' answers."""
        return self._set_callback(_EV["status"], callback)

    def setCompleteCallback(self, callback: Callable[..., Any]) -> bool:
        """Call it when a job completes (``task.data()`` holds the result)."""
        return self._set_callback(_EV["complete"], callback)

    def setFailCallback(self, callback: Callable[..., Any]) -> bool:
        """Call it when a job fails (WORK_FAIL, or the server refused it)."""
        return self._set_callback(_EV["fail"], callback)

    def setExceptionCallback(self, callback: Callable[..., Any]) -> bool:
        """Call it on WORK_EXCEPTION (``task.data()`` holds the payload); enables exceptions."""
        self._engine.exceptions = True
        return self._set_callback(_EV["exception"], callback)

    def setWorkloadCallback(self, callback: Callable[..., Any]) -> bool:
        """Accepted for PECL compatibility; workloads are always sent whole."""
        return self._set_callback(_EV["workload"], callback)

    setClientCallback = setDataCallback   # PECL <= 0.5 name

    def clearCallbacks(self) -> bool:
        """Remove every callback."""
        for i in range(len(self._cb_table)):
            self._cb_table[i] = None
        self._has_cb = False
        return True

    # -- lifetime ---------------------------------------------------------------------

    def clone(self) -> "PeclClient":
        """Return a new client (of this class) with the same servers (each with its
        own TLS context), options, timeout and context."""
        other = type(self)(timeout=self._timeout_ms,
                           connect_timeout=self._engine.connect_timeout,
                           max_packet_size=self._engine.max_packet_size,
                           ssl_context=self._engine.ssl_context,
                           keepalive=self._engine.keepalive,
                           tcp_user_timeout=self._engine.tcp_user_timeout)
        for c in self._engine.servers:
            other._engine.add_server(c.host, c.port, c.ssl_context)
        other._engine.exceptions = self._engine.exceptions
        other._engine.generate_unique = self._engine.generate_unique
        other._options = self._options
        other._context = self._context
        return other

    def close(self) -> None:
        """Close every connection (the client can be used again: it reconnects)."""
        with self._lock:
            self._engine.close()

    def __enter__(self) -> "PeclClient":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<GearmanClient servers={self.servers}>"


add_pep8_aliases(PeclClient, CLIENT_METHODS)
