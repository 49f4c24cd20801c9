# Declarations for _worker_engine.pxi: a worker's registrations, grabs and job
# answers (the connections and the poll loop are EngineBase's).

cdef class WorkerJob:
    cdef public object _worker          # the facade object the job belongs to (sends through it)
    cdef public object _conn            # Connection the job came on (its answer goes there)
    cdef public object _handle          # job handle, str
    cdef public object _function        # function name, bytes
    cdef public object _unique          # unique, bytes (b"" without GRAB_JOB_UNIQ)
    cdef public object _workload        # workload, bytes
    cdef public object _reducer         # reducer, bytes, or None
    cdef public int _rc                 # code of the last send on this job
    cdef public bint _finished          # a final packet (COMPLETE/FAIL/EXCEPTION) was sent
    cdef unsigned long _gen             # _conn's generation when the job was assigned
    cdef object _ev                     # the Emitter told of job_started (None: not watched)
    cdef double _t0                     # monotonic time of job_started (only while watched)
    cdef int _final                     # the final packet sent (WORK_COMPLETE...), 0: none yet


cdef class WorkerEngine(EngineBase):
    cdef public dict functions          # name (bytes) -> CAN_DO_TIMEOUT ms (0: plain CAN_DO)
    cdef public int grab_cmd            # GRAB_JOB, GRAB_JOB_UNIQ or GRAB_JOB_ALL
    cdef public double io_timeout       # seconds a blocking send may wait; <0 = none
    cdef Py_ssize_t rr                  # next server whose buffered jobs are looked at first
    # Grab state is per connection (Connection.grabs_out, jobs_held, no_job,
    # asleep): each awake connection keeps its own GRABs out, so a server that
    # stops answering holds up nothing but itself.
    cdef public int prefetch            # jobs per connection: GRABs out + jobs held (1..MAX_PREFETCH)
    cdef bint timed                     # a function has a CAN_DO_TIMEOUT: one job per connection
    cdef dict out_marks                 # Connection -> (generation, bytes sent, since): output watch
    cdef object wake_w                  # write end of the wake-up socket pair
    cdef object _wake_pair              # both ends (kept open for the engine's life)
    cdef public bint stopping           # stop() was called: grab nothing more
    cdef public bint eager_grab         # send the next GRAB with a job's result (serve loops)
    cdef public bint blocking_send      # send() waits until the kernel took the bytes (not aio)
    cdef list ready                     # jobs received while not grabbing (echo), FIFO
    cdef public object grab_error       # ProtocolError that dropped a connection in the last grab()
    cdef Connection echoing             # the connection echo() waits on, or None
    cdef public type job_type           # class of the jobs grab() hands out (WorkerJob or a subclass)
    cdef public str settle_error        # why the last settle() did not complete its job, in words
    cdef object _settle_exc             # the exception the last settle() reported (events only)

    cdef int _on_failure(self, Connection c, object exc, int how) except -1
    cdef int _ensure(self, Connection c, double now) except -1
    cdef object _handle(self, Connection c, type job_type)
    cdef object _grab(self, double timeout, bint block, type job_type)
    cdef int _refill(self, Connection c) except -1
    cdef object _send(self, Connection c, int cmd, tuple args, bint release)
    cdef int _serve_one(self, WorkerCore worker, type job_type) except? -1
    cdef str _no_job_message(self, double timeout)
    cdef int _run_one(self, WorkerCore worker, WorkerJob job) except? -1
    cdef int _settle_for(self, WorkerCore worker, WorkerJob job, object result,
                         object exc) except? -1
    cpdef int settle(self, WorkerJob job, object result, object exc, bint exceptions) except? -1
    cdef int _settle(self, WorkerJob job, object result, object exc, bint exceptions) except? -1
    # events (gearman.events): only called while someone listens
    cdef int _emit_grabbed(self, WorkerJob job) except -1
    cdef int _start_job(self, WorkerJob job) except -1
    cdef int _end_job(self, WorkerJob job, object exc) except -1
    cdef int _answer(self, WorkerJob job, Connection c, int cmd, tuple args) except -1
