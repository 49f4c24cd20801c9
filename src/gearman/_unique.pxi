# Default uniques: UUID-formatted (RFC 9562 version 8, "custom"), made from a
# per-process random prefix and a counter.  Unique within and across
# processes, cheap (no syscall, no MAC address), reseeded in a forked child.

cdef const char *_HEX = b"0123456789abcdef"
# two hex digits per byte value, and where each of the 8 counter bytes goes in
# the unique's last 18 characters ("-vvvv-cccccccccccc"; the version's dashes
# and the prefix's 16 digits are written once per seed)
cdef char _HEX2[512]
cdef int _k
for _k in range(256):
    _HEX2[2 * _k] = _HEX[_k >> 4]
    _HEX2[2 * _k + 1] = _HEX[_k & 15]
cdef int[8] _COUNTER_AT = [19, 21, 24, 26, 28, 30, 32, 34]


@cython.final
cdef class UniqueGen:
    """Generator of default unique IDs: ``next()`` gives 36 ASCII bytes."""

    def __cinit__(self):
        self._pid = 0
        self._reseed()

    def _reseed(self):
        cdef bytes r = os.urandom(16)
        cdef const unsigned char *p = <const unsigned char *>PyBytes_AS_STRING(r)
        cdef int i, j = 0
        for i in range(8):
            self._prefix[i] = p[i]
        self._prefix[6] = (self._prefix[6] & 0x0F) | 0x80     # version 8
        self._counter = 0
        for i in range(8):
            self._counter = (self._counter << 8) | p[8 + i]
        self._pid = gm_getpid()
        self._last_valid = False
        # "pppppppp-pppp-8ppp": the prefix's 8 bytes in UUID layout
        for i in range(8):
            if i == 4 or i == 6:
                self._prefix_hex[j] = 45  # '-'
                j += 1
            self._prefix_hex[j] = _HEX2[2 * self._prefix[i]]
            self._prefix_hex[j + 1] = _HEX2[2 * self._prefix[i] + 1]
            j += 2

    cdef void fill(self, char *out) noexcept:
        """Write the next unique (36 ASCII bytes) at out.

        The counter goes up by one per unique, so only its low byte changes
        most of the time: the last unique is kept and only the counter bytes
        that differ from it are written again."""
        cdef uint64_t c = self._counter
        cdef uint64_t diff = c ^ self._last_counter
        cdef unsigned int b
        cdef int i = 7
        self._counter += 1
        if not self._last_valid:
            memcpy(self._last, self._prefix_hex, 18)
            self._last[18] = 45  # '-'
            self._last[23] = 45
            diff = 0xFFFFFFFFFFFFFFFFULL
            self._last_valid = True
        self._last_counter = c
        while diff and i >= 0:
            b = <unsigned int>((c >> (8 * (7 - i))) & 0xFF)
            if i == 0:
                b = (b & 0x3F) | 0x80                           # RFC variant
            self._last[_COUNTER_AT[i]] = _HEX2[2 * b]
            self._last[_COUNTER_AT[i] + 1] = _HEX2[2 * b + 1]
            diff >>= 8
            i -= 1
        memcpy(out, self._last, 36)

    cdef bytes next(self):
        cdef char out[36]
        self.fill(out)
        return PyBytes_FromStringAndSize(out, 36)

    def __next__(self):
        return self.next().decode("ascii")

    def __iter__(self):
        return self


cdef UniqueGen _uniques = UniqueGen()


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
