# PacketReader: the incremental, sans-I/O decoder.  Bytes go in (feed(), or a
# connection receiving straight into write_ptr()), whole packets come out,
# whatever the read boundaries.  A body is never allocated before its length
# was checked against max_packet_size; a broken stream stays broken (the
# error is sticky), so a caller can never read past garbage by accident.


@cython.final
cdef class PacketReader:
    """Incremental Gearman packet decoder.

    ``PacketReader(max_packet_size=64 MiB, magic=b"\\0RES", allow_text=True)``.
    ``feed(data)`` appends bytes; ``gets()`` returns the next whole packet as
    ``(command, args)`` with ``args`` a tuple of bytes, or ``None`` when more
    bytes are needed.  Admin text lines (a first byte other than NUL) come out as
    ``(0, (line,))`` without the line ending.  Raises
    :class:`gearman.errors.ProtocolError` on bad magic, an unknown command or a
    wrong argument count, and :class:`gearman.errors.PacketTooLargeError` when a
    packet announces more than ``max_packet_size`` bytes.
    """

    def __cinit__(self, Py_ssize_t max_packet_size=DEFAULT_MAX_PACKET, magic=b"\0RES",
                  bint allow_text=True):
        if max_packet_size < 1:
            raise InvalidArgumentError("max_packet_size must be positive")
        if magic == b"\0RES":
            self._magic = MAGIC_RES
        elif magic == b"\0REQ":
            self._magic = MAGIC_REQ
        else:
            raise InvalidArgumentError("magic must be b'\\0RES' or b'\\0REQ'")
        self.max_packet_size = max_packet_size
        self._allow_text = allow_text
        self._size = 8192
        self._buf = <char *>PyMem_Malloc(<size_t>self._size)
        if self._buf == NULL:
            raise MemoryError()
        self._start = 0
        self._end = 0
        self._error = None

    def __dealloc__(self):
        if self._buf != NULL:
            PyMem_Free(self._buf)
            self._buf = NULL

    cdef inline Py_ssize_t write_space(self) noexcept:
        return self._size - self._end

    cdef char *write_ptr(self, Py_ssize_t want) except NULL:
        """Room for at least ``want`` more bytes at the end; compacts or grows."""
        cdef Py_ssize_t live = self._end - self._start
        cdef Py_ssize_t new_size
        cdef char *nb
        if self._size - self._end >= want:
            return self._buf + self._end
        if self._start:
            if live:
                memmove(self._buf, self._buf + self._start, <size_t>live)
            self._start = 0
            self._end = live
            if self._size - self._end >= want:
                return self._buf + self._end
        new_size = self._size
        while new_size - live < want:
            new_size <<= 1
        nb = <char *>PyMem_Realloc(self._buf, <size_t>new_size)
        if nb == NULL:
            raise MemoryError()
        self._buf = nb
        self._size = new_size
        return self._buf + self._end

    cdef inline void commit(self, Py_ssize_t n) noexcept:
        self._end += n

    cdef int _fail(self, object exc) except -1:
        self._error = exc
        raise exc

    cdef int _next(self) except -1:
        """Find the next whole packet: 1 and p_* set, or 0 if more bytes are needed."""
        cdef Py_ssize_t avail, need, i
        cdef const unsigned char *p
        cdef const char *nl
        cdef uint32_t magic, cmd, length
        if self._error is not None:
            raise self._error
        avail = self._end - self._start
        if avail <= 0:
            if self._start:
                self._start = 0
                self._end = 0
            return 0
        p = <const unsigned char *>(self._buf + self._start)
        if p[0] != 0:
            if not self._allow_text:
                return self._fail(ProtocolError(
                    f"bad magic {bytes(p[:min(avail, 4)])!r}: expected a binary packet"))
            nl = <const char *>memchr(p, 10, <size_t>avail)
            if nl == NULL:
                if avail > self.max_packet_size:
                    return self._fail(PacketTooLargeError(
                        f"text line longer than max_packet_size ({self.max_packet_size} bytes)"))
                self.write_ptr(1)   # make room so the caller can read more
                return 0
            need = (nl - <const char *>p) + 1
            if need - 1 > self.max_packet_size:
                # the same verdict whatever the read boundaries were
                return self._fail(PacketTooLargeError(
                    f"text line longer than max_packet_size ({self.max_packet_size} bytes)"))
            self.p_cmd = CMD_TEXT
            self.p_body = <const char *>p
            self.p_len = need - 1
            if self.p_len and self.p_body[self.p_len - 1] == 13:
                self.p_len -= 1
            self._start += need
            return 1
        if avail < HEADER_SIZE:
            if self._size - self._start < HEADER_SIZE:
                self.write_ptr(HEADER_SIZE)
            return 0
        magic = gm_load_be32(p)
        cmd = gm_load_be32(p + 4)
        length = gm_load_be32(p + 8)
        if magic != self._magic:
            return self._fail(ProtocolError(f"bad magic {bytes(p[:4])!r}"))
        if cmd == 0 or cmd > MAX_COMMAND:
            return self._fail(UnknownCommandError(f"unknown command number {cmd}"))
        if <Py_ssize_t>length > self.max_packet_size or length > <uint32_t>0x7FFFFFF0:
            return self._fail(PacketTooLargeError(
                f"{COMMAND_NAMES[cmd]} packet of {length} bytes exceeds "
                f"max_packet_size ({self.max_packet_size} bytes)", code=RC_DATA_TOO_LARGE))
        need = HEADER_SIZE + <Py_ssize_t>length
        if avail < need:
            # Make the buffer big enough for the whole packet once, now that
            # the length is known to be within the limit.
            if self._size - self._start < need:
                self.write_ptr(need - avail)
            return 0
        self.p_cmd = cmd
        self.p_body = <const char *>(p + HEADER_SIZE)
        self.p_len = length
        self._start += need
        return 1

    cdef tuple _args(self):
        """Split the current packet's body into its arguments (bytes)."""
        cdef int argc = ARGC[self.p_cmd]
        cdef bint data = HAS_DATA[self.p_cmd]
        cdef const char *p = self.p_body
        cdef const char *end = self.p_body + self.p_len
        cdef const char *z
        cdef int i, seps
        cdef list out
        if self.p_cmd == CMD_TEXT:
            return (PyBytes_FromStringAndSize(p, self.p_len),)
        if argc == 0:
            if self.p_len:
                self._fail(ProtocolError(
                    f"{COMMAND_NAMES[self.p_cmd]} takes no arguments, got {self.p_len} body bytes"))
            return ()
        if argc == 1:
            return (PyBytes_FromStringAndSize(p, self.p_len),)
        out = []
        seps = argc - 1
        for i in range(seps):
            z = <const char *>memchr(p, 0, <size_t>(end - p))
            if z == NULL:
                self._fail(ProtocolError(
                    f"{COMMAND_NAMES[self.p_cmd]} needs {argc} arguments, got {i + 1}"))
            out.append(PyBytes_FromStringAndSize(p, z - p))
            p = z + 1
        out.append(PyBytes_FromStringAndSize(p, end - p))
        return tuple(out)

    # -- Python API ----------------------------------------------------------

    def feed(self, data):
        """Append received bytes (any bytes-like object)."""
        cdef const unsigned char[::1] mv
        cdef Py_ssize_t n
        if isinstance(data, bytes):
            n = PyBytes_GET_SIZE(data)
            if n:
                memcpy(self.write_ptr(n), PyBytes_AS_STRING(data), <size_t>n)
                self._end += n
            return
        mv = memoryview(data).cast("B")
        n = mv.shape[0]
        if n:
            memcpy(self.write_ptr(n), &mv[0], <size_t>n)
            self._end += n

    def gets(self):
        """Return the next ``(command, args)``, or ``None`` if incomplete."""
        if self._next() == 0:
            return None
        return (<int>self.p_cmd, self._args())

    def __iter__(self):
        return self

    def __next__(self):
        r = self.gets()
        if r is None:
            raise StopIteration
        return r

    @property
    def buffered(self):
        """Number of received bytes not yet returned as packets."""
        return self._end - self._start


def parse_packets(data, Py_ssize_t max_packet_size=DEFAULT_MAX_PACKET, magic=b"\0RES"):
    """Decode a complete byte string into a list of ``(command, args)``.

    Raises ProtocolError if bytes are left over (a truncated packet).
    """
    cdef PacketReader r = PacketReader(max_packet_size, magic)
    r.feed(data)
    out = list(r)
    if r.buffered:
        raise ProtocolError(f"{r.buffered} trailing bytes do not form a whole packet")
    return out
