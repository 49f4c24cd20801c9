# Declarations for _client_engine.pxi: routing, the task table and reply
# matching of a client (the connections and the poll loop are EngineBase's).

cdef class ClientEngine(EngineBase):
    cdef public int timeout_ms          # whole-call limit, ms; -1 = none
    cdef public bint exceptions         # send OPTION_REQ "exceptions" on connect
    cdef public bint generate_unique    # make a unique when none is given
    cdef Py_ssize_t rr                  # round-robin cursor for jobs without a unique
    cdef dict handle_servers            # recent handle (str) -> Connection that issued it
    cdef object _fn_key                 # the last function name given (str or bytes)...
    cdef bytes _fn_bytes                # ...validated and encoded
    cdef object _h_key                  # the last job handle given to jobStatus...
    cdef bytes _h_bytes                 # ...validated and encoded
    cdef list handle_ring               # handle_servers' keys in the order first seen: a ring
    cdef Py_ssize_t ring_pos            # the ring's oldest slot once it is full
    cdef public Py_ssize_t handle_memory  # handles remembered at most (0: none)
    cdef public Py_ssize_t outstanding  # tasks submitted and not finished
    cdef public object paused           # (task, event, data) awaiting re-delivery, or None
    cdef public int pause_code          # what the pausing callback returned
    cdef object cb_exc                  # exception raised by a callback, re-raised by the caller
    cdef type _task_type                # class of new tasks (the facade's GearmanTask)
    cdef public list finished_log       # tasks finished since take_finished(), or None: off
    cdef int fork_gen                   # _fork_generation these connections belong to
    cdef double call_start              # monotonic start of the current call with a deadline (-1: none)
    cdef Py_ssize_t probing             # probes of demoted servers in flight

    cdef int _check_fork(self) except -1
    cpdef Task new_submit(self, int cmd, object function, object workload, object unique,
                          object context=*)
    cpdef Task new_request(self, int kind, object arg, object context=*)
    # routing and writing
    cdef Connection _pick(self, Task t)
    cdef Connection _pick_for(self, bint hashed, uint64_t route_hash, uint64_t *tried)
    cdef bint _usable(self, Connection c, double now) except -1
    cdef int _start_probe(self, Connection c, double now) except -1
    cdef int _demote_silent(self, list wait, double start, Batch batch=*) except -1
    cdef int _connect(self, Connection c) except -1
    cdef int _remember(self, str handle, Connection c) except -1
    cdef bint _idle(self, Connection c)
    cdef int _check_idle(self, Connection c) except -1
    cdef int _write_task(self, Connection c, Task t) except -1
    cdef int _route(self, Task t) except -1
    cdef str _down_message(self)
    cpdef int submit(self, Task t) except -1
    cpdef int submit_to(self, Connection c, Task t) except -1
    cpdef object server_of(self, str handle)
    # finishing tasks; a failed connection's requests
    cdef inline int _finish(self, Task t, int rc) except -1
    cdef int _finish_error(self, Task t, object err) except -1
    cdef int _on_failure(self, Connection c, object exc, int how) except -1
    cdef int _restore(self, Connection c) except -1
    # reply matching
    cdef int _deliver(self, Task t, int ev) except -1
    cdef int _on_data(self, Connection c) except -1
    cdef object _take(self, Connection c, int kind, str what)
    cdef int _result_too_large(self, Connection c, Task t, str handle, object entry) except -1
    cdef int _dispatch(self, Connection c) except -1
    # the blocking calls
    cdef bint _done(self, list wait)
    cdef object _timeout_error(self, list wait, double timeout=*, object cls=*)
    cdef int _run(self, list wait, double deadline) except -1
    cdef Task _do(self, int cmd, object function, object workload, object unique,
                  double timeout)
    cdef int _wait_one(self, Task t, double deadline) except -1
    cdef list _job_status(self, object handle, double timeout)
    # batches
    cdef int _route_batch(self, Batch b, Py_ssize_t i) except -1
    cdef int _batch_fail(self, Batch b, Py_ssize_t i, object err) except -1
    cdef inline int _batch_done(self, Batch b) except -1
    cdef int _batch_answer(self, Connection c, object handle, object err) except -1
    # events (gearman.events): the _emit_* only while someone listens (_events not None)
    cdef int _emit_submitted(self, Task t) except -1
    cdef int _emit_end(self, Task t) except -1
    cdef int _abandon(self, Task t, object reason) except -1     # abandon(), telling why
    cdef int _drop_unsent_tail(self, Connection c) except -1     # abandoned requests never sent
