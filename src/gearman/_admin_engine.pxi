# AdminEngine: a connection for the admin text protocol (gearman.admin). It is an
# engine like the others: the connection is the core's Connection (connect
# timeout, keepalive, TLS), the I/O is EngineBase's poll loop, a failure goes
# through _conn_failed, and the answer lines come out of the connection's
# PacketReader (which decodes text lines). What a command's answer looks like
# (one line, or a listing ended by ".") is the caller's business: this engine
# sends lines and hands back lines, within the call's deadline.


@cython.final
cdef class AdminEngine(EngineBase):
    """``AdminEngine(host, port, ssl_context=None, connect_timeout=5.0, max_line=16 MiB)``.

    One admin connection: ``start_call(timeout)`` opens it if needed (a
    connection that died or got unsolicited bytes while idle is replaced),
    ``send(payload)`` queues command lines, ``read_line(what)`` returns the
    next answer line as ``(text, ended_with_crlf)``.  A connect takes at most
    ``connect_timeout`` (and never past the call's deadline).  Errors:
    ServerUnavailable (refused, unresolvable, connect timeout, TLS handshake),
    GearmanTimeoutError (no whole answer by the deadline), LostConnectionError,
    ProtocolError / PacketTooLargeError (a line over ``max_line`` bytes); after
    any of them the connection is closed, so a late answer is never read as the
    next command's.  Not thread-safe: the caller serializes calls.
    """

    def __init__(self, str host, int port, ssl_context=None, connect_timeout=5.0,
                 max_line=DEFAULT_MAX_PACKET):
        self.connect_timeout = connect_timeout
        self.max_packet_size = max_line
        self.ssl_context = ssl_context
        self.max_servers = 1
        self.conn = self.add_server(host, port)
        self.deadline = 0.0
        self.failure = None

    @property
    def key(self):
        """``host:port`` of the server, the host in lower case."""
        return self.conn.key

    @property
    def sock(self):
        """The open socket (an ``ssl.SSLSocket`` with TLS), or None."""
        return self.conn.tls if self.conn.tls is not None else self.conn.sock

    cdef int _on_failure(self, Connection c, object exc, int how) except -1:
        self.failure = exc
        return 0

    cdef object _take_failure(self):
        exc = self.failure
        self.failure = None
        if exc is None:
            exc = LostConnectionError(f"the admin connection to {self.conn.key} is closed",
                                      server=self.conn.key)
        return exc

    cdef int _check_idle(self) except -1:
        """Before a call reuses the connection: one look, no wait. An EOF (the
        server closed it while idle: restarted, say) closes it without backoff;
        bytes nobody asked for mean the stream is out of step: closed too."""
        cdef Connection c = self.conn
        if c.state == CS_DISCONNECTED:
            return 0
        if c.pid != _fork_generation:
            # inherited across fork(): the parent still uses this socket.
            # Close our copy (no shutdown) and open our own.
            c.close()
            return 0
        if c.state != CS_CONNECTED:
            c.close()                   # a connect a failed call left half done
            return 0
        self._poll_round(DEADLINE_NOW, c, PF_NO_DISPATCH | PF_NO_BACKOFF)
        self.failure = None             # the idle connection's failure is not this call's
        if c.state == CS_CONNECTED and c.reader._end > c.reader._start:
            c.close()
        return 0

    cdef int _open(self) except -1:
        cdef Connection c = self.conn
        cdef double remaining = self.deadline - gm_monotonic()
        if remaining <= 0:
            raise GearmanTimeoutError(f"{c.key}: timed out before connecting",
                                      code=RC_TIMEOUT, server=c.key)
        c.connect_timeout = min(remaining, self._connect_timeout)
        self.failure = None
        try:
            c.start_connect()
        except GearmanError as e:
            self._conn_failed(c, e, FAIL_BACKOFF)
            raise self._take_failure()
        # start_connect made a binary-only reader, and nothing was read yet:
        # admin answers are text lines
        c.reader = PacketReader(self._max_packet_size, b"\0RES", True)
        c.demoted = False
        while c.state != CS_CONNECTED:
            if c.state == CS_DISCONNECTED:
                raise self._take_failure()
            # no deadline of ours: the connect deadline (within the call's) ends the wait
            self._poll_round(DEADLINE_NONE, c, PF_NO_DISPATCH)
        return 0

    def start_call(self, double timeout):
        """Start a call that may take ``timeout`` seconds: open the connection
        if it is not (within the call's time and ``connect_timeout``)."""
        self.call_start = gm_monotonic()
        self.deadline = self.call_start + timeout
        self.failure = None
        self._check_idle()
        if self.conn.state != CS_CONNECTED:
            self._open()

    def send(self, bytes payload):
        """Queue ``payload`` (whole command lines); read_line() writes it."""
        cdef Connection c = self.conn
        if c.state != CS_CONNECTED:
            raise self._take_failure()
        c.wbuf.write(PyBytes_AS_STRING(payload), PyBytes_GET_SIZE(payload))
        c.queued += <uint64_t>PyBytes_GET_SIZE(payload)

    def read_line(self, str what):
        """The next answer line without its line end, and whether that was
        ``\\r\\n``; writes what send() queued meanwhile. ``what`` names the
        command in a timeout's message."""
        cdef Connection c = self.conn
        cdef PacketReader r
        cdef bint cr
        cdef int rc
        while True:
            if c.state != CS_CONNECTED:
                raise self._take_failure()
            r = c.reader
            try:
                rc = r._next()
                if rc and r.p_cmd != CMD_TEXT:
                    r._fail(ProtocolError(f"{c.key}: a binary {COMMAND_NAMES[r.p_cmd]} packet "
                                          f"in the answer to {what!r}", server=c.key))
            except GearmanError as e:
                if getattr(e, "server", None) is None:
                    e.server = c.key        # the reader's errors do not know the server
                self._conn_failed(c, e, FAIL_BACKOFF)
                raise self._take_failure()
            if rc:
                # the reader dropped a "\r" before the "\n": the line's bytes
                # are still in its buffer, p_body[p_len] is "\r" or "\n"
                cr = r.p_body[r.p_len] == 13
                c.failures = 0          # a valid answer: the server is healthy
                return PyUnicode_DecodeUTF8(r.p_body, r.p_len, "surrogateescape"), cr
            if self._poll_round(self.deadline, c, PF_NO_DISPATCH) == POLL_TIMEOUT:
                if c.wbuf.pending() > 0:
                    err = GearmanTimeoutError(f"{c.key}: send timed out", code=RC_TIMEOUT,
                                              server=c.key)
                elif c.last_recv < self.call_start:
                    # nothing at all since the call began: silent, as the client
                    # engines call it (the same error for every door)
                    err = ServerSilentError(
                        f"{c.key} answered nothing for {gm_monotonic() - self.call_start:.3g} s "
                        f"(to {what!r})", code=RC_TIMEOUT, server=c.key)
                else:
                    err = GearmanTimeoutError(f"{c.key}: no complete answer to {what!r} in time",
                                              code=RC_TIMEOUT, server=c.key)
                self._conn_failed(c, err, FAIL_BACKOFF)
                raise self._take_failure()

    def close(self):
        """Close the connection (the next start_call opens a new one)."""
        self.conn.close()
        self.conn.wbuf.clear()


def check_reachable(Connection c):
    """Open a connection to ``c``'s server the way ``c`` itself is opened (its
    connect timeout, its TLS context and handshake), then close it; raises
    ServerUnavailable if that fails. ``c`` is not touched: its engine connects
    it when it needs it (python-gearman's ``establish_connection`` asks this)."""
    cdef AdminEngine probe = AdminEngine(c.host, c.port, ssl_context=c.ssl_context,
                                         connect_timeout=c.connect_timeout)
    try:
        probe.start_call(c.connect_timeout)
    finally:
        probe.close()
