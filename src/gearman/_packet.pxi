# PacketReader: the incremental, sans-I/O decoder.  Bytes go in (feed(), or a
# connection receiving straight into recv_ptr()), whole packets come out,
# whatever the read boundaries.  A body is never allocated before its length
# was checked against max_packet_size; a broken stream stays broken (the
# error is sticky), so a caller can never read past garbage by accident.
#
# max_packet_size bounds the *payload* (the data argument; docs/reliability.md §6):
# a packet may carry up to PACKET_ARGS_SLACK more bytes for the arguments that
# come before its payload (handle, function name, unique, NULs).  The header's
# length is checked against limit + slack before anything is allocated, the
# data argument against the limit itself once the body is in.
#
# Memory: a packet of known length gets exactly one buffer of its size (no
# geometric growth past the announced length), and a buffer that grew for a
# large packet is shrunk back once that packet was consumed.

cdef enum:
    MAX_FUNCTION_SIZE = 512         # libgearman's GEARMAN_FUNCTION_MAX_SIZE
    # Bytes a packet may carry beyond max_packet_size for its non-data
    # arguments.  The widest are JOB_ASSIGN_ALL (handle, function, unique,
    # reducer) and SUBMIT_REDUCE_JOB (function, unique, reducer, aggregator):
    # a handle (64), a unique (64), three names (3 x 512) and up to 8 NULs.
    PACKET_ARGS_SLACK = MAX_HANDLE_SIZE + MAX_UNIQUE_SIZE + 3 * MAX_FUNCTION_SIZE + 8
    RECV_WINDOW = 65536             # room offered to one read when no packet length is known
    RECV_KEEP = 1024 * 1024         # a receive buffer above this shrinks once it drained
    RECV_SHRUNK = 2 * RECV_WINDOW   # ... to this size

#: Bytes a packet may carry beyond ``max_packet_size`` for the arguments before
#: its payload (handle, function name, unique, reducer, NULs).
ARGS_SLACK = PACKET_ARGS_SLACK


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
    packet's payload (its data argument, or a text line) is longer than
    ``max_packet_size``: from the header alone when it announces more than
    ``max_packet_size + ARGS_SLACK`` bytes, else once the body is in.
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
        self._want = 0
        self._error = None

    def __dealloc__(self):
        if self._buf != NULL:
            PyMem_Free(self._buf)
            self._buf = NULL

    cdef inline Py_ssize_t write_space(self) noexcept:
        return self._size - self._end

    cdef int _make_room(self, Py_ssize_t want) except -1:
        """Room for at least ``want`` more bytes after _end: compact, then grow.

        While the length of the packet at _start is known (_want) the buffer
        grows to that packet exactly (or to what the bytes at hand need, if
        more); only bytes of unknown extent (a header, a text line) grow it
        geometrically.
        """
        cdef Py_ssize_t live = self._end - self._start
        cdef Py_ssize_t need, new_size
        cdef char *nb
        if self._size - self._end >= want:
            return 0
        if self._start:
            if live:
                memmove(self._buf, self._buf + self._start, <size_t>live)
            self._start = 0
            self._end = live
            if self._size - self._end >= want:
                return 0
        need = live + want
        if self._want:
            new_size = self._want if self._want > need else need
        else:
            new_size = self._size * 2
            if new_size < need:
                new_size = need
        nb = <char *>PyMem_Realloc(self._buf, <size_t>new_size)
        if nb == NULL:
            raise MemoryError()
        self._buf = nb
        self._size = new_size
        return 0

    cdef int _shrink(self) except -1:
        """Give back a buffer that grew for a large packet once little is left in it."""
        cdef Py_ssize_t live = self._end - self._start
        cdef char *nb
        if live > RECV_SHRUNK // 2:
            return 0                # still busy; try again when more was consumed
        if live and self._start:
            memmove(self._buf, self._buf + self._start, <size_t>live)
        self._start = 0
        self._end = live
        nb = <char *>PyMem_Realloc(self._buf, <size_t>RECV_SHRUNK)
        if nb != NULL:              # a failed shrink keeps the (larger) old buffer
            self._buf = nb
            self._size = RECV_SHRUNK
        return 0

    cdef char *write_ptr(self, Py_ssize_t want) except NULL:
        """Room for at least ``want`` more bytes at the end; compacts or grows."""
        self._make_room(want)
        return self._buf + self._end

    cdef char *recv_ptr(self) except NULL:
        """Where the next socket read goes, with write_space() bytes of room:
        the rest of a packet whose length is known (the buffer grows to that
        packet, never past it), else a window of RECV_WINDOW bytes."""
        cdef Py_ssize_t live = self._end - self._start
        if self._want > live:
            self._make_room(self._want - live)
        else:
            self._make_room(RECV_WINDOW)
        return self._buf + self._end

    cdef inline bint packet_pending(self) noexcept:
        """True while a packet whose header was read still lacks body bytes."""
        return self._want > self._end - self._start

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
        if self._size > RECV_KEEP and not self._want:
            self._shrink()          # the previous (large) packet was consumed
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
        if (length > <uint32_t>0x7FFFFFF0 or
                <Py_ssize_t>length > self.max_packet_size + PACKET_ARGS_SLACK):
            return self._fail(PacketTooLargeError(
                f"{COMMAND_NAMES[cmd]} packet of {length} bytes exceeds max_packet_size "
                f"({self.max_packet_size} bytes) plus {PACKET_ARGS_SLACK} bytes for its "
                f"other arguments", code=RC_DATA_TOO_LARGE))
        need = HEADER_SIZE + <Py_ssize_t>length
        if avail < need:
            # Make the buffer exactly big enough for the whole packet once,
            # now that the length is known to be within the limit.
            self._want = need
            if self._size - self._start < need:
                self._make_room(need - avail)
            return 0
        self._want = 0
        if <Py_ssize_t>length > self.max_packet_size and HAS_DATA[cmd]:
            self._check_payload(cmd, <const char *>(p + HEADER_SIZE), <Py_ssize_t>length)
        self.p_cmd = cmd
        self.p_body = <const char *>(p + HEADER_SIZE)
        self.p_len = length
        self._start += need
        return 1

    cdef int _check_payload(self, uint32_t cmd, const char *body, Py_ssize_t n) except -1:
        """A body over max_packet_size passes only if its data argument is within it."""
        cdef int i, argc = ARGC[cmd]
        cdef const char *p = body
        cdef const char *end = body + n
        cdef const char *z
        for i in range(argc - 1):
            z = <const char *>memchr(p, 0, <size_t>(end - p))
            if z == NULL:
                return self._fail(ProtocolError(
                    f"{COMMAND_NAMES[cmd]} needs {argc} arguments, got {i + 1}"))
            p = z + 1
        if end - p > self.max_packet_size:
            return self._fail(PacketTooLargeError(
                f"{COMMAND_NAMES[cmd]} payload of {end - p} bytes exceeds max_packet_size "
                f"({self.max_packet_size} bytes)", code=RC_DATA_TOO_LARGE))
        return 0

    cdef int _fields(self, Py_ssize_t *off, Py_ssize_t *ln) except -1:
        """Where the current packet's arguments are in p_body (offsets and
        lengths, ARGC of them, the last one the rest), without making objects;
        the same ProtocolError as _args() when a separator is missing."""
        cdef int argc = ARGC[self.p_cmd]
        cdef const char *p = self.p_body
        cdef const char *end = self.p_body + self.p_len
        cdef const char *z
        cdef int i
        for i in range(argc - 1):
            z = <const char *>memchr(p, 0, <size_t>(end - p))
            if z == NULL:
                self._fail(ProtocolError(
                    f"{COMMAND_NAMES[self.p_cmd]} needs {argc} arguments, got {i + 1}"))
            off[i] = p - self.p_body
            ln[i] = z - p
            p = z + 1
        off[argc - 1] = p - self.p_body
        ln[argc - 1] = end - p
        return 0

    cdef tuple _args(self):
        """Split the current packet's body into its arguments (bytes)."""
        cdef int argc = ARGC[self.p_cmd]
        cdef Py_ssize_t off[8]
        cdef Py_ssize_t ln[8]
        cdef int i
        cdef tuple out
        cdef object item
        if self.p_cmd == CMD_TEXT or argc == 1:
            return (PyBytes_FromStringAndSize(self.p_body, self.p_len),)
        if argc == 0:
            if self.p_len:
                self._fail(ProtocolError(
                    f"{COMMAND_NAMES[self.p_cmd]} takes no arguments, got {self.p_len} body bytes"))
            return ()
        # where the arguments are (a packet short of separators fails here,
        # before any object exists), then the tuple filled in place
        self._fields(off, ln)
        out = PyTuple_New(argc)
        for i in range(argc):
            item = PyBytes_FromStringAndSize(self.p_body + off[i], ln[i])
            Py_INCREF(item)
            PyTuple_SET_ITEM(out, i, item)
        return out

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
