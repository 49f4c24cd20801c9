# Declarations for _task.pxi: one client request and its state

cdef class Task:
    cdef public object context      # caller's context, passed to callbacks
    cdef readonly int kind          # TASK_SUBMIT / TASK_STATUS / TASK_ECHO / TASK_OPTION / ...
    cdef readonly int command       # packet command that submits it (SUBMIT_JOB*, GET_STATUS...)
    cdef bytes _function            # function name, UTF-8 bytes
    cdef bytes _unique              # unique sent (generated one included), bytes
    cdef object _workload           # payload: bytes, or a buffer object kept alive until written
    cdef str _handle                # job handle, '' until JOB_CREATED
    cdef readonly int state         # TS_NEW .. TS_DONE
    cdef public int code            # outcome: GEARMAN_SUCCESS, WORK_FAIL, LOST_CONNECTION...
    cdef bint _known                # from STATUS_RES / lifecycle
    cdef bint _running
    cdef uint32_t _numerator        # last WORK_STATUS / STATUS_RES numbers
    cdef uint32_t _denominator
    cdef object _data               # payload of the packet being delivered (bytes)
    cdef list _chunks               # WORK_DATA payloads kept for do* results (None: not kept)
    cdef Py_ssize_t _chunks_size    # bytes in _chunks (bounded by max_packet_size)
    cdef Py_ssize_t _recv_pos       # bytes of _data already returned by recvData()
    cdef object _result             # WORK_COMPLETE payload
    cdef object error               # GearmanError instance for a failed task, else None
    cdef Connection conn            # server that holds it (None before routing)
    cdef uint64_t wstart            # conn stream offset of this task's packet's first byte
    cdef uint64_t wend              # conn stream offset one past this task's packet
    cdef bint abandoned             # the caller gave up (timeout); replies are dropped
    cdef uint64_t tried             # bit i set: server i of the pool was tried (failover)
    cdef bint hashed                # routed by rendezvous hash (caller-given unique)
    cdef uint64_t route_hash        # hash of (function, unique) for rendezvous routing
    cdef public object callbacks    # CallbackTable snapshot or None (do* has none)
