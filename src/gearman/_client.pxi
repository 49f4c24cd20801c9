# ClientCore: the fields of GearmanClient that its sequential calls touch, and
# those calls' bodies, compiled.  gearman.client.GearmanClient subclasses it and
# keeps the documented methods (doNormal, doBackground, jobStatus...), each one
# line calling in here: a do* call is one Python frame, its lock, engine call
# and PECL bookkeeping (returnCode / error / getErrno) are C.


cdef class ClientCore:
    """Base of :class:`gearman.GearmanClient` (its state; see there)."""

    cdef public ClientEngine _engine
    cdef public object _lock            # threading.RLock (replaced in a forked child)
    cdef public int _rc                 # returnCode()
    cdef public object _error           # error(): False (fresh), '' or the text
    cdef public int _errno              # getErrno()
    cdef public object _job_handle      # doJobHandle()
    cdef object _timeout_obj            # timeout() as set, ms (-1: none)
    cdef double _timeout_s              # the same in seconds, -1.0: none

    def __cinit__(self, *args, **kwargs):
        self._rc = RC_SUCCESS
        self._error = False
        self._errno = 0
        self._job_handle = ""
        self._timeout_obj = -1
        self._timeout_s = -1.0

    property _timeout_ms:
        def __get__(self):
            return self._timeout_obj

        def __set__(self, value):
            self._timeout_s = value / 1000.0 if value >= 0 else -1.0
            self._timeout_obj = value

    cdef object _call(self, int cmd, object function, object workload, object unique):
        cdef ClientEngine engine = self._engine
        lock = self._lock
        lock.acquire()
        try:
            try:
                if not engine.servers:
                    self._servers()
                result = task_outcome(engine._do(cmd, function, workload, unique, self._timeout_s))
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
            lock.release()

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
        cdef ClientEngine engine = self._engine
        lock = self._lock
        lock.acquire()
        try:
            try:
                if not engine.servers:
                    self._servers()
                status = engine._job_status(job_handle, self._timeout_s)
            except BaseException as exc:
                self._failed(exc)
                raise
            self._rc = RC_SUCCESS
            self._error = ""
            self._errno = 0
            return status
        finally:
            lock.release()
