/* Portability shim for the few OS calls the core makes directly: poll, send,
 * recv, the socket error code and a monotonic clock.  POSIX is the main path;
 * Windows maps onto Winsock (WSAPoll) so the same Cython compiles there. */
#ifndef CYGEARMAN_COMPAT_H
#define CYGEARMAN_COMPAT_H

#include <stdint.h>
#include <string.h>

#ifdef _WIN32
#  include <limits.h>
#  include <winsock2.h>
#  include <windows.h>
#  if defined(_WIN32_WINNT) && _WIN32_WINNT < 0x0600
#    error "cygearman needs _WIN32_WINNT >= 0x0600 (Vista): WSAPoll and struct pollfd"
#  endif
typedef SOCKET gm_socket_t;
/* Winsock takes int lengths: a larger buffer is sent or received in pieces (the
 * callers loop on partial transfers anyway). */
#  define GM_INT_LEN(n) ((int)((n) > INT_MAX ? INT_MAX : (n)))
#  define gm_poll(fds, n, ms) WSAPoll((fds), (ULONG)(n), (ms))
#  define gm_send(fd, buf, n) send((SOCKET)(fd), (const char *)(buf), GM_INT_LEN(n), 0)
#  define gm_recv(fd, buf, n) recv((SOCKET)(fd), (char *)(buf), GM_INT_LEN(n), 0)
#  define gm_sockerr() WSAGetLastError()
#  define GM_WOULDBLOCK(e) ((e) == WSAEWOULDBLOCK)
#  define GM_EINTR(e) ((e) == WSAEINTR)
/* QueryPerformanceCounter, not GetTickCount64: the tick count moves in 10-16 ms
 * steps, coarser than the millisecond timeouts it must measure. */
static double gm_monotonic(void) {
    static LARGE_INTEGER freq;   /* set on first use; a racing second set is identical */
    LARGE_INTEGER now;
    if (freq.QuadPart == 0) QueryPerformanceFrequency(&freq);
    QueryPerformanceCounter(&now);
    return (double)now.QuadPart / (double)freq.QuadPart;
}
static long gm_getpid(void) { return (long)GetCurrentProcessId(); }
#else
#  include <errno.h>
#  include <poll.h>
#  include <sys/socket.h>
#  include <time.h>
#  include <unistd.h>
#  ifndef MSG_NOSIGNAL
#    define MSG_NOSIGNAL 0 /* macOS: SO_NOSIGPIPE is set on the socket instead */
#  endif
#  define gm_poll(fds, n, ms) poll((fds), (nfds_t)(n), (ms))
#  define gm_send(fd, buf, n) send((fd), (buf), (n), MSG_NOSIGNAL)
#  define gm_recv(fd, buf, n) recv((fd), (buf), (n), 0)
#  define gm_sockerr() errno
#  define GM_WOULDBLOCK(e) ((e) == EAGAIN || (e) == EWOULDBLOCK)
#  define GM_EINTR(e) ((e) == EINTR)
static double gm_monotonic(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}
static long gm_getpid(void) { return (long)getpid(); }
#endif

/* Big-endian 32-bit load/store without alignment assumptions. */
static inline uint32_t gm_load_be32(const unsigned char *p) {
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | (uint32_t)p[3];
}
static inline void gm_store_be32(unsigned char *p, uint32_t v) {
    p[0] = (unsigned char)(v >> 24); p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);  p[3] = (unsigned char)v;
}

/* splitmix64 finaliser: mixes a 64-bit value; used for rendezvous hashing. */
static inline uint64_t gm_mix64(uint64_t x) {
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

/* FNV-1a 64: the offset basis a hash starts from, and one byte range hashed
 * continuing from h. */
#define GM_FNV_OFFSET 0xcbf29ce484222325ULL
static inline uint64_t gm_fnv1a(uint64_t h, const unsigned char *p, size_t n) {
    size_t i;
    for (i = 0; i < n; i++) { h ^= p[i]; h *= 0x100000001b3ULL; }
    return h;
}

/* MurmurHash3 x86_32 seeded as libhashkit's hashkit_murmur3 (seed 0xdeadbeef * length),
 * which libgearman uses for the "#" unique: the same workload gives the same unique. */
static inline uint32_t gm_murmur3_32(const unsigned char *data, size_t len) {
    uint32_t h = (uint32_t)(0xdeadbeefU * (uint32_t)len), k;
    const uint32_t c1 = 0xcc9e2d51, c2 = 0x1b873593;
    size_t i, nblocks = len / 4;
    for (i = 0; i < nblocks; i++) {
        memcpy(&k, data + i * 4, 4);
        k *= c1; k = (k << 15) | (k >> 17); k *= c2;
        h ^= k; h = (h << 13) | (h >> 19); h = h * 5 + 0xe6546b64;
    }
    k = 0;
    switch (len & 3) {
    case 3: k ^= (uint32_t)data[nblocks * 4 + 2] << 16; /* fall through */
    case 2: k ^= (uint32_t)data[nblocks * 4 + 1] << 8;  /* fall through */
    case 1: k ^= data[nblocks * 4];
            k *= c1; k = (k << 15) | (k >> 17); k *= c2; h ^= k;
    }
    h ^= (uint32_t)len;
    h ^= h >> 16; h *= 0x85ebca6b; h ^= h >> 13; h *= 0xc2b2ae35; h ^= h >> 16;
    return h;
}
#endif
