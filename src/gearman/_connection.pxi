# Connection: one TCP (optionally TLS) connection to one job server.  The
# socket is non-blocking; the engine's poll loop decides when to call
# flush()/fill().  Python's socket object owns the descriptor (so close and
# fork semantics are Python's); plain-TCP I/O goes straight to send()/recv()
# on the descriptor, TLS I/O through the ssl module.

from gearman.errors import _lost_connection_error

cdef int _fork_generation = 0


def _bump_fork_generation():
    global _fork_generation
    _fork_generation += 1


_CONNECT_IN_PROGRESS = frozenset(
    e for e in (getattr(errno, "EINPROGRESS", None), getattr(errno, "EWOULDBLOCK", None),
                getattr(errno, "EAGAIN", None), getattr(errno, "EALREADY", None), 10035)
    if e is not None)


# struct linger {l_onoff = 1, l_linger = 0}: close() resets the connection
_LINGER_RESET = __import__("struct").pack("ii", 1, 0)


cdef str _sockerr_text(int err):
    """The message of a socket error code: errno on POSIX, a WSA code on Windows
    (which os.strerror() calls "Unknown error")."""
    if os.name == "nt":
        import ctypes                      # error path only
        return f"{ctypes.FormatError(err).strip()} (Winsock error {err})"
    return os.strerror(err)


cdef int _set_keepalive(object s, int idle, int interval, int count,
                        unsigned int user_timeout_ms) except -1:
    """A dead peer must not block a call for ever, even with no timeout set.

    Keepalive (idle > 0): probe after ``idle`` seconds of silence, every
    ``interval`` seconds, and give up after ``count`` unanswered probes (macOS
    names the idle time TCP_KEEPALIVE; Windows has all three since 10 1709).
    Keepalive runs only while nothing sent is unacknowledged; TCP_USER_TIMEOUT
    (Linux) bounds that other case, data the peer never acknowledges, which
    the kernel would otherwise retransmit for about 15 minutes.  Where the
    platform has no such option it is not set (docs/reliability.md §5).
    An option the system refuses is left at the system's default."""
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1 if idle > 0 else 0)
        if idle > 0:
            opt = getattr(socket, "TCP_KEEPIDLE", None) or getattr(socket, "TCP_KEEPALIVE", None)
            if opt is not None:
                s.setsockopt(socket.IPPROTO_TCP, opt, idle)
            if hasattr(socket, "TCP_KEEPINTVL"):
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, interval)
            if hasattr(socket, "TCP_KEEPCNT"):
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT, count)
    except OSError:
        pass
    if user_timeout_ms and _TCP_USER_TIMEOUT is not None:
        try:
            s.setsockopt(socket.IPPROTO_TCP, _TCP_USER_TIMEOUT, user_timeout_ms)
        except OSError:
            pass
    return 0


#: the socket option bounding unacknowledged data (Linux 2.6.37+), or None
_TCP_USER_TIMEOUT = getattr(socket, "TCP_USER_TIMEOUT", None)


cdef inline double _backoff(int failures):
    """Jittered exponential backoff for a server that failed: 0.05 s doubling to 30 s."""
    cdef double base = 0.05
    cdef int i
    for i in range(min(failures - 1, 10)):
        base *= 2.0
    if base > 30.0:
        base = 30.0
    return base * (0.5 + 0.5 * random.random())


def parse_server_spec(spec, int default_port=4730):
    """Split ``host``, ``host:port`` or ``[v6addr]:port`` into ``(host, port)``."""
    cdef str s = spec.strip() if isinstance(spec, str) else None
    if s is None:
        raise InvalidTypeError(f"server must be a str, not {type(spec).__name__}")
    if not s:
        raise InvalidArgumentError("empty server name")
    host, port = s, default_port
    if s.startswith("["):
        end = s.find("]")
        if end < 0:
            raise InvalidArgumentError(f"bad server {spec!r}: missing ']'")
        host = s[1:end]
        rest = s[end + 1:]
        if rest:
            if not rest.startswith(":"):
                raise InvalidArgumentError(f"bad server {spec!r}")
            port = rest[1:]
    elif s.count(":") == 1:
        host, port = s.split(":")
    elif s.count(":") > 1:
        host = s                      # a bare IPv6 address, default port
    try:
        port = int(port)
    except ValueError:
        raise InvalidArgumentError(f"bad port in server {spec!r}") from None
    if not 0 <= port <= 65535:
        raise InvalidArgumentError(f"port out of range in server {spec!r}")
    if port == 0:
        port = default_port
    if not host:
        host = "localhost"
    return host, port


@cython.final
cdef class Fifo:
    """The requests of a connection that await their answers, oldest first: a
    ring of list slots that doubles when full.  push / pop / first are a few C
    statements and allocate nothing in a steady state (a deque's append and
    popleft are Python method calls)."""

    def __cinit__(self):
        self.ring = [None] * 8
        self.head = 0
        self.count = 0

    cdef inline Py_ssize_t size(self) noexcept:
        return self.count

    cdef int push(self, object item) except -1:
        cdef list ring = self.ring
        cdef Py_ssize_t cap = len(ring)
        if self.count == cap:
            self.ring = self.items_in_order() + [None] * cap
            self.head = 0
            ring = self.ring
            cap *= 2
        ring[(self.head + self.count) & (cap - 1)] = item
        self.count += 1
        return 0

    cdef object pop(self):
        """Remove and return the oldest item (None if there is none)."""
        cdef list ring = self.ring
        if self.count == 0:
            return None
        item = ring[self.head]
        ring[self.head] = None
        self.head = (self.head + 1) & (len(ring) - 1)
        self.count -= 1
        return item

    cdef object first(self):
        """The oldest item, or None."""
        if self.count == 0:
            return None
        return self.ring[self.head]

    cdef object last(self):
        """The newest item, or None."""
        if self.count == 0:
            return None
        return self.ring[(self.head + self.count - 1) & (len(self.ring) - 1)]

    cdef object pop_last(self):
        """Remove and return the newest item (None if there is none)."""
        cdef list ring = self.ring
        cdef Py_ssize_t k
        if self.count == 0:
            return None
        k = (self.head + self.count - 1) & (len(ring) - 1)
        item = ring[k]
        ring[k] = None
        self.count -= 1
        return item

    cdef object at(self, Py_ssize_t k):
        """Item k, 0 the oldest (0 <= k < size(): the caller checks)."""
        return self.ring[(self.head + k) & (len(self.ring) - 1)]

    cdef list items_in_order(self):
        """The items, oldest first (a new list)."""
        cdef list ring = self.ring
        cdef Py_ssize_t cap = len(ring), end = self.head + self.count
        if end <= cap:
            return ring[self.head:end]
        return ring[self.head:] + ring[:end - cap]

    def __len__(self):
        return self.count

    def __iter__(self):
        return iter(self.items_in_order())

    def append(self, item):
        """push(), for Python code (tests)."""
        self.push(item)

    def popleft(self):
        """pop(); IndexError when empty, as a deque's."""
        if self.count == 0:
            raise IndexError("pop from an empty Fifo")
        return self.pop()


@cython.final
cdef class Connection:
    """One job server connection (``host``, ``port``, ``key``, ``state``)."""

    def __cinit__(self, str host, int port, double connect_timeout=5.0,
                  Py_ssize_t max_packet_size=DEFAULT_MAX_PACKET, ssl_context=None):
        cdef bytes kb
        self.host = host
        self.port = port
        self.key = f"{host.lower()}:{port}"
        kb = self.key.encode("utf-8")
        self.seed = gm_mix64(gm_fnv1a(GM_FNV_OFFSET,
                                      <const unsigned char *>PyBytes_AS_STRING(kb),
                                      <size_t>PyBytes_GET_SIZE(kb)))
        self.sock = None
        self.tls = None
        self.ssl_context = ssl_context
        self.fd = -1
        self.state = CS_DISCONNECTED
        self.addrs = []
        self.wbuf = WriteBuffer(16384)
        self.queued = 0
        self.sent = 0
        self.got_data = False
        self.max_packet_size = max_packet_size
        self.reader = PacketReader(max_packet_size, b"\0RES", False)
        self.pending = Fifo()
        self.handles = {}
        self.failures = 0
        self.down_until = 0.0
        self.demoted = False
        self.probe = None
        self.probe_deadline = 0.0
        self.last_error = None
        self.connect_timeout = connect_timeout
        self.ka_idle = KEEPALIVE_IDLE
        self.ka_interval = KEEPALIVE_INTERVAL
        self.ka_count = KEEPALIVE_COUNT
        self.user_timeout_ms = 1000 * (KEEPALIVE_IDLE + KEEPALIVE_INTERVAL * KEEPALIVE_COUNT)
        self.client_id = None
        self.init_packets = []
        self.reset_grab_state()
        self.abilities_sent = False

    def __repr__(self):
        states = ("disconnected", "connecting", "handshake", "connected")
        return f"<gearman Connection {self.key} {states[self.state]}>"

    @property
    def connected(self):
        return self.state == CS_CONNECTED

    @property
    def gearman_host(self):
        return self.host

    @property
    def gearman_port(self):
        return self.port

    @property
    def in_flight(self):
        """Requests written or queued on this connection that await an answer."""
        return self.pending.size()

    @property
    def unsent(self):
        """Bytes queued on this connection that the kernel has not taken yet."""
        return self.wbuf.pending() if self.wbuf is not None else 0

    cdef inline short poll_events(self) noexcept:
        """What to poll for: connect completion, the TLS handshake's next need,
        or reads plus writes while output is pending."""
        if self.state == CS_CONNECTING:
            return POLLOUT
        if self.state == CS_HANDSHAKE:
            return POLLOUT if self.hs_want_write else POLLIN
        if self.wbuf.pending() > 0:
            return POLLIN | POLLOUT
        return POLLIN

    cdef inline bint writable_wanted(self) noexcept:
        return self.state == CS_CONNECTING or self.wbuf.pending() > 0

    cdef int start_connect(self) except -1:
        """Resolve and start a non-blocking connect; raises ServerUnavailable."""
        cdef double now = gm_monotonic()
        if self.state != CS_DISCONNECTED:
            return 0
        self.wbuf.clear()
        self.queued = 0
        self.sent = 0
        self.got_data = False
        self.reader = PacketReader(self.max_packet_size, b"\0RES", False)
        self.pending = Fifo()
        self.handles = {}
        self.reset_grab_state()
        self.abilities_sent = False
        self.pid = _fork_generation
        self.generation += 1
        try:
            self.addrs = socket.getaddrinfo(self.host, self.port, 0, socket.SOCK_STREAM)
        except (socket.gaierror, UnicodeError) as e:
            raise ServerUnavailable(f"cannot resolve {self.host!r}: {e}",
                                    code=RC_GETADDRINFO, server=self.key) from e
        self.connect_deadline = now + self.connect_timeout
        self.state = CS_CONNECTING
        self._try_next_addr()
        return 0

    cdef int _try_next_addr(self) except -1:
        cdef int err = 0
        last = None
        while self.addrs:
            family, stype, proto, _, sa = self.addrs.pop(0)
            s = None
            try:
                s = socket.socket(family, stype, proto)
                s.setblocking(False)
                err = s.connect_ex(sa)
            except OSError as e:
                if s is not None:
                    s.close()
                last = e
                continue
            if err == 0 or err in _CONNECT_IN_PROGRESS:
                self.sock = s
                self.fd = s.fileno()
                self.state = CS_CONNECTING
                if err == 0:
                    self.finish_connect()
                return 0
            s.close()
            last = OSError(err, _sockerr_text(err))
        self.state = CS_DISCONNECTED
        self.sock = None
        self.fd = -1
        raise ServerUnavailable(f"could not connect to {self.key}: {last}",
                                code=RC_COULD_NOT_CONNECT, server=self.key)

    cdef int finish_connect(self) except -1:
        """Called when the socket became writable while connecting."""
        cdef int err = self.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if err:
            self.sock.close()
            self.sock = None
            self.fd = -1
            if self.addrs:
                return self._try_next_addr()
            self.state = CS_DISCONNECTED
            raise ServerUnavailable(f"could not connect to {self.key}: {_sockerr_text(err)}",
                                    code=RC_COULD_NOT_CONNECT, server=self.key)
        s = self.sock
        try:
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if hasattr(socket, "SO_NOSIGPIPE"):
                s.setsockopt(socket.SOL_SOCKET, socket.SO_NOSIGPIPE, 1)
        except OSError:
            pass
        _set_keepalive(s, self.ka_idle, self.ka_interval, self.ka_count, self.user_timeout_ms)
        self.addrs = []
        if self.ssl_context is not None:
            self.tls = self.ssl_context.wrap_socket(
                s, server_hostname=self.host, do_handshake_on_connect=False)
            self.state = CS_HANDSHAKE
            return self.do_handshake()
        # failures is not reset here: a server that accepts and then breaks
        # every connection must keep backing off; the engines reset it when
        # the server answers with a valid packet.
        self.state = CS_CONNECTED
        return 0

    cdef int do_handshake(self) except -1:
        try:
            self.tls.do_handshake()
        except ssl.SSLWantReadError:
            self.hs_want_write = False
            return 0
        except ssl.SSLWantWriteError:
            self.hs_want_write = True
            return 0
        except (ssl.SSLError, OSError) as e:
            raise ServerUnavailable(f"TLS handshake with {self.key} failed: {e}",
                                    code=RC_COULD_NOT_CONNECT, server=self.key) from e
        self.state = CS_CONNECTED
        return 0

    cdef int flush(self) except -1:
        """Send as much of the output buffer as the socket takes now."""
        cdef Py_ssize_t n, left
        cdef int err
        cdef WriteBuffer b = self.wbuf
        cdef const char *chunk
        if self.state != CS_CONNECTED:
            return 0
        while b.pending() > 0:
            left = b.next_chunk(&chunk)
            if self.tls is not None:
                try:
                    n = self.tls.send(PyMemoryView_FromMemory(<char *>chunk, left, PyBUF_READ))
                except (ssl.SSLWantWriteError, ssl.SSLWantReadError):
                    return 0
                except OSError as e:
                    raise LostConnectionError(f"send to {self.key} failed: {e}",
                                              server=self.key) from e
            else:
                n = gm_send(self.fd, chunk, left)
                if n < 0:
                    err = gm_sockerr()
                    if GM_EINTR(err):
                        continue
                    if GM_WOULDBLOCK(err):
                        return 0
                    raise LostConnectionError(
                        f"send to {self.key} failed: {_sockerr_text(err)}", server=self.key)
            self.sent += <uint64_t>n
            b.chunk_sent(n)
        return 0

    cdef Py_ssize_t fill(self) except -1:
        """Receive what is available into the reader; 0 = nothing now; EOF raises.

        One read per wake-up (poll is level-triggered, so more is seen next
        time), sized by the reader: the rest of a packet whose length is
        known, else a 64 KiB window.  The reader never grows past the packet
        it announced, so a large packet costs one buffer of its own size.
        """
        cdef Py_ssize_t n, space, total = 0
        cdef char *p
        cdef int err
        while True:
            p = self.reader.recv_ptr()
            space = self.reader.write_space()
            if self.tls is not None:
                try:
                    n = self.tls.recv_into(PyMemoryView_FromMemory(p, space, PyBUF_WRITE))
                except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
                    return total
                except ssl.SSLError as e:
                    if not self.got_data and "ALERT" in str(e.reason or "").upper():
                        # With TLS 1.3 the server judges our certificate after
                        # our side of the handshake is done, so its refusal
                        # (an alert) comes with the first read.  A TLS front
                        # forwards nothing before it accepts us: what we
                        # "sent" never reached gearmand.
                        self.sent = 0
                        raise ServerUnavailable(
                            f"TLS handshake with {self.key} refused by the server: {e}",
                            code=RC_COULD_NOT_CONNECT, server=self.key) from e
                    raise LostConnectionError(f"receive from {self.key} failed: {e}",
                                              server=self.key) from e
                except OSError as e:
                    raise LostConnectionError(f"receive from {self.key} failed: {e}",
                                              server=self.key) from e
            else:
                n = gm_recv(self.fd, p, space)
                if n < 0:
                    err = gm_sockerr()
                    if GM_EINTR(err):
                        continue
                    if GM_WOULDBLOCK(err):
                        return total
                    raise LostConnectionError(
                        f"receive from {self.key} failed: {_sockerr_text(err)}", server=self.key)
            if n == 0:
                raise LostConnectionError(f"server {self.key} closed the connection",
                                          server=self.key)
            self.reader.commit(n)
            self.got_data = True
            self.last_recv = gm_monotonic()
            total += n
            # Read again only for decrypted TLS bytes, which poll cannot see.
            if self.tls is not None and self.tls.pending():
                continue
            return total

    cdef int abort(self) except -1:
        """Close with a reset (SO_LINGER 0): the bytes the kernel still holds for
        the server are dropped with the connection, not delivered later."""
        if self.sock is not None:
            try:
                self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RESET)
            except OSError:
                pass
        return self.close()

    cdef int close(self) except -1:
        s = self.tls if self.tls is not None else self.sock
        self.tls = None
        self.sock = None
        self.fd = -1
        self.state = CS_DISCONNECTED
        if s is not None:
            try:
                s.close()
            except OSError:
                pass
        return 0
