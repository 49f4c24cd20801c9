# Declarations of the compiled core; the .pxi fragments implement them.
# Every field says what it holds, its unit, and who owns it.
from libc.stdint cimport uint32_t, uint64_t


cdef extern from "_compat.h":
    ctypedef int gm_socket_t
    struct pollfd:
        int fd
        short events
        short revents
    int POLLIN
    int POLLOUT
    int POLLERR
    int POLLHUP
    int POLLNVAL
    int gm_poll(pollfd *fds, Py_ssize_t n, int ms) nogil
    Py_ssize_t gm_send(int fd, const char *buf, Py_ssize_t n) nogil
    Py_ssize_t gm_recv(int fd, char *buf, Py_ssize_t n) nogil
    int gm_sockerr() nogil
    bint GM_WOULDBLOCK(int e) nogil
    bint GM_EINTR(int e) nogil
    double gm_monotonic() nogil
    long gm_getpid() nogil
    uint32_t gm_load_be32(const unsigned char *p) nogil
    void gm_store_be32(unsigned char *p, uint32_t v) nogil
    uint64_t gm_mix64(uint64_t x) nogil
    uint64_t gm_fnv1a(uint64_t h, const unsigned char *p, size_t n) nogil
    uint32_t gm_murmur3_32(const unsigned char *data, size_t n) nogil


cdef class WriteBuffer:
    cdef char *_buf                 # PyMem-owned storage, _size bytes
    cdef Py_ssize_t _size           # bytes allocated
    cdef Py_ssize_t _pos            # offset of the first byte not yet consumed (sent)
    cdef Py_ssize_t _len            # offset one past the last byte written
    cdef int _views                 # exported buffer views; writes refused while > 0
    cdef list _ext                  # [(offset, bytes)]: a large payload sent by reference
                                    # when _pos reaches offset (None while there is none)
    cdef Py_ssize_t _ext_pos        # bytes of _ext[0] already sent
    cdef Py_ssize_t _ext_len        # bytes of the referenced payloads not yet sent

    cdef int _reserve(self, Py_ssize_t extra) except -1
    cdef int write(self, const char *data, Py_ssize_t n) except -1
    cdef int write_header(self, uint32_t magic_req, uint32_t cmd, Py_ssize_t body_len) except -1
    cdef int write_packet(self, bint request, uint32_t cmd, tuple args) except -1
    cdef int write_submit(self, uint32_t cmd, const char *fp, Py_ssize_t fl,
                          const char *up, Py_ssize_t ul, bytes data) except -1
    cdef int write_one(self, uint32_t cmd, const char *arg, Py_ssize_t n) except -1
    cdef int write_ref(self, bytes data) except -1
    cdef void _shrink(self) noexcept
    cdef inline Py_ssize_t pending(self) noexcept
    cdef inline void consume(self, Py_ssize_t n) noexcept
    cdef Py_ssize_t next_chunk(self, const char **p) except -1
    cdef int chunk_sent(self, Py_ssize_t n) except -1


cdef class PacketReader:
    cdef char *_buf                 # PyMem-owned receive buffer, _size bytes
    cdef Py_ssize_t _size           # bytes allocated
    cdef Py_ssize_t _start          # offset of the first unparsed byte
    cdef Py_ssize_t _end            # offset one past the last received byte
    cdef Py_ssize_t _want           # header + body bytes of the incomplete packet at _start, 0: unknown
    cdef readonly Py_ssize_t max_packet_size  # largest payload accepted, bytes (body: + PACKET_ARGS_SLACK)
    cdef uint32_t _magic            # expected magic (RES for clients/workers, REQ for servers)
    cdef bint _allow_text           # accept admin text lines (first byte not NUL)
    cdef object _error              # sticky ProtocolError once the stream is broken
    # the packet found by _next(): valid until the next call that moves bytes
    cdef uint32_t p_cmd             # command number (0 = admin text line)
    cdef const char *p_body         # body (or text line without its EOL)
    cdef Py_ssize_t p_len           # body length, bytes

    cdef int _make_room(self, Py_ssize_t want) except -1
    cdef int _shrink(self) except -1
    cdef char *write_ptr(self, Py_ssize_t want) except NULL
    cdef char *recv_ptr(self) except NULL
    cdef inline bint packet_pending(self) noexcept
    cdef inline Py_ssize_t write_space(self) noexcept
    cdef inline void commit(self, Py_ssize_t n) noexcept
    cdef int _next(self) except -1
    cdef int _check_payload(self, uint32_t cmd, const char *body, Py_ssize_t n) except -1
    cdef int _fail(self, object exc) except -1
    cdef int _fields(self, Py_ssize_t *off, Py_ssize_t *ln) except -1
    cdef tuple _args(self)


cdef class UniqueGen:
    cdef unsigned char _prefix[8]   # per-process random bytes (UUID version nibble set)
    cdef uint64_t _counter          # next counter value; starts random, wraps harmlessly
    cdef long _pid                  # process that seeded _prefix (a fork reseeds)
    cdef char _prefix_hex[18]       # _prefix as the unique's first 18 characters
    cdef void fill(self, char *out) noexcept
    cdef bytes next(self)


cdef class Task:
    cdef public object context      # caller's context, passed to callbacks
    cdef readonly int kind          # TASK_SUBMIT / TASK_STATUS / TASK_ECHO / TASK_OPTION / ...
    cdef readonly int command       # packet command that submits it (SUBMIT_JOB*, GET_STATUS...)
    cdef bytes _function            # function name, UTF-8 bytes
    cdef bytes _unique              # unique sent (generated one included), bytes
    cdef object _workload           # payload: bytes, or a buffer object kept alive until written
    cdef str _handle                # job handle, '' until JOB_CREATED
    cdef readonly int state         # TS_NEW .. TS_DONE
    cdef public int code            # outcome: GEARMAN_SUCCESS, WORK_FAIL, LOST_CONNECTION...
    cdef bint _known                # from STATUS_RES / lifecycle
    cdef bint _running
    cdef uint32_t _numerator        # last WORK_STATUS / STATUS_RES numbers
    cdef uint32_t _denominator
    cdef object _data               # payload of the packet being delivered (bytes)
    cdef list _chunks               # WORK_DATA payloads kept for do* results (None: not kept)
    cdef Py_ssize_t _chunks_size    # bytes in _chunks (bounded by max_packet_size)
    cdef Py_ssize_t _recv_pos       # bytes of _data already returned by recvData()
    cdef object _result             # WORK_COMPLETE payload
    cdef object error               # GearmanError instance for a failed task, else None
    cdef Connection conn            # server that holds it (None before routing)
    cdef uint64_t wend              # conn stream offset one past this task's packet
    cdef bint abandoned             # the caller gave up (timeout); replies are dropped
    cdef uint64_t tried             # bit i set: server i of the pool was tried (failover)
    cdef bint hashed                # routed by rendezvous hash (caller-given unique)
    cdef uint64_t route_hash        # hash of (function, unique) for rendezvous routing
    cdef public object callbacks    # CallbackTable snapshot or None (do* has none)


cdef class Fifo:
    cdef list ring                  # slots; len is a power of two
    cdef Py_ssize_t head            # index of the first item
    cdef Py_ssize_t count           # items held
    cdef inline Py_ssize_t size(self) noexcept
    cdef int push(self, object item) except -1
    cdef object pop(self)
    cdef object first(self)
    cdef object last(self)
    cdef object at(self, Py_ssize_t k)
    cdef list items_in_order(self)


cdef class Connection:
    cdef readonly str host          # host as the user spelled it
    cdef readonly int port
    cdef readonly str key           # lowercase "host:port": the routing identity
    cdef uint64_t seed              # hash of key, for rendezvous hashing
    cdef object sock                # Python socket (owns the fd), None when closed
    cdef object tls                 # ssl.SSLSocket when TLS is on, else None
    cdef object ssl_context         # ssl.SSLContext or None
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
    cdef public object last_error   # last transport error (exception) or None
    cdef long pid                   # fork generation that opened the socket
    cdef readonly unsigned long generation  # bumped on every connect (event loops re-register)
    cdef Py_ssize_t max_packet_size
    cdef double connect_timeout     # seconds
    cdef bytes client_id            # SET_CLIENT_ID sent first on every connect, or None
    cdef list init_packets          # (cmd, args) sent after connect, before anything else
    # worker-side state
    cdef int wstate                 # WS_IDLE / WS_GRABBING / WS_SLEEPING
    cdef bint abilities_sent

    cdef int start_connect(self) except -1
    cdef int _try_next_addr(self) except -1
    cdef int finish_connect(self) except -1
    cdef int do_handshake(self) except -1
    cdef int flush(self) except -1
    cdef Py_ssize_t fill(self) except -1
    cdef int close(self) except -1
    cdef inline short poll_events(self) noexcept
    cdef inline bint writable_wanted(self) noexcept
