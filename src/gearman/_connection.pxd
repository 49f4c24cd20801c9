# Declarations for _connection.pxi: one server connection and its request FIFO

cdef class Fifo:
    cdef list ring                  # slots; len is a power of two
    cdef Py_ssize_t head            # index of the first item
    cdef Py_ssize_t count           # items held
    cdef inline Py_ssize_t size(self) noexcept
    cdef int push(self, object item) except -1
    cdef object pop(self)
    cdef object first(self)
    cdef object last(self)
    cdef object pop_last(self)
    cdef object at(self, Py_ssize_t k)
    cdef list items_in_order(self)


cdef class Connection:
    cdef readonly str host          # host as the user spelled it
    cdef readonly int port
    cdef readonly str key           # lowercase "host:port": the routing identity
    cdef uint64_t seed              # hash of key, for rendezvous hashing
    cdef object sock                # Python socket (owns the fd), None when closed
    cdef object tls                 # ssl.SSLSocket when TLS is on, else None
    cdef readonly object ssl_context  # ssl.SSLContext or None (plain TCP)
    cdef int fd                     # sock's descriptor, -1 when closed
    cdef readonly int state         # CS_DISCONNECTED / CS_CONNECTING / CS_HANDSHAKE / CS_CONNECTED
    cdef list addrs                 # getaddrinfo results still to try while connecting
    cdef double connect_deadline    # monotonic seconds
    cdef bint hs_want_write         # TLS handshake waits for writability (else readability)
    cdef WriteBuffer wbuf           # packets waiting to be sent
    cdef uint64_t queued            # total bytes ever queued on this connection's stream
    cdef uint64_t sent              # total bytes ever handed to the kernel
    cdef bint got_data              # anything received since this connect
    cdef double last_recv           # monotonic time of the last bytes received (0: none)
    cdef PacketReader reader        # incoming stream
    cdef Fifo pending               # Task (BatchRun) awaiting a reply, in order (JOB_CREATED etc.)
    cdef dict handles               # handle (str) -> Task or list of Task, for WORK_* packets
    cdef int failures               # consecutive connect failures (backoff exponent)
    cdef double down_until          # monotonic time before which we don't retry
    cdef public bint demoted        # it stopped answering: routing skips it until a probe answers
    cdef object probe               # the probe (a Task: ECHO_REQ) in flight while demoted, or None
    cdef double probe_deadline      # monotonic time by which the probe must be answered
    cdef public object last_error   # last transport error (exception) or None
    cdef long pid                   # fork generation that opened the socket
    cdef readonly unsigned long generation  # bumped on every connect (event loops re-register)
    cdef Py_ssize_t max_packet_size
    cdef double connect_timeout     # seconds
    # TCP keepalive (0: off) and TCP_USER_TIMEOUT (0: not set), applied on connect
    cdef int ka_idle                # seconds idle before the first probe
    cdef int ka_interval            # seconds between probes
    cdef int ka_count               # unanswered probes before the peer is dead
    cdef unsigned int user_timeout_ms  # TCP_USER_TIMEOUT: how long sent data may stay unacknowledged
    cdef bytes client_id            # SET_CLIENT_ID sent first on every connect, or None
    cdef list init_packets          # (cmd, args) sent after connect, before anything else
    # worker-side state: the grab state WorkerEngine keeps per connection
    # (reset on every connect and close)
    cdef int grabs_out              # GRABs sent and not answered yet
    cdef int jobs_held              # jobs handed out (JOB_ASSIGN*) and not answered yet
    cdef bint no_job                # a GRAB got NO_JOB: no new GRAB; PRE_SLEEP once none is out
    cdef bint asleep                # PRE_SLEEP sent: no GRAB until the NOOP
    cdef bint abilities_sent
    cdef inline void reset_grab_state(self) noexcept:
        self.grabs_out = 0
        self.jobs_held = 0
        self.no_job = False
        self.asleep = False

    cdef int start_connect(self) except -1
    cdef int _try_next_addr(self) except -1
    cdef int finish_connect(self) except -1
    cdef int do_handshake(self) except -1
    cdef int flush(self) except -1
    cdef Py_ssize_t fill(self) except -1
    cdef int close(self) except -1
    cdef int abort(self) except -1
    cdef inline short poll_events(self) noexcept
    cdef inline bint writable_wanted(self) noexcept
