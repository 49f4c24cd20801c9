# Declarations for _buffer.pxi: the output buffer packets are framed into

cdef class WriteBuffer:
    cdef char *_buf                 # PyMem-owned storage, _size bytes
    cdef Py_ssize_t _size           # bytes allocated
    cdef Py_ssize_t _pos            # offset of the first byte not yet consumed (sent)
    cdef Py_ssize_t _len            # offset one past the last byte written
    cdef int _views                 # exported buffer views; writes refused while > 0
    # [(offset, bytes)]: a large payload sent by reference when _pos reaches offset
    # (None while there is none)
    cdef list _ext
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
    cdef bint drop_tail(self, Py_ssize_t n) except -1
    cdef void _shrink(self) noexcept
    cdef inline Py_ssize_t pending(self) noexcept
    cdef inline void consume(self, Py_ssize_t n) noexcept
    cdef Py_ssize_t next_chunk(self, const char **p) except -1
    cdef int chunk_sent(self, Py_ssize_t n) except -1
