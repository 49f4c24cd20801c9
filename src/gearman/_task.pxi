# Task: one request of a client (a job submission, a status query, an echo).
# The PECL GearmanTask accessors live here so the facade adds only aliases.

cdef inline str _handle_str(const char *p, Py_ssize_t n):
    # gearmand without the "exceptions" option turns WORK_EXCEPTION into a
    # WORK_FAIL whose handle carries a trailing NUL: strip it so it matches.
    while n > 0 and p[n - 1] == 0:
        n -= 1
    return PyUnicode_DecodeUTF8(p, n, "surrogateescape")


cdef class Task:
    """One request of a client: the PECL ``GearmanTask``.

    Tasks come from ``GearmanClient.addTask*`` and the do-family; they are not
    built directly.  Accessors follow PECL: ``functionName()``, ``unique()``,
    ``jobHandle()``, ``isKnown()``, ``isRunning()``, ``taskNumerator()``,
    ``taskDenominator()``, ``data()``, ``dataSize()``, ``returnCode()``.
    """

    def __cinit__(self):
        self.kind = TASK_SUBMIT
        self.command = 0
        self._function = b""
        self._unique = b""
        self._workload = b""
        self._handle = ""
        self.state = TS_NEW
        self.code = RC_SUCCESS
        self._data = b""
        self._chunks = None
        self._result = None
        self.error = None
        self.conn = None
        self.context = None
        self.callbacks = None

    def __repr__(self):
        names = ("new", "queued", "created", "done")
        return (f"<gearman Task {self.functionName()!r} handle={self._handle!r} "
                f"{names[self.state]} rc={self.code}>")

    # PECL accessors
    def functionName(self):
        """Return the function name (str)."""
        return self._function.decode("utf-8", "surrogateescape")

    def unique(self):
        """Return the unique ID sent (the generated one if none was given)."""
        return self._unique.decode("utf-8", "surrogateescape")

    def jobHandle(self):
        """Return the job handle, ``''`` before JOB_CREATED."""
        return self._handle

    def isKnown(self):
        """True while the server knows the job (after JOB_CREATED, until it ends)."""
        return self._known

    def isRunning(self):
        """True once a worker reported on the job (data, warning or status)."""
        return self._running

    def taskNumerator(self):
        """Numerator of the last WORK_STATUS / STATUS_RES."""
        return self._numerator

    def taskDenominator(self):
        """Denominator of the last WORK_STATUS / STATUS_RES."""
        return self._denominator

    def data(self):
        """Payload of the packet being delivered (bytes)."""
        return self._data

    def dataSize(self):
        """Length of :meth:`data`."""
        return len(self._data)

    def returnCode(self):
        """The task's outcome code (``GEARMAN_SUCCESS``, ``GEARMAN_WORK_FAIL``...)."""
        return self.code

    def workload(self):
        """The workload that was (or will be) sent."""
        return bytes(self._workload)

    def sendWorkload(self, data):
        """Append ``data`` to the workload of a task not yet submitted; return its length.

        PECL streams workloads through a workload callback; here a workload is
        always sent whole, so more can only be added before ``runTasks()``.
        Raises InvalidArgumentError once the task was submitted.
        """
        cdef bytes b = _payload(data, 0x7FFFFFFF, "workload")
        if self.state != TS_NEW or self.kind != TASK_SUBMIT:
            raise InvalidArgumentError("the workload of a submitted task cannot change")
        self._workload = <bytes>self._workload + b
        return len(b)

    def recvData(self, Py_ssize_t data_len):
        """Return ``[length, bytes]``: the next ``data_len`` bytes of the current packet.

        For reading a large WORK_DATA / WORK_COMPLETE payload in pieces, as
        PECL does with GEARMAN_CLIENT_UNBUFFERED_RESULT.
        """
        cdef bytes d = self._data
        if data_len < 0:
            raise InvalidArgumentError("data_len must not be negative")
        if self._recv_pos > len(d):
            self._recv_pos = len(d)
        chunk = d[self._recv_pos:self._recv_pos + data_len]
        self._recv_pos += len(chunk)
        return [len(chunk), chunk]

    # Python-side state (facade and tests)
    @property
    def handle(self):
        return self._handle

    @property
    def finished(self):
        """True once the task reached a final state."""
        return self.state == TS_DONE

    @property
    def result(self):
        """WORK_COMPLETE payload (bytes), or None."""
        return self._result

    @property
    def chunks(self):
        return self._chunks

    @property
    def exception(self):
        """The GearmanError that ended this task, or None."""
        return self.error

    @property
    def server(self):
        """``host:port`` of the server that holds the task, or None."""
        return None if self.conn is None else self.conn.key

    @property
    def background(self):
        return self.command in (CMD_SUBMIT_JOB_BG, CMD_SUBMIT_JOB_HIGH_BG,
                                CMD_SUBMIT_JOB_LOW_BG, CMD_SUBMIT_JOB_EPOCH,
                                CMD_SUBMIT_REDUCE_JOB_BACKGROUND)


cdef tuple _EMPTY_TUPLE = ()


cdef inline Task _new_task(type tp):
    # tp_new of a Task subclass, directly: tp.__new__(tp) is a Python method
    # call; tp is checked when it is set
    return <Task>(<PyTypeObject*>tp).tp_new(tp, <PyObject*>_EMPTY_TUPLE, NULL)
