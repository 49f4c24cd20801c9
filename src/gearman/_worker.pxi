# WorkerEngine: the connections of one worker and its grab loop.  Grabs go
# to one server at a time (rotating, so every server is served fairly); a
# worker with nothing to do sends PRE_SLEEP everywhere and sleeps in poll()
# until a NOOP (or stop()) wakes it, using no CPU while idle.  A server that
# goes away is reconnected with jittered backoff, and its registrations are
# sent again.


@cython.auto_pickle(False)     # a job holds its connection: not picklable
cdef class WorkerJob:
    """The fields of a job given to a worker.

    ``gearman.worker.GearmanJob`` subclasses it with PECL's methods; the serve
    loop (:meth:`WorkerEngine.serve_jobs`) fills these slots directly.
    """

    cdef public object _worker
    cdef public object _conn
    cdef public object _handle          # str
    cdef public object _function        # bytes
    cdef public object _unique          # bytes
    cdef public object _workload        # bytes
    cdef public object _reducer         # bytes or None
    cdef public int _rc                 # code of the last send on this job
    cdef public bint _finished          # a final packet (COMPLETE/FAIL/EXCEPTION) was sent

    def __init__(self, worker, conn, handle, function, unique, workload, reducer=None):
        self._worker = worker
        self._conn = conn
        self._handle = handle
        self._function = function
        self._unique = unique
        self._workload = workload
        self._reducer = reducer
        self._rc = RC_SUCCESS
        self._finished = False


cdef class WorkerCore(CallerState):
    """Base of :class:`gearman.GearmanWorker`: the fields its compiled job loop
    (:meth:`WorkerEngine.serve_jobs`) reads and writes for every job, in C
    (as Python attributes they were ~1,000 instructions a job)."""

    cdef public dict _callbacks         # function name (bytes) -> (callable, context)
    cdef public int _options            # GEARMAN_WORKER_* bits

    def __cinit__(self, *args, **kwargs):
        self._callbacks = {}
        self._options = 0


@cython.final
cdef class WorkerEngine:
    """The compiled engine behind ``GearmanWorker``."""

    cdef public list servers            # Connection objects, in the order added
    cdef public dict functions          # name (bytes) -> CAN_DO_TIMEOUT ms (0: plain CAN_DO)
    cdef public object client_id        # bytes for SET_CLIENT_ID, or None
    cdef public int grab_cmd            # GRAB_JOB, GRAB_JOB_UNIQ or GRAB_JOB_ALL
    cdef public double connect_timeout
    cdef public double io_timeout       # seconds for writing a result; <0 = none
    cdef public Py_ssize_t max_packet_size
    cdef Py_ssize_t rr                  # next server to try first
    cdef Connection grabbing            # the connection with a GRAB in flight, or None
    cdef pollfd *pfds
    cdef Py_ssize_t pfds_alloc
    cdef int wake_r                     # read end of the wake-up pipe (stop())
    cdef object wake_w
    cdef object _wake_pair
    cdef public bint stopping
    cdef public bint eager_grab         # send the next GRAB with a job's result (serve loops)
    cdef public object ssl_context      # ssl.SSLContext for every connection, or None
    cdef list ready                     # jobs received while not grabbing (echo), FIFO
    cdef public object grab_error       # ProtocolError that dropped a connection in the last grab()

    def __cinit__(self):
        self.servers = []
        self.functions = {}
        self.client_id = None
        self.grab_cmd = CMD_GRAB_JOB_UNIQ
        self.connect_timeout = 5.0
        self.io_timeout = 30.0
        self.max_packet_size = DEFAULT_MAX_PACKET
        self.rr = 0
        self.grabbing = None
        self.pfds = NULL
        self.pfds_alloc = 0
        a, b = socket.socketpair()
        a.setblocking(False)
        b.setblocking(False)
        self._wake_pair = (a, b)
        self.wake_r = a.fileno()
        self.wake_w = b
        self.stopping = False
        self.ssl_context = None
        self.ready = []
        self.grab_error = None

    def __dealloc__(self):
        if self.pfds != NULL:
            PyMem_Free(self.pfds)

    def add_server(self, str host, int port):
        cdef Connection c
        key = f"{host.lower()}:{port}"
        for c in self.servers:
            if c.key == key:
                return c
        c = Connection(host, port, self.connect_timeout, self.max_packet_size, self.ssl_context)
        self.servers.append(c)
        return c

    def abilities_changed(self):
        """Registrations changed: every connection re-sends them before its next grab."""
        cdef Connection c
        for c in self.servers:
            if c.abilities_sent:
                c.abilities_sent = False
                c.init_packets = [(CMD_RESET_ABILITIES, ())]

    def wait_ready(self, double timeout=-1.0):
        """Block until a connection is readable (or stop() is called); False on timeout."""
        cdef Connection c
        cdef Py_ssize_t nfds = 0
        cdef int rc, ms = -1 if timeout < 0 else <int>(timeout * 1000.0)
        cdef double now = gm_monotonic()
        cdef int due
        cdef bint reconnect = False     # the wait ends at a reconnect: work() is due then
        self._ensure_pfds(len(self.servers) + 1)
        for c in self.servers:
            if c.state == CS_DISCONNECTED:
                # wake when a down server is due for its reconnect
                due = max(0, <int>((c.down_until - now) * 1000.0) + 1)
                if ms < 0 or due < ms:
                    ms = due
                    reconnect = True
                continue
            if c.reader._end > c.reader._start:
                return True
            self.pfds[nfds].fd = c.fd
            self.pfds[nfds].events = POLLIN | (POLLOUT if c.writable_wanted() else 0)
            self.pfds[nfds].revents = 0
            nfds += 1
        if nfds == 0:
            raise GearmanError("no connection to wait on", code=7)
        self.pfds[nfds].fd = self.wake_r
        self.pfds[nfds].events = POLLIN
        self.pfds[nfds].revents = 0
        while True:
            with nogil:
                rc = gm_poll(self.pfds, nfds + 1, ms)
            if rc < 0 and GM_EINTR(gm_sockerr()):
                PyErr_CheckSignals()
                continue
            return rc > 0 or reconnect

    def watch_list(self):
        """``[(fd, events, generation)]`` of the open connections, for an event loop."""
        cdef Connection c
        return [(c.fd, c.poll_events(), c.generation) for c in self.servers
                if c.state != CS_DISCONNECTED]

    def next_deadline(self):
        """Monotonic time at which a connect times out or a down server is retried; -1: none."""
        cdef Connection c
        cdef double d = -1.0, t
        for c in self.servers:
            if c.state == CS_DISCONNECTED:
                t = c.down_until
            elif c.state == CS_CONNECTING or c.state == CS_HANDSHAKE:
                t = c.connect_deadline
            else:
                continue
            if d < 0 or t < d:
                d = t
        return d

    def wake(self):
        """Wake a sleeping grab() from any thread (used by stop())."""
        try:
            self.wake_w.send(b"x")
        except OSError:
            pass

    def wake_fd(self):
        """The write end of the wake-up socket, for ``signal.set_wakeup_fd``."""
        return self.wake_w.fileno()

    def close(self):
        """Close every connection; the worker reconnects if used again.

        The wake-up socket pair stays open (stop() must keep working); it is
        closed with the engine.
        """
        cdef Connection c
        for c in self.servers:
            c.close()
            c.pending = Fifo()
            c.abilities_sent = False
        self.grabbing = None

    disconnect = close

    cdef int _fail(self, Connection c, object exc) except -1:
        log.warning("worker lost job server %s: %s", c.key, exc)
        c.close()
        c.failures += 1
        c.down_until = gm_monotonic() + _backoff(c.failures)
        c.last_error = exc
        if isinstance(exc, ProtocolError):
            # work() reports it if no job comes (e.g. one over max_packet_size)
            self.grab_error = type(exc)(f"{c.key} broke the connection: {exc}",
                                        code=exc.code, server=c.key)
            self.grab_error.__cause__ = exc
        c.wbuf.clear()
        c.wstate = WS_IDLE
        if self.grabbing is c:
            self.grabbing = None
        return 0

    cdef int _ensure(self, Connection c, double now) except -1:
        """Connect c when due and queue its registration; errors mark it down."""
        cdef bytes name
        if c.state != CS_DISCONNECTED and c.pid != _fork_generation:
            c.close()
        if c.state == CS_DISCONNECTED:
            if c.down_until > now:
                return 0
            try:
                c.start_connect()
            except GearmanError as e:
                self._fail(c, e)
                return 0
            c.init_packets = []
            if self.client_id is not None:
                c.wbuf.write_one(CMD_SET_CLIENT_ID, PyBytes_AS_STRING(self.client_id),
                                 PyBytes_GET_SIZE(self.client_id))
        if not c.abilities_sent:
            for cmd, args in c.init_packets:
                c.wbuf.write_packet(True, cmd, args)
            c.init_packets = []
            # gearmand keeps the newest CAN_DO first and serves it first; send
            # in reverse so the function registered first is served first.
            for name in reversed(list(self.functions)):
                ms = self.functions[name]
                if ms:
                    c.wbuf.write_packet(True, CMD_CAN_DO_TIMEOUT, (name, str(ms).encode()))
                else:
                    c.wbuf.write_one(CMD_CAN_DO, PyBytes_AS_STRING(name),
                                     PyBytes_GET_SIZE(name))
            c.abilities_sent = True
            c.wstate = WS_IDLE
        return 0

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

    cdef object _handle(self, Connection c):
        """Process c's buffered packets; returns a job tuple or None."""
        cdef PacketReader r = c.reader
        cdef tuple args
        cdef uint32_t cmd
        while c.state == CS_CONNECTED and r._next():
            c.failures = 0              # a valid packet: the server is healthy
            cmd = r.p_cmd
            if cmd == CMD_NOOP:
                if c.wstate == WS_SLEEPING:
                    c.wstate = WS_IDLE
            elif cmd == CMD_NO_JOB:
                if self.grabbing is c:
                    self.grabbing = None
                c.wbuf.write_one(CMD_PRE_SLEEP, NULL, 0)
                c.wstate = WS_SLEEPING
            elif cmd == CMD_JOB_ASSIGN or cmd == CMD_JOB_ASSIGN_UNIQ or cmd == CMD_JOB_ASSIGN_ALL:
                args = r._args()
                if self.grabbing is c:
                    self.grabbing = None
                c.wstate = WS_IDLE
                handle = _handle_str(PyBytes_AS_STRING(args[0]), PyBytes_GET_SIZE(args[0]))
                if cmd == CMD_JOB_ASSIGN:
                    return (c, handle, args[1], b"", args[2], None)
                if cmd == CMD_JOB_ASSIGN_UNIQ:
                    return (c, handle, args[1], args[2], args[3], None)
                return (c, handle, args[1], args[2], args[4], args[3])
            elif cmd == CMD_ERROR:
                args = r._args()
                log.warning("job server %s: ERROR %s %s", c.key,
                            args[0].decode("ascii", "replace"), args[1].decode("utf-8", "replace"))
                if c.wstate == WS_GRABBING:
                    # An ERROR may answer the GRAB (or a result the server no
                    # longer knows, ahead of the GRAB's own answer).  Either
                    # way, sleep like after NO_JOB and grab again when woken:
                    # waiting for a GRAB answer that may never come wedges the
                    # worker, grabbing again at once spins.
                    if self.grabbing is c:
                        self.grabbing = None
                    c.wbuf.write_one(CMD_PRE_SLEEP, NULL, 0)
                    c.wstate = WS_SLEEPING
            elif cmd == CMD_ECHO_RES:
                c.pending.push(PyBytes_FromStringAndSize(r.p_body, r.p_len))
            elif cmd == CMD_OPTION_RES:
                pass
            else:
                raise ProtocolError(f"{c.key} sent {COMMAND_NAMES[cmd]}, which a worker never expects",
                                    code=RC_UNEXPECTED_PACKET)
        return None

    def grab(self, double timeout=-1.0, bint block=True):
        """Wait for one job: ``(conn, handle, function, unique, workload, reducer)``.

        Returns None when ``timeout`` (seconds, <0 = none) passed, when
        ``block`` is false and no job is available right now, or when
        :meth:`wake` was called.
        """
        return self._grab(timeout, block)

    cdef object _grab(self, double timeout, bint block):
        cdef double now, deadline = -1.0, rem
        cdef Connection c
        cdef Py_ssize_t i, n, nfds
        cdef int ms, rc, err
        cdef short rev
        cdef list conns
        cdef object job
        if not self.functions:
            raise InvalidArgumentError("no function is registered", code=34)
        if not self.servers:
            raise NoServersError("no job server was added")
        if timeout >= 0:
            deadline = gm_monotonic() + timeout
        self.grab_error = None
        if self.ready:
            return self.ready.pop(0)
        while True:
            if self.stopping:
                return None
            now = gm_monotonic()
            n = len(self.servers)
            for i in range(n):
                c = <Connection>self.servers[i]
                self._ensure(c, now)
                if c.state == CS_CONNECTED and c.reader._end > c.reader._start:
                    try:
                        job = self._handle(c)
                    except GearmanError as e:
                        self._fail(c, e)
                        continue
                    if job is not None:
                        self.rr = (i + 1) % n
                        return job
            # One GRAB in flight at a time, rotating over idle servers.
            if self.grabbing is None:
                for i in range(n):
                    c = <Connection>self.servers[(self.rr + i) % n]
                    if c.state == CS_CONNECTED and c.wstate == WS_IDLE:
                        c.wbuf.write_one(self.grab_cmd, NULL, 0)
                        c.wstate = WS_GRABBING
                        self.grabbing = c
                        self.rr = (self.rr + i + 1) % n
                        break
            self._ensure_pfds(n + 1)
            conns = []
            nfds = 0
            ms = -1
            for c in self.servers:
                # A connection that fails here is down from now on: its
                # backoff must bound this poll like any other down server's,
                # or a worker without a timeout would sleep for ever.
                if c.state == CS_CONNECTED and c.wbuf.pending() > 0:
                    try:
                        c.flush()
                    except GearmanError as e:
                        self._fail(c, e)
                elif c.state != CS_DISCONNECTED and c.state != CS_CONNECTED \
                        and c.connect_deadline - now <= 0:
                    self._fail(c, ServerUnavailable(f"connect to {c.key} timed out",
                                                    code=RC_TIMEOUT, server=c.key))
                if c.state == CS_DISCONNECTED:
                    rem = c.down_until - now
                    if ms < 0 or rem * 1000.0 + 1 < ms:
                        ms = max(0, <int>(rem * 1000.0) + 1)
                    continue
                self.pfds[nfds].fd = c.fd
                self.pfds[nfds].revents = 0
                self.pfds[nfds].events = c.poll_events()
                if c.state != CS_CONNECTED:
                    rem = c.connect_deadline - now
                    if ms < 0 or rem * 1000.0 + 1 < ms:
                        ms = <int>(rem * 1000.0) + 1
                conns.append(c)
                nfds += 1
            self.pfds[nfds].fd = self.wake_r
            self.pfds[nfds].events = POLLIN
            self.pfds[nfds].revents = 0
            if deadline >= 0:
                rem = deadline - now
                if rem <= 0:
                    return None
                if ms < 0 or rem * 1000.0 + 1 < ms:
                    ms = <int>(rem * 1000.0) + 1
            if not block:
                ms = 0                  # one look at what is ready, no waiting
            with nogil:
                rc = gm_poll(self.pfds, nfds + 1, ms)
            if rc < 0:
                err = gm_sockerr()
                if GM_EINTR(err):
                    PyErr_CheckSignals()
                    continue
                raise OSError(err, _sockerr_text(err))
            if rc == 0 and not block:
                return None
            if self.pfds[nfds].revents:
                try:
                    self._wake_pair[0].recv(4096)
                except OSError:
                    pass
                # stop(), or a signal (serve() makes this socket the signal
                # wake-up fd, so a signal that lands just before poll() still
                # ends it): run the handlers now; they may have called stop()
                PyErr_CheckSignals()
                if self.stopping:
                    return None
                continue
            for i in range(nfds):
                rev = self.pfds[i].revents
                if not rev:
                    continue
                c = <Connection>conns[i]
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
                except GearmanError as e:
                    self._fail(c, e)

    def send(self, Connection c, int cmd, *args):
        """Write one packet (WORK_*) to c and wait until the kernel took it.

        Raises LostConnectionError if the server went away (the server then
        re-queues the job), GearmanTimeoutError after ``io_timeout``.
        """
        if c.state != CS_CONNECTED:
            raise LostConnectionError(f"not connected to {c.key}", server=c.key)
        return self._send(c, cmd, tuple([_as_bytes_arg(a, "argument") for a in args]))

    cdef object _send(self, Connection c, int cmd, tuple args):
        # args: bytes objects only
        cdef pollfd p
        cdef int rc, ms, err
        cdef double deadline = -1.0, rem
        if c.state != CS_CONNECTED:
            raise LostConnectionError(f"not connected to {c.key}", server=c.key)
        c.wbuf.write_packet(True, <uint32_t>cmd, args)
        if (self.eager_grab and not self.stopping and self.grabbing is None
                and c.wstate == WS_IDLE and not self.ready
                and (cmd == CMD_WORK_COMPLETE or cmd == CMD_WORK_FAIL
                     or cmd == CMD_WORK_EXCEPTION)
                and self.servers[self.rr % len(self.servers)] is c):
            # A loop that will grab next anyway: the GRAB rides in the same
            # segment as the result (one send instead of two per job).  The
            # loop's owner calls cancel_grab() when it ends.
            c.wbuf.write_one(self.grab_cmd, NULL, 0)
            c.wstate = WS_GRABBING
            self.grabbing = c
            self.rr = (self.rr + 1) % len(self.servers)
        if self.io_timeout >= 0:
            deadline = gm_monotonic() + self.io_timeout
        try:
            while True:
                c.flush()
                if c.wbuf.pending() == 0:
                    return None
                p.fd = c.fd
                p.events = POLLOUT
                p.revents = 0
                ms = -1
                if deadline >= 0:
                    rem = deadline - gm_monotonic()
                    if rem <= 0:
                        raise GearmanTimeoutError(f"sending to {c.key} timed out",
                                                  code=RC_TIMEOUT)
                    ms = <int>(rem * 1000.0) + 1
                with nogil:
                    rc = gm_poll(&p, 1, ms)
                if rc < 0:
                    err = gm_sockerr()
                    if GM_EINTR(err):
                        PyErr_CheckSignals()
                        continue
                    raise OSError(err, _sockerr_text(err))
        except GearmanError as e:
            self._fail(c, e)
            raise

    def cancel_grab(self):
        """Forget a GRAB in flight (sent eagerly by a loop that is ending).

        Its connection is closed, so that a job the server assigned in answer
        goes back to the queue at once instead of waiting, assigned to a worker
        that no longer asks for work.  Returns True if there was one.
        """
        cdef Connection c = self.grabbing
        if c is None:
            return False
        self.grabbing = None
        c.close()
        c.wbuf.clear()
        c.wstate = WS_IDLE
        c.abilities_sent = False
        return True

    def serve_jobs(self, worker, job_type, max_jobs=None):
        """The loop of ``GearmanWorker.serve()``: grab, run, report, until stopped.

        ``worker`` is the GearmanWorker (its ``_lock``, ``_callbacks``,
        ``_timeout_ms``, ``_options`` are read for each job, its ``_rc`` and
        ``_error`` written); ``job_type`` a subclass of :class:`WorkerJob`.
        A callback that returns bytes, str or None without having sent a final
        packet gets its WORK_COMPLETE written here; every other outcome goes
        through ``worker._finish_job(job, result)`` or
        ``worker._job_raised(job, exc)``.  Returns the number of jobs handled
        (completed or failed).
        """
        cdef Py_ssize_t handled = 0, limit = -1
        cdef int rc
        cdef WorkerCore w = <WorkerCore?>worker
        cdef ClientLock lock
        if max_jobs is not None:
            limit = max_jobs
        if not issubclass(job_type, WorkerJob):
            raise InvalidTypeError("job_type must be a subclass of WorkerJob")
        while limit < 0 or handled < limit:
            # the next GRAB may ride with this job's result, unless this job is
            # the last one
            self.eager_grab = limit < 0 or handled + 1 < limit
            lock = w._lock_obj              # read each time: a fork replaces it
            lock.enter(-1.0)
            try:
                rc = self._serve_one(w, job_type)
            finally:
                lock.leave()
            if rc == RC_SUCCESS:
                handled += 1
            elif rc == RC_SHUTDOWN or rc == RC_NO_REGISTERED_FUNCTIONS or rc == RC_NO_SERVERS:
                break
            elif rc != RC_TIMEOUT and rc != RC_NO_JOBS:
                handled += 1            # the job ran but failed: it still counts
        return handled

    def work_one(self, worker, job_type):
        """One job as ``GearmanWorker.work()`` does it (the caller holds the
        worker's lock); returns the code also left in ``worker._rc``."""
        if not issubclass(job_type, WorkerJob):
            raise InvalidTypeError("job_type must be a subclass of WorkerJob")
        return self._serve_one(<WorkerCore?>worker, job_type)

    cdef int _serve_one(self, WorkerCore worker, job_type) except? -1:
        """One job of serve_jobs(); returns the code it left in worker._rc."""
        cdef object found, entry, result, data
        cdef WorkerJob job
        cdef int options, code
        cdef tuple t
        if not self.functions:
            return _set_rc(worker, RC_NO_REGISTERED_FUNCTIONS, "no functions are registered")
        if self.stopping:
            self.stopping = False
            return _set_rc(worker, RC_SHUTDOWN, "worker was stopped")
        options = worker._options
        try:
            found = self._grab(worker._timeout_s, not (options & WORKER_NON_BLOCKING))
        except GearmanError as exc:
            return _set_rc(worker, exc.code, str(exc))
        if found is None:
            if self.stopping:
                self.stopping = False
                return _set_rc(worker, RC_SHUTDOWN, "worker was stopped")
            if self.grab_error is not None:
                # a server broke the protocol (or sent a job over max_packet_size)
                return _set_rc(worker, self.grab_error.code, f"no job: {self.grab_error}")
            if options & WORKER_NON_BLOCKING:
                return _set_rc(worker, RC_NO_JOBS, "no job is available")
            return _set_rc(worker, RC_TIMEOUT, "timed out waiting for a job")
        t = <tuple>found
        # tp_new of the subclass directly: WorkerJob.__new__(job_type) is a
        # Python method call (~800 instructions)
        job = <WorkerJob>(<PyTypeObject*>job_type).tp_new(job_type, <PyObject*>_EMPTY_TUPLE, NULL)
        job._worker = worker
        job._conn = t[0]
        job._handle = t[1]
        job._function = t[2]
        job._unique = t[3]
        job._workload = t[4]
        job._reducer = t[5]
        job._rc = RC_SUCCESS
        job._finished = False
        entry = worker._callbacks.get(job._function) if worker._callbacks is not None else None
        if entry is None:
            return _finish_via(worker, job, None, True)
        try:
            result = (<tuple?>entry)[0](job, (<tuple>entry)[1])
        except Exception as exc:
            worker._job_raised(job, exc)
            return worker._rc
        if job._finished or job._rc != RC_SUCCESS:
            return _finish_via(worker, job, result, False)
        if type(result) is bytes:
            data = result
        elif result is None:
            data = b""
        elif type(result) is str:
            data = (<str>result).encode("utf-8")
        else:
            return _finish_via(worker, job, result, False)
        try:
            self._send(<Connection?>job._conn, CMD_WORK_COMPLETE,
                       (_as_bytes_arg(job._handle, "handle"), data))
        except GearmanError as exc:
            code = exc.code
            job._rc = code
            return _set_rc(worker, code, str(exc))
        job._finished = True
        return _set_rc(worker, RC_SUCCESS, "")

    def echo(self, payload, double timeout=10.0):
        """ECHO_REQ to every server; return the list of echoed payloads (bytes).

        Raises ServerUnavailable / LostConnectionError if a server cannot be
        reached, GearmanTimeoutError after ``timeout`` seconds.
        """
        cdef Connection c
        cdef double deadline = gm_monotonic() + timeout, now
        cdef bytes data = _payload(payload, self.max_packet_size, "echo payload")
        cdef pollfd p
        cdef int rc, ms, err
        cdef object job
        out = []
        if not self.servers:
            raise NoServersError("no job server was added")
        for c in self.servers:
            now = gm_monotonic()
            if c.state == CS_DISCONNECTED:
                c.down_until = 0.0
            self._ensure(c, now)
            if c.state == CS_DISCONNECTED:
                raise ServerUnavailable(f"could not connect to {c.key}: {c.last_error}",
                                        code=RC_COULD_NOT_CONNECT, server=c.key)
            c.pending = Fifo()
            c.wbuf.write_one(CMD_ECHO_REQ, PyBytes_AS_STRING(data), PyBytes_GET_SIZE(data))
            try:
                while c.pending.size() == 0:
                    if c.state == CS_CONNECTED:
                        c.flush()
                        job = self._handle(c)
                        if job is not None:
                            self.ready.append(job)
                            continue
                        if c.pending.size():
                            break
                    elif c.state == CS_DISCONNECTED:
                        raise LostConnectionError(f"lost {c.key} during echo", server=c.key)
                    p.fd = c.fd
                    p.events = POLLIN
                    if c.state == CS_CONNECTING or c.wbuf.pending() > 0:
                        p.events = POLLIN | POLLOUT
                    p.revents = 0
                    now = gm_monotonic()
                    if c.state == CS_CONNECTING or c.state == CS_HANDSHAKE:
                        if now >= c.connect_deadline:
                            raise ServerUnavailable(
                                f"connect to {c.key} timed out after {c.connect_timeout:g} s",
                                code=RC_TIMEOUT, server=c.key)
                    ms = <int>((deadline - now) * 1000.0) + 1
                    if ms <= 0:
                        raise GearmanTimeoutError(f"echo from {c.key} timed out", code=RC_TIMEOUT)
                    if (c.state == CS_CONNECTING or c.state == CS_HANDSHAKE) and \
                            (c.connect_deadline - now) * 1000.0 + 1 < ms:
                        ms = <int>((c.connect_deadline - now) * 1000.0) + 1
                    with nogil:
                        rc = gm_poll(&p, 1, ms)
                    if rc < 0:
                        err = gm_sockerr()
                        if GM_EINTR(err):
                            PyErr_CheckSignals()
                            continue
                        raise OSError(err, _sockerr_text(err))
                    if rc == 0:
                        continue
                    if c.state == CS_CONNECTING:
                        c.finish_connect()
                        self._ensure(c, gm_monotonic())
                    elif c.state == CS_HANDSHAKE:
                        c.do_handshake()
                    elif p.revents & (POLLIN | POLLERR | POLLHUP | POLLNVAL):
                        c.fill()
            except GearmanError as e:
                self._fail(c, e)
                raise
            out.append(c.pending.pop())
        return out


cdef inline int _set_rc(WorkerCore worker, int rc, str error) except -1:
    worker._rc = rc
    worker._error = error
    return rc


cdef int _finish_via(object worker, WorkerJob job, object result, bint no_callback) except? -1:
    # the rare outcomes of a serve_jobs() job, in Python (gearman.worker)
    if no_callback:
        worker._run_job(job)
    else:
        worker._finish_job(job, result)
    return worker._rc
