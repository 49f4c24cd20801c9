# Batch: many background jobs of one function without a Task object per job.
# Per job the engine keeps only a stream offset and a tried-servers mask in C
# arrays; each connection's FIFO holds one BatchRun per run of consecutive
# batch jobs, so JOB_CREATED answers are matched by position, as for tasks.


@cython.final
cdef class Batch:
    """The state of one ``submit_batch`` call: ``handles``, ``errors``, ``done``."""

    def __dealloc__(self):
        PyMem_Free(self.wend)
        PyMem_Free(self.tried)
        PyMem_Free(self.hash)


@cython.final
cdef class BatchRun:
    """Consecutive jobs of one batch queued on one connection, in FIFO order."""

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
