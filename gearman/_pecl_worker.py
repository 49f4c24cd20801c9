"""The PECL worker: ``GearmanWorker``'s PECL methods and ``GearmanJob`` (PEP 8 aliases included).

The public ``gearman.GearmanWorker`` (``gearman.worker``) is this class with
the python-gearman methods added on top (docs/design.md, "Layers").

``work()`` waits for one job, runs its callback and answers the job; it
returns True when a job was received and answered, whatever the callback did
(a callback that raised is answered with WORK_EXCEPTION and logged with its
traceback on the ``gearman.worker`` logger), and False only when no job could
be handled, with ``returnCode()`` saying why (``GEARMAN_TIMEOUT``,
``GEARMAN_NO_SERVERS``...). So ``while worker.work(): pass`` keeps serving.
"""
from __future__ import annotations

import logging
import signal
import threading
from typing import Any, Callable, Optional, Tuple, Union

from gearman import _config, _core, events
from gearman import constants as C
from gearman._aliases import JOB_METHODS, WORKER_METHODS, add_pep8_aliases
from gearman.errors import (
    no_engine_error,
    GearmanError,
    GearmanTimeoutError,
    InvalidArgumentError,
    InvalidTypeError,
)

__all__ = ["PeclWorker", "GearmanJob", "MAX_PREFETCH", "check_prefetch"]

log = logging.getLogger("gearman.worker")

Payload = Union[bytes, bytearray, memoryview, str]


def _to_bytes(data: Any, what: str) -> bytes:
    """bytes-like, str (UTF-8), None (empty) or a number (its text, as PECL does)."""
    return _core.to_payload(data, what)


#: largest ``prefetch`` a worker accepts (GRABs kept outstanding per connection)
MAX_PREFETCH = 1000


def check_prefetch(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidTypeError(f"prefetch must be an int, not {type(value).__name__}")
    if not 1 <= value <= MAX_PREFETCH:
        raise InvalidArgumentError(f"prefetch must be between 1 and {MAX_PREFETCH}, not {value}")
    return value


class GearmanJob(_core.WorkerJob):
    """A job given to a worker (PECL ``GearmanJob``).

    ``GearmanJob(worker, conn, handle, function, unique, workload, reducer=None)``;
    the fields live in the compiled base class, which the serve loop fills
    without calling ``__init__``.
    """

    __slots__ = ()
    __module__ = "gearman.worker"   # its public home (repr, pickling by reference)

    def handle(self) -> str:
        """Return the job handle."""
        return self._handle

    def functionName(self) -> str:
        """Return the function name."""
        return self._function.decode("utf-8", "surrogateescape")

    def unique(self) -> str:
        """Return the job's unique ID ('' if the worker grabbed without uniques)."""
        return self._unique.decode("utf-8", "surrogateescape")

    def workload(self) -> bytes:
        """Return the workload (bytes, binary-safe)."""
        return self._workload

    def workloadSize(self) -> int:
        """Return the workload's length in bytes."""
        return len(self._workload)

    def returnCode(self) -> int:
        """Return the code of the last send on this job."""
        return self._rc

    def setReturn(self, code: int) -> bool:
        """Set the code reported after the callback: non-success sends WORK_FAIL."""
        if isinstance(code, bool) or not isinstance(code, int) or not 0 <= code < C.GEARMAN_MAX_RETURN:
            raise InvalidArgumentError(f"return code {code!r} out of range")
        self._rc = code
        return True

    def _send(self, cmd: int, *args: Any, final: bool = False) -> bool:
        if self._finished:
            return True         # PECL: sends after the end are silent no-ops
        try:
            # a final packet frees the job's place in its connection's prefetch
            self._worker._engine.send(self._conn, cmd, self._handle, *args,
                                      job=self if final else None)
        except GearmanError as exc:
            self._rc = exc.code
            raise
        self._rc = C.GEARMAN_SUCCESS
        if final:
            self._finished = True
        return True

    def sendData(self, data: Payload) -> bool:
        """Send a WORK_DATA chunk to the waiting clients."""
        return self._send(C.GEARMAN_COMMAND_WORK_DATA, _to_bytes(data, "data"))

    def sendWarning(self, warning: Payload) -> bool:
        """Send a WORK_WARNING to the waiting clients."""
        return self._send(C.GEARMAN_COMMAND_WORK_WARNING, _to_bytes(warning, "warning"))

    def sendStatus(self, numerator: int, denominator: int) -> bool:
        """Send WORK_STATUS ``numerator/denominator`` (readable with jobStatus)."""
        for v in (numerator, denominator):
            if isinstance(v, bool) or not isinstance(v, int):
                raise InvalidTypeError("numerator and denominator must be ints")
        return self._send(C.GEARMAN_COMMAND_WORK_STATUS, str(numerator & 0xFFFFFFFF),
                          str(denominator & 0xFFFFFFFF))

    def sendComplete(self, result: Payload = b"") -> bool:
        """Finish the job with WORK_COMPLETE and ``result``."""
        return self._send(C.GEARMAN_COMMAND_WORK_COMPLETE, _to_bytes(result, "result"), final=True)

    def sendFail(self) -> bool:
        """Finish the job with WORK_FAIL."""
        return self._send(C.GEARMAN_COMMAND_WORK_FAIL, final=True)

    def sendException(self, exception: Payload) -> bool:
        """Finish the job with WORK_EXCEPTION carrying ``exception`` (not empty)."""
        payload = _to_bytes(exception, "exception")
        if not payload:
            raise InvalidArgumentError("an exception payload must not be empty")
        return self._send(C.GEARMAN_COMMAND_WORK_EXCEPTION, payload, final=True)

    # PECL <= 0.5 names
    complete = sendComplete
    data = sendData
    fail = sendFail
    exception = sendException
    status = sendStatus
    warning = sendWarning

    def __repr__(self) -> str:
        return f"<GearmanJob {self.functionName()!r} handle={self._handle!r}>"


add_pep8_aliases(GearmanJob, JOB_METHODS)


class PeclWorker(_core.WorkerCore):
    """A Gearman worker with PECL's API (the base of ``gearman.GearmanWorker``):
    ``addServer``, ``addFunction``, ``work``.  With no server added, the servers
    ``$GEARMAN_SERVERS`` names, else ``work()`` returns False with
    ``GEARMAN_NO_SERVERS`` (docs/design.md, "Configuration")."""

    def __init__(self, *, connect_timeout: float = 5.0,
                 max_packet_size: int = _config.MAX_PACKET_SIZE, ssl_context: Any = None,
                 prefetch: int = 1,
                 keepalive: Optional[Tuple[int, int, int]] = _config.KEEPALIVE,
                 tcp_user_timeout: Optional[float] = None) -> None:
        engine = _config.Transport(connect_timeout, max_packet_size, ssl_context, keepalive,
                                   tcp_user_timeout).apply(_core.WorkerEngine())
        engine.prefetch = check_prefetch(prefetch)
        engine.job_type = GearmanJob
        self._engine = engine
        # event listeners (gearman.events): _events, held by the engine
        events.attach(self)
        # _lock (a _core.ClientLock), _callbacks, _rc, _error, _errno, _options,
        # _timeout_ms: fields of _core.WorkerCore, which the compiled job loop reads
        self._callbacks = {}
        self._timeout_ms = -1
        self._exceptions = True     # report callback exceptions as WORK_EXCEPTION
        self._options = C.GEARMAN_WORKER_GRAB_UNIQ | C.GEARMAN_WORKER_GRAB_ALL | C.GEARMAN_WORKER_PACKET_INIT

    @property
    def prefetch(self) -> int:
        """Jobs each connection may hold: the one running plus those assigned
        ahead of it (GRABs kept outstanding).  1 (the default) takes the next
        job only when the current one is answered.  See docs/api.md
        "Prefetch" for the trade-off."""
        return int(self._engine.prefetch)

    @prefetch.setter
    def prefetch(self, value: int) -> None:
        with self._lock:
            self._engine.prefetch = check_prefetch(value)

    # -- outcome bookkeeping
    def returnCode(self) -> int:
        """Return the code of the last operation."""
        return self._rc

    def error(self) -> Union[str, bool]:
        """Return the last error text (False on a fresh worker)."""
        return self._error

    def getErrno(self) -> int:
        """Return the system errno of the last failure (0 if none)."""
        return self._errno

    def _set(self, rc: int, error: str = "") -> None:
        self._rc = rc
        self._error = error

    # -- servers and functions
    def addServer(self, host: Optional[str] = None, port: int = 0,
                  setupExceptionHandler: bool = True) -> bool:
        """Add a job server (no I/O until ``work()``); host None -> localhost, port 0 -> 4730."""
        if host is None or host == "":
            host = C.GEARMAN_DEFAULT_TCP_HOST
        if not isinstance(host, str):
            raise InvalidTypeError(f"host must be a str, not {type(host).__name__}")
        if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
            raise InvalidArgumentError(f"bad port {port!r}")
        self._add(_config.Server(host, port or C.GEARMAN_DEFAULT_TCP_PORT))
        self._exceptions = bool(setupExceptionHandler)
        self._set(C.GEARMAN_SUCCESS)
        return True

    def addServers(self, servers: Any = None, setupExceptionHandler: bool = True) -> bool:
        """Add servers from ``"h1:4730,h2"`` (or any server list docs/design.md
        names); None means localhost:4730, as in PECL."""
        for s in _config.parse_servers(servers) or _config.parse_servers(_config.TOOL_DEFAULT):
            self._add(s)
        self._exceptions = bool(setupExceptionHandler)
        self._set(C.GEARMAN_SUCCESS)
        return True

    def _add(self, server: _config.Server) -> Any:
        """Add one parsed server (its own TLS context, if any); return the engine's connection."""
        if self._engine is None:
            raise no_engine_error("worker")
        with self._lock:
            return self._engine.add_server(server.host, server.port, server.tls)

    def addFunction(self, function_name: Union[str, bytes], function: Callable[..., Any],
                    context: Any = None, timeout: int = 0) -> bool:
        """Register ``function(job, context)`` for ``function_name``.

        ``timeout`` is in seconds as PECL documents it (sent to gearmand as
        milliseconds; gearmand re-queues a job that runs longer).
        Raises InvalidTypeError if ``function`` is not callable.
        """
        if not callable(function):
            raise InvalidTypeError("function must be callable")
        return self._register(function_name, timeout, (function, context))

    def register(self, function_name: Union[str, bytes], timeout: int = 0) -> bool:
        """Register an ability without a callback (for grabJob)."""
        return self._register(function_name, timeout, None)

    def _register(self, function_name: Any, timeout: int, entry: Any) -> bool:
        name = _core.validate_function_name(function_name)
        if isinstance(timeout, bool) or not isinstance(timeout, int) or timeout < 0:
            raise InvalidArgumentError("timeout must be a non-negative int (seconds)")
        with self._lock:
            if entry is not None:
                self._callbacks[name] = entry
            self._engine.functions[name] = _config.seconds_to_ms(timeout)
            self._engine.abilities_changed()
        self._set(C.GEARMAN_SUCCESS)
        return True

    def unregister(self, function_name: Union[str, bytes]) -> bool:
        """Drop an ability."""
        name = _core.validate_function_name(function_name)
        with self._lock:
            self._callbacks.pop(name, None)
            self._engine.functions.pop(name, None)
            self._engine.abilities_changed()
        return True

    def unregisterAll(self) -> bool:
        """Drop every ability."""
        with self._lock:
            self._callbacks.clear()
            self._engine.functions.clear()
            self._engine.abilities_changed()
        return True

    def enableExceptionHandler(self) -> bool:
        """Report callback exceptions as WORK_EXCEPTION (the default here)."""
        self._exceptions = True
        return True

    def setId(self, worker_id: Union[str, bytes]) -> bool:
        """Name this worker (SET_CLIENT_ID, shown by gearadmin --workers)."""
        b = worker_id.encode("utf-8") if isinstance(worker_id, str) else worker_id
        if not isinstance(b, bytes) or not 0 < len(b) <= C.GEARMAN_MAX_IDENTIFIER or \
                any(ch <= 32 or ch >= 127 for ch in b):
            raise InvalidArgumentError("worker id must be 1..254 printable non-space characters")
        self._engine.client_id = b
        return True

    # -- options and timeout
    def options(self) -> int:
        """Return the option bits (``GEARMAN_WORKER_*``)."""
        return self._options

    def setOptions(self, options: int) -> bool:
        self._options = int(options) | C.GEARMAN_WORKER_PACKET_INIT
        self._apply_options()
        return True

    def addOptions(self, options: int) -> bool:
        self._options |= int(options)
        self._apply_options()
        return True

    def removeOptions(self, options: int) -> bool:
        self._options &= ~int(options)
        self._apply_options()
        return True

    def _apply_options(self) -> None:
        if self._options & C.GEARMAN_WORKER_GRAB_ALL:
            self._engine.grab_cmd = C.GEARMAN_COMMAND_GRAB_JOB_ALL
        elif self._options & C.GEARMAN_WORKER_GRAB_UNIQ:
            self._engine.grab_cmd = C.GEARMAN_COMMAND_GRAB_JOB_UNIQ
        else:
            self._engine.grab_cmd = C.GEARMAN_COMMAND_GRAB_JOB

    def timeout(self) -> int:
        """Return the timeout in ms (-1: none)."""
        return self._timeout_ms

    def setTimeout(self, timeout: int) -> bool:
        """``work()`` returns False with GEARMAN_TIMEOUT after ``timeout`` ms without a job."""
        self._timeout_ms = _config.check_ms(timeout)
        if self._timeout_ms >= 0:
            self._options |= C.GEARMAN_WORKER_TIMEOUT_RETURN
        return True

    # -- working
    def _default_servers(self) -> None:
        """No server added: the servers GEARMAN_SERVERS names (no I/O). With none,
        work() reports GEARMAN_NO_SERVERS, as the client raises NoServersError."""
        if not self._engine.servers:
            _config.add_to_engine(self._engine, _config.env_servers())

    def _grab(self, timeout: Optional[float] = None) -> Optional[GearmanJob]:
        """Wait for one job: ``timeout`` seconds as the engine takes them (-1.0: no
        limit), by default this worker's :meth:`timeout`."""
        engine = self._engine
        self._default_servers()
        block = not (self._options & C.GEARMAN_WORKER_NON_BLOCKING)
        job: Optional[GearmanJob] = engine.grab(
            _config.ms_to_engine(self._timeout_ms) if timeout is None else timeout, block)
        if job is not None:
            job._worker = self
        return job

    def _work_one(self) -> bool:
        """Wait for one job, run its callback, answer the job.

        Returns True when a job was received and answered, whatever the
        callback did; False when no job could be handled, with returnCode()
        GEARMAN_TIMEOUT (no job in time), GEARMAN_NO_JOBS (non-blocking, none
        ready), GEARMAN_NO_REGISTERED_FUNCTIONS, GEARMAN_NO_SERVERS,
        GEARMAN_LOST_CONNECTION (the answer could not be sent)...  The steps
        are compiled (``_core.WorkerEngine.work_one``, shared with serve()).
        """
        self._default_servers()
        try:
            self._begin_call()      # waiting for another thread's call counts as the timeout's
        except GearmanTimeoutError:
            return False            # (recorded: GEARMAN_TIMEOUT)
        try:
            rc: int = self._engine.work_one(self, GearmanJob)
        finally:
            self._lock.release()
        return rc == C.GEARMAN_SUCCESS

    def work(self) -> bool:
        """Wait for one job, run its callback and answer the job (PECL ``work()``).

        True when a job was received and answered, whatever the callback did;
        False when no job could be handled (``returnCode()`` says why).
        """
        return self._work_one()

    def _run_job(self, job: GearmanJob) -> bool:
        """Run the callback of a job already grabbed and answer it (as work() does)."""
        rc: int = self._engine.run_job(self, job)
        return rc == C.GEARMAN_SUCCESS

    def wait(self) -> bool:
        """Wait (up to the timeout) for activity from a server, for non-blocking use.

        After ``work()`` returned False with GEARMAN_NO_JOBS / GEARMAN_IO_WAIT, call
        ``wait()`` then ``work()`` again.  Returns False (GEARMAN_TIMEOUT) on timeout,
        False (GEARMAN_NO_ACTIVE_FDS) before any connection exists.
        """
        try:
            ready = self._engine.wait_ready(_config.ms_to_engine(self._timeout_ms))
        except GearmanError as exc:
            self._set(exc.code, str(exc))
            return False
        self._set(C.GEARMAN_SUCCESS if ready else C.GEARMAN_TIMEOUT)
        return bool(ready)

    def grabJob(self) -> Optional[GearmanJob]:
        """Take one job without running a callback; the caller must finish it."""
        try:
            left = self._begin_call()   # the timeout counts waiting for another thread's call
        except GearmanTimeoutError:
            return None                 # (recorded: GEARMAN_TIMEOUT)
        try:
            job = self._grab(left)
            self._set(C.GEARMAN_SUCCESS if job else C.GEARMAN_NO_JOBS)
            return job
        finally:
            self._lock.release()

    def stop(self) -> None:
        """Stop gracefully, from any thread or a signal handler.

        A job in progress finishes and its result is sent; nothing new is
        grabbed; the current (or next) ``work()`` returns False with
        ``GEARMAN_SHUTDOWN``.
        """
        self._engine.stopping = True
        self._engine.wake()

    def ping(self, workload: Payload = b"") -> bool:
        """Send ECHO_REQ to every server and check each echoes it; return True.

        Raises ServerUnavailable, LostConnectionError, GearmanTimeoutError, or
        GearmanError(GEARMAN_ECHO_DATA_CORRUPTION) on a wrong echo.
        """
        expected = _to_bytes(workload, "workload")
        left = self._begin_call()       # the timeout counts waiting for another thread's call
        try:
            self._default_servers()
            try:
                for echoed in self._engine.echo(expected, left):
                    if echoed != expected:
                        raise GearmanError("a server echoed different bytes",
                                           code=C.GEARMAN_ECHO_DATA_CORRUPTION)
            except GearmanError as exc:
                self._set(exc.code, str(exc))
                raise
        finally:
            self._lock.release()
        self._set(C.GEARMAN_SUCCESS)
        return True

    echo = ping   # PECL 2.0.x name

    def serve(self, handle_signals: bool = True, max_jobs: Optional[int] = None) -> int:
        """Run jobs until stopped; return the number of jobs handled.

        With ``handle_signals`` (main thread only), the first SIGTERM or SIGINT
        stops gracefully (the running job finishes and its result is sent); a
        second one stops at once (SystemExit / KeyboardInterrupt).

        The loop sends the next GRAB together with each result (one send per
        job, not two), except after the last of ``max_jobs``; with ``prefetch``
        N, each connection keeps up to N jobs assigned (the running one and
        those behind it), and jobs run one at a time in the order assigned.
        When it stops, every connection with a GRAB out or a prefetched job
        not started is closed, so gearmand puts those jobs back in the queue
        for other workers at once.
        """
        installed = {}
        if handle_signals and threading.current_thread() is threading.main_thread():
            hits = [0]

            def on_signal(signum: int, frame: Any) -> None:
                hits[0] += 1
                if hits[0] == 1:
                    log.info("signal %d: finishing the current job, then stopping", signum)
                    self.stop()
                    return
                if signum == signal.SIGINT:
                    raise KeyboardInterrupt
                raise SystemExit(128 + signum)

            for sig in (signal.SIGTERM, signal.SIGINT):
                installed[sig] = signal.signal(sig, on_signal)
        engine = self._engine
        wakeup_fd = None
        self._default_servers()
        if installed:
            # A signal that arrives just before grab() blocks in poll() would
            # otherwise wait for the next packet (for ever on an idle queue):
            # the signal module writes a byte to our wake-up socket instead.
            wakeup_fd = signal.set_wakeup_fd(engine.wake_fd(), warn_on_full_buffer=False)
        try:
            # The loop is compiled (_core.WorkerEngine.serve_jobs): it does what
            # work() does for each job, with the common outcome (a callback that
            # returns its result) written without a Python frame in between.
            handled: int = engine.serve_jobs(self, GearmanJob, max_jobs)
        finally:
            engine.eager_grab = False
            with self._lock:
                # a GRAB sent with the last result: its job goes back to the queue
                engine.cancel_grab()
            if wakeup_fd is not None:
                signal.set_wakeup_fd(wakeup_fd)
            for sig, previous in installed.items():
                signal.signal(sig, previous)
        return handled

    def close(self) -> None:
        """Close every connection."""
        self._engine.close()

    def __enter__(self) -> "PeclWorker":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


add_pep8_aliases(PeclWorker, WORKER_METHODS)
