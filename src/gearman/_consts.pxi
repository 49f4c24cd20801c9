# Protocol and engine constants (values: docs/protocol.md §1-§2 and §5.8).


cdef enum:
    HEADER_SIZE = 12
    MAGIC_REQ = 0x00524551          # "\0REQ"
    MAGIC_RES = 0x00524553          # "\0RES"
    MAX_UNIQUE_SIZE = 64            # gearmand rejects 65+ bytes
    MAX_HANDLE_SIZE = 64
    MAX_COMMAND = 42
    DEFAULT_MAX_PACKET = 64 * 1024 * 1024

cdef enum Command:
    CMD_TEXT = 0
    CMD_CAN_DO = 1
    CMD_CANT_DO = 2
    CMD_RESET_ABILITIES = 3
    CMD_PRE_SLEEP = 4
    CMD_UNUSED = 5
    CMD_NOOP = 6
    CMD_SUBMIT_JOB = 7
    CMD_JOB_CREATED = 8
    CMD_GRAB_JOB = 9
    CMD_NO_JOB = 10
    CMD_JOB_ASSIGN = 11
    CMD_WORK_STATUS = 12
    CMD_WORK_COMPLETE = 13
    CMD_WORK_FAIL = 14
    CMD_GET_STATUS = 15
    CMD_ECHO_REQ = 16
    CMD_ECHO_RES = 17
    CMD_SUBMIT_JOB_BG = 18
    CMD_ERROR = 19
    CMD_STATUS_RES = 20
    CMD_SUBMIT_JOB_HIGH = 21
    CMD_SET_CLIENT_ID = 22
    CMD_CAN_DO_TIMEOUT = 23
    CMD_ALL_YOURS = 24
    CMD_WORK_EXCEPTION = 25
    CMD_OPTION_REQ = 26
    CMD_OPTION_RES = 27
    CMD_WORK_DATA = 28
    CMD_WORK_WARNING = 29
    CMD_GRAB_JOB_UNIQ = 30
    CMD_JOB_ASSIGN_UNIQ = 31
    CMD_SUBMIT_JOB_HIGH_BG = 32
    CMD_SUBMIT_JOB_LOW = 33
    CMD_SUBMIT_JOB_LOW_BG = 34
    CMD_SUBMIT_JOB_SCHED = 35
    CMD_SUBMIT_JOB_EPOCH = 36
    CMD_SUBMIT_REDUCE_JOB = 37
    CMD_SUBMIT_REDUCE_JOB_BACKGROUND = 38
    CMD_GRAB_JOB_ALL = 39
    CMD_JOB_ASSIGN_ALL = 40
    CMD_GET_STATUS_UNIQUE = 41
    CMD_STATUS_RES_UNIQUE = 42

# Number of arguments of each command, and whether the last one is opaque
# data that may contain NUL bytes (the table libgearman and gearmand share).
cdef int[43] ARGC
cdef bint[43] HAS_DATA
ARGC[:] = [5, 1, 1, 0, 0, 0, 0, 3, 1, 0, 0, 3, 3, 2, 1, 1, 1, 1, 3, 2, 5, 3, 1, 2, 0,
           2, 1, 1, 2, 2, 0, 4, 3, 3, 3, 8, 4, 5, 5, 0, 5, 1, 6]
HAS_DATA[:] = [0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1, 0, 1, 0, 0, 1, 1, 1, 0, 0, 1, 0, 0, 0,
               1, 0, 0, 1, 1, 0, 1, 1, 1, 1, 1, 1, 1, 1, 0, 1, 0, 0]

COMMAND_NAMES = (
    "TEXT", "CAN_DO", "CANT_DO", "RESET_ABILITIES", "PRE_SLEEP", "UNUSED", "NOOP",
    "SUBMIT_JOB", "JOB_CREATED", "GRAB_JOB", "NO_JOB", "JOB_ASSIGN", "WORK_STATUS",
    "WORK_COMPLETE", "WORK_FAIL", "GET_STATUS", "ECHO_REQ", "ECHO_RES", "SUBMIT_JOB_BG",
    "ERROR", "STATUS_RES", "SUBMIT_JOB_HIGH", "SET_CLIENT_ID", "CAN_DO_TIMEOUT",
    "ALL_YOURS", "WORK_EXCEPTION", "OPTION_REQ", "OPTION_RES", "WORK_DATA", "WORK_WARNING",
    "GRAB_JOB_UNIQ", "JOB_ASSIGN_UNIQ", "SUBMIT_JOB_HIGH_BG", "SUBMIT_JOB_LOW",
    "SUBMIT_JOB_LOW_BG", "SUBMIT_JOB_SCHED", "SUBMIT_JOB_EPOCH", "SUBMIT_REDUCE_JOB",
    "SUBMIT_REDUCE_JOB_BACKGROUND", "GRAB_JOB_ALL", "JOB_ASSIGN_ALL", "GET_STATUS_UNIQUE",
    "STATUS_RES_UNIQUE",
)
# argc per command, as a Python tuple for the reference tests and gearman.protocol
COMMAND_ARGC = tuple([ARGC[i] for i in range(43)])
COMMAND_HAS_DATA = tuple([bool(HAS_DATA[i]) for i in range(43)])

# Return codes used by the core (the full table is gearman.constants).
cdef enum ReturnCode:
    RC_SUCCESS = 0
    RC_IO_WAIT = 1
    RC_SHUTDOWN = 2
    RC_ERRNO = 4
    RC_INVALID_PACKET = 10
    RC_UNEXPECTED_PACKET = 11
    RC_GETADDRINFO = 12
    RC_NO_ACTIVE_FDS = 7
    RC_NO_SERVERS = 13
    RC_LOST_CONNECTION = 14
    RC_SERVER_ERROR = 18
    RC_WORK_DATA = 20
    RC_WORK_WARNING = 21
    RC_WORK_STATUS = 22
    RC_WORK_EXCEPTION = 23
    RC_WORK_FAIL = 24
    RC_COULD_NOT_CONNECT = 26
    RC_INVALID_FUNCTION_NAME = 31
    RC_DATA_TOO_LARGE = 30
    RC_NO_REGISTERED_FUNCTIONS = 34
    RC_NO_JOBS = 35
    RC_ECHO_DATA_CORRUPTION = 36
    RC_PAUSE = 38
    RC_QUEUE_ERROR = 42
    RC_TIMEOUT = 47
    RC_INVALID_ARGUMENT = 49

# Deadlines (monotonic seconds) have two special values.
cdef enum:
    DEADLINE_NONE = -1              # wait as long as it takes
    DEADLINE_NOW = -2               # do what is possible now, never wait

# EngineBase._poll_round(): what one round saw.
cdef enum PollResult:
    POLL_NOTHING = 1                # no connection, timer or wake-up fd to wait on
    POLL_EVENTS = 2                 # something was ready and has been handled
    POLL_TIMER = 3                  # a connect deadline or a retry time ended the wait
    POLL_TIMEOUT = 4                # the caller's deadline passed (DEADLINE_NOW: nothing ready)
    POLL_WOKEN = 5                  # the wake-up fd fired (stop(), a signal)
    POLL_INTERRUPTED = 6            # poll() was interrupted; signal handlers ran
    POLL_PAUSED = 7                 # a callback asked runTasks to pause (client)

# EngineBase._poll_round() flags.
cdef enum:
    PF_WAKE = 1                     # also wait on the wake-up fd
    PF_RETRY_TIMERS = 2             # end the wait when a down server is due for a retry
    PF_NO_DISPATCH = 4              # read into the buffers, leave the packets there
    PF_NO_BACKOFF = 8               # a failure in this round is not a connect failure
    PF_WRITING = 16                 # a round to write: done once ``only`` has nothing left to send

# EngineBase._conn_failed() modes.
cdef enum:
    FAIL_BACKOFF = 1                # count a failure and keep the server down a while
    FAIL_REROUTE = 2                # requests never sent go to another server (client)
    FAIL_DEMOTE = 4                 # the server stopped answering: route around it until a probe answers

# A client routes with a 64-bit mask of the servers tried per request.
cdef enum:
    MAX_CLIENT_SERVERS = 64

# A server that answered nothing for this long (seconds) while a call waited
# on it, until the call timed out, is silent: it is demoted (docs/reliability.md).
cdef double SILENT_AFTER = 0.2

# A call whose timeout left less than this (seconds) after waiting for the
# object's lock is not started: it could only time out.
cdef double MIN_CALL_TIME = 0.001

# A connection that received within this many seconds is not checked for an
# EOF before reuse (ClientEngine._check_idle).
cdef double IDLE_CHECK_AFTER = 0.001

# GearmanWorker option bits the core reads (gearman.constants has them all).
cdef enum:
    WORKER_NON_BLOCKING = 2

# Task kinds and states.
cdef enum TaskKind:
    TASK_SUBMIT = 1
    TASK_STATUS = 2
    TASK_STATUS_UNIQUE = 3
    TASK_ECHO = 4
    TASK_OPTION = 5

cdef enum TaskState:
    TS_NEW = 0          # added, not routed
    TS_QUEUED = 1       # packet queued on a connection, no answer yet
    TS_CREATED = 2      # JOB_CREATED received, waiting for WORK_* (foreground)
    TS_DONE = 3         # finished: return_code says how

# Task events (what a callback is told about).
cdef enum Event:
    EV_NONE = 0
    EV_CREATED = 1
    EV_DATA = 2
    EV_WARNING = 3
    EV_STATUS = 4
    EV_COMPLETE = 5
    EV_FAIL = 6
    EV_EXCEPTION = 7
    EV_WORKLOAD = 8

# Connection states.
cdef enum ConnState:
    CS_DISCONNECTED = 0
    CS_CONNECTING = 1
    CS_HANDSHAKE = 2
    CS_CONNECTED = 3

# Limits of a worker connection's grab state (Connection.grabs_out / jobs_held).
cdef enum WorkerLimits:
    MAX_PREFETCH = 1000         # largest prefetch (GRABs out per connection) a worker accepts

# What a client or worker that was given no server, and finds none in
# GEARMAN_SERVERS, says (docs/design.md, "Configuration": the no-server policy).
NO_SERVERS_MESSAGE = ("no job server was given: add one (addServer, or the servers "
                      "argument) or set GEARMAN_SERVERS")

# TCP keepalive of every connection, by default (EngineBase.keepalive): first
# probe after 30 s idle, then every 10 s, dead after 6 unanswered probes; the
# default TCP_USER_TIMEOUT is their sum (90 s: docs/reliability.md §5)
cdef int KEEPALIVE_IDLE = 30
cdef int KEEPALIVE_INTERVAL = 10
cdef int KEEPALIVE_COUNT = 6
