# Batch: many background jobs of one function without a Task object per job.
# Per job the engine keeps only a stream offset and a tried-servers mask in C
# arrays; each connection's FIFO holds one BatchRun per run of consecutive
# batch jobs, so JOB_CREATED answers are matched by position, as for tasks.


@cython.final
cdef class Batch:
    """The state of one ``submit_batch`` call: ``handles``, ``errors``, ``done``."""

    cdef int cmd                    # SUBMIT_JOB_BG / _HIGH_BG / _LOW_BG
    cdef bytes function             # validated function name
    cdef list workloads             # validated payloads (bytes), kept for rerouting
    cdef list uniques               # validated uniques (bytes), or None: generate
    cdef readonly list handles      # index -> handle (str) or None
    cdef readonly dict errors       # index -> GearmanError for jobs not accepted
    cdef uint64_t *wend             # index -> connection stream offset after its packet
    cdef uint64_t *tried            # index -> servers tried (bit per pool index)
    cdef uint64_t *hash             # index -> routing hash (caller-given uniques only)
    cdef readonly Py_ssize_t n      # number of jobs
    cdef readonly Py_ssize_t done   # jobs answered (created or failed)
    cdef object progress            # progress(done, total) or None
    cdef Py_ssize_t progress_every  # call progress after this many answers
    cdef Py_ssize_t next_progress
    cdef bint abandoned             # the caller gave up (timeout); answers are dropped

    def __dealloc__(self):
        PyMem_Free(self.wend)
        PyMem_Free(self.tried)
        PyMem_Free(self.hash)


@cython.final
cdef class BatchRun:
    """Consecutive jobs of one batch queued on one connection, in FIFO order."""

    cdef Batch batch
    cdef Py_ssize_t *idx            # job indices, in submission order
    cdef Py_ssize_t n               # indices stored
    cdef Py_ssize_t cap             # indices allocated
    cdef Py_ssize_t pos             # next index awaiting its answer

    def __dealloc__(self):
        PyMem_Free(self.idx)

    cdef int push(self, Py_ssize_t i) except -1:
        cdef Py_ssize_t *p
        if self.n == self.cap:
            self.cap = self.cap * 2 if self.cap else 64
            p = <Py_ssize_t *>PyMem_Realloc(self.idx, <size_t>self.cap * sizeof(Py_ssize_t))
            if p == NULL:
                raise MemoryError()
            self.idx = p
        self.idx[self.n] = i
        self.n += 1
        return 0
