# Default uniques: UUID-formatted (RFC 9562 version 8, "custom"), made from a
# per-process random prefix and a counter.  Unique within and across
# processes, cheap (no syscall, no MAC address), reseeded in a forked child.

cdef const char *_HEX = b"0123456789abcdef"


@cython.final
cdef class UniqueGen:
    """Generator of default unique IDs: ``next()`` gives 36 ASCII bytes."""

    def __cinit__(self):
        self._pid = 0
        self._reseed()

    def _reseed(self):
        cdef bytes r = os.urandom(16)
        cdef const unsigned char *p = <const unsigned char *>PyBytes_AS_STRING(r)
        cdef int i
        for i in range(8):
            self._prefix[i] = p[i]
        self._prefix[6] = (self._prefix[6] & 0x0F) | 0x80     # version 8
        self._counter = 0
        for i in range(8):
            self._counter = (self._counter << 8) | p[8 + i]
        self._pid = gm_getpid()

    cdef void fill(self, char *out) noexcept:
        """Write the next unique (36 ASCII bytes) at out."""
        cdef unsigned char raw[16]
        cdef uint64_t c
        cdef int i, j
        for i in range(8):
            raw[i] = self._prefix[i]
        c = self._counter
        self._counter += 1
        for i in range(8):
            raw[15 - i] = <unsigned char>(c & 0xFF)
            c >>= 8
        raw[8] = (raw[8] & 0x3F) | 0x80                         # RFC variant
        j = 0
        for i in range(16):
            if i == 4 or i == 6 or i == 8 or i == 10:
                out[j] = 45  # '-'
                j += 1
            out[j] = _HEX[raw[i] >> 4]
            out[j + 1] = _HEX[raw[i] & 15]
            j += 2

    cdef bytes next(self):
        cdef char out[36]
        self.fill(out)
        return PyBytes_FromStringAndSize(out, 36)

    def __next__(self):
        return self.next().decode("ascii")

    def __iter__(self):
        return self


cdef UniqueGen _uniques = UniqueGen()


def _after_fork_in_child():
    # A child must not replay its parent's sequence of uniques.
    _uniques._reseed()


if hasattr(os, "register_at_fork"):    # Windows has no fork()
    os.register_at_fork(after_in_child=_after_fork_in_child)


def new_unique():
    """Return a fresh default unique ID (36-character UUID-formatted str)."""
    return _uniques.next().decode("ascii")


def workload_hash_unique(workload):
    """The ``"#"`` unique: decimal murmur3-32 of the workload, as libgearman makes it."""
    cdef const unsigned char[::1] mv = _as_buffer(workload)
    cdef uint32_t h
    if mv.shape[0] == 0:
        h = gm_murmur3_32(NULL, 0)
    else:
        h = gm_murmur3_32(&mv[0], <size_t>mv.shape[0])
    return str(h)
