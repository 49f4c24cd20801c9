# WriteBuffer: one growable output buffer per connection.  Packets are encoded
# straight into it (no per-packet bytes objects on the submit path); the
# connection sends from _pos and the buffer compacts when it drains.  A large
# packet grows it to what that packet needs (not to the next power of two),
# and a buffer that grew past WBUF_KEEP shrinks back once it drained.
# Large payloads (WBUF_REF_MIN and up) are not copied at all: the buffer holds
# their bytes objects in _ext, each due when _pos reaches its offset, and the
# sender takes the stream chunk by chunk (next_chunk / chunk_sent).

cdef enum:
    WBUF_KEEP = 1024 * 1024         # an output buffer above this shrinks once drained
    WBUF_SHRUNK = 65536             # ... to this size
    # A payload of this size or more is not copied into the buffer: the
    # buffer keeps a reference to its bytes object and the connection sends
    # straight from it, in its place in the stream.
    WBUF_REF_MIN = 128 * 1024

cdef inline int _check_no_nul(const char *p, Py_ssize_t n, str what) except -1:
    if n and memchr(p, 0, <size_t>n) != NULL:
        raise InvalidArgumentError(f"{what} must not contain a NUL byte",
                                   code=RC_INVALID_ARGUMENT)
    return 0


cdef inline object _as_bytes_arg(object value, str what):
    """Arguments to the generic encoder: bytes as is, str as UTF-8."""
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return (<str>value).encode("utf-8")
    if isinstance(value, (bytearray, memoryview)):
        return bytes(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value).encode("ascii")
    raise InvalidTypeError(f"{what} must be bytes or str, not {type(value).__name__}")


@cython.final
cdef class WriteBuffer:
    """Growable output buffer with Gearman packet encoders.

    ``len(buf)`` is the number of bytes not yet consumed; ``getvalue()`` copies
    them out.  The encoders validate the argument count of each command and
    refuse NUL bytes in every argument but the trailing data.
    """

    def __cinit__(self, Py_ssize_t initial=4096):
        if initial < 64:
            initial = 64
        self._buf = <char *>PyMem_Malloc(<size_t>initial)
        if self._buf == NULL:
            raise MemoryError()
        self._size = initial
        self._pos = 0
        self._len = 0
        self._views = 0
        self._ext = None
        self._ext_pos = 0
        self._ext_len = 0

    def __dealloc__(self):
        if self._buf != NULL:
            PyMem_Free(self._buf)
            self._buf = NULL

    cdef int _reserve(self, Py_ssize_t extra) except -1:
        cdef Py_ssize_t need, new_size, live
        cdef char *nb
        if self._len + extra <= self._size:
            return 0
        if self._views > 0:
            raise BufferError("WriteBuffer is exported; cannot grow")
        live = self._len - self._pos
        if self._pos > 0 and self._ext:
            # offsets of referenced payloads move with the bytes
            self._ext = [(off - self._pos, obj) for off, obj in self._ext]
        # Reclaim consumed space first; grow only when the live data needs it.
        if self._pos > 0 and live + extra <= self._size:
            if live:
                memmove(self._buf, self._buf + self._pos, <size_t>live)
            self._pos = 0
            self._len = live
            return 0
        if live:
            memmove(self._buf, self._buf + self._pos, <size_t>live)
        self._pos = 0
        self._len = live
        need = live + extra
        new_size = self._size * 2          # amortised growth for many small packets,
        if new_size < need:                # exactly what a large one needs
            new_size = need
        nb = <char *>PyMem_Realloc(self._buf, <size_t>new_size)
        if nb == NULL:
            raise MemoryError()
        self._buf = nb
        self._size = new_size
        return 0

    cdef int write(self, const char *data, Py_ssize_t n) except -1:
        if n <= 0:
            return 0
        self._reserve(n)
        memcpy(self._buf + self._len, data, <size_t>n)
        self._len += n
        return 0

    cdef int write_header(self, uint32_t magic, uint32_t cmd, Py_ssize_t body_len) except -1:
        cdef unsigned char *p
        if body_len > 0xFFFFFFFF:
            raise InvalidArgumentError("packet body exceeds the protocol's 4 GiB limit",
                                       code=RC_DATA_TOO_LARGE)
        self._reserve(HEADER_SIZE)
        p = <unsigned char *>(self._buf + self._len)
        gm_store_be32(p, magic)
        gm_store_be32(p + 4, cmd)
        gm_store_be32(p + 8, <uint32_t>body_len)
        self._len += HEADER_SIZE
        return 0

    cdef int write_packet(self, bint request, uint32_t cmd, tuple args) except -1:
        """Encode any packet: args are bytes; validates count and NULs."""
        cdef Py_ssize_t i, n, body = 0
        cdef bytes a
        if cmd > MAX_COMMAND or cmd == CMD_TEXT:
            raise InvalidArgumentError(f"unknown command {cmd}", code=RC_INVALID_ARGUMENT)
        n = len(args)
        if n != ARGC[cmd]:
            raise InvalidArgumentError(
                f"{COMMAND_NAMES[cmd]} takes {ARGC[cmd]} arguments, got {n}",
                code=RC_INVALID_ARGUMENT)
        cdef Py_ssize_t by_ref = 0
        for i in range(n):
            a = <bytes>args[i]
            if not (HAS_DATA[cmd] and i == n - 1):
                _check_no_nul(PyBytes_AS_STRING(a), PyBytes_GET_SIZE(a), "argument")
            elif PyBytes_GET_SIZE(a) >= WBUF_REF_MIN:
                by_ref = PyBytes_GET_SIZE(a)
            body += PyBytes_GET_SIZE(a)
        if n > 1:
            body += n - 1
        self._reserve(HEADER_SIZE + body - by_ref)
        self.write_header(MAGIC_REQ if request else MAGIC_RES, cmd, body)
        for i in range(n):
            a = <bytes>args[i]
            if i:
                self._buf[self._len] = 0
                self._len += 1
            if by_ref and i == n - 1:
                self.write_ref(a)
            else:
                self.write(PyBytes_AS_STRING(a), PyBytes_GET_SIZE(a))
        return 0

    cdef int write_ref(self, bytes data) except -1:
        """Append ``data`` by reference: it is sent from its own memory, not copied."""
        if self._ext is None:
            self._ext = []
        self._ext.append((self._len, data))
        self._ext_len += PyBytes_GET_SIZE(data)
        return 0

    cdef int write_submit(self, uint32_t cmd, const char *fp, Py_ssize_t fl,
                          const char *up, Py_ssize_t ul, bytes data) except -1:
        """The hot path: SUBMIT_JOB* with already-validated function and unique.

        The payload is copied into the buffer, or held by reference when it is
        WBUF_REF_MIN bytes or more (sent from its own memory, see write_ref).
        """
        cdef Py_ssize_t dl = PyBytes_GET_SIZE(data)
        cdef bint by_ref = dl >= WBUF_REF_MIN
        cdef char *p
        self._reserve(HEADER_SIZE + fl + ul + 2 + (0 if by_ref else dl))
        self.write_header(MAGIC_REQ, cmd, fl + ul + 2 + dl)
        p = self._buf + self._len
        memcpy(p, fp, <size_t>fl)
        p[fl] = 0
        if ul:
            memcpy(p + fl + 1, up, <size_t>ul)
        p[fl + 1 + ul] = 0
        self._len += fl + ul + 2
        if by_ref:
            return self.write_ref(data)
        if dl:
            memcpy(p + fl + ul + 2, PyBytes_AS_STRING(data), <size_t>dl)
            self._len += dl
        return 0

    cdef int write_one(self, uint32_t cmd, const char *arg, Py_ssize_t n) except -1:
        """A request with a single argument (GET_STATUS, ECHO_REQ, CAN_DO...)."""
        self._reserve(HEADER_SIZE + n)
        self.write_header(MAGIC_REQ, cmd, n)
        if n:
            memcpy(self._buf + self._len, arg, <size_t>n)
            self._len += n
        return 0

    cdef bint drop_tail(self, Py_ssize_t n) except -1:
        """Take back the last n bytes written, none of which was sent: a packet
        its caller gave up on before the kernel took any of it.  False (nothing
        changed) while a view is exported, or when part of them was sent or the
        cut would split a payload held by reference."""
        cdef Py_ssize_t end = self._len, left = n, k = 0, off, size
        cdef object obj
        if self._views > 0 or n < 0 or n > self.pending():
            return False
        if self._ext:
            k = len(self._ext)
        # the stream's tail, backwards: _buf[last ref's offset:end], that ref, ...
        while k > 0:
            off, obj = self._ext[k - 1]
            if left <= end - off:
                break
            left -= end - off
            size = PyBytes_GET_SIZE(obj)
            if left < size or (k == 1 and self._ext_pos > 0):
                return False
            left -= size
            end = off
            k -= 1
        if left > end - self._pos:
            return False
        if self._ext:
            for off, obj in self._ext[k:]:
                self._ext_len -= PyBytes_GET_SIZE(obj)
            del self._ext[k:]
        self._len = end - left
        self.consume(0)                 # emptied: reset and maybe shrink
        return True

    cdef void _shrink(self) noexcept:
        """Give back the memory of a drained buffer that grew for a large packet."""
        cdef char *nb
        if self._views > 0 or self._len > self._pos or self._size <= WBUF_KEEP or self._ext:
            return
        nb = <char *>PyMem_Realloc(self._buf, <size_t>WBUF_SHRUNK)
        if nb != NULL:              # a failed shrink keeps the (larger) old buffer
            self._buf = nb
            self._size = WBUF_SHRUNK
        self._pos = 0
        self._len = 0

    cdef inline Py_ssize_t pending(self) noexcept:
        return self._len - self._pos + self._ext_len

    cdef inline void consume(self, Py_ssize_t n) noexcept:
        """Mark n bytes of the buffer itself sent (see chunk_sent for the stream)."""
        self._pos += n
        if self._pos >= self._len and not self._ext:
            self._pos = 0
            self._len = 0
            if self._size > WBUF_KEEP:
                self._shrink()

    cdef Py_ssize_t next_chunk(self, const char **p) except -1:
        """The next contiguous bytes of the stream to send: *p and their length."""
        cdef Py_ssize_t off
        cdef object obj
        if self._ext:
            off, obj = self._ext[0]
            if off == self._pos:
                p[0] = PyBytes_AS_STRING(obj) + self._ext_pos
                return PyBytes_GET_SIZE(obj) - self._ext_pos
            p[0] = self._buf + self._pos
            return off - self._pos
        p[0] = self._buf + self._pos
        return self._len - self._pos

    cdef int chunk_sent(self, Py_ssize_t n) except -1:
        """n bytes of the chunk next_chunk() gave were sent."""
        cdef Py_ssize_t off
        cdef object obj
        if self._ext:
            off, obj = self._ext[0]
            if off == self._pos:
                self._ext_pos += n
                self._ext_len -= n
                if self._ext_pos >= PyBytes_GET_SIZE(obj):
                    del self._ext[0]
                    self._ext_pos = 0
                    self.consume(0)     # drained: reset and maybe shrink
                return 0
        self.consume(n)
        return 0

    # -- Python API (tests, gearman.protocol, the asyncio driver) --------------

    def __len__(self):
        return self.pending()

    def __getbuffer__(self, Py_buffer *view, int flags):
        if self._ext:
            raise BufferError("WriteBuffer holds payloads by reference; use getvalue()")
        PyBuffer_FillInfo(view, self, self._buf + self._pos, self._len - self._pos, 1, flags)
        self._views += 1

    def __releasebuffer__(self, Py_buffer *view):
        self._views -= 1

    def getvalue(self):
        """Return the unconsumed bytes as a new ``bytes`` object."""
        cdef Py_ssize_t pos = self._pos, ext_pos = self._ext_pos
        if not self._ext:
            return PyBytes_FromStringAndSize(self._buf + self._pos, self._len - self._pos)
        parts = []
        for off, obj in self._ext:
            parts.append(PyBytes_FromStringAndSize(self._buf + pos, off - pos))
            parts.append((<bytes>obj)[ext_pos:])
            pos = off
            ext_pos = 0
        parts.append(PyBytes_FromStringAndSize(self._buf + pos, self._len - pos))
        return b"".join(parts)

    def clear(self):
        """Drop everything written so far."""
        self._pos = 0
        self._len = 0
        self._ext = None
        self._ext_pos = 0
        self._ext_len = 0
        self._shrink()

    def advance(self, Py_ssize_t n):
        """Mark ``n`` bytes as consumed (sent)."""
        cdef const char *p
        cdef Py_ssize_t k
        if n < 0 or n > self.pending():
            raise ValueError("advance() past the end of the buffer")
        while n > 0:
            k = self.next_chunk(&p)
            if k > n:
                k = n
            self.chunk_sent(k)
            n -= k

    def request(self, int command, *args):
        """Append a request packet (``\\0REQ``); args are bytes, str or int."""
        self.write_packet(True, <uint32_t>command,
                          tuple([_as_bytes_arg(a, "argument") for a in args]))

    def response(self, int command, *args):
        """Append a response packet (``\\0RES``), as a server would send it."""
        self.write_packet(False, <uint32_t>command,
                          tuple([_as_bytes_arg(a, "argument") for a in args]))

    def text(self, line):
        """Append one admin text command; a newline is added."""
        cdef bytes b = _as_bytes_arg(line, "command")
        if b"\n" in b or b"\r" in b or b"\0" in b:
            # a NUL would make the server read the line as a binary packet
            raise InvalidArgumentError("an admin command is a single line without NUL bytes")
        self.write(PyBytes_AS_STRING(b), PyBytes_GET_SIZE(b))
        self.write("\n", 1)


def pack_request(int command, *args):
    """Return one request packet as bytes (validated like :meth:`WriteBuffer.request`)."""
    cdef WriteBuffer b = WriteBuffer(64)
    b.request(command, *args)
    return b.getvalue()


def pack_response(int command, *args):
    """Return one response packet as bytes, as a server would send it."""
    cdef WriteBuffer b = WriteBuffer(64)
    b.response(command, *args)
    return b.getvalue()
