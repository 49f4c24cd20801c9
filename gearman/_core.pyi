"""Type stubs for the compiled core ``gearman._core``.

Everything the extension exposes is declared here (docs/design.md); CI checks
the stub against the built module with ``python -m mypy.stubtest gearman._core``
(scripts/release_checks.sh), so a name added to the core without a stub fails.
The engine classes are internal: the public API is ``gearman.GearmanClient`` /
``GearmanWorker``, whose docs are in docs/api.md.
"""
import sys
from typing import Any, Callable, Dict, FrozenSet, Iterator, List, Optional, Tuple, Union, final

from typing_extensions import Self, disjoint_base

from gearman.errors import (
    GearmanError as GearmanError,
    GearmanTimeoutError as GearmanTimeoutError,
    InvalidArgumentError as InvalidArgumentError,
    InvalidTypeError as InvalidTypeError,
    LostConnectionError as LostConnectionError,
    NoServersError as NoServersError,
    PacketTooLargeError as PacketTooLargeError,
    ProtocolError as ProtocolError,
    SERVER_ERROR_CLASSES as SERVER_ERROR_CLASSES,
    ServerError as ServerError,
    ServerUnavailable as ServerUnavailable,
    UnknownCommandError as UnknownCommandError,
)

_Bytesish = Union[bytes, bytearray, memoryview, str]
_Arg = Union[bytes, bytearray, memoryview, str, int]
_Packet = Tuple[int, Tuple[bytes, ...]]

#: True: this module is the compiled extension.
COMPILED: bool
COMMAND_NAMES: Tuple[str, ...]
#: what a client or worker with no server (and no GEARMAN_SERVERS) raises
NO_SERVERS_MESSAGE: str
COMMAND_ARGC: Tuple[int, ...]
COMMAND_HAS_DATA: Tuple[bool, ...]
KIND_STATUS: int
KIND_STATUS_UNIQUE: int
KIND_ECHO: int
POLL_IN: int
POLL_OUT: int
EVENTS: Tuple[str, ...]
EVENT_INDEX: Dict[str, int]
TASK_STATE_NEW: int
TASK_STATE_QUEUED: int
TASK_STATE_CREATED: int
TASK_STATE_DONE: int
#: WorkerEngine.settle()'s ``exc`` for a job whose function has no callback
NO_CALLBACK: object
#: bytes a packet may carry beyond max_packet_size for the arguments before its payload
ARGS_SLACK: int

def pack_request(command: int, *args: _Arg) -> bytes: ...
def pack_response(command: int, *args: _Arg) -> bytes: ...
def parse_packets(data: Union[bytes, bytearray, memoryview], max_packet_size: int = ...,
                  magic: bytes = ...) -> List[_Packet]: ...
def new_unique() -> str: ...
def workload_hash_unique(workload: _Bytesish) -> str: ...
def parse_server_spec(spec: str, default_port: int = ...) -> Tuple[str, int]: ...
def validate_function_name(name: Union[str, bytes, bytearray, memoryview]) -> bytes: ...
def validate_unique(unique: Union[str, bytes, bytearray, memoryview]) -> bytes: ...
def to_payload(data: Any, what: str = ...) -> bytes: ...
def default_servers() -> List[Tuple[str, int]]: ...
def monotonic() -> float: ...

@final
class WriteBuffer:
    def __new__(cls, initial: int = ...) -> Self: ...
    def __len__(self) -> int: ...
    if sys.version_info >= (3, 12):
        def __buffer__(self, flags: int, /) -> memoryview: ...
        def __release_buffer__(self, buffer: memoryview, /) -> None: ...
    def getvalue(self) -> bytes: ...
    def clear(self) -> None: ...
    def advance(self, n: int) -> None: ...
    def request(self, command: int, *args: _Arg) -> None: ...
    def response(self, command: int, *args: _Arg) -> None: ...
    def text(self, line: Union[bytes, str]) -> None: ...

@final
class PacketReader:
    @property
    def max_packet_size(self) -> int: ...
    def __new__(cls, max_packet_size: int = ..., magic: bytes = ...,
                allow_text: bool = ...) -> Self: ...
    def feed(self, data: Union[bytes, bytearray, memoryview]) -> None: ...
    def gets(self) -> Optional[_Packet]: ...
    def __iter__(self) -> Iterator[_Packet]: ...
    def __next__(self) -> _Packet: ...
    @property
    def buffered(self) -> int: ...

@final
class UniqueGen:
    def _reseed(self) -> None: ...
    def __iter__(self) -> Iterator[str]: ...
    def __next__(self) -> str: ...

@disjoint_base
class Task:
    """One request of a client: the PECL ``GearmanTask`` (see docs/api.md)."""

    context: Any
    code: int
    callbacks: Any
    @property
    def kind(self) -> int: ...
    @property
    def command(self) -> int: ...
    @property
    def state(self) -> int: ...
    def functionName(self) -> str:
        """Return the function name."""

    def unique(self) -> str:
        """Return the unique ID sent (the generated one if none was given)."""

    def jobHandle(self) -> str:
        """Return the job handle, ``''`` before JOB_CREATED."""

    def isKnown(self) -> bool:
        """True while the server knows the job (after JOB_CREATED, until it ends); for a status task, what STATUS_RES said."""

    def isRunning(self) -> bool:
        """True once a worker reported on the job (data, warning or status), or STATUS_RES said so."""

    def taskNumerator(self) -> int:
        """Numerator of the last WORK_STATUS / STATUS_RES (0 before any)."""

    def taskDenominator(self) -> int:
        """Denominator of the last WORK_STATUS / STATUS_RES (0 before any)."""

    def data(self) -> bytes:
        """Payload of the packet being delivered to the callback (WORK_DATA, WORK_WARNING, WORK_COMPLETE, WORK_EXCEPTION), ``b''`` otherwise."""

    def dataSize(self) -> int:
        """Length of :meth:`data` in bytes."""

    def returnCode(self) -> int:
        """The task's outcome code: ``GEARMAN_SUCCESS``, ``GEARMAN_WORK_FAIL``, ``GEARMAN_WORK_EXCEPTION``, ``GEARMAN_LOST_CONNECTION``, ``GEARMAN_TIMEOUT``..."""

    def workload(self) -> bytes:
        """The workload that was (or will be) sent."""

    def sendWorkload(self, data: _Bytesish) -> int:
        """Append ``data`` to the workload of a task not yet submitted; return the number of bytes added.

        Raises InvalidArgumentError once the task was submitted (PECL streams
        workloads; here a workload is sent whole)."""

    def recvData(self, data_len: int) -> List[Any]:
        """Return ``[length, bytes]``: the next ``data_len`` bytes of the current packet's payload.

        For reading a large payload in pieces, as PECL does with
        ``GEARMAN_CLIENT_UNBUFFERED_RESULT``.  Raises InvalidArgumentError for a
        negative ``data_len``."""

    @property
    def handle(self) -> str:
        """The job handle (``''`` before JOB_CREATED)."""

    @property
    def finished(self) -> bool:
        """True once the task reached a final state."""

    @property
    def result(self) -> Optional[bytes]:
        """WORK_COMPLETE payload, or None."""

    @property
    def chunks(self) -> Optional[List[bytes]]: ...
    @property
    def exception(self) -> Optional[GearmanError]:
        """The GearmanError that ended this task, or None."""

    @property
    def server(self) -> Optional[str]:
        """``host:port`` of the server that holds the task, or None before routing."""

    @property
    def background(self) -> bool:
        """True for a background job."""


@final
class Fifo:
    def __len__(self) -> int: ...
    def __iter__(self) -> Iterator[Any]: ...
    def append(self, item: Any) -> None: ...
    def popleft(self) -> Any: ...

@final
class Connection:
    last_error: Optional[BaseException]
    #: the server stopped answering: routing skips it until a probe answers
    demoted: bool
    def __new__(cls, host: str, port: int, connect_timeout: float = ...,
                max_packet_size: int = ..., ssl_context: Any = ...) -> Self: ...
    @property
    def host(self) -> str: ...
    @property
    def port(self) -> int: ...
    @property
    def key(self) -> str: ...
    @property
    def ssl_context(self) -> Any: ...
    @property
    def state(self) -> int: ...
    @property
    def generation(self) -> int: ...
    @property
    def connected(self) -> bool: ...
    @property
    def gearman_host(self) -> str: ...
    @property
    def gearman_port(self) -> int: ...
    @property
    def in_flight(self) -> int: ...
    @property
    def unsent(self) -> int: ...

@final
class Batch:
    """The state of one ``submit_batch`` call."""

    @property
    def handles(self) -> List[Optional[str]]: ...
    @property
    def errors(self) -> Dict[int, GearmanError]: ...
    @property
    def n(self) -> int: ...
    @property
    def done(self) -> int: ...

@final
class BatchRun: ...

@disjoint_base
class EngineBase:
    """Connections, the poll loop and the failure policy (docs/design.md)."""

    servers: List[Connection]
    connect_timeout: float
    max_packet_size: int
    keepalive: Optional[Tuple[int, int, int]]
    tcp_user_timeout: Optional[float]
    ssl_context: Any
    client_id: Optional[bytes]
    _events: Any                    # gearman.events.Emitter while someone listens, else None
    def add_server(self, host: str, port: int, ssl_context: Any = ...) -> Connection: ...
    def watch_list(self) -> List[Tuple[int, int, int]]: ...
    def next_deadline(self) -> float: ...
    def wait_ready(self, timeout: float = ...) -> bool: ...
    def flush(self) -> int: ...

@final
class ClientEngine(EngineBase):
    timeout_ms: int
    exceptions: bool
    generate_unique: bool
    handle_memory: int
    outstanding: int
    paused: Any
    pause_code: int
    task_type: type
    finished_log: Optional[List[Task]]
    def close(self) -> None: ...
    def new_submit(self, cmd: int, function: Union[str, bytes], workload: Any, unique: Any,
                   context: Any = ...) -> Task: ...
    def new_request(self, kind: int, arg: Any, context: Any = ...) -> Task: ...
    def submit(self, t: Task) -> int: ...
    def submit_to(self, c: Connection, t: Task) -> int: ...
    def server_of(self, handle: str) -> Optional[Connection]: ...
    def servers_of(self, handle: str) -> List[Connection]: ...
    def remembered_handles(self) -> List[str]: ...
    def submit_all(self, tasks: List[Task]) -> None: ...
    def abandon(self, t: Task, reason: Optional[BaseException] = ...) -> None: ...
    def run_nonblocking(self, wait: Optional[List[Task]] = ...) -> int: ...
    def run(self, wait: Optional[List[Task]] = ..., timeout: float = ...) -> int: ...
    def submit_batch(self, cmd: int, function: Union[str, bytes], workloads: Any,
                     uniques: Any = ..., progress: Optional[Callable[[int, int], Any]] = ...,
                     progress_every: int = ...) -> Batch: ...
    def abandon_batch(self, b: Batch, reason: Optional[BaseException] = ...) -> None: ...
    def timed_out(self, tasks: List[Task], started: float, timeout: float = ...,
                  cls: Optional[type] = ...) -> Any: ...
    def batch_timed_out(self, b: Batch, err: Optional[BaseException] = ..., started: float = ...,
                        timeout: float = ..., cls: Optional[type] = ...) -> Any: ...
    def take_finished(self) -> List[Task]: ...
    def pump(self) -> int: ...

@final
class ClientLock:
    def acquire(self, blocking: bool = ..., timeout: float = ...) -> bool: ...
    def release(self) -> None: ...
    def __enter__(self) -> bool: ...
    def __exit__(self, *exc: object) -> None: ...
    def _is_owned(self) -> bool: ...

@disjoint_base
class CallerState:
    _lock: ClientLock
    _rc: int
    _error: Union[str, bool]
    _errno: int
    _timeout_ms: int
    def _failed(self, exc: BaseException) -> int: ...
    def _begin_call(self) -> float: ...

@disjoint_base
class ClientCore(CallerState):
    _engine: ClientEngine
    _events: Any                    # the engine's (gearman.events)
    _job_handle: str
    def _do_background(self, cmd: int, function: Union[str, bytes], workload: Any,
                       unique: Optional[Union[str, bytes]]) -> str: ...
    def _do_wait(self, cmd: int, function: Union[str, bytes], workload: Any,
                 unique: Optional[Union[str, bytes]]) -> bytes: ...
    def _job_status(self, job_handle: Union[str, bytes]) -> List[Any]: ...
    _new_tasks: List[Any]
    _cb_table: List[Optional[Callable[..., Any]]]
    _has_cb: bool
    def _add_submit(self, cmd: int, function: Union[str, bytes], workload: Any, context: Any,
                    unique: Optional[Union[str, bytes]]) -> Task: ...

@disjoint_base
class WorkerCore(CallerState):
    _engine: WorkerEngine
    _events: Any                    # the engine's (gearman.events)
    _callbacks: Dict[bytes, Tuple[Callable[..., Any], Any]]
    _options: int
    _exceptions: bool

@disjoint_base
class WorkerJob:
    _worker: Any
    _conn: Any
    _handle: str
    _function: bytes
    _unique: bytes
    _workload: bytes
    _reducer: Optional[bytes]
    _rc: int
    _finished: bool
    def __init__(self, worker: Any, conn: Any, handle: str, function: bytes, unique: bytes,
                 workload: bytes, reducer: Optional[bytes] = ...) -> None: ...

@final
class WorkerEngine(EngineBase):
    functions: Dict[bytes, int]
    grab_cmd: int
    io_timeout: float
    stopping: bool
    eager_grab: bool
    prefetch: int
    blocking_send: bool
    grab_error: Optional[ProtocolError]
    job_type: type
    settle_error: Optional[str]
    def cancel_grab(self) -> bool: ...
    def grab_state(self) -> List[Tuple[str, int, int, bool]]: ...
    def drop_stalled_output(self, timeout: float) -> float: ...
    def wake_fd(self) -> int: ...
    def abilities_changed(self) -> None: ...
    def wake(self) -> None: ...
    def close(self) -> None: ...
    def disconnect(self) -> None: ...
    def grab(self, timeout: float = ..., block: bool = ...) -> Any: ...
    def send(self, c: Connection, cmd: int, *args: _Arg, job: Optional[WorkerJob] = None) -> None: ...
    def work_one(self, worker: Any, job_type: type) -> int: ...
    def run_job(self, worker: Any, job: WorkerJob) -> int: ...
    def settle(self, job: WorkerJob, result: Any, exc: Any, exceptions: bool) -> int: ...
    def start_job(self, job: WorkerJob) -> None: ...
    def end_job(self, job: WorkerJob, exc: Optional[BaseException] = ...) -> None: ...
    def serve_jobs(self, worker: Any, job_type: type, max_jobs: Optional[int] = ...) -> int: ...
    def echo(self, payload: _Bytesish, timeout: float = ...) -> List[bytes]: ...

@final
class AdminEngine(EngineBase):
    """One admin text-protocol connection (gearman.admin drives it)."""

    def __init__(self, host: str, port: int, ssl_context: Any = ..., connect_timeout: float = ...,
                 max_line: int = ...) -> None: ...
    @property
    def key(self) -> str: ...
    @property
    def sock(self) -> Any: ...
    def start_call(self, timeout: float) -> None: ...
    def send(self, payload: bytes) -> None: ...
    def read_line(self, what: str) -> Tuple[str, bool]: ...
    def close(self) -> None: ...

def check_reachable(c: Connection) -> None: ...
def first_connection_error(tasks: List[Task]) -> Optional[BaseException]: ...
def task_outcome(t: Task) -> Any: ...

# Module internals the core keeps at top level (not API).
class _CallbackAbort(Exception): ...

_CONNECT_IN_PROGRESS: FrozenSet[int]
def _bump_fork_generation() -> None: ...
def _after_fork_in_child() -> None: ...
