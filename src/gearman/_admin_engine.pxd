# Declarations for _admin_engine.pxi: one connection that speaks the admin text
# protocol (gearman.admin drives it; the connections and the poll loop are EngineBase's).

cdef class AdminEngine(EngineBase):
    cdef Connection conn                # the one server (servers[0])
    cdef double deadline                # monotonic end of the current call (start_call)
    cdef double call_start              # monotonic start of the current call (start_call)
    cdef object failure                 # the error _conn_failed settled during this call, or None

    cdef int _check_idle(self) except -1
    cdef int _open(self) except -1
    cdef object _take_failure(self)
