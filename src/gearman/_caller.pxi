# The compiled base classes of the facade objects. ClientLock is their lock;
# CallerState their PECL outcome bookkeeping (returnCode / error / getErrno)
# and timeout; ClientCore holds the fields of GearmanClient that its
# sequential calls touch, and those calls' bodies (a do* call is one Python
# frame: its lock, engine call and bookkeeping are C); WorkerCore holds the
# fields the worker's job loop (WorkerEngine.serve_jobs) reads for every job.


cdef extern from "pythread.h":
    ctypedef enum PyLockStatus:
        PY_LOCK_FAILURE = 0
        PY_LOCK_ACQUIRED = 1
        PY_LOCK_INTR
    PyThread_type_lock PyThread_allocate_lock()
    void PyThread_free_lock(PyThread_type_lock)
    PyLockStatus PyThread_acquire_lock_timed(PyThread_type_lock, long long microseconds,
                                             int intr_flag) nogil
    void PyThread_release_lock(PyThread_type_lock) nogil
    unsigned long PyThread_get_thread_ident()


@cython.final
cdef class ClientLock:
    """A re-entrant lock with ``threading.RLock``'s semantics (``acquire``,
    ``release``, ``with``), whose uncontended acquire and release are a few C
    statements: a client's calls take it once each (an RLock through Python's
    method calls cost far more; docs/benchmarks.md has the figures).  Like RLock, its owner and
    count are guarded by the GIL; a waiting acquire releases the GIL and can be
    interrupted by a signal handler that raises (Ctrl-C)."""

    def __cinit__(self):
        self._lock = PyThread_allocate_lock()
        if self._lock is NULL:
            raise MemoryError("cannot allocate a lock")
        self._owner = 0
        self._count = 0

    def __dealloc__(self):
        if self._lock is not NULL:
            PyThread_free_lock(self._lock)

    cdef bint enter(self, double timeout) except -1:
        """Take the lock; ``timeout`` seconds (< 0: for ever, 0: do not wait).
        False if it timed out."""
        cdef unsigned long me = PyThread_get_thread_ident()
        cdef PyLockStatus r
        cdef long long us
        cdef double deadline
        if self._count > 0 and self._owner == me:
            self._count += 1
            return True
        r = PyThread_acquire_lock_timed(self._lock, 0, 0)
        if r != PY_LOCK_ACQUIRED:
            if timeout == 0:
                return False
            deadline = gm_monotonic() + timeout if timeout > 0 else -1.0
            while True:
                us = -1
                if deadline >= 0:
                    us = <long long>((deadline - gm_monotonic()) * 1e6)
                    if us < 0:
                        us = 0
                with nogil:
                    r = PyThread_acquire_lock_timed(self._lock, us, 1)
                if r == PY_LOCK_ACQUIRED:
                    break
                if r == PY_LOCK_INTR:
                    PyErr_CheckSignals()        # a handler that raises ends the wait
                    continue
                return False                    # timed out
        self._owner = me
        self._count = 1
        return True

    cdef int leave(self) except -1:
        if self._count == 0 or self._owner != PyThread_get_thread_ident():
            raise RuntimeError("cannot release un-acquired lock")
        self._count -= 1
        if self._count == 0:
            self._owner = 0
            PyThread_release_lock(self._lock)
        return 0

    def acquire(self, bint blocking=True, double timeout=-1.0):
        """As ``RLock.acquire``: True once held, False if not got in time."""
        if not blocking:
            if timeout != -1.0:
                raise ValueError("can't specify a timeout for a non-blocking call")
            return self.enter(0.0)
        if timeout < 0 and timeout != -1.0:
            raise ValueError("timeout value must be a non-negative number")
        return self.enter(timeout)

    def release(self):
        """As ``RLock.release``; RuntimeError if this thread does not hold it."""
        self.leave()

    def __enter__(self):
        return self.enter(-1.0)

    def __exit__(self, *exc):
        self.leave()
        return False

    def _is_owned(self):
        return self._count > 0 and self._owner == PyThread_get_thread_ident()


cdef inline double _enter_call(CallerState self, ClientLock lock) except -2:
    """Take the object's lock for a call; returns the seconds left of the
    call's timeout (-1: none).  Waiting for another thread's call counts:
    the timeout is the whole call's.  Raises GearmanTimeoutError (nothing
    was submitted) when the wait used it all."""
    cdef double timeout = self._timeout_s, start, left
    if lock.enter(0):
        return timeout                  # uncontended: no clock read
    start = gm_monotonic()
    if lock.enter(timeout):
        if timeout < 0:
            return -1.0
        left = timeout - (gm_monotonic() - start)
        if left > MIN_CALL_TIME:
            return left
        lock.leave()
    raise GearmanTimeoutError(
        f"timed out after {timeout:g} s waiting for another thread's call on this object "
        f"to end; nothing was submitted", code=RC_TIMEOUT, submitted=False)


cdef class CallerState:
    """What GearmanClient and GearmanWorker both keep in C: their lock and the
    PECL outcome of their last call (returnCode / error / getErrno), and their
    timeout (ms as set, and in seconds for the engine)."""

    def __cinit__(self, *args, **kwargs):
        self._lock_obj = ClientLock()
        _LIVE_CALLERS.add(self)
        self._rc = RC_SUCCESS
        self._error = False
        self._errno = 0
        self._timeout_obj = -1
        self._timeout_s = -1.0

    cpdef int _failed(self, object exc) except -1:
        """Record a failed call's outcome: the GearmanError's code and text, or
        GEARMAN_ERRNO and the errno of an OSError."""
        if isinstance(exc, GearmanError):
            self._rc = exc.code
            self._error = str(exc)
            self._errno = getattr(exc, "errno", None) or 0
        elif isinstance(exc, OSError):
            self._rc = RC_ERRNO
            self._error = str(exc)
            self._errno = exc.errno or 0
        return 0

    def _begin_call(self):
        """Take the lock for a Python-level call (release it with ``_lock.release()``);
        returns the seconds left of the call's timeout (-1: none).  Raises
        GearmanTimeoutError, recorded as the call's outcome, when waiting for
        another thread's call used the whole timeout."""
        try:
            return _enter_call(self, self._lock_obj)
        except GearmanError as exc:
            self._failed(exc)
            raise

    property _lock:
        def __get__(self):
            return self._lock_obj

        def __set__(self, value):
            if type(value) is not ClientLock:
                raise InvalidTypeError(f"the lock is a ClientLock, not {type(value).__name__}")
            self._lock_obj = value

    property _timeout_ms:
        def __get__(self):
            return self._timeout_obj

        def __set__(self, value):
            self._timeout_s = value / 1000.0 if value >= 0 else -1.0
            self._timeout_obj = value


cdef class ClientCore(CallerState):
    """Base of :class:`gearman.GearmanClient` (its state; see there)."""

    def __cinit__(self, *args, **kwargs):
        self._job_handle = ""
        self._new_tasks = []
        self._cb_table = []
        self._has_cb = False

    cdef inline ClientEngine _live_engine(self):
        # a typed None would be dereferenced in C: say what is wrong instead
        if self._engine is None:
            raise InvalidArgumentError("this client has no engine: GearmanClient.__init__ "
                                       "was not called (a subclass must call it)")
        return self._engine

    property _events:
        """gearman.events: the Emitter this client's requests go to, or None
        (kept by events.attach / add_listener; held by the engine, whose
        emission points test it)."""
        def __get__(self):
            return None if self._engine is None else self._engine._events

        def __set__(self, value):
            if self._engine is not None:
                self._engine._events = value

    cdef object _call(self, int cmd, object function, object workload, object unique):
        cdef ClientEngine engine = self._live_engine()
        cdef ClientLock lock = self._lock_obj
        cdef double left
        try:
            left = _enter_call(self, lock)
        except GearmanError as exc:
            self._failed(exc)
            raise
        try:
            try:
                if not engine.servers:
                    _add_env_servers(engine)
                result = task_outcome(engine._do(cmd, function, workload, unique, left))
            except BaseException as exc:
                self._failed(exc)
                raise
            if _is_background(cmd):
                self._job_handle = result
            self._rc = RC_SUCCESS
            self._error = ""
            self._errno = 0
            return result
        finally:
            lock.leave()

    def _do_background(self, int cmd, object function, object workload, object unique):
        """A background do* (``cmd`` a SUBMIT_JOB*_BG): the job handle."""
        if not _is_background(cmd):
            raise InvalidArgumentError(f"command {cmd} is not a background submission")
        return self._call(cmd, function, workload, unique)

    def _do_wait(self, int cmd, object function, object workload, object unique):
        """A foreground do* (``cmd`` a SUBMIT_JOB*): the result."""
        if _is_background(cmd):
            raise InvalidArgumentError(f"command {cmd} is a background submission")
        return self._call(cmd, function, workload, unique)

    def _job_status(self, object job_handle):
        """jobStatus(): ``[known, running, numerator, denominator]``."""
        cdef ClientEngine engine = self._live_engine()
        cdef ClientLock lock = self._lock_obj
        cdef double left
        try:
            left = _enter_call(self, lock)
        except GearmanError as exc:
            self._failed(exc)
            raise
        try:
            try:
                if not engine.servers:
                    _add_env_servers(engine)
                status = engine._job_status(job_handle, left)
            except BaseException as exc:
                self._failed(exc)
                raise
            self._rc = RC_SUCCESS
            self._error = ""
            self._errno = 0
            return status
        finally:
            lock.leave()

    def _add_submit(self, int cmd, object function, object workload, object context,
                    object unique):
        """addTask* (no I/O): a validated task, queued for runTasks."""
        cdef Task task
        try:
            task = self._live_engine().new_submit(cmd, function, workload, unique, context)
        except GearmanError as exc:
            self._failed(exc)
            raise
        if self._has_cb:
            task.callbacks = self._cb_table
        self._new_tasks.append(task)
        self._rc = RC_SUCCESS
        self._error = ""
        self._errno = 0
        return task


cdef class WorkerCore(CallerState):
    """Base of :class:`gearman.GearmanWorker`: the fields its compiled job loop
    (:meth:`WorkerEngine.serve_jobs`) reads and writes for every job, in C."""

    def __cinit__(self, *args, **kwargs):
        self._callbacks = {}
        self._options = 0
        self._exceptions = True

    property _events:
        """gearman.events: the Emitter this worker's jobs go to, or None
        (held by the engine, whose emission points test it)."""
        def __get__(self):
            return None if self._engine is None else self._engine._events

        def __set__(self, value):
            if self._engine is not None:
                self._engine._events = value


# Every live client and worker (their CallerState), so that a forked child can
# replace the locks a thread of the parent may have held at fork() time.
_LIVE_CALLERS = weakref.WeakSet()


def _after_fork_in_child():
    """The core's one at-fork hook: what a forked child must not inherit."""
    _bump_fork_generation()             # connections: the child opens its own
    _uniques._reseed()                  # uniques: the child must not replay the parent's
    for caller in list(_LIVE_CALLERS):  # locks: the thread that held one is gone
        (<CallerState>caller)._lock_obj = ClientLock()


if hasattr(os, "register_at_fork"):    # Windows has no fork()
    os.register_at_fork(after_in_child=_after_fork_in_child)


cdef int _add_env_servers(EngineBase engine) except -1:
    """No server was added: take the servers GEARMAN_SERVERS names (no I/O)."""
    for host, port in default_servers():
        engine.add_server(host, port)
    return 0


def default_servers():
    """The servers ``GEARMAN_SERVERS`` names, as ``[(host, port)]`` ([] if unset):
    the one fallback of every client and worker that was given no server."""
    cdef str value = os.environ.get("GEARMAN_SERVERS", "").strip()
    out = []
    for part in value.split(","):
        part = part.strip()
        if part:
            out.append(parse_server_spec(part, 4730))
    return out
