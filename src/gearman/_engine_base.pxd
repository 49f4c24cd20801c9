# Declarations for _engine_base.pxi: what every engine shares. It owns the
# connections, the pollfd set and the one poll loop (_poll_round), and decides
# what a failed connection means (_conn_failed: the failure policy). Subclasses
# say what a connection's packets mean (_on_data) and what happens to the
# requests of a connection that failed (_on_failure).

cdef class EngineBase:
    cdef public list servers            # Connection objects, in the order added
    cdef double _connect_timeout        # seconds per connect attempt (finite, > 0): connect_timeout
    cdef Py_ssize_t _max_packet_size    # largest payload sent or accepted, bytes: max_packet_size
    cdef int ka_idle, ka_interval, ka_count  # TCP keepalive of every connection: keepalive
    cdef double _user_timeout           # TCP_USER_TIMEOUT, s; -1: idle + interval x count; 0: off
    cdef public object ssl_context      # ssl.SSLContext for every connection, or None
    cdef public object client_id        # bytes sent with SET_CLIENT_ID on connect, or None
    cdef Py_ssize_t max_servers         # servers add_server accepts (0: no limit)
    cdef bint retry_timers              # watch_list/next_deadline include down servers' retry times
    cdef int fail_log_level             # logging level of a lost connection
    cdef pollfd *pfds                   # the pollfd set of a round (PyMem-owned)
    cdef Py_ssize_t pfds_alloc          # entries allocated in pfds
    cdef int wake_r                     # read end of the wake-up socket pair, -1: none
    cdef object wake_sock               # its socket object (drained when it fires), or None
    # gearman.events: the Emitter of the facade that owns this engine while
    # someone listens to it, else None (every emission point tests this field)
    cdef public object _events

    cdef int _ensure_pfds(self, Py_ssize_t n) except -1
    cdef int _apply_keepalive(self, Connection c) except -1
    cdef int _poll_round(self, double deadline, Connection only, int flags) except -1
    cdef int _conn_failed(self, Connection c, object exc, int how) except -1
    cdef int _on_failure(self, Connection c, object exc, int how) except -1
    cdef int _on_data(self, Connection c) except -1
    cdef int _restore(self, Connection c) except -1
