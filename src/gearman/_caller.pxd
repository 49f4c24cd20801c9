# Declarations for _caller.pxi: the compiled base classes of the facade objects
# (GearmanClient, GearmanWorker): their lock, the PECL outcome of their last
# call, and the bodies of their hot calls.

cdef extern from "pythread.h":
    ctypedef void *PyThread_type_lock


cdef class ClientLock:
    cdef PyThread_type_lock _lock       # the OS lock (PyThread-owned)
    cdef unsigned long _owner           # thread ident of the holder (0: none)
    cdef Py_ssize_t _count              # re-entry depth of the holder

    cdef bint enter(self, double timeout) except -1
    cdef int leave(self) except -1


cdef class CallerState:
    cdef ClientLock _lock_obj           # every call holds it (replaced in a forked child)
    cdef public int _rc                 # returnCode()
    cdef public object _error           # error(): False (fresh), '' or the text
    cdef public int _errno              # getErrno()
    cdef object _timeout_obj            # timeout() as set, ms (-1: none)
    cdef double _timeout_s              # the same in seconds, -1.0: none

    cpdef int _failed(self, object exc) except -1


cdef class ClientCore(CallerState):
    cdef public ClientEngine _engine    # the engine (None until GearmanClient.__init__ ran)
    cdef public object _job_handle      # doJobHandle()
    cdef public list _new_tasks         # added by addTask*, not yet run by runTasks
    cdef public list _cb_table          # the callbacks set (setCompleteCallback...)
    cdef public bint _has_cb            # any of them set

    cdef inline ClientEngine _live_engine(self)
    cdef object _call(self, int cmd, object function, object workload, object unique)


cdef class WorkerCore(CallerState):
    cdef public WorkerEngine _engine    # the engine (None until GearmanWorker.__init__ ran)
    cdef public dict _callbacks         # function name (bytes) -> (callable, context)
    cdef public int _options            # GEARMAN_WORKER_* bits
    cdef public bint _exceptions        # answer a raised callback with WORK_EXCEPTION (else WORK_FAIL)
