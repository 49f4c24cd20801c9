# Declarations for _unique.pxi: the default unique generator

cdef class UniqueGen:
    cdef unsigned char _prefix[8]   # per-process random bytes (UUID version nibble set)
    cdef uint64_t _counter          # next counter value; starts random, wraps harmlessly
    cdef long _pid                  # process that seeded _prefix (a fork reseeds)
    cdef char _prefix_hex[18]       # _prefix as the unique's first 18 characters
    cdef char _last[36]             # the last unique written (valid once _last_valid)
    cdef uint64_t _last_counter     # the counter value _last shows
    cdef bint _last_valid           # _last holds this seed's prefix and _last_counter
    cdef void fill(self, char *out) noexcept
    cdef bytes next(self)
