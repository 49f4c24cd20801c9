# Declarations for _batch.pxi: many background jobs of one submit_batch call,
# without a Task object per job.

cdef class Batch:
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
    cdef Py_ssize_t next_progress   # answers at which progress is called next
    cdef bint abandoned             # the caller gave up (timeout); answers are dropped


cdef class BatchRun:
    cdef Batch batch                # the batch these jobs belong to
    cdef Py_ssize_t *idx            # job indices, in submission order (PyMem-owned)
    cdef Py_ssize_t n               # indices stored
    cdef Py_ssize_t cap             # indices allocated
    cdef Py_ssize_t pos             # next index awaiting its answer

    cdef int push(self, Py_ssize_t i) except -1
