# WorkerEngine: what a worker does on its connections. Registrations (CAN_DO)
# go out on every connect; every awake connection keeps its own GRABs out (up
# to ``prefetch`` jobs per connection, GRABs out plus jobs handed out and not
# answered), so a server that stops answering holds up only itself, and jobs
# are taken from the connections in turn (every server is served fairly); a
# connection whose GRAB got NO_JOB sends PRE_SLEEP once its last GRAB is
# answered, and a worker with nothing to do sleeps in poll() until a NOOP (or
# stop()) wakes it, using no CPU while idle. A job's answer is settled by one routine (settle) for every
# worker surface. The connections, the poll loop and the failure policy
# (reconnect with jittered backoff) are EngineBase's.


@cython.auto_pickle(False)     # a job holds its connection: not picklable
cdef class WorkerJob:
    """The fields of a job given to a worker.

    ``gearman.worker.GearmanJob`` subclasses it with PECL's methods; the engine
    makes jobs of the class it is given (``job_type``) without calling
    ``__init__`` and fills these slots directly.
    """

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
        self._gen = (<Connection>conn).generation if isinstance(conn, Connection) else 0


cdef inline WorkerJob _new_job(type job_type, Connection c, str handle, object function,
                               object unique, object workload, object reducer):
    # tp_new of the subclass directly: WorkerJob.__new__(job_type) is a Python
    # method call
    cdef WorkerJob job = <WorkerJob>(<PyTypeObject*>job_type).tp_new(
        job_type, <PyObject*>_EMPTY_TUPLE, NULL)
    job._conn = c
    job._handle = handle
    job._function = function
    job._unique = unique
    job._workload = workload
    job._reducer = reducer
    job._rc = RC_SUCCESS
    job._finished = False
    job._gen = c.generation
    return job


cdef object _result_bytes(object result, Py_ssize_t limit, str what="callback result"):
    """A callback's result as the bytes of its WORK_COMPLETE: a payload (bytes,
    bytearray, memoryview, str as UTF-8), None as empty, a number as its
    decimal text (as PECL converts it). Raises InvalidTypeError for anything
    else, UnicodeEncodeError for a str UTF-8 cannot encode (a lone surrogate),
    InvalidArgumentError above ``limit`` bytes."""
    if (isinstance(result, (int, float)) and not isinstance(result, bool)):
        result = str(result)
    return _payload(result, limit, what)


def to_payload(data, str what="payload"):
    """A worker's payload (a result, data, a warning, an exception text) as
    bytes: the conversion a job's send methods and settle() share."""
    return _result_bytes(data, PY_SSIZE_T_MAX, what)


# A callback that raised is logged where users look for worker failures.
wlog = logging.getLogger("gearman.worker")

#: settle()'s ``exc`` for a job whose function has no callback
NO_CALLBACK = object()


cdef inline int _grab_refused(Connection c) except -1:
    """A GRAB on c answered without a job (NO_JOB, or an ERROR): no new GRAB
    on c; once the GRABs still out are answered (in order: most get NO_JOB
    too), PRE_SLEEP, and sleep until a NOOP."""
    if c.grabs_out:
        c.grabs_out -= 1
    c.no_job = True
    if not c.grabs_out and not c.asleep:
        c.wbuf.write_one(CMD_PRE_SLEEP, NULL, 0)
        c.asleep = True
    return 0


@cython.final
cdef class WorkerEngine(EngineBase):
    """The compiled engine behind ``GearmanWorker`` and each ``gearman.aio`` worker slot."""

    def __cinit__(self, *args, **kwargs):
        self.functions = {}
        self.grab_cmd = CMD_GRAB_JOB_UNIQ
        self.io_timeout = 30.0
        self.rr = 0
        self.prefetch = 1
        self.timed = False
        self.out_marks = {}
        a, b = socket.socketpair()
        a.setblocking(False)
        b.setblocking(False)
        self._wake_pair = (a, b)
        self.wake_sock = a
        self.wake_r = a.fileno()
        self.wake_w = b
        self.stopping = False
        self.eager_grab = False
        self.blocking_send = True
        self.ready = []
        self.grab_error = None
        self.echoing = None
        self.job_type = WorkerJob
        self.retry_timers = True
        self.fail_log_level = logging.WARNING

    def abilities_changed(self):
        """Registrations changed: every connection re-sends them before its next grab."""
        cdef Connection c
        for c in self.servers:
            if c.abilities_sent:
                c.abilities_sent = False
                c.init_packets = [(CMD_RESET_ABILITIES, ())]

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
        self.out_marks.clear()

    disconnect = close

    cdef int _on_failure(self, Connection c, object exc, int how) except -1:
        """A lost server: its GRAB is forgotten (gearmand re-queues a job it had
        assigned on that connection), and a protocol error is kept for work()."""
        if isinstance(exc, ProtocolError):
            # work() reports it if no job comes (e.g. one over max_packet_size)
            self.grab_error = type(exc)(f"{c.key} broke the connection: {exc}",
                                        code=exc.code, server=c.key)
            self.grab_error.__cause__ = exc
        # c.close() reset its grab state: no GRAB out, nothing held (a job
        # handed out from it can no longer be answered there)
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
                self._conn_failed(c, e, FAIL_BACKOFF)
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
            self.timed = False
            for name in reversed(list(self.functions)):
                ms = self.functions[name]
                if ms:
                    c.wbuf.write_packet(True, CMD_CAN_DO_TIMEOUT, (name, str(ms).encode()))
                    self.timed = True
                else:
                    c.wbuf.write_one(CMD_CAN_DO, PyBytes_AS_STRING(name),
                                     PyBytes_GET_SIZE(name))
            c.abilities_sent = True
            # new registrations: grab again even if the connection slept (a
            # job queued before a CAN_DO wakes nobody). GRABs already out are
            # still answered, in order.
            c.no_job = False
            c.asleep = False
        return 0

    cdef int _refill(self, Connection c) except -1:
        """Send GRABs on c until it has ``prefetch`` jobs out (GRABs not
        answered plus jobs handed out and not answered), unless it got NO_JOB
        or sleeps, or the worker is stopping. One job at a time when a function
        has a CAN_DO_TIMEOUT: gearmand arms that timer when it assigns a job
        (a job waiting behind another would spend its time waiting) and 1.1.20
        keeps one timer per connection."""
        cdef int k
        if c.no_job or c.asleep or self.stopping:
            return 0
        k = (1 if self.timed else self.prefetch) - c.grabs_out - c.jobs_held
        while k > 0:
            c.wbuf.write_one(self.grab_cmd, NULL, 0)
            c.grabs_out += 1
            k -= 1
        return 0

    cdef object _handle(self, Connection c, type job_type):
        """Process c's buffered packets up to the first job; returns it, or None."""
        cdef PacketReader r = c.reader
        cdef tuple args
        cdef uint32_t cmd
        cdef str handle
        cdef WorkerJob job
        while c.state == CS_CONNECTED and r._next():
            c.failures = 0              # a valid packet: the server is healthy
            if c.demoted:
                self._restore(c)        # ... and answers again (server_restored)
            cmd = r.p_cmd
            if cmd == CMD_NOOP:
                if c.asleep:
                    c.asleep = False
                    c.no_job = False
            elif cmd == CMD_NO_JOB:
                _grab_refused(c)
            elif cmd == CMD_JOB_ASSIGN or cmd == CMD_JOB_ASSIGN_UNIQ or cmd == CMD_JOB_ASSIGN_ALL:
                args = r._args()
                # a job: the queue is not empty after all (and a job while
                # asleep, from a server that ignored the PRE_SLEEP, wakes us)
                c.no_job = False
                c.asleep = False
                if c.grabs_out:
                    c.grabs_out -= 1
                c.jobs_held += 1
                handle = _handle_str(PyBytes_AS_STRING(args[0]), PyBytes_GET_SIZE(args[0]))
                if cmd == CMD_JOB_ASSIGN:
                    job = _new_job(job_type, c, handle, args[1], b"", args[2], None)
                elif cmd == CMD_JOB_ASSIGN_UNIQ:
                    job = _new_job(job_type, c, handle, args[1], args[2], args[3], None)
                else:
                    job = _new_job(job_type, c, handle, args[1], args[2], args[4], args[3])
                if self._events is not None:
                    self._emit_grabbed(job)
                return job
            elif cmd == CMD_ERROR:
                args = r._args()
                log.warning("job server %s: ERROR %s %s", c.key,
                            args[0].decode("ascii", "replace"), args[1].decode("utf-8", "replace"))
                if c.grabs_out:
                    # An ERROR may answer a GRAB (or a result the server no
                    # longer knows, ahead of the GRAB's own answer).  Either
                    # way, count a GRAB answered and go on as after NO_JOB:
                    # waiting for a GRAB answer that may never come wedges the
                    # worker, grabbing again at once spins.
                    _grab_refused(c)
            elif cmd == CMD_ECHO_RES:
                # kept only while echo() waits for it on c: an unsolicited one
                # must not pile up
                if self.echoing is c and c.pending.size() == 0:
                    c.pending.push(PyBytes_FromStringAndSize(r.p_body, r.p_len))
            elif cmd == CMD_OPTION_RES:
                pass
            else:
                raise ProtocolError(f"{c.key} sent {COMMAND_NAMES[cmd]}, which a worker never expects",
                                    code=RC_UNEXPECTED_PACKET)
        return None

    def grab(self, double timeout=-1.0, bint block=True):
        """Wait for one job: a ``job_type`` object (WorkerJob or the facade's
        subclass) whose ``_worker`` the caller sets.

        Returns None when ``timeout`` (seconds, <0 = none) passed, when
        ``block`` is false and no job is available right now, or when
        :meth:`wake` was called.
        """
        return self._grab(timeout, block, self.job_type)

    cdef object _grab(self, double timeout, bint block, type job_type):
        cdef double now, deadline = DEADLINE_NONE
        cdef Connection c
        cdef Py_ssize_t i, k, n
        cdef int r
        cdef object job
        if not self.functions:
            raise InvalidArgumentError("no function is registered",
                                       code=RC_NO_REGISTERED_FUNCTIONS)
        if not self.servers:
            raise NoServersError(NO_SERVERS_MESSAGE)
        if not block:
            deadline = DEADLINE_NOW     # one look at what is ready, no waiting
        elif timeout >= 0:
            deadline = gm_monotonic() + timeout
        self.grab_error = None
        if self.ready:
            return self.ready.pop(0)
        while True:
            if self.stopping:
                return None
            now = gm_monotonic()
            n = len(self.servers)
            # buffered jobs first, taking the connections in turn
            i = self.rr if self.rr < n else 0
            for k in range(n):
                c = <Connection>self.servers[i]
                i += 1
                if i == n:
                    i = 0
                self._ensure(c, now)
                if c.state != CS_CONNECTED:
                    continue
                if self.blocking_send:
                    # a blocking worker runs one job at a time: asking for the
                    # next one means it is done with those it was handed
                    c.jobs_held = 0
                if c.reader._end > c.reader._start:
                    try:
                        job = self._handle(c, job_type)
                    except GearmanError as e:
                        self._conn_failed(c, e, FAIL_BACKOFF)
                        continue
                    if job is not None:
                        self.rr = i
                        if self.prefetch > 1:
                            # keep c's prefetch full: the GRABs go out with
                            # this job's answer (or the next poll round)
                            self._refill(c)
                        return job
            # each awake connection keeps its own GRABs out: a server that does
            # not answer holds up only itself
            for c in self.servers:
                if c.state == CS_CONNECTED:
                    self._refill(c)
            r = self._poll_round(deadline, None, PF_WAKE | PF_RETRY_TIMERS)
            if r == POLL_TIMEOUT:
                return None
            # POLL_WOKEN: stop() or a signal; the loop's head checks stopping

    def send(self, Connection c, int cmd, *args, WorkerJob job=None):
        """Write one packet (WORK_*) to c.

        Blocking engines wait until the kernel took it: raises
        LostConnectionError if the server went away (the server then re-queues
        the job), GearmanTimeoutError after ``io_timeout``.  With
        ``blocking_send`` off (gearman.aio) the packet is queued and written as
        the socket takes it (see output_pending()).

        ``job``: the job a final packet (COMPLETE/FAIL/EXCEPTION) answers; it
        no longer counts against c's prefetch.
        """
        if c.state != CS_CONNECTED:
            raise LostConnectionError(f"not connected to {c.key}", server=c.key)
        packed = tuple([_as_bytes_arg(a, "argument") for a in args])
        for a in packed:
            if PyBytes_GET_SIZE(<bytes>a) > self._max_packet_size:
                # the worker's own limit applies to what it sends, as to what it receives
                raise InvalidArgumentError(
                    f"{COMMAND_NAMES[cmd]} payload of {PyBytes_GET_SIZE(<bytes>a)} bytes; "
                    f"max_packet_size is {self._max_packet_size}", code=RC_DATA_TOO_LARGE)
        final = cmd == CMD_WORK_COMPLETE or cmd == CMD_WORK_FAIL or cmd == CMD_WORK_EXCEPTION
        self._send(c, cmd, packed, job is not None and job._gen == c.generation and final)
        if job is not None and final:
            job._final = cmd            # how the job ended, for its ending event
        return None

    cdef object _send(self, Connection c, int cmd, tuple args, bint release):
        # args: bytes objects only; release: this is the final answer of a job
        # assigned on c (since its last connect)
        cdef double deadline = DEADLINE_NONE
        cdef int r
        if c.state != CS_CONNECTED:
            raise LostConnectionError(f"not connected to {c.key}", server=c.key)
        c.wbuf.write_packet(True, <uint32_t>cmd, args)
        if release:
            if c.jobs_held:
                c.jobs_held -= 1
            if self.eager_grab and not self.ready:
                # A loop that will grab next anyway: the GRAB(s) ride in the
                # same segment as the result (one send instead of two per
                # job).  The loop's owner calls cancel_grab() when it ends.
                self._refill(c)
        try:
            c.flush()
        except GearmanError as e:
            self._conn_failed(c, e, FAIL_BACKOFF)
            raise
        if not self.blocking_send or c.wbuf.pending() == 0:
            return None
        if self.io_timeout >= 0:
            deadline = gm_monotonic() + self.io_timeout
        while c.state == CS_CONNECTED and c.wbuf.pending() > 0:
            r = self._poll_round(deadline, c, PF_WRITING)
            if r == POLL_TIMEOUT:
                err = GearmanTimeoutError(f"sending to {c.key} timed out", code=RC_TIMEOUT)
                self._conn_failed(c, err, FAIL_BACKOFF)
                raise err
        if c.state != CS_CONNECTED:
            raise _failure_of(c)
        return None

    def cancel_grab(self):
        """Hand back every job prefetched and not started: a loop is ending.

        Each connection with a GRAB out, a job received and not handed out
        yet, or a job handed out and not answered (an asyncio worker's queued
        jobs) is closed: gearmand puts the jobs it assigned on it back in the
        queue at once, for other workers, instead of leaving them assigned to
        a worker that no longer asks for work.  Call it once the answers of the
        jobs that ran were written (a close drops unsent output).  Returns True
        if a connection was closed.
        """
        cdef Connection c
        cdef bint closed = False
        for job in self.ready:
            c = <Connection>(<WorkerJob>job)._conn
            c.jobs_held += 1
        self.ready = []
        for c in self.servers:
            if c.state == CS_DISCONNECTED:
                continue
            if c.grabs_out or c.jobs_held or c.reader._end > c.reader._start:
                c.close()
                c.wbuf.clear()
                c.abilities_sent = False
                closed = True
        return closed

    def grab_state(self):
        """``[(server, grabs out, jobs held, asleep)]`` per connection, for
        tests and debugging: GRABs sent and not answered, jobs handed out and
        not answered, and whether it sleeps (PRE_SLEEP sent, no NOOP yet)."""
        cdef Connection c
        return [(c.key, c.grabs_out, c.jobs_held, bool(c.asleep)) for c in self.servers]

    def drop_stalled_output(self, double timeout):
        """Close each connection whose pending output made no progress for
        ``timeout`` seconds (gearmand re-queues the jobs it did not get an
        answer for); the others are left alone.  For engines that do not
        block on send (gearman.aio).  Returns the seconds until output still
        pending should be looked at again, or -1.0 when none is pending."""
        cdef Connection c
        cdef double now = gm_monotonic(), left, nxt = -1.0
        for c in self.servers:
            if c.state != CS_CONNECTED or c.wbuf.pending() == 0:
                self.out_marks.pop(c, None)
                continue
            mark = self.out_marks.get(c)
            if mark is None or mark[0] != c.generation or mark[1] != c.sent:
                self.out_marks[c] = (c.generation, c.sent, now)
                left = timeout
            else:
                left = <double>mark[2] + timeout - now
                if left <= 0:
                    log.warning("job server %s took no output for %g s: dropping the connection",
                                c.key, timeout)
                    self.out_marks.pop(c, None)
                    self._conn_failed(c, GearmanTimeoutError(
                        f"sending to {c.key} timed out", code=RC_TIMEOUT), FAIL_BACKOFF)
                    continue
            if nxt < 0 or left < nxt:
                nxt = left
        return nxt

    # -- running jobs -------------------------------------------------------------------

    def serve_jobs(self, worker, job_type, max_jobs=None):
        """The loop of ``GearmanWorker.serve()``: grab, run, report, until stopped.

        ``worker`` is the GearmanWorker (a WorkerCore: its lock, callbacks,
        timeout and options are read for each job, its return code and error
        written); ``job_type`` a subclass of :class:`WorkerJob`.  Returns the
        number of jobs handled (answered, whatever the callback did).
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
        return handled

    def work_one(self, worker, job_type):
        """One job as ``GearmanWorker.work()`` does it (the caller holds the
        worker's lock); returns the code also left in ``worker._rc``:
        GEARMAN_SUCCESS when a job was received and answered (whatever its
        callback did), else why no job could be handled."""
        if not issubclass(job_type, WorkerJob):
            raise InvalidTypeError("job_type must be a subclass of WorkerJob")
        return self._serve_one(<WorkerCore?>worker, job_type)

    def run_job(self, worker, WorkerJob job):
        """Run the callback of a job already grabbed (``grabJob``, the
        python-gearman loop) and answer it; returns like work_one()."""
        return self._run_one(<WorkerCore?>worker, job)

    cdef int _serve_one(self, WorkerCore worker, type job_type) except? -1:
        """One job of serve_jobs() / work(); returns the code it left in worker._rc."""
        cdef object found
        cdef int options
        if not self.functions:
            return _set_rc(worker, RC_NO_REGISTERED_FUNCTIONS, "no functions are registered")
        if self.stopping:
            self.stopping = False
            self.cancel_grab()          # prefetched jobs go back to the queue
            return _set_rc(worker, RC_SHUTDOWN, "worker was stopped")
        options = worker._options
        try:
            found = self._grab(worker._timeout_s, not (options & WORKER_NON_BLOCKING), job_type)
        except GearmanError as exc:
            return _set_rc(worker, exc.code, str(exc))
        if found is None:
            if self.stopping:
                self.stopping = False
                self.cancel_grab()      # prefetched jobs go back to the queue
                return _set_rc(worker, RC_SHUTDOWN, "worker was stopped")
            if self.grab_error is not None:
                # a server broke the protocol (or sent a job over max_packet_size)
                return _set_rc(worker, self.grab_error.code, f"no job: {self.grab_error}")
            if options & WORKER_NON_BLOCKING:
                return _set_rc(worker, RC_NO_JOBS, "no job is available")
            return _set_rc(worker, RC_TIMEOUT, self._no_job_message(worker._timeout_s))
        return self._run_one(worker, <WorkerJob>found)

    cdef str _no_job_message(self, double timeout):
        """Why a blocking grab ended without a job: no server could be reached,
        or the servers answered and had no job."""
        cdef Connection c
        down = []
        for c in self.servers:
            if c.state != CS_CONNECTED:
                down.append(f"{c.key}: {c.last_error}" if c.last_error is not None
                            else f"{c.key}: not connected")
        if len(down) == len(self.servers):
            return (f"timed out after {timeout:g} s: no job server could be reached ("
                    + "; ".join(down) + ")")
        return f"timed out after {timeout:g} s waiting for a job"

    cdef int _run_one(self, WorkerCore worker, WorkerJob job) except? -1:
        cdef object entry, result, data
        cdef Connection c
        job._worker = worker
        entry = worker._callbacks.get(job._function) if worker._callbacks is not None else None
        if self._events is not None:
            self._start_job(job)        # (a job without a callback starts and fails at once)
        if entry is None:
            return self._settle_for(worker, job, None, NO_CALLBACK)
        try:
            result = (<tuple?>entry)[0](job, (<tuple>entry)[1])
        except Exception as exc:
            return self._settle_for(worker, job, None, exc)
        except BaseException as exc:
            # KeyboardInterrupt, SystemExit: the job is not answered, but it ended here
            if job._ev is not None:
                self._end_job(job, exc)
            raise
        if job._finished or job._rc != RC_SUCCESS:
            return self._settle_for(worker, job, result, None)
        # the common outcome, inline: a callback that returned its result
        if type(result) is bytes:
            data = result
        elif result is None:
            data = b""
        else:
            return self._settle_for(worker, job, result, None)
        if PyBytes_GET_SIZE(data) > self._max_packet_size:
            return self._settle_for(worker, job, result, None)
        try:
            c = <Connection?>job._conn
            self._send(c, CMD_WORK_COMPLETE, (_as_bytes_arg(job._handle, "handle"), data),
                       job._gen == c.generation)
        except GearmanError as exc:
            job._rc = exc.code
            if job._ev is not None:
                self._end_job(job, None)        # not answered: job_failed
            return _set_rc(worker, exc.code, str(exc))
        job._finished = True
        if job._ev is not None:
            job._final = CMD_WORK_COMPLETE
            self._end_job(job, None)
        return _set_rc(worker, RC_SUCCESS, "")

    cdef int _settle_for(self, WorkerCore worker, WorkerJob job, object result,
                         object exc) except? -1:
        cdef int code
        try:
            code = self.settle(job, result, exc, worker._exceptions)
        except GearmanError as err:
            # the answer could not be sent (the server went away: it re-queues
            # the job): no job was handled
            job._rc = err.code
            return _set_rc(worker, err.code, str(err))
        # answered: work() reports success whatever the callback did (the
        # PECL loop ``while work(): if returnCode() != SUCCESS: break`` goes on)
        return _set_rc(worker, RC_SUCCESS, "")

    cpdef int settle(self, WorkerJob job, object result, object exc, bint exceptions) except? -1:
        """Answer a job after its callback: the one outcome routine of every
        worker surface (work/serve, the python-gearman worker, gearman.aio).

        ``exc`` is what the callback raised (None: it returned ``result``;
        NO_CALLBACK: the function has no callback).  A callback that raised
        is logged with its traceback on the ``gearman.worker`` logger and
        answered with WORK_EXCEPTION (``exceptions`` on) or WORK_FAIL; so is a
        result that cannot be sent (not bytes-like, a str UTF-8 cannot encode,
        over max_packet_size).  A job the callback finished itself is left
        alone; one it marked failed (setReturn) gets WORK_FAIL.

        Returns how the job ended: GEARMAN_SUCCESS (WORK_COMPLETE),
        GEARMAN_WORK_FAIL, GEARMAN_WORK_EXCEPTION, or
        GEARMAN_INVALID_FUNCTION_NAME (no callback: WORK_FAIL); ``settle_error``
        says why in words.  Raises the transport error if the answer could
        not be sent.

        A job whose ``job_started`` was emitted (:meth:`start_job`) gets its
        ending event here: job_completed (WORK_COMPLETE went out), job_raised
        (the callback raised, or its result could not be sent), else job_failed.
        """
        cdef int code
        if job._ev is None:
            return self._settle(job, result, exc, exceptions)
        self._settle_exc = None
        try:
            code = self._settle(job, result, exc, exceptions)
        except BaseException:
            self._end_job(job, self._settle_exc)
            raise
        self._end_job(job, self._settle_exc)
        return code

    cdef int _settle(self, WorkerJob job, object result, object exc, bint exceptions) except? -1:
        cdef Connection c = <Connection?>job._conn
        cdef bytes handle = _as_bytes_arg(job._handle, "handle")
        cdef str name
        if exc is NO_CALLBACK:
            self.settle_error = f"no callback for {job._function!r}"
            wlog.warning("job %s: %s; answered WORK_FAIL", job._handle, self.settle_error)
            self._answer(job, c, CMD_WORK_FAIL, (handle,))
            return RC_INVALID_FUNCTION_NAME
        if exc is None:
            if job._finished:
                self.settle_error = "" if job._rc == RC_SUCCESS else "job failed"
                return job._rc
            if job._rc != RC_SUCCESS:
                self.settle_error = "job failed"
                self._answer(job, c, CMD_WORK_FAIL, (handle,))
                return RC_WORK_FAIL
            try:
                data = _result_bytes(result, self._max_packet_size)
            except (GearmanError, UnicodeError) as bad:
                # reported like an exception in the callback: the job must not
                # stay assigned to this worker unanswered
                exc = bad
            else:
                self.settle_error = ""
                self._answer(job, c, CMD_WORK_COMPLETE, (handle, data))
                return RC_SUCCESS
        name = (<bytes?>job._function).decode("utf-8", "replace")
        self._settle_exc = exc
        wlog.error("callback for %r raised (job %s)", name, job._handle, exc_info=exc)
        self.settle_error = f"callback raised {exc!r}"
        if not exceptions:
            # gearmand 1.1 turns WORK_EXCEPTION into a NUL-terminated WORK_FAIL
            # that libgearman clients never match: without the exception
            # handler, report a plain failure.
            self._answer(job, c, CMD_WORK_FAIL, (handle,))
            return RC_WORK_FAIL
        self._answer(job, c, CMD_WORK_EXCEPTION,
                     (handle, f"{type(exc).__name__}: {exc}".encode("utf-8", "backslashreplace")))
        return RC_WORK_EXCEPTION

    cdef int _answer(self, WorkerJob job, Connection c, int cmd, tuple args) except -1:
        """Send a job's final packet (nothing if the callback already sent one)."""
        if job._finished:
            return 0
        try:
            self._send(c, cmd, args, job._gen == c.generation)
        except GearmanError as err:
            job._rc = err.code
            raise
        job._rc = RC_SUCCESS
        job._finished = True
        job._final = cmd
        return 0

    # -- events (gearman.events; only called while someone listens) ---------------------

    def start_job(self, WorkerJob job):
        """Emit ``job_started`` and start the job's clock, if someone listens to
        this engine: what a worker surface calls right before the job's
        function (its ending event then comes from :meth:`settle` or
        :meth:`end_job`, on the same thread or asyncio task)."""
        if self._events is not None:
            self._start_job(job)

    def end_job(self, WorkerJob job, object exc=None):
        """Emit the ending event of a started job that ended outside
        :meth:`settle`: job_raised with ``exc`` (an Exception the function
        raised), else job_completed or job_failed by the final packet sent (a
        cancelled asyncio job: job_failed).  A job already ended, or not
        started under a listener, is left alone."""
        if job._ev is not None:
            self._end_job(job, exc if isinstance(exc, Exception) else None)

    cdef int _emit_grabbed(self, WorkerJob job) except -1:
        self._events.job_grabbed(job, _text(<bytes>job._function), (<Connection>job._conn).key,
                                 job._handle, _text(<bytes>job._unique) if job._unique else None)
        return 0

    cdef int _start_job(self, WorkerJob job) except -1:
        cdef object ev = self._events
        job._ev = ev
        job._t0 = gm_monotonic()
        ev.job_started(job, _text(<bytes>job._function), (<Connection>job._conn).key, job._handle)
        return 0

    cdef int _end_job(self, WorkerJob job, object exc) except -1:
        """The one ending event of a started job: raised (``exc``), completed
        (WORK_COMPLETE went out), else failed; to the Emitter told of its start."""
        cdef object ev = job._ev
        cdef double duration = gm_monotonic() - job._t0
        job._ev = None                  # one ending event per job
        fn = _text(<bytes>job._function)
        server = (<Connection>job._conn).key
        if exc is not None and exc is not NO_CALLBACK:
            ev.job_raised(job, fn, server, job._handle, duration, exc)
        elif job._final == CMD_WORK_COMPLETE:
            ev.job_completed(job, fn, server, job._handle, duration)
        else:
            ev.job_failed(job, fn, server, job._handle, duration)
        return 0

    # -- ping ------------------------------------------------------------------------------

    def echo(self, payload, double timeout=-1.0):
        """ECHO_REQ to every server; return the list of echoed payloads (bytes).

        Raises ServerUnavailable / LostConnectionError if a server cannot be
        reached, GearmanTimeoutError after ``timeout`` seconds (< 0: no limit;
        the connect timeout and keepalive still bound a dead server).
        """
        cdef Connection c
        cdef double deadline = DEADLINE_NONE if timeout < 0 else gm_monotonic() + timeout
        cdef bytes data = _payload(payload, self._max_packet_size, "echo payload")
        cdef int r
        cdef object job
        out = []
        if not self.servers:
            raise NoServersError(NO_SERVERS_MESSAGE)
        for c in self.servers:
            if c.state == CS_DISCONNECTED:
                c.down_until = 0.0
            self._ensure(c, gm_monotonic())
            if c.state == CS_DISCONNECTED:
                raise ServerUnavailable(f"could not connect to {c.key}: {c.last_error}",
                                        code=RC_COULD_NOT_CONNECT, server=c.key)
            c.pending = Fifo()
            c.wbuf.write_one(CMD_ECHO_REQ, PyBytes_AS_STRING(data), PyBytes_GET_SIZE(data))
            self.echoing = c
            try:
                while c.pending.size() == 0:
                    if c.state == CS_DISCONNECTED:
                        raise _failure_of(c)
                    if c.state == CS_CONNECTED and c.reader._end > c.reader._start:
                        job = self._handle(c, self.job_type)
                        if job is not None:
                            self.ready.append(job)
                            continue
                        if c.pending.size():
                            break
                    r = self._poll_round(deadline, c, 0)
                    if r == POLL_TIMEOUT:
                        raise GearmanTimeoutError(f"echo from {c.key} timed out",
                                                  code=RC_TIMEOUT)
            except GearmanError as e:
                if c.state != CS_DISCONNECTED:
                    self._conn_failed(c, e, FAIL_BACKOFF)
                raise
            finally:
                self.echoing = None
            out.append(c.pending.pop())
        return out


cdef object _failure_of(Connection c):
    """The error that closed c (its last_error), for a call that waited on it."""
    if isinstance(c.last_error, GearmanError):
        return c.last_error
    return LostConnectionError(f"lost connection to {c.key}", server=c.key)


cdef inline int _set_rc(WorkerCore worker, int rc, str error) except -1:
    worker._rc = rc
    worker._error = error
    return rc
