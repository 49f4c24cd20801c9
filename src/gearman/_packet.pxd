# Declarations for _packet.pxi: the incremental packet decoder

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
