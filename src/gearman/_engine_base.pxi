# EngineBase: the part of an engine that is about connections, not about what
# travels on them. One poll loop (_poll_round) serves every blocking call, the
# asyncio drivers' pump() and the idle check; one routine (_conn_failed)
# decides what a failed connection costs. docs/design.md describes both.


cdef inline int _ms_until(double t, double now) noexcept:
    """Milliseconds to wait for monotonic time t, rounded up (never negative)."""
    cdef double rem = t - now
    if rem <= 0:
        return 0
    if rem > 86400.0:
        return 86400000
    return <int>(rem * 1000.0) + 1


cdef inline bint _prepare(EngineBase self, Connection c, double now, int flags,
                          double *timer) except -1:
    """Before a poll: flush c's output, fail a connect past its deadline, and
    move *timer to c's connect deadline (or retry time). True: poll c."""
    cdef int how = FAIL_REROUTE | (0 if flags & PF_NO_BACKOFF else FAIL_BACKOFF)
    if c.state != CS_CONNECTED and now < 0:
        now = gm_monotonic()
    if c.state == CS_CONNECTED:
        if c.wbuf.pending() > 0:
            try:
                c.flush()
            except GearmanError as e:
                self._conn_failed(c, e, how)
    elif c.state != CS_DISCONNECTED and c.connect_deadline <= now:
        # a connect that takes no answer: the server is silent, not refusing
        self._conn_failed(c, ServerUnavailable(
            f"connect to {c.key} timed out after {c.connect_timeout:g} s",
            code=RC_TIMEOUT, server=c.key), how | FAIL_DEMOTE)
    if c.state == CS_DISCONNECTED:
        if flags & PF_RETRY_TIMERS and (timer[0] < 0 or c.down_until < timer[0]):
            timer[0] = c.down_until
        return False
    if c.state != CS_CONNECTED and (timer[0] < 0 or c.connect_deadline < timer[0]):
        timer[0] = c.connect_deadline
    return True


cdef inline int _service(EngineBase self, Connection c, short rev, int flags) except -1:
    """After a poll: finish c's connect or handshake, write, read, and hand
    what arrived to _on_data. Returns 1 if _on_data asked to pause."""
    try:
        if c.state == CS_CONNECTING:
            c.finish_connect()
        elif c.state == CS_HANDSHAKE:
            c.do_handshake()
        else:
            if rev & POLLOUT:
                c.flush()
            if rev & (POLLIN | POLLERR | POLLHUP | POLLNVAL):
                c.fill()
                if not (flags & PF_NO_DISPATCH):
                    return self._on_data(c)
    except GearmanError as e:
        self._conn_failed(c, e, FAIL_REROUTE |
                          (0 if flags & PF_NO_BACKOFF else FAIL_BACKOFF))
    return 0


def monotonic():
    """The engines' clock (monotonic seconds): what ClientEngine.timed_out's
    ``started`` is measured on."""
    return gm_monotonic()


cdef class EngineBase:
    """Connections, the poll loop and the failure policy of an engine."""

    def __cinit__(self, *args, **kwargs):
        self.servers = []
        self._connect_timeout = 5.0
        self._max_packet_size = DEFAULT_MAX_PACKET
        self.ka_idle = KEEPALIVE_IDLE
        self.ka_interval = KEEPALIVE_INTERVAL
        self.ka_count = KEEPALIVE_COUNT
        self._user_timeout = -1.0
        self.ssl_context = None
        self.client_id = None
        self.max_servers = 0
        self.retry_timers = False
        self.fail_log_level = logging.DEBUG
        self.pfds = NULL
        self.pfds_alloc = 0
        self.wake_r = -1
        self.wake_sock = None

    def __dealloc__(self):
        if self.pfds != NULL:
            PyMem_Free(self.pfds)

    property connect_timeout:
        """Seconds a connect may take (finite and positive: a connect never blocks for ever)."""
        def __get__(self):
            return self._connect_timeout

        def __set__(self, value):
            self._connect_timeout = _check_seconds(value, "connect_timeout")

    property max_packet_size:
        """The largest payload sent or accepted, bytes."""
        def __get__(self):
            return self._max_packet_size

        def __set__(self, value):
            self._max_packet_size = _check_size(value, "max_packet_size")

    property keepalive:
        """TCP keepalive of every connection: ``(idle, interval, count)``, whole
        seconds idle before the first probe, seconds between probes, unanswered
        probes before the peer counts as dead (default ``(30, 10, 6)``: about
        90 s); None turns keepalive off.  Applies from each connection's next
        connect."""
        def __get__(self):
            if self.ka_idle == 0:
                return None
            return (self.ka_idle, self.ka_interval, self.ka_count)

        def __set__(self, value):
            cdef Connection c
            if value is None:
                self.ka_idle = self.ka_interval = self.ka_count = 0
            else:
                if not isinstance(value, tuple) or len(value) != 3 or not all(
                        type(v) is int for v in value):
                    raise InvalidTypeError("keepalive must be None or a tuple of three ints "
                                           "(idle s, interval s, count)")
                idle, interval, count = value
                # (the limits of Linux, the strictest: 32767 s, 127 probes)
                if not (1 <= idle <= 32767 and 1 <= interval <= 32767 and 1 <= count <= 127):
                    raise InvalidArgumentError(
                        f"keepalive {value!r} out of range (idle and interval 1-32767 s, "
                        f"count 1-127)")
                self.ka_idle, self.ka_interval, self.ka_count = idle, interval, count
            for c in self.servers:
                self._apply_keepalive(c)

    property tcp_user_timeout:
        """Seconds data sent on a connection may stay unacknowledged before the
        kernel drops the connection (TCP_USER_TIMEOUT, Linux; other platforms
        have no such option and ignore it).  None (the default): the keepalive's
        ``idle + interval * count``, so a lost peer is noticed as soon with data
        in flight as without (90 s; none when keepalive is off); 0: not set
        (the system's retransmission limit, about 15 minutes on Linux).
        Applies from each connection's next connect."""
        def __get__(self):
            if self._user_timeout < 0:
                return None
            return self._user_timeout

        def __set__(self, value):
            cdef Connection c
            if value is None:
                self._user_timeout = -1.0
            elif not isinstance(value, bool) and isinstance(value, (int, float)) and value == 0:
                self._user_timeout = 0.0
            else:
                # (TCP_USER_TIMEOUT takes milliseconds in an unsigned int)
                if _check_seconds(value, "tcp_user_timeout") > 4294967.0:
                    raise InvalidArgumentError(
                        f"tcp_user_timeout must be at most 4294967 s, not {value!r}")
                self._user_timeout = value
            for c in self.servers:
                self._apply_keepalive(c)

    cdef int _apply_keepalive(self, Connection c) except -1:
        """Give c this engine's keepalive and TCP_USER_TIMEOUT (set on connect)."""
        cdef double ut = self._user_timeout
        c.ka_idle, c.ka_interval, c.ka_count = self.ka_idle, self.ka_interval, self.ka_count
        if ut < 0:
            ut = self.ka_idle + self.ka_interval * self.ka_count
        c.user_timeout_ms = <unsigned int>(ut * 1000.0 + 0.5) if ut > 0 else 0
        if c.user_timeout_ms == 0 and ut > 0:
            c.user_timeout_ms = 1
        return 0

    def add_server(self, str host, object port, object ssl_context=None):
        """Add a server (no I/O); returns its Connection (the existing one if a duplicate).

        ``ssl_context``: this server's own TLS context (python-gearman's host
        dicts); None takes the engine's ``ssl_context``. A server already added
        keeps the context it was added with.

        Raises InvalidArgumentError for a host no resolver can take (NUL, a
        lone surrogate, a label over 63 or a name over 253 characters) or a
        port outside 1-65535 (ports do not wrap around)."""
        cdef Connection c
        _check_host(host)
        if isinstance(port, bool) or not isinstance(port, int):
            raise InvalidTypeError(f"port must be an int, not {type(port).__name__}")
        if not 1 <= port <= 65535:
            raise InvalidArgumentError(f"port {port} out of range (1-65535)")
        key = f"{host.lower()}:{port}"
        for c in self.servers:
            if c.key == key:
                return c
        if self.max_servers and len(self.servers) >= self.max_servers:
            raise InvalidArgumentError(f"an engine supports at most {self.max_servers} servers")
        c = Connection(host, port, self._connect_timeout, self._max_packet_size,
                       self.ssl_context if ssl_context is None else ssl_context)
        self._apply_keepalive(c)
        self.servers.append(c)
        return c

    # -- what an event loop needs to drive the engine (gearman.aio) -----------------

    def watch_list(self):
        """``[(fd, events, generation)]`` for every open connection: what an event
        loop must watch (POLLIN / POLLOUT bits) to drive this engine with pump()."""
        cdef Connection c
        return [(c.fd, c.poll_events(), c.generation) for c in self.servers
                if c.state != CS_DISCONNECTED]

    def next_deadline(self):
        """Monotonic time at which a connect times out (or, for a worker, a down
        server is due for its retry); -1.0: none."""
        cdef Connection c
        cdef double d = -1.0, t
        for c in self.servers:
            if c.state == CS_DISCONNECTED:
                if not self.retry_timers:
                    continue
                t = c.down_until
            elif c.state == CS_CONNECTING or c.state == CS_HANDSHAKE:
                t = c.connect_deadline
            else:
                continue
            if d < 0 or t < d:
                d = t
        return d

    def wait_ready(self, double timeout=-1.0):
        """Block until a connection has something to read (or a worker's stop(),
        or a down server's retry time); False on timeout. Nothing is dispatched:
        what arrived stays buffered for the next call."""
        cdef double deadline = DEADLINE_NONE if timeout < 0 else gm_monotonic() + timeout
        cdef Connection c
        cdef int r
        cdef bint any_open = False
        for c in self.servers:
            if c.state == CS_CONNECTED and c.reader._end > c.reader._start:
                return True
            any_open = any_open or c.state != CS_DISCONNECTED
        if not any_open:
            raise GearmanError("no connection to wait on", code=RC_NO_ACTIVE_FDS)
        while True:
            r = self._poll_round(deadline, None,
                                 PF_NO_DISPATCH | PF_WAKE |
                                 (PF_RETRY_TIMERS if self.retry_timers else 0))
            if r == POLL_INTERRUPTED:
                continue
            if r == POLL_NOTHING:
                raise GearmanError("no connection to wait on", code=RC_NO_ACTIVE_FDS)
            return r != POLL_TIMEOUT

    def flush(self):
        """Write what the sockets take now, without waiting (a failed connection
        is handled as in any round); returns the bytes still pending."""
        cdef Connection c
        cdef Py_ssize_t n = 0
        cdef double timer = -1.0
        for c in self.servers:
            # the round's own preparation: flush, and fail what failed
            if _prepare(self, c, -1.0, 0, &timer) and c.state == CS_CONNECTED:
                n += c.wbuf.pending()
        return n

    # -- the poll loop ----------------------------------------------------------------

    cdef int _ensure_pfds(self, Py_ssize_t n) except -1:
        cdef pollfd *p
        if n <= self.pfds_alloc:
            return 0
        p = <pollfd *>PyMem_Realloc(self.pfds, <size_t>(n * sizeof(pollfd)))
        if p == NULL:
            raise MemoryError()
        self.pfds = p
        self.pfds_alloc = n
        return 0

    cdef int _poll_round(self, double deadline, Connection only, int flags) except -1:
        """One round of the engine's I/O: prepare every open connection (or only
        ``only``), wait in poll() with the GIL released until something is
        ready, the deadline passes or a connect deadline / retry time comes,
        then service what is ready. Returns a PollResult.

        ``deadline`` is monotonic seconds, DEADLINE_NONE or DEADLINE_NOW (one
        look, no wait). A poll() interrupted by a signal runs the signal
        handlers (which may raise) and returns POLL_INTERRUPTED; any other
        poll() failure raises OSError: it is this process's fault (a closed
        descriptor, no memory), not a server's.
        """
        # the clock is read only when a deadline or a connect needs it: a
        # sequential call's round on an open connection does without
        cdef double now = gm_monotonic() if deadline >= 0 else -1.0
        cdef double timer = -1.0
        cdef Connection c
        cdef Py_ssize_t i, nfds = 0, nwake = 0
        cdef pollfd one[2]
        cdef pollfd *fds
        cdef list conns = None
        cdef int ms, rc, err
        cdef short rev
        if deadline >= 0 and now >= deadline:
            return POLL_TIMEOUT
        if only is not None:
            # a stack array: _service may fail over to another server, whose
            # idle check runs a nested round while this one is still dispatching
            fds = one
            if _prepare(self, only, now, flags, &timer):
                if flags & PF_WRITING and only.state == CS_CONNECTED and only.wbuf.pending() == 0:
                    return POLL_EVENTS          # all written: nothing to wait for
                fds[0].fd = only.fd
                fds[0].events = only.poll_events()
                fds[0].revents = 0
                nfds = 1
        else:
            self._ensure_pfds(len(self.servers) + 1)
            fds = self.pfds
            conns = []
            for c in self.servers:
                if not _prepare(self, c, now, flags, &timer):
                    continue
                fds[nfds].fd = c.fd
                fds[nfds].events = c.poll_events()
                fds[nfds].revents = 0
                conns.append(c)
                nfds += 1
        if flags & PF_WAKE and self.wake_r >= 0:
            fds[nfds].fd = self.wake_r
            fds[nfds].events = POLLIN
            fds[nfds].revents = 0
            nwake = 1
        if nfds + nwake == 0 and timer < 0:
            return POLL_NOTHING
        if deadline == DEADLINE_NOW:
            ms = 0
        else:
            if timer >= 0 and now < 0:
                now = gm_monotonic()
            ms = -1 if deadline < 0 else _ms_until(deadline, now)
            if timer >= 0 and (ms < 0 or _ms_until(timer, now) < ms):
                ms = _ms_until(timer, now)
            else:
                timer = -1.0                # the caller's deadline bounds this wait
        with nogil:
            rc = gm_poll(fds, nfds + nwake, ms)
        if rc < 0:
            err = gm_sockerr()
            if GM_EINTR(err):
                PyErr_CheckSignals()
                return POLL_INTERRUPTED
            raise OSError(err, _sockerr_text(err))
        if rc == 0:
            return POLL_TIMER if timer >= 0 and deadline != DEADLINE_NOW else POLL_TIMEOUT
        if nwake and fds[nfds].revents:
            try:
                self.wake_sock.recv(4096)
            except OSError:
                pass
            # stop(), or a signal (serve() makes this socket the signal wake-up
            # fd, so a signal that lands just before poll() still ends the
            # wait): run the handlers now; they may have called stop()
            PyErr_CheckSignals()
            return POLL_WOKEN
        for i in range(nfds):
            rev = fds[i].revents
            if not rev:
                continue
            c = only if only is not None else <Connection>conns[i]
            if c.state == CS_DISCONNECTED:
                continue                    # failed while this round dispatched
            if _service(self, c, rev, flags):
                return POLL_PAUSED
        return POLL_EVENTS

    # -- the failure policy --------------------------------------------------------------

    cdef int _conn_failed(self, Connection c, object exc, int how) except -1:
        """A connection failed with ``exc``: close it, decide how long its server
        stays down (FAIL_BACKOFF: a jittered exponential backoff that grows
        with consecutive failures; else none, e.g. an idle connection found
        dead: its server may be back already), remember the cause, then let
        the engine settle the requests it carried (_on_failure)."""
        log.log(self.fail_log_level, "lost job server %s: %s", c.key, exc)
        # (a client's probe on c is forgotten by its _on_failure, which also
        # counts it out of ``probing``)
        if how & FAIL_DEMOTE:
            # silent: nothing it holds for the server may arrive late
            c.demoted = True
            c.abort()
        else:
            c.close()
        if how & FAIL_BACKOFF:
            c.failures += 1
            c.down_until = gm_monotonic() + _backoff(c.failures)
        else:
            c.failures = 0
            c.down_until = 0.0
        c.last_error = exc
        c.wbuf.clear()
        if how & FAIL_DEMOTE and self._events is not None:
            # (before its requests end: a listener sees why they fail)
            self._events.server_demoted(
                c.key, str(exc), max(c.down_until - gm_monotonic(), 0.0) if how & FAIL_BACKOFF
                else 0.0)
        self._on_failure(c, exc, how)
        return 0

    cdef int _on_failure(self, Connection c, object exc, int how) except -1:
        """Settle the requests of a connection that failed (engine-specific)."""
        return 0

    cdef int _restore(self, Connection c) except -1:
        """A demoted server sent a valid packet: it answers again, so it is no
        longer demoted (server_restored), whoever asked it (a client's probe or
        call, a worker's GRAB). The engines call this from their packet loops
        while ``c.demoted`` is set."""
        c.demoted = False
        c.failures = 0
        if self._events is not None:
            self._events.server_restored(c.key)
        return 0

    cdef int _on_data(self, Connection c) except -1:
        """Bytes arrived on c (engine-specific); 1 asks the caller to pause."""
        return 0
