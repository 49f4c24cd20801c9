# ClientEngine: routing a client's requests to servers (rendezvous hashing for
# caller-given uniques), matching the replies (a FIFO per connection for
# JOB_CREATED / STATUS_RES / ECHO_RES / OPTION_RES / ERROR, a handle map for
# WORK_*), and settling the requests of a failed connection. The connections
# and the poll loop are EngineBase's; the blocking calls (run, do*, jobStatus)
# and gearman.aio's pump() both drive them through _poll_round.

#: what the cached-key fast paths hold before any key was cached
_NO_KEY = object()


class _CallbackAbort(Exception):
    """Internal: a user callback raised; the engine unwinds and re-raises it."""


cdef object _lost(Connection c, Task t, object cause=None):
    if t.state == TS_CREATED:
        msg = (f"lost connection to {c.key} while job {t._handle} was running; "
               f"its outcome is unknown")
    else:
        msg = f"lost connection to {c.key} after the request was sent; its outcome is unknown"
    # a ProtocolError cause is named in the error (type, message, __cause__)
    return _lost_connection_error(msg, cause, server=c.key, handle=t._handle)


# -- events (gearman.events): what the emission points pass; only called while
# someone listens, so nothing here costs anything otherwise

cdef str _priority(int cmd):
    if cmd == CMD_SUBMIT_JOB_HIGH or cmd == CMD_SUBMIT_JOB_HIGH_BG:
        return "high"
    if cmd == CMD_SUBMIT_JOB_LOW or cmd == CMD_SUBMIT_JOB_LOW_BG:
        return "low"
    return "normal"


cdef inline str _text(bytes b):
    return b.decode("utf-8", "surrogateescape")


cdef int _emit_error(object ev, object request, str function, object server, object handle,
                     object err) except -1:
    """The terminal event of a request that ended with ``err`` (a GearmanError)."""
    if isinstance(err, TimeoutError):           # GearmanTimeoutError, ServerSilentError
        ev.request_timed_out(request, function, server, handle)
    elif isinstance(err, ConnectionError):      # LostConnectionError, ServerUnavailable
        ev.request_lost_connection(request, function, server, handle)
    else:                                       # refused (ServerError), result too large...
        ev.request_failed(request, function, server, handle)
    return 0


cdef int _emit_gave_up(object ev, object request, str function, object server, object handle,
                       object reason) except -1:
    """The terminal event of a request its caller gave up on (abandon)."""
    if isinstance(reason, TimeoutError):        # the call's timeout (asyncio's too)
        ev.request_timed_out(request, function, server, handle)
    else:                                       # cancelled, interrupted, a callback raised
        ev.request_abandoned(request, function, server, handle, reason)
    return 0


@cython.final
cdef class ClientEngine(EngineBase):
    """The compiled engine behind ``GearmanClient``: routing, the task table and
    reply matching, on the connections and poll loop of :class:`EngineBase`."""

    def __cinit__(self, *args, **kwargs):
        self.max_servers = MAX_CLIENT_SERVERS
        self.timeout_ms = -1
        self.exceptions = True
        self.generate_unique = True
        self.rr = 0
        self.handle_servers = {}
        self.handle_ring = []
        self.ring_pos = 0
        self.handle_memory = 100000
        self.outstanding = 0
        self.paused = None
        self.pause_code = 0
        self._task_type = Task
        self.finished_log = None
        self.fork_gen = _fork_generation
        # the cached-name fast paths compare identity with these: a sentinel no
        # caller can pass (None is an argument a caller can pass, and must be refused)
        self._fn_key = _NO_KEY
        self._h_key = _NO_KEY
        self.call_start = -1.0
        self.probing = 0

    @property
    def task_type(self):
        """Class of new tasks: Task or a subclass (the facade's GearmanTask)."""
        return self._task_type

    @task_type.setter
    def task_type(self, value):
        if not isinstance(value, type) or not issubclass(value, Task):
            raise InvalidTypeError("task_type must be Task or a subclass of it")
        self._task_type = value

    # -- servers ---------------------------------------------------------------

    cdef int _check_fork(self) except -1:
        """In a forked child, drop every inherited connection before any I/O.

        The parent still owns those sockets and their in-flight requests: the
        child closes its copies (no shutdown, so the parent is not disturbed),
        forgets the parent's tasks and reconnects on first use.
        """
        cdef Connection c
        if self.fork_gen == _fork_generation:
            return 0
        self.fork_gen = _fork_generation
        for c in self.servers:
            c.close()
            c.pending = Fifo()
            c.handles = {}
            c.wbuf.clear()
            c.reader = PacketReader(c.max_packet_size, b"\0RES", False)
            c.failures = 0
            c.down_until = 0.0
            c.demoted = False
            c.probe = None
        self.probing = 0
        self.outstanding = 0
        self.paused = None
        if self.finished_log is not None:
            self.finished_log = []
        return 0

    def close(self):
        """Close every connection; tasks in flight end with LostConnectionError."""
        cdef Connection c
        for c in self.servers:
            if c.state != CS_DISCONNECTED:
                self._conn_failed(c, LostConnectionError("client closed", server=c.key), 0)

    # -- task creation -----------------------------------------------------------

    cpdef Task new_submit(self, int cmd, object function, object workload, object unique,
                          object context=None):
        """Build a validated SUBMIT_JOB* task (no I/O)."""
        cdef Task t = _new_task(self._task_type)
        cdef bytes u
        cdef const unsigned char[::1] mv
        if not _is_submit(cmd):
            raise InvalidArgumentError(f"command {cmd} is not a job submission")
        t.kind = TASK_SUBMIT
        t.command = cmd
        if function is self._fn_key:
            t._function = self._fn_bytes     # the last name, validated and encoded then
        else:
            t._function = _name_bytes(function)
            if type(function) is str or type(function) is bytes:
                self._fn_key = function
                self._fn_bytes = t._function
        t._workload = _payload(workload, self._max_packet_size)
        t.context = context
        if unique is None or (isinstance(unique, (str, bytes)) and len(unique) == 0):
            t._unique = _uniques.next() if self.generate_unique else b""
            t.hashed = False
        else:
            u = _unique_bytes(unique)
            if u == b"#":
                u = workload_hash_unique(t._workload).encode("ascii")
            t._unique = u
            t.hashed = True
            if u == b"-":
                # gearmand coalesces "-" on the workload bytes: route by them.
                mv = _as_buffer(t._workload)
                t.route_hash = _route_hash(t._function, &mv[0] if mv.shape[0] else NULL,
                                           <size_t>mv.shape[0])
            else:
                t.route_hash = _route_hash(t._function,
                                           <const unsigned char *>PyBytes_AS_STRING(u),
                                           <size_t>PyBytes_GET_SIZE(u))
        if not _is_background(cmd):
            t._chunks = []
        return t

    cpdef Task new_request(self, int kind, object arg, object context=None):
        """Build a status / status-by-unique / echo task (no I/O)."""
        cdef Task t = _new_task(self._task_type)
        t.kind = kind
        t.context = context
        if kind == TASK_STATUS:
            t.command = CMD_GET_STATUS
            if arg is self._h_key:
                t._workload = self._h_bytes     # the last handle asked about (a poll loop)
            else:
                t._workload = _handle_bytes(arg)
                if type(arg) is str or type(arg) is bytes:
                    self._h_key = arg
                    self._h_bytes = t._workload
            if type(arg) is str:
                t._handle = <str>arg        # no decode of what was just encoded
            else:
                t._handle = _handle_str(PyBytes_AS_STRING(t._workload),
                                        PyBytes_GET_SIZE(t._workload))
        elif kind == TASK_STATUS_UNIQUE:
            t.command = CMD_GET_STATUS_UNIQUE
            t._unique = _unique_bytes(arg)
            if not t._unique:
                raise InvalidArgumentError("unique must not be empty")
            t._workload = t._unique
        elif kind == TASK_ECHO:
            t.command = CMD_ECHO_REQ
            t._workload = _payload(arg, self._max_packet_size, "echo payload")
        else:
            raise InvalidArgumentError(f"unknown task kind {kind}")
        return t

    # -- routing and writing -------------------------------------------------------

    cdef Connection _pick(self, Task t):
        return self._pick_for(t.hashed, t.route_hash, &t.tried)

    cdef Connection _pick_for(self, bint hashed, uint64_t route_hash, uint64_t *tried):
        """The server for a job: best rendezvous score (hashed) or the next in
        round-robin order, healthy servers first; None once all were tried."""
        cdef Py_ssize_t i, n = len(self.servers), k
        cdef Connection c, best = None, best_down = None
        cdef uint64_t score, best_s = 0, best_down_s = 0
        cdef double now
        cdef int bi = -1, bdi = -1
        if n == 0:
            raise NoServersError(NO_SERVERS_MESSAGE)
        if n == 1:
            if tried[0] & 1:
                return None
            tried[0] |= 1
            return <Connection>self.servers[0]
        now = gm_monotonic()
        if hashed:
            for i in range(n):
                if tried[0] & ((<uint64_t>1) << i):
                    continue
                c = <Connection>self.servers[i]
                score = gm_mix64(route_hash ^ c.seed)
                if self._usable(c, now):
                    if best is None or score > best_s:
                        best, best_s, bi = c, score, i
                elif best_down is None or score > best_down_s:
                    best_down, best_down_s, bdi = c, score, i
        else:
            for k in range(n):
                i = (self.rr + k) % n
                if tried[0] & ((<uint64_t>1) << i):
                    continue
                c = <Connection>self.servers[i]
                if self._usable(c, now):
                    best, bi = c, i
                    break
                if best_down is None:
                    best_down, bdi = c, i
            self.rr = (self.rr + 1) % n
        if best is None:
            best, bi = best_down, bdi
        if best is None:
            return None
        tried[0] |= (<uint64_t>1) << bi
        return best

    cdef bint _usable(self, Connection c, double now) except -1:
        """Whether routing may choose c now: it is up or its backoff is over; a
        demoted (silent) server only once a probe was answered.  Starts the
        probe of a demoted server whose backoff is over, and demotes it again
        (a longer backoff) when its probe went unanswered."""
        if not c.demoted:
            return c.state != CS_DISCONNECTED or c.down_until <= now
        if c.probe is not None:
            if c.probe_deadline <= now:
                self._conn_failed(c, ServerSilentError(
                    f"{c.key} did not answer a probe within {c.connect_timeout:g} s",
                    code=RC_TIMEOUT, server=c.key), FAIL_BACKOFF | FAIL_DEMOTE)
        elif c.down_until <= now:
            self._start_probe(c, now)
        return False

    cdef int _start_probe(self, Connection c, double now) except -1:
        """Send a demoted server an ECHO_REQ of its own: the answer (read by any
        later poll round) returns it to rotation; no caller waits on it."""
        cdef Task t = Task.__new__(Task)
        t.kind = TASK_ECHO
        t.command = CMD_ECHO_REQ
        t._workload = b""
        t.abandoned = True              # not a caller's request: never counted
        try:
            self._connect(c)
        except GearmanError as e:
            self._conn_failed(c, e, FAIL_BACKOFF)
            return 0
        self._write_task(c, t)
        c.probe = t
        c.probe_deadline = now + c.connect_timeout
        self.probing += 1
        return 0

    cdef int _demote_silent(self, list wait, double start, Batch batch=None) except -1:
        """A call that began at ``start`` (monotonic seconds) timed out: a server
        that answered nothing since then (when its requests were written) is
        silent, not slow to finish a job.  Demote it (FAIL_DEMOTE): routing skips
        it until a probe answers, and the connection is reset, so what it holds
        is dropped, not delivered late.  Its requests end with ServerSilentError:
        ``submitted`` False for those the kernel never took (safe to submit
        again), None for the rest.  The servers considered: those of the tasks
        in ``wait``, those holding jobs of ``batch``, else (``wait`` None) every
        server with a request out.  Every door's timeout comes here: the
        blocking waits, and an event loop's through timed_out / batch_timed_out."""
        cdef Connection c
        cdef Task t
        cdef BatchRun run
        cdef Py_ssize_t k
        cdef list silent = []
        if start < 0 or gm_monotonic() - start < SILENT_AFTER:
            return 0                        # too short a wait to call a server silent
        if batch is not None:
            for c in self.servers:
                if c.state == CS_DISCONNECTED or c.last_recv >= start:
                    continue
                for k in range(c.pending.size()):
                    entry = c.pending.at(k)
                    if type(entry) is BatchRun:
                        run = <BatchRun>entry
                        if run.batch is batch and run.pos < run.n:
                            silent.append(c)
                            break
        elif wait is None:
            for c in self.servers:
                if c.state != CS_DISCONNECTED and c.pending.size() > 0 and \
                        c.last_recv < start:
                    silent.append(c)
        else:
            for t in wait:
                c = t.conn
                if (t.state == TS_QUEUED and c is not None and c.state != CS_DISCONNECTED
                        and c.last_recv < start and c not in silent):
                    silent.append(c)
        for c in silent:
            self._conn_failed(c, ServerSilentError(
                f"{c.key} answered nothing for {gm_monotonic() - start:.3g} s",
                code=RC_TIMEOUT, server=c.key), FAIL_BACKOFF | FAIL_DEMOTE)
        return 0

    cdef int _connect(self, Connection c) except -1:
        """Open c if needed and queue what goes first on a fresh connection."""
        cdef Task opt
        if c.state != CS_DISCONNECTED and c.pid != _fork_generation:
            # Inherited across fork(): the parent still uses this socket.
            # Close our copy (no shutdown) and open our own.
            c.close()
            c.pending = Fifo()
            c.handles = {}
            c.wbuf.clear()
        if c.state != CS_DISCONNECTED:
            return 0
        c.start_connect()
        if self.client_id is not None:
            c.wbuf.write_one(CMD_SET_CLIENT_ID, PyBytes_AS_STRING(self.client_id),
                             PyBytes_GET_SIZE(self.client_id))
        if self.exceptions:
            opt = Task.__new__(Task)
            opt.kind = TASK_OPTION
            opt.command = CMD_OPTION_REQ
            opt.conn = c
            opt.state = TS_QUEUED
            c.wbuf.write_one(CMD_OPTION_REQ, "exceptions", 10)
            c.pending.push(opt)
        c.queued = c.wbuf.pending()
        return 0

    cdef int _remember(self, str handle, Connection c) except -1:
        """Keep handle -> server for jobStatus, the oldest forgotten past handle_memory.

        The order is a ring of handle_memory slots (a list: C-level indexing,
        no method calls); ``next(iter(dict))`` after many deletions would scan
        the dict's dead slots (it grew to ~50 us per job).
        """
        cdef list ring = self.handle_ring
        cdef Py_ssize_t cap = self.handle_memory, n
        cdef str old
        cdef dict known = self.handle_servers
        cdef Py_ssize_t before = len(known)
        if cap <= 0:
            if ring:
                known.clear()
                self.handle_ring = []
                self.ring_pos = 0
            return 0
        prev = known.setdefault(handle, c)      # one hash and lookup, not two
        if len(known) == before:
            if prev is not c:
                # Two servers issued the same handle string (two gearmand on one
                # host both count from H:host:1): remember both, so jobStatus
                # asks each of them (docs/reliability.md).
                if type(prev) is tuple:
                    if c not in <tuple>prev:
                        known[handle] = (<tuple>prev) + (c,)
                else:
                    known[handle] = (prev, c)
            return 0
        n = len(ring)
        if n != cap and self.ring_pos != 0:
            # handle_memory changed after the ring wrapped: put it in order
            ring = ring[self.ring_pos:] + ring[:self.ring_pos]
            self.ring_pos = 0
            self.handle_ring = ring
        if n > cap:
            for old in ring[:n - cap]:
                self.handle_servers.pop(old, None)
            ring = ring[n - cap:]
            self.handle_ring = ring
            n = cap
        if n < cap:
            ring.append(handle)
        else:
            old = <str>ring[self.ring_pos]
            self.handle_servers.pop(old, None)
            ring[self.ring_pos] = handle
            self.ring_pos += 1
            if self.ring_pos == cap:
                self.ring_pos = 0
        return 0

    def remembered_handles(self):
        """The handles whose server is remembered, oldest first (a copy)."""
        return self.handle_ring[self.ring_pos:] + self.handle_ring[:self.ring_pos]

    cdef bint _idle(self, Connection c):
        """True if nothing a caller still waits for is on c: its FIFO holds only
        abandoned requests (a timed-out call's), answered ones or the options."""
        cdef Task t
        cdef Fifo pend = c.pending
        cdef Py_ssize_t k
        if c.handles:
            return False
        if pend.size() == 0:
            return True
        for k in range(pend.size()):
            entry = pend.at(k)      # no copy: this runs before each request
            if type(entry) is BatchRun:
                if not (<BatchRun>entry).batch.abandoned:
                    return False
                continue
            t = <Task>entry
            if not (t.abandoned or t.state == TS_DONE or t.kind == TASK_OPTION):
                return False
        return True

    cdef int _check_idle(self, Connection c) except -1:
        """Notice an EOF already waiting on an idle connection before reusing it.

        Idle includes a connection whose only requests were abandoned by a
        call that timed out: if it died meanwhile, the next call must go to a
        fresh connection, not fail as "outcome unknown" on the dead one.  TLS
        included: the round reads what the socket has (a close_notify, an EOF,
        a session ticket) through the TLS layer, as any round does.
        """
        if c.state != CS_CONNECTED or c.handles:
            return 0
        if c.pending.count != 0 and not self._idle(c):
            return 0                        # (an empty queue, the usual case: no call)
        if gm_monotonic() - c.last_recv < IDLE_CHECK_AFTER:
            # It answered within the last millisecond (a caller's loop of
            # sequential calls): skip the poll(0), one system call per call.  A
            # server that died in that window makes the call's outcome unknown
            # (LostConnectionError) instead of sending it to a fresh connection.
            return 0
        # one look, no wait: an EOF (or a late answer) already there is handled
        # now; the old connection failed, not a connect attempt: no backoff
        self._poll_round(DEADLINE_NOW, c, PF_NO_BACKOFF)
        return 0

    cdef int _write_task(self, Connection c, Task t) except -1:
        cdef Py_ssize_t before = c.wbuf.pending()
        cdef const unsigned char[::1] mv
        cdef bytes w
        if t.kind == TASK_SUBMIT:
            w = <bytes>t._workload
            c.wbuf.write_submit(t.command, PyBytes_AS_STRING(t._function),
                                PyBytes_GET_SIZE(t._function), PyBytes_AS_STRING(t._unique),
                                PyBytes_GET_SIZE(t._unique), w)
        else:
            w = <bytes>t._workload
            c.wbuf.write_one(t.command, PyBytes_AS_STRING(w), PyBytes_GET_SIZE(w))
        t.wstart = c.queued
        c.queued += <uint64_t>(c.wbuf.pending() - before)
        t.wend = c.queued
        t.conn = c
        t.state = TS_QUEUED
        c.pending.push(t)
        return 0

    cdef int _route(self, Task t) except -1:
        """Put t on a server: the hash choice, else the next healthy one."""
        cdef Connection c
        while True:
            c = self._pick(t)
            if c is None:
                err = ServerUnavailable(self._down_message(), code=RC_COULD_NOT_CONNECT)
                self._finish_error(t, err)
                return 0
            try:
                if c.state == CS_CONNECTED:
                    # a connection that died while idle is replaced at once:
                    # its server may well be back (restarted) already
                    self._check_idle(c)
                self._connect(c)
            except GearmanError as e:
                self._conn_failed(c, e, FAIL_REROUTE | FAIL_BACKOFF)
                continue
            self._write_task(c, t)
            return 0

    cdef str _down_message(self):
        cdef Connection c
        parts = []
        for c in self.servers:
            parts.append(f"{c.key}: {c.last_error}" if c.last_error is not None else c.key)
        return "no job server could be reached (" + "; ".join(parts) + ")"

    cpdef int submit(self, Task t) except -1:
        """Route and queue a task; it is written by the next run()."""
        if t.state != TS_NEW:
            raise InvalidArgumentError("task was already submitted")
        self._check_fork()
        self.outstanding += 1
        if self._events is not None and t.kind == TASK_SUBMIT:
            self._emit_submitted(t)
        self._route(t)
        return 0

    cpdef int submit_to(self, Connection c, Task t) except -1:
        """Queue a task on one given server (status, echo); a dead server fails it."""
        if t.state != TS_NEW:
            raise InvalidArgumentError("task was already submitted")
        self._check_fork()
        self.outstanding += 1
        t.tried = 0xFFFFFFFFFFFFFFFFULL
        try:
            if c.state == CS_CONNECTED:
                # as _route does: a connection that died while idle (the server
                # restarted between two calls) is replaced before this request
                # goes out on it, not after it was lost with it
                self._check_idle(c)
            self._connect(c)
        except GearmanError as e:
            self._conn_failed(c, e, FAIL_REROUTE | FAIL_BACKOFF)
            self._finish_error(t, e)
            return 0
        self._write_task(c, t)
        return 0

    def submit_all(self, list tasks):
        """Queue the tasks of a runTasks() in order: a status query on the server
        that issued its handle (else the first server), the others by submit()."""
        cdef Task t
        cdef Connection c
        for t in tasks:
            if t.kind == TASK_STATUS:
                c = self.server_of(t._handle)
                if c is None and self.servers:
                    c = <Connection>self.servers[0]
                if c is None:
                    self.submit(t)              # raises NoServersError
                else:
                    self.submit_to(c, t)
            else:
                self.submit(t)

    cpdef object server_of(self, str handle):
        """The Connection that issued a handle (the latest, if several servers
        issued the same string), if this client remembers it."""
        entry = self.handle_servers.get(handle)
        if type(entry) is tuple:
            # (no negative index: the core is built with wraparound off)
            return (<tuple>entry)[len(<tuple>entry) - 1]
        return entry

    def servers_of(self, str handle):
        """Every Connection this client remembers issuing ``handle`` (a list)."""
        entry = self.handle_servers.get(handle)
        if entry is None:
            return []
        return list(<tuple>entry) if type(entry) is tuple else [entry]

    # -- finishing tasks -----------------------------------------------------------

    cdef inline int _finish(self, Task t, int rc) except -1:
        if t.state == TS_DONE:
            return 0
        t.state = TS_DONE
        t.code = rc
        t._known = False
        t._running = False
        if t.kind != TASK_OPTION and not t.abandoned:
            self.outstanding -= 1
            if self.finished_log is not None:
                self.finished_log.append(t)
            if self._events is not None and t.kind == TASK_SUBMIT:
                self._emit_end(t)
        return 0

    # -- events (only called while someone listens) ----------------------------------

    cdef int _emit_submitted(self, Task t) except -1:
        self._events.request_submitted(t, _text(t._function),
                                       _text(t._unique) if t._unique else None,
                                       _is_background(t.command), _priority(t.command))
        return 0

    cdef int _emit_end(self, Task t) except -1:
        """The terminal event of a request that finished (t.code, t.error say how)."""
        cdef object ev = self._events
        cdef object server = t.conn.key if t.conn is not None else None
        cdef object handle = t._handle if t._handle else None
        if t.error is not None:
            return _emit_error(ev, t, _text(t._function), server, handle, t.error)
        if t.code == RC_SUCCESS:
            if not _is_background(t.command):   # a background request ended when accepted
                ev.request_completed(t, _text(t._function), server, handle)
        elif t.code == RC_WORK_EXCEPTION:
            ev.request_exception(t, _text(t._function), server, handle, t._data)
        else:
            ev.request_failed(t, _text(t._function), server, handle)
        return 0

    cdef int _finish_error(self, Task t, object err) except -1:
        if t.state == TS_DONE:
            return 0
        t.error = err
        self._finish(t, err.code)
        return 0

    def abandon(self, Task t, object reason=None):
        """The caller gave up on t (timeout, interrupt): drop its late replies.

        ``reason``: why (the exception that ended the caller's wait), for the
        event listeners: a TimeoutError is ``request_timed_out``, anything
        else ``request_abandoned``."""
        self._abandon(t, reason)

    cdef int _abandon(self, Task t, object reason) except -1:
        cdef Connection c = t.conn
        cdef object entry
        if t.state == TS_DONE or t.abandoned:
            return 0
        if self._events is not None and t.kind == TASK_SUBMIT:
            _emit_gave_up(self._events, t, _text(t._function), c.key if c is not None else None,
                          t._handle if t._handle else None, reason)
        t.abandoned = True
        self.outstanding -= 1
        if t.state == TS_CREATED and c is not None:
            entry = c.handles.get(t._handle)
            if entry is t:
                del c.handles[t._handle]
            elif isinstance(entry, list) and t in entry:
                entry.remove(t)
                if not entry:
                    del c.handles[t._handle]
            t.state = TS_DONE
        elif t.state == TS_QUEUED and c is not None:
            self._drop_unsent_tail(c)
        # A queued task stays in its connection's FIFO so that the answers of
        # the requests behind it still match; its answer is dropped on arrival.
        return 0

    cdef int _drop_unsent_tail(self, Connection c) except -1:
        """Take back the abandoned requests at the end of c's queue whose bytes
        the kernel never took: the server never sees them (a timeout too short
        to demote the server, a cancellation).  An abandoned request with a
        live one queued behind it stays (its answer is dropped on arrival);
        a probe (abandoned from the start) is never taken back.  Not over TLS:
        a write the socket refused may already sit encrypted in OpenSSL's
        record buffer, bound to be sent with the next write."""
        cdef object entry
        cdef Task t
        if c.tls is not None:
            return 0
        while c.pending.size() > 0:
            entry = c.pending.last()
            if not isinstance(entry, Task):
                return 0
            t = <Task>entry
            if (not t.abandoned or t is c.probe or t.state != TS_QUEUED
                    or t.wend != c.queued or c.sent > t.wstart):
                return 0
            if not c.wbuf.drop_tail(<Py_ssize_t>(t.wend - t.wstart)):
                return 0
            c.pending.pop_last()
            c.queued = t.wstart
            t.state = TS_DONE
        return 0

    cdef int _on_failure(self, Connection c, object exc, int how) except -1:
        """Settle the requests of a connection that failed: those whose bytes the
        kernel never took are rerouted (FAIL_REROUTE) or fail with the
        connection's error; those it took end "outcome unknown"."""
        cdef Task t
        cdef list again = []
        cdef object entry
        cdef list again_batch = []
        cdef BatchRun run
        cdef Py_ssize_t k, i
        cdef bint reroute = how & FAIL_REROUTE
        cdef object not_sent, unknown
        if c.probe is not None:
            c.probe = None
            self.probing -= 1
        pend = c.pending.items_in_order()
        handles = c.handles
        c.pending = Fifo()
        c.handles = {}
        if isinstance(exc, ServerSilentError):
            # a call timed out on it: nothing goes elsewhere behind its caller's back
            reroute = False
            not_sent = ServerSilentError(f"{exc}; the request was not sent to it (safe to submit again)",
                                         code=RC_TIMEOUT, server=c.key, submitted=False)
            unknown = ServerSilentError(f"{exc} after the request was sent; its outcome is unknown",
                                        code=RC_TIMEOUT, server=c.key, submitted=None)
        else:
            not_sent = exc if isinstance(exc, GearmanError) else None
            unknown = None
        for entry in pend:
            if type(entry) is BatchRun:
                run = <BatchRun>entry
                for k in range(run.pos, run.n):
                    i = run.idx[k]
                    if run.batch.abandoned:
                        continue
                    if reroute and c.sent < run.batch.wend[i]:
                        again_batch.append((run.batch, i))
                    else:
                        self._batch_fail(run.batch, i, (not_sent if not_sent is not None else exc)
                                         if c.sent < run.batch.wend[i]
                                         else unknown if unknown is not None else _lost_connection_error(
                                             f"lost connection to {c.key} after the job was sent;"
                                             f" its outcome is unknown", exc, server=c.key))
                continue
            t = <Task>entry
            if t.state == TS_DONE or t.kind == TASK_OPTION:
                continue
            if t.abandoned:
                t.state = TS_DONE
                continue
            if (reroute and t.kind == TASK_SUBMIT and c.sent < t.wend):
                again.append(t)
            elif c.sent < t.wend:
                # never sent: the error of the connection is the honest answer
                self._finish_error(t, not_sent if not_sent is not None else _lost(c, t))
            else:
                self._finish_error(t, unknown if unknown is not None else _lost(c, t, exc))
        for entry in handles.values():
            for t in (entry if isinstance(entry, list) else (entry,)):
                self._finish_error(t, unknown if unknown is not None else _lost(c, t, exc))
        for t in again:
            t.state = TS_NEW
            t.conn = None
            self._route(t)
        for b, i in again_batch:
            self._route_batch(<Batch>b, i)
        return 0

    # -- dispatch ------------------------------------------------------------------

    cdef int _deliver(self, Task t, int ev) except -1:
        """Call t's callback for ev; 1 if it asked runTasks to pause."""
        cdef object cbs = t.callbacks
        cdef object cb, r
        t._recv_pos = 0
        if cbs is None:
            return 0
        cb = cbs[ev]
        if cb is None:
            return 0
        try:
            r = cb(t, t.context)
        except BaseException as e:
            self.cb_exc = e
            raise _CallbackAbort() from None
        if r is None or r is True or r is False:
            return 0
        if isinstance(r, int) and r != 0:
            self.paused = (t, ev, t._data)
            self.pause_code = r
            return 1
        return 0

    cdef int _on_data(self, Connection c) except -1:
        """Dispatch every whole packet buffered on c; 1 if a callback paused."""
        while c.state == CS_CONNECTED and c.reader._next():
            c.failures = 0              # a valid packet: the server is healthy
            if c.demoted:
                self._restore(c)        # ... and answers again, whatever asked it
            if self._dispatch(c):
                return 1
        return 0

    cdef int _restore(self, Connection c) except -1:
        # its probe, if one is out, no longer matters: its answer is dropped
        # as an abandoned request's
        if c.probe is not None:
            c.probe = None
            self.probing -= 1
        return EngineBase._restore(self, c)

    cdef object _take(self, Connection c, int kind, str what):
        cdef Task t
        if c.pending.size() == 0:
            raise ProtocolError(f"{c.key} sent {what} that answers no request",
                                code=RC_UNEXPECTED_PACKET)
        if type(c.pending.first()) is BatchRun:
            raise ProtocolError(f"{c.key} sent {what} where JOB_CREATED was due",
                                code=RC_UNEXPECTED_PACKET)
        t = <Task>c.pending.first()
        if t.kind != kind:
            # t stays at the head: failing the connection settles it (no phantom
            # task that a later runTasks would wait for)
            raise ProtocolError(f"{c.key} sent {what} in answer to {COMMAND_NAMES[t.command]}",
                                code=RC_UNEXPECTED_PACKET)
        c.pending.pop()
        return t

    cdef int _result_too_large(self, Connection c, Task t, str handle, object entry) except -1:
        """A do* result streamed in WORK_DATA chunks outgrew max_packet_size: fail
        the task and forget its handle (later packets for it are dropped)."""
        if isinstance(entry, list):
            (<list>entry).remove(t)
            if len(<list>entry) == 0:
                del c.handles[handle]
        else:
            del c.handles[handle]
        t._chunks = None
        t._data = b""
        return self._finish_error(t, PacketTooLargeError(
            f"the result of job {handle} from {c.key} exceeds max_packet_size "
            f"({c.max_packet_size} bytes) in its WORK_DATA chunks",
            code=RC_DATA_TOO_LARGE, server=c.key, handle=handle))

    cdef int _dispatch(self, Connection c) except -1:
        cdef PacketReader r = c.reader
        cdef Py_ssize_t off[8]
        cdef Py_ssize_t ln[8]
        cdef uint32_t cmd = r.p_cmd
        cdef Task t
        cdef object entry
        cdef tuple args
        cdef str handle
        cdef const char *z
        if cmd == CMD_JOB_CREATED:
            if c.pending.size() and type(c.pending.first()) is BatchRun:
                return self._batch_answer(c, _handle_str(r.p_body, r.p_len), None)
            t = <Task>self._take(c, TASK_SUBMIT, "JOB_CREATED")
            handle = _handle_str(r.p_body, r.p_len)
            if t.abandoned:
                t.state = TS_DONE
                return 0
            t._handle = handle
            t._known = True
            self._remember(handle, c)
            if self._events is not None:
                self._events.request_accepted(t, _text(t._function), c.key, handle)
            if _is_background(t.command):
                self._finish(t, RC_SUCCESS)
                t._known = True
            else:
                t.state = TS_CREATED
                entry = c.handles.get(handle)
                if entry is None:
                    c.handles[handle] = t
                elif isinstance(entry, list):
                    (<list>entry).append(t)
                else:
                    c.handles[handle] = [entry, t]
            return self._deliver(t, EV_CREATED)
        if (cmd == CMD_WORK_DATA or cmd == CMD_WORK_WARNING or cmd == CMD_WORK_STATUS or
                cmd == CMD_WORK_COMPLETE or cmd == CMD_WORK_FAIL or cmd == CMD_WORK_EXCEPTION):
            args = r._args()
            handle = _handle_str(PyBytes_AS_STRING(args[0]), PyBytes_GET_SIZE(args[0]))
            entry = c.handles.get(handle)
            if entry is None:
                return 0            # abandoned or unknown job: drop it
            if isinstance(entry, list):
                t = <Task>(<list>entry)[0]
            else:
                t = <Task>entry
            if cmd == CMD_WORK_DATA:
                t._data = args[1]
                t._running = True
                if t._chunks is not None:
                    t._chunks.append(args[1])
                    t._chunks_size += PyBytes_GET_SIZE(args[1])
                    if t._chunks_size > c.max_packet_size:
                        return self._result_too_large(c, t, handle, entry)
                return self._deliver(t, EV_DATA)
            if cmd == CMD_WORK_WARNING:
                t._data = args[1]
                t._running = True
                return self._deliver(t, EV_WARNING)
            if cmd == CMD_WORK_STATUS:
                t._numerator = _parse_u32(args[1])
                t._denominator = _parse_u32(args[2])
                t._running = True
                t._data = b""
                return self._deliver(t, EV_STATUS)
            if (cmd == CMD_WORK_COMPLETE and t._chunks and
                    t._chunks_size + PyBytes_GET_SIZE(args[1]) > c.max_packet_size):
                return self._result_too_large(c, t, handle, entry)
            # terminal packets: detach the task from the handle first
            if isinstance(entry, list):
                (<list>entry).pop(0)
                if len(<list>entry) == 0:
                    del c.handles[handle]
            else:
                del c.handles[handle]
            if cmd == CMD_WORK_COMPLETE:
                t._data = args[1]
                t._result = args[1]
                self._finish(t, RC_SUCCESS)
                return self._deliver(t, EV_COMPLETE)
            if cmd == CMD_WORK_EXCEPTION:
                t._data = args[1]
                self._finish(t, RC_WORK_EXCEPTION)
                return self._deliver(t, EV_EXCEPTION)
            t._data = b""
            self._finish(t, RC_WORK_FAIL)
            return self._deliver(t, EV_FAIL)
        if cmd == CMD_STATUS_RES or cmd == CMD_STATUS_RES_UNIQUE:
            # the fields in place (no bytes objects), checked before the request
            # leaves the FIFO: a malformed answer then fails the connection with
            # the request still on it, which settles it with the cause named
            r._fields(off, ln)
            t = <Task>self._take(c, TASK_STATUS if cmd == CMD_STATUS_RES else TASK_STATUS_UNIQUE,
                                 COMMAND_NAMES[cmd])
            if t.abandoned:
                t.state = TS_DONE
                return 0
            self._finish(t, RC_SUCCESS)
            t._known = ln[1] == 1 and r.p_body[off[1]] == 49          # b"1"
            t._running = ln[2] == 1 and r.p_body[off[2]] == 49
            t._numerator = _parse_u32_at(r.p_body + off[3], ln[3])
            t._denominator = _parse_u32_at(r.p_body + off[4], ln[4])
            if cmd == CMD_STATUS_RES_UNIQUE:
                t._result = _parse_u32_at(r.p_body + off[5], ln[5])
            t._data = b""
            return self._deliver(t, EV_STATUS)
        if cmd == CMD_ECHO_RES:
            t = <Task>self._take(c, TASK_ECHO, "ECHO_RES")
            # (a probe's answer restored its server in _on_data, like any
            # packet from a demoted server; the probe is abandoned: dropped here)
            t._result = PyBytes_FromStringAndSize(r.p_body, r.p_len)
            if t.abandoned:
                t.state = TS_DONE
                return 0
            self._finish(t, RC_SUCCESS)
            return 0
        if cmd == CMD_OPTION_RES:
            t = <Task>self._take(c, TASK_OPTION, "OPTION_RES")
            self._finish(t, RC_SUCCESS)
            return 0
        if cmd == CMD_ERROR:
            args = r._args()
            code = args[0].decode("ascii", "replace")
            text = args[1].decode("utf-8", "replace")
            if c.pending.size() == 0:
                log.warning("server %s sent ERROR %s %s outside any request", c.key, code, text)
                return 0
            if type(c.pending.first()) is BatchRun:
                cls = SERVER_ERROR_CLASSES.get(code, ServerError)
                return self._batch_answer(c, None, cls(
                    f"server {c.key} answered {code}: {text}", server=c.key, server_code=code))
            t = <Task>c.pending.pop()
            if t.kind == TASK_OPTION:
                log.warning("server %s refused the exceptions option: %s %s", c.key, code, text)
                self._finish(t, RC_SUCCESS)
                return 0
            cls = SERVER_ERROR_CLASSES.get(code, ServerError)
            err = cls(f"server {c.key} answered {code}: {text}", server=c.key,
                      server_code=code)
            if t.abandoned:
                t.state = TS_DONE
                return 0
            self._finish_error(t, err)
            return self._deliver(t, EV_FAIL)
        if cmd == CMD_NOOP:
            return 0
        raise ProtocolError(f"{c.key} sent {COMMAND_NAMES[cmd]}, which a client never expects",
                            code=RC_UNEXPECTED_PACKET)

    # -- the blocking loop -------------------------------------------------------

    cdef bint _done(self, list wait):
        cdef Task t
        if wait is None:
            return self.outstanding <= 0
        for t in wait:
            if t.state != TS_DONE:
                return False
        return True

    def run_nonblocking(self, list wait=None):
        """Process whatever is ready without waiting.

        Returns GEARMAN_SUCCESS when everything in ``wait`` (default: all) has
        finished, GEARMAN_PAUSE when a callback paused, else GEARMAN_IO_WAIT.
        """
        try:
            return self._run(wait, DEADLINE_NOW)
        except _CallbackAbort:
            e = self.cb_exc
            self.cb_exc = None
            raise e

    def run(self, list wait=None, double timeout=-1.0):
        """Drive I/O until every task in ``wait`` (default: all) finished.

        Returns GEARMAN_SUCCESS, or GEARMAN_PAUSE when a callback paused.
        Raises GearmanTimeoutError when ``timeout`` (seconds, <0 = none) passes;
        a callback's exception propagates.
        """
        cdef double deadline = DEADLINE_NONE
        if timeout >= 0:
            self.call_start = gm_monotonic()
            deadline = self.call_start + timeout
        try:
            return self._run(wait, deadline)
        except _CallbackAbort:
            e = self.cb_exc
            self.cb_exc = None
            raise e

    cdef object _timeout_error(self, list wait, double timeout=-1.0, object cls=None):
        """The error of a call whose deadline passed, naming what it waited for:
        the server's answer, or (once the server accepted a foreground job) a
        worker to finish it.  ``timeout``: the call's, for the message (< 0:
        not said); ``cls``: the class to raise (GearmanTimeoutError or a
        subclass; an event loop's is also its own TimeoutError)."""
        cdef Task t
        cdef str after = f" after {timeout:g} s" if timeout >= 0 else ""
        if cls is None:
            cls = GearmanTimeoutError
        if wait is not None:
            if len(wait) == 1 and isinstance((<Task>wait[0]).error, GearmanTimeoutError):
                return (<Task>wait[0]).error        # its server was found silent
            for t in wait:
                if t.state == TS_CREATED:
                    return cls(
                        f"timed out{after} waiting for a worker to finish job {t._handle} "
                        f"(the server {t.conn.key if t.conn is not None else ''} accepted it)",
                        code=RC_TIMEOUT, handle=t._handle)
        return cls(f"timed out{after} waiting for the job server", code=RC_TIMEOUT)

    def timed_out(self, list tasks, double started, double timeout=-1.0, object cls=None):
        """An event loop's call on ``tasks`` reached its timeout: the blocking
        calls' policy, for a driver that keeps its own timers (gearman.aio).

        ``started``: when the call began (monotonic seconds, :func:`monotonic`).
        A server that answered nothing since then is demoted (its requests end
        with ServerSilentError); the tasks still unfinished are abandoned (late
        answers dropped, listeners told of a timeout).  Returns the error to
        raise: as the blocking call's, of class ``cls`` (default
        GearmanTimeoutError), or the one task's own ServerSilentError."""
        cdef Task t
        self._demote_silent(tasks, started)
        err = self._timeout_error(tasks, timeout, cls)
        for t in tasks:
            self._abandon(t, err)
        return err

    def batch_timed_out(self, Batch b, object err=None, double started=-1.0,
                        double timeout=-1.0, object cls=None):
        """A call waiting on batch ``b`` timed out; returns the error to raise,
        the same for every door (submit_batch, asyncio's submit_many).

        ``err``: the timeout a blocking run() raised (it demoted the silent
        servers already); None for an event loop's own timer: the servers that
        hold jobs of ``b`` and answered nothing since ``started`` are demoted
        first, and the error is a new ``cls`` (default GearmanTimeoutError).
        The batch is abandoned; the error carries ``handles`` (every job's,
        None where not accepted) and ``errors`` (per job not accepted, why:
        ServerSilentError.submitted says whether it may have reached its server)."""
        if err is None:
            self._demote_silent(None, started, b)
            err = self._timeout_error(None, timeout, cls)
        self.abandon_batch(b, err)
        err.handles = list(b.handles)
        err.errors = dict(b.errors)
        return err

    cdef int _run(self, list wait, double deadline) except -1:
        cdef Connection c
        cdef Task t
        cdef int ev, r
        self._check_fork()
        if self.paused is not None:
            t, ev, data = self.paused
            self.paused = None
            t._data = data
            if self._deliver(t, ev):
                return RC_PAUSE
        while True:
            # packets left buffered by a pause or an earlier call
            for c in self.servers:
                if c.state == CS_CONNECTED and c.reader._end > c.reader._start:
                    try:
                        if self._on_data(c):
                            return RC_PAUSE
                    except GearmanError as e:
                        self._conn_failed(c, e, FAIL_REROUTE | FAIL_BACKOFF)
            if self._done(wait):
                return RC_SUCCESS
            r = self._poll_round(deadline, None, 0)
            if r == POLL_PAUSED:
                return RC_PAUSE
            if r == POLL_NOTHING:
                if self._done(wait):
                    return RC_SUCCESS
                # Every task should sit on a live connection; if none is left,
                # nothing can finish them.
                for c in self.servers:
                    self._conn_failed(c, LostConnectionError("no live connection"), 0)
                if self._done(wait):
                    return RC_SUCCESS
                raise LostConnectionError("no live connection is left to finish the request",
                                          code=RC_LOST_CONNECTION)
            if r == POLL_TIMEOUT:
                if deadline == DEADLINE_NOW:
                    return RC_SUCCESS if self._done(wait) else RC_IO_WAIT
                if not self._done(wait):
                    self._demote_silent(wait, self.call_start)
                    raise self._timeout_error(wait)

    # -- one-call paths for the blocking facade (no per-call Python glue) -----------

    # do*() and jobStatus() of the blocking facade: ClientCore calls these
    # (no Python-level wrappers: one path, the compiled one)

    cdef Task _do(self, int cmd, object function, object workload, object unique, double timeout):
        cdef Task t = self.new_submit(cmd, function, workload, unique, None)
        cdef double deadline = -1.0
        if timeout >= 0:
            self.call_start = gm_monotonic()
            deadline = self.call_start + timeout
        self.submit(t)
        try:
            self._wait_one(t, deadline)
        except BaseException as exc:
            self._abandon(t, exc)
            raise
        return t

    cdef int _wait_one(self, Task t, double deadline) except -1:
        """_run([t], deadline) for a do* or jobStatus call, leaner: while t sits
        on a plain TCP connection that is up, the round polls that one socket.
        Anything else (a connect in progress, TLS, a paused runTasks, a failure
        that moved t to another server) goes to the general loop, which also
        handles whatever the other connections have."""
        cdef Connection c
        cdef int r
        if self.paused is not None or deadline == DEADLINE_NOW or self.probing:
            # (a probe in flight is answered on another connection)
            return self._run([t], deadline)
        while t.state != TS_DONE:
            c = t.conn
            if c is None or c.state != CS_CONNECTED or c.tls is not None:
                return self._run([t], deadline)
            if c.reader._end > c.reader._start:
                # left by an earlier call (whole packets) or half a packet
                try:
                    if self._on_data(c):
                        return RC_PAUSE
                except GearmanError as e:
                    self._conn_failed(c, e, FAIL_REROUTE | FAIL_BACKOFF)
                if t.state == TS_DONE or c is not t.conn or c.state != CS_CONNECTED:
                    continue
            r = self._poll_round(deadline, c, 0)
            if r == POLL_PAUSED:
                return RC_PAUSE
            if r == POLL_TIMEOUT and t.state != TS_DONE:
                self._demote_silent([t], self.call_start)
                raise self._timeout_error([t])
        return RC_SUCCESS

    cdef list _job_status(self, object handle, double timeout):
        """``[known, running, numerator, denominator]`` from the server that issued
        the handle, or from every server for a handle this client did not make."""
        cdef Task t
        cdef Connection c
        cdef list tasks
        cdef double deadline = DEADLINE_NONE
        cdef str hs
        if isinstance(handle, bytes):
            hs = (<bytes>handle).decode("utf-8", "surrogateescape")
        elif isinstance(handle, str):
            hs = <str>handle
        else:
            raise InvalidTypeError(f"job handle must be str or bytes, not {type(handle).__name__}")
        if not self.servers:
            raise NoServersError(NO_SERVERS_MESSAGE)
        if timeout >= 0:
            self.call_start = gm_monotonic()
            deadline = self.call_start + timeout
        entry = self.handle_servers.get(hs)
        if entry is None and len(self.servers) == 1:
            entry = self.servers[0]
        if entry is not None and type(entry) is not tuple:
            c = <Connection>entry
            # one server to ask (the one that issued the handle): no task list
            t = self.new_request(TASK_STATUS, hs)
            self.submit_to(c, t)
            try:
                self._wait_one(t, deadline)
            except BaseException:
                self.abandon(t)
                raise
            if t.error is not None:
                raise t.error
            if t._known:
                return [True, t._running, t._numerator, t._denominator]
            return [False, False, 0, 0]
        tasks = []
        # a handle several servers issued: ask each of them, and never report
        # the job finished while one of them may hold it; a handle this client
        # did not make: ask every server
        issuers = type(entry) is tuple
        for c in (<tuple>entry if issuers else self.servers):
            t = self.new_request(TASK_STATUS, hs)
            self.submit_to(c, t)
            tasks.append(t)
        try:
            self._run(tasks, deadline)
        except BaseException:
            for t in tasks:
                self.abandon(t)
            raise
        err = None
        for t in tasks:
            if t._known and t.error is None:
                return [True, t._running, t._numerator, t._denominator]
        for t in tasks:
            if issuers and t.error is not None:
                raise t.error           # an issuer that could not answer: unknown is not "finished"
        for t in tasks:
            if t.error is not None:
                if err is None:
                    err = t.error
                continue
            err = False
            if t._known:
                return [True, t._running, t._numerator, t._denominator]
        if err:
            raise err
        return [False, False, 0, 0]

    # -- batches --------------------------------------------------------------------

    def submit_batch(self, int cmd, object function, object workloads, object uniques=None,
                     object progress=None, Py_ssize_t progress_every=1000):
        """Queue many background jobs of one function; returns a Batch.

        Drive it with run(); ``batch.handles[i]`` is the handle of job i, or
        None with ``batch.errors[i]`` saying why it was not accepted.
        """
        cdef Batch b = Batch.__new__(Batch)
        cdef Py_ssize_t i, n
        cdef bytes u
        if not _is_background(cmd) or cmd == CMD_SUBMIT_JOB_EPOCH or \
                cmd == CMD_SUBMIT_REDUCE_JOB_BACKGROUND:
            raise InvalidArgumentError("a batch holds background jobs")
        if isinstance(workloads, (str, bytes, bytearray, memoryview)):
            # iterating would submit one job per character or byte
            raise InvalidTypeError(f"workloads must be a sequence of payloads, not one "
                                   f"{type(workloads).__name__}")
        b.cmd = cmd
        b.function = _name_bytes(function)
        b.workloads = [_payload(w, self._max_packet_size) for w in workloads]
        n = len(b.workloads)
        b.n = n
        b.uniques = None
        if uniques is not None:
            b.uniques = [b"" if (x is None or len(x) == 0) else _unique_bytes(x) for x in uniques]
            if len(b.uniques) != n:
                raise InvalidArgumentError(f"{len(b.uniques)} uniques for {n} workloads")
        if n and not self.servers:
            raise NoServersError(NO_SERVERS_MESSAGE)
        b.handles = [None] * n
        b.errors = {}
        b.progress = progress
        b.progress_every = progress_every if progress_every > 0 else 1
        b.next_progress = b.progress_every
        b.wend = <uint64_t *>PyMem_Calloc(<size_t>(n if n else 1), sizeof(uint64_t))
        b.tried = <uint64_t *>PyMem_Calloc(<size_t>(n if n else 1), sizeof(uint64_t))
        b.hash = <uint64_t *>PyMem_Calloc(<size_t>(n if n else 1), sizeof(uint64_t))
        if b.wend == NULL or b.tried == NULL or b.hash == NULL:
            raise MemoryError()
        if b.uniques is not None:
            for i in range(n):
                u = <bytes>b.uniques[i]
                if PyBytes_GET_SIZE(u):
                    if u == b"#":
                        u = workload_hash_unique(b.workloads[i]).encode("ascii")
                        b.uniques[i] = u
                    b.hash[i] = _route_hash(b.function,
                                            <const unsigned char *>PyBytes_AS_STRING(u),
                                            <size_t>PyBytes_GET_SIZE(u))
        self._check_fork()
        self.outstanding += n
        if self._events is not None:
            # one request per job, (batch, index) naming it
            fn = _text(b.function)
            prio = _priority(cmd)
            for i in range(n):
                u = <bytes>b.uniques[i] if b.uniques is not None else b""
                self._events.request_submitted((b, i), fn, _text(u) if u else None, True, prio)
        for i in range(n):
            self._route_batch(b, i)
        return b

    cdef int _route_batch(self, Batch b, Py_ssize_t i) except -1:
        cdef Connection c
        cdef bint hashed = b.uniques is not None and PyBytes_GET_SIZE(<bytes>b.uniques[i]) > 0
        cdef char gen[36]
        cdef const char *up
        cdef Py_ssize_t ul, before, fl = PyBytes_GET_SIZE(b.function)
        cdef bytes w = <bytes>b.workloads[i]
        cdef WriteBuffer wb
        cdef BatchRun run
        while True:
            c = self._pick_for(hashed, b.hash[i], &b.tried[i])
            if c is None:
                self._batch_fail(b, i, ServerUnavailable(self._down_message(),
                                                         code=RC_COULD_NOT_CONNECT))
                return 0
            try:
                if c.state == CS_CONNECTED:
                    self._check_idle(c)
                self._connect(c)
            except GearmanError as e:
                self._conn_failed(c, e, FAIL_REROUTE | FAIL_BACKOFF)
                continue
            break
        if hashed or b.uniques is not None:
            up = PyBytes_AS_STRING(<bytes>b.uniques[i])
            ul = PyBytes_GET_SIZE(<bytes>b.uniques[i])
            if ul == 0 and self.generate_unique:
                _uniques.fill(gen)
                up = gen
                ul = 36
        elif self.generate_unique:
            _uniques.fill(gen)
            up = gen
            ul = 36
        else:
            up = ""
            ul = 0
        wb = c.wbuf
        before = wb.pending()
        wb.write_submit(b.cmd, PyBytes_AS_STRING(b.function), fl, up, ul, w)
        c.queued += <uint64_t>(wb.pending() - before)
        b.wend[i] = c.queued
        last = c.pending.last()
        if type(last) is BatchRun and (<BatchRun>last).batch is b:
            run = <BatchRun>last
        else:
            run = BatchRun.__new__(BatchRun)
            run.batch = b
            c.pending.push(run)
        run.push(i)
        return 0

    cdef int _batch_fail(self, Batch b, Py_ssize_t i, object err) except -1:
        b.errors[i] = err
        if self._events is not None:
            _emit_error(self._events, (b, i), _text(b.function), getattr(err, "server", None),
                        None, err)
        return self._batch_done(b)

    cdef inline int _batch_done(self, Batch b) except -1:
        b.done += 1
        if not b.abandoned:
            self.outstanding -= 1
        if b.progress is not None and (b.done >= b.next_progress or b.done == b.n):
            b.next_progress = b.done + b.progress_every
            try:
                b.progress(b.done, b.n)
            except BaseException as e:
                self.cb_exc = e
                raise _CallbackAbort() from None
        return 0

    cdef int _batch_answer(self, Connection c, object handle, object err) except -1:
        cdef BatchRun run = <BatchRun>c.pending.first()
        cdef Batch b = run.batch
        cdef Py_ssize_t i = run.idx[run.pos]
        run.pos += 1
        if run.pos == run.n:
            c.pending.pop()
        if b.abandoned:
            return 0
        if err is not None:
            b.errors[i] = err
            if self._events is not None:
                _emit_error(self._events, (b, i), _text(b.function), c.key, None, err)
        else:
            b.handles[i] = handle
            self._remember(handle, c)
            if self._events is not None:
                self._events.request_accepted((b, i), _text(b.function), c.key, handle)
        self._batch_done(b)
        return 0

    def abandon_batch(self, Batch b, object reason=None):
        """The caller gave up on b: its unanswered jobs no longer count.

        ``reason`` as for :meth:`abandon` (each unanswered job's event)."""
        cdef Py_ssize_t i
        if b.abandoned:
            return
        if self._events is not None and b.done < b.n:
            fn = _text(b.function)
            for i in range(b.n):
                if b.handles[i] is None and i not in b.errors:
                    _emit_gave_up(self._events, (b, i), fn, None, None, reason)
        b.abandoned = True
        self.outstanding -= b.n - b.done

    # -- the event-loop driver's side (gearman.aio) ------------------------------------

    def take_finished(self):
        """Return and forget the tasks finished since the last call."""
        out = self.finished_log
        self.finished_log = []
        return out

    def pump(self):
        """Do whatever I/O is possible now, without waiting: finish connects and
        handshakes, write pending output, read and dispatch what arrived, and
        fail connections whose connect deadline passed.  Returns GEARMAN_PAUSE if a
        callback paused, else GEARMAN_SUCCESS.  A callback's exception propagates."""
        cdef Connection c
        cdef int r
        self._check_fork()
        try:
            for c in self.servers:
                if c.state == CS_CONNECTED and c.reader._end > c.reader._start:
                    try:
                        if self._on_data(c):
                            return RC_PAUSE
                    except GearmanError as e:
                        self._conn_failed(c, e, FAIL_REROUTE | FAIL_BACKOFF)
            while True:
                r = self._poll_round(DEADLINE_NOW, None, 0)
                if r == POLL_PAUSED:
                    return RC_PAUSE
                if r != POLL_INTERRUPTED:
                    return RC_SUCCESS
        except _CallbackAbort:
            e = self.cb_exc
            self.cb_exc = None
            raise e


def first_connection_error(list tasks):
    """The error of the first task that a transport failure ended (a
    ConnectionError: ServerUnavailable, LostConnectionError), else None."""
    cdef Task t
    for t in tasks:
        if isinstance(t.error, ConnectionError):
            return t.error
    return None


cpdef object task_outcome(Task t):
    """What a do* call returns for a finished task, or the error it raises.

    Background: the handle.  Foreground: every WORK_DATA payload followed by the
    WORK_COMPLETE payload (libgearman 1.1.20's doNormal result).  Raises the
    task's transport error, JobFailedError or JobExceptionError.
    """
    cdef object payload
    if t.error is not None:
        raise t.error
    if t.background:
        return t._handle
    if t.code == RC_WORK_FAIL:
        raise JobFailedError(f"job {t._handle} failed (WORK_FAIL)", handle=t._handle)
    if t.code == RC_WORK_EXCEPTION:
        payload = t._data
        raise JobExceptionError(
            f"job {t._handle} raised: {(<bytes>payload).decode('utf-8', 'replace')}",
            handle=t._handle, payload=payload)
    if t._chunks:
        return b"".join(t._chunks) + t._result
    return t._result
