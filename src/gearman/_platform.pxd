# Declarations of _compat.h: the socket, poll, clock and hashing primitives the
# fragments use (one spelling for POSIX and Windows).

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
    uint64_t GM_FNV_OFFSET
    uint64_t gm_fnv1a(uint64_t h, const unsigned char *p, size_t n) nogil
    uint32_t gm_murmur3_32(const unsigned char *data, size_t n) nogil
