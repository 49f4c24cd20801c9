"""A typed client for gearmand's administrative text protocol, over a pool of servers.

::

    from gearman.admin import Admin

    with Admin("10.0.0.1:4730,10.0.0.2") as admin:
        for fn in admin.status():                 # merged over the pool
            print(fn.name, fn.waiting, fn.running, fn.workers)
        admin.status(per_server=True)             # {"10.0.0.1:4730": [...], "10.0.0.2:4730": ServerUnavailable(...)}

Every method asks every server of the pool, in parallel, and has two forms:

``per_server=False`` (the default): the merged view.
    Listings are combined (``status``/``priority_status`` add up the numbers
    of each function over the servers, ``workers``/``show_jobs`` concatenate
    and say which ``server`` each entry came from), per-server facts
    (``version``, ``getpid``, ``verbose``, ``info``) come as ``{address:
    value}``.  If any server failed, the first failure (in pool order) is
    raised, with ``exc.server`` naming the server and ``exc.results`` holding
    the per-server form, so a partial answer is never mistaken for a whole one.
``per_server=True``: ``{address: value or exception}`` in pool order, never
    raising for a server's failure; ``value`` is what a one-server pool would
    give in the merged form.

Errors (all from :mod:`gearman.errors`):

* :class:`~gearman.errors.ServerUnavailable` -- the server cannot be reached
  (refused, unresolvable, connect timeout, TLS handshake failure);
* :class:`~gearman.errors.GearmanTimeoutError` -- connected, but the answer did
  not come within ``timeout`` seconds (e.g. a frozen server);
* :class:`~gearman.errors.LostConnectionError` -- the server closed the
  connection before a whole answer;
* :class:`~gearman.errors.ServerError` -- the server answered ``ERR ...``;
  ``server_code`` holds its code word (``UNKNOWN_JOB``...) or ``""``, the
  message the decoded text (gearmand writes ``+`` for spaces);
* :class:`~gearman.errors.ProtocolError` -- an answer that is not the
  expected shape;
* :class:`~gearman.errors.InvalidArgumentError` -- a bad argument (nothing sent).

gearmand 1.1 ends its answers with three different line-end styles (listings
``\\n``, ``OK``/``ERR`` ``\\r\\n``, ``version``/``getpid``/``verbose``
``OK value\\n``); all are accepted.  Commands are sent with ``\\r\\n``:
gearmand's ``create function`` drops the last character of an LF-only line.

An ``Admin`` keeps one connection per server and reuses it; a connection that
the server closed while idle is noticed and replaced before use.  The
connections are the compiled core's, as every client's and worker's: the same
connect (at most 5 s, ``connect_timeout``, and never past ``timeout``), TCP
keepalive, TLS handshake and failure handling, the same error messages.  It may be
shared by threads (each server's connection has its own lock) and survives
``os.fork()`` (the child opens its own connections).
"""
from __future__ import annotations

import os
import ssl
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import (
    Any,
    Callable,
    Dict,
    Iterable,
    List,
    Literal,
    Optional,
    Sequence,
    Tuple,
    TypeVar,
    Union,
    overload,
)

from gearman import _core
from gearman import _config
from gearman.errors import (
    GearmanError,
    InvalidArgumentError,
    InvalidTypeError,
    ProtocolError,
    ServerError,
)

__all__ = [
    "Admin",
    "FunctionStatus",
    "PriorityStatus",
    "WorkerInfo",
    "JobInfo",
    "ServerInfo",
    "Snapshot",
    "merge_status",
    "merge_priority_status",
    "DEFAULT_TIMEOUT",
    "command_word",
]

#: Seconds each call may take per server (connect included), by default.
DEFAULT_TIMEOUT = 10.0

#: Longest admin answer line we accept.  gearmand's longest lines are
#: ``workers`` lines (every function a connection registered); 16 MiB is far
#: beyond any real one and keeps a hostile peer from growing us without bound.
MAX_LINE = 16 * 1024 * 1024

#: Most servers asked at the same time by one call.
MAX_PARALLEL = 32

T = TypeVar("T")
PerServer = Dict[str, Union[T, GearmanError]]


# -- typed values ---------------------------------------------------------------------

@dataclass(frozen=True)
class FunctionStatus:
    """One line of ``status``: a function's jobs and workers.

    ``total`` counts queued *and* running jobs (as gearmand reports it,
    cancelled-but-not-yet-removed jobs included); ``running`` the jobs a
    worker has taken; ``workers`` the connections that registered the
    function, busy or idle.  Merged over a pool, each number is the sum over
    the servers (a worker connected to two servers counts twice).
    """

    name: str
    total: int
    running: int
    workers: int

    @property
    def waiting(self) -> int:
        """Jobs queued and not yet taken by a worker (``total - running``)."""
        return max(self.total - self.running, 0)


@dataclass(frozen=True)
class PriorityStatus:
    """One line of ``prioritystatus``: a function's *waiting* jobs per priority."""

    name: str
    high: int
    normal: int
    low: int
    workers: int


@dataclass(frozen=True)
class WorkerInfo:
    """One line of ``workers``: a connection to the server.

    gearmand lists every connection, clients and admin connections too
    (``functions`` is then empty).  ``client_id`` is None when the peer never
    sent SET_CLIENT_ID (gearmand shows ``-``).  ``server`` is the address of
    the server that listed it.
    """

    fd: int
    ip: str
    client_id: Optional[str]
    functions: Tuple[str, ...]
    server: str = ""


@dataclass(frozen=True)
class JobInfo:
    """One line of ``show jobs``.

    ``retries``: times the job was handed back to the queue (worker died);
    ``ignored``: cancelled or abandoned, removed when a worker would take it;
    ``queued``: stored in the persistent queue (background jobs with ``-q``).
    """

    handle: str
    retries: int
    ignored: bool
    queued: bool
    server: str = ""


@dataclass(frozen=True)
class ServerInfo:
    """``version``, ``getpid`` and ``verbose`` of one server."""

    server: str
    version: str
    pid: int
    verbose: str


@dataclass(frozen=True)
class Snapshot:
    """What a dashboard needs from one server, fetched in one round trip (:meth:`Admin.snapshot`)."""

    info: ServerInfo
    status: List[FunctionStatus]
    workers: List[WorkerInfo]


# -- merging ----------------------------------------------------------------------------

def merge_status(listings: Iterable[Sequence[FunctionStatus]]) -> List[FunctionStatus]:
    """Add up several servers' ``status`` listings per function; sorted by name."""
    acc: Dict[str, List[int]] = {}
    for listing in listings:
        for s in listing:
            a = acc.setdefault(s.name, [0, 0, 0])
            a[0] += s.total
            a[1] += s.running
            a[2] += s.workers
    return [FunctionStatus(name, *acc[name]) for name in sorted(acc)]


def merge_priority_status(listings: Iterable[Sequence[PriorityStatus]]) -> List[PriorityStatus]:
    """Add up several servers' ``prioritystatus`` listings per function; sorted by name."""
    acc: Dict[str, List[int]] = {}
    for listing in listings:
        for s in listing:
            a = acc.setdefault(s.name, [0, 0, 0, 0])
            a[0] += s.high
            a[1] += s.normal
            a[2] += s.low
            a[3] += s.workers
    return [PriorityStatus(name, *acc[name]) for name in sorted(acc)]


# -- parsing ----------------------------------------------------------------------------

def _ints(fields: Sequence[str], line: str) -> List[int]:
    try:
        return [int(f) for f in fields]
    except ValueError:
        raise ProtocolError(f"expected numbers in admin line {line!r}") from None


def _parse_status(lines: List[str], server: str) -> List[FunctionStatus]:
    out = []
    for line in lines:
        # rsplit: the name comes first and is the only field that could hold a tab
        parts = line.rsplit("\t", 3)
        if len(parts) != 4:
            raise ProtocolError(f"malformed status line {line!r}")
        out.append(FunctionStatus(parts[0], *_ints(parts[1:], line)))
    return out


def _parse_priority(lines: List[str], server: str) -> List[PriorityStatus]:
    out = []
    for line in lines:
        parts = line.rsplit("\t", 4)
        if len(parts) != 5:
            raise ProtocolError(f"malformed prioritystatus line {line!r}")
        out.append(PriorityStatus(parts[0], *_ints(parts[1:], line)))
    return out


def _parse_workers(lines: List[str], server: str) -> List[WorkerInfo]:
    out = []
    for line in lines:
        tokens = line.split(" ")
        # "FD IP ID : F1 F2 ..."; an id may hold spaces, so the separator is
        # the first ":" token after the id.
        try:
            colon = tokens.index(":", 3)
        except ValueError:
            raise ProtocolError(f"malformed workers line {line!r}") from None
        fd = _ints(tokens[:1], line)[0]
        client_id = " ".join(tokens[2:colon])
        out.append(WorkerInfo(fd, tokens[1], None if client_id == "-" else client_id,
                              tuple(t for t in tokens[colon + 1:] if t), server))
    return out


def _parse_jobs(lines: List[str], server: str) -> List[JobInfo]:
    out = []
    for line in lines:
        parts = line.rsplit("\t", 3)
        if len(parts) != 4:
            raise ProtocolError(f"malformed show jobs line {line!r}")
        retries, ignored, queued = _ints(parts[1:], line)
        out.append(JobInfo(parts[0], retries, bool(ignored), bool(queued), server))
    return out


def _parse_uniques(lines: List[str], server: str) -> List[str]:
    return list(lines)


def _ok_value(line: str, server: str) -> str:
    if line == "OK" or line.startswith("OK "):
        return line[3:].strip()
    raise ProtocolError(f"expected 'OK ...', got {line!r}")


def _ok_pid(line: str, server: str) -> int:
    value = _ok_value(line, server)
    try:
        return int(value)
    except ValueError:
        raise ProtocolError(f"expected a pid, got {line!r}") from None


def _ok_true(line: str, server: str) -> bool:
    if line.strip() != "OK":
        raise ProtocolError(f"expected 'OK', got {line!r}")
    return True


def _server_error(line: str, server: str, command: str) -> ServerError:
    """``ERR CODE text+with+pluses`` or ``ERR free text`` -> ServerError."""
    rest = line[4:].strip() if line.startswith("ERR ") else line.strip()
    code, _, text = rest.partition(" ")
    if code and (code.replace("_", "").isalpha() and code.isupper()):
        text = text.replace("+", " ")
    else:                      # "ERR function not found": no code word
        code, text = "", rest
    detail = f"{code}: {text}" if code and text else (code or text)
    return ServerError(f"{server}: {command!r} failed: {detail}", server_code=code,
                       server=server, text=text)


# What each command's answer looks like.  A listing's first line is an error
# only if it cannot be a data line: tab-separated listings always hold tabs
# in data lines, workers lines start with a number, and a unique may be any
# text, so there only the "\r\n" that gearmand puts after ERR tells them apart.
_LISTING, _LINE = 0, 1


@dataclass(frozen=True)
class _Cmd:
    line: str
    kind: int
    parse: Callable[..., Any]
    err_first: Callable[[str, bool], bool] = lambda text, cr: text.startswith("ERR ")


def _err_no_tab(text: str, cr: bool) -> bool:
    return text.startswith("ERR ") and "\t" not in text


def _err_with_cr(text: str, cr: bool) -> bool:
    return text.startswith("ERR ") and cr


_STATUS = _Cmd("status", _LISTING, _parse_status, _err_no_tab)
_PRIORITY = _Cmd("prioritystatus", _LISTING, _parse_priority, _err_no_tab)
_WORKERS = _Cmd("workers", _LISTING, _parse_workers)
_JOBS = _Cmd("show jobs", _LISTING, _parse_jobs, _err_no_tab)
_UNIQUES = _Cmd("show unique jobs", _LISTING, _parse_uniques, _err_with_cr)
_VERSION = _Cmd("version", _LINE, _ok_value)
_GETPID = _Cmd("getpid", _LINE, _ok_pid)
_VERBOSE = _Cmd("verbose", _LINE, _ok_value)


def command_word(value: Any, what: str) -> str:
    """One argument of an admin command: a non-empty word without spaces or line breaks."""
    if isinstance(value, (bytes, bytearray)):
        text = bytes(value).decode("utf-8", "surrogateescape")
    elif isinstance(value, str):
        text = value
    else:
        raise InvalidTypeError(f"{what} must be a str, not {type(value).__name__}")
    if not text or any(ch in text for ch in " \t\r\n\0"):
        raise InvalidArgumentError(f"{what} {text!r} must be one non-empty word "
                                   f"(no spaces, tabs or line breaks)")
    return text


def _limit(value: Optional[int], what: str) -> int:
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidTypeError(f"{what} must be an int or None, not {type(value).__name__}")
    return max(value, 0)


# -- one server's connection ------------------------------------------------------------

class _Conn:
    """The admin connection to one server: the core's AdminEngine (a Connection,
    its PacketReader and the poll loop), opened on first use, reused, replaced
    when it died while idle.  One call at a time (``lock``)."""

    def __init__(self, host: str, port: int, ssl_context: Optional[ssl.SSLContext]) -> None:
        self.engine = _core.AdminEngine(host, port, ssl_context=ssl_context, max_line=MAX_LINE)
        self.address: str = self.engine.key
        self.lock = threading.Lock()

    @property
    def sock(self) -> Any:
        """The open socket (``ssl.SSLSocket`` with TLS), or None."""
        return self.engine.sock

    def close(self) -> None:
        self.engine.close()

    def _answer(self, cmd: _Cmd) -> Any:
        first, cr = self.engine.read_line(cmd.line)
        if cmd.kind == _LINE:
            if first.startswith("ERR"):
                return _server_error(first, self.address, cmd.line)
            return cmd.parse(first, self.address)
        if cmd.err_first(first, cr):
            return _server_error(first, self.address, cmd.line)
        lines: List[str] = []
        line = first
        while line != ".":
            lines.append(line)
            line, _ = self.engine.read_line(cmd.line)
        return cmd.parse(lines, self.address)

    def call(self, cmds: Sequence[_Cmd], timeout: float) -> List[Any]:
        """Send ``cmds`` pipelined; return each answer (a value, or a ServerError for ``ERR``).

        Raises ServerUnavailable, GearmanTimeoutError, LostConnectionError or
        ProtocolError; then the connection is dropped, so a late answer is never
        taken for the next command's.
        """
        with self.lock:
            try:
                self.engine.start_call(timeout)
                self.engine.send(b"".join(c.line.encode("utf-8", "surrogateescape") + b"\r\n"
                                          for c in cmds))
                return [self._answer(c) for c in cmds]
            except BaseException:
                self.close()
                raise


# -- the pool ----------------------------------------------------------------------------

def _raise_first(results: Dict[str, Any]) -> None:
    for value in results.values():
        if isinstance(value, BaseException):
            value.results = results  # type: ignore[attr-defined]
            raise value


class Admin:
    """Administrative client for a pool of gearmand servers.

    Args:
        servers: ``"h1:4730,h2,[::1]:4731"``, or any server list
            docs/design.md names (``"host:port"`` strings, ``(host, port)``
            pairs, host dicts).  None: the servers ``GEARMAN_SERVERS`` names.
        timeout: seconds each call may take (connect included), per server;
            servers are asked in parallel, so a call takes about this long at
            most whatever the pool's size.  A connect gives up after 5 s
            (the core's ``connect_timeout``, as for clients and workers) if
            ``timeout`` is longer.
        ssl_context: an ``ssl.SSLContext`` to speak TLS to every server.

    Raises:
        InvalidArgumentError / InvalidTypeError: a bad server list or timeout.
        NoServersError: none given and ``GEARMAN_SERVERS`` unset.
    """

    def __init__(self, servers: Union[str, Sequence[Any], None] = None,
                 timeout: float = DEFAULT_TIMEOUT,
                 ssl_context: Optional[ssl.SSLContext] = None) -> None:
        entries = _config.library_servers(servers)
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0:
            raise InvalidArgumentError(f"timeout must be a positive number of seconds, not {timeout!r}")
        if ssl_context is not None and not isinstance(ssl_context, ssl.SSLContext):
            raise InvalidTypeError("ssl_context must be an ssl.SSLContext")
        self.timeout = float(timeout)
        self.ssl_context = ssl_context
        self._conns: List[_Conn] = []
        seen = set()
        for s in entries:
            conn = _Conn(s.host, s.port, s.tls or ssl_context)
            if conn.address not in seen:         # the same server twice would be counted twice
                seen.add(conn.address)
                self._conns.append(conn)
        self._pool: Optional[ThreadPoolExecutor] = None
        self._pool_pid = 0
        self._pool_lock = threading.Lock()

    @property
    def servers(self) -> List[str]:
        """``host:port`` of every server, in pool order (duplicates removed)."""
        return [c.address for c in self._conns]

    # -- fan-out ---------------------------------------------------------------------

    def _executor(self) -> ThreadPoolExecutor:
        with self._pool_lock:
            if self._pool is None or self._pool_pid != os.getpid():
                # After fork() the parent's pool threads do not exist in the child.
                self._pool = ThreadPoolExecutor(max_workers=min(len(self._conns), MAX_PARALLEL),
                                                thread_name_prefix="gearman-admin")
                self._pool_pid = os.getpid()
            return self._pool

    def _conns_for(self, server: Optional[str]) -> List[_Conn]:
        if server is None:
            return self._conns
        key = _config.parse_server(server).key
        for c in self._conns:
            if c.address == key:
                return [c]
        raise InvalidArgumentError(f"server {server!r} is not in the pool {self.servers}")

    def _fanout(self, cmds: Sequence[_Cmd], conns: Optional[List[_Conn]] = None) -> Dict[str, Any]:
        """Run ``cmds`` on every server: ``{address: [answer per command] or exception}``."""
        conns = self._conns if conns is None else conns

        def one(c: _Conn) -> Any:
            try:
                return c.call(cmds, self.timeout)
            except GearmanError as exc:
                return exc

        if len(conns) == 1:
            return {conns[0].address: one(conns[0])}
        futures = [(c.address, self._executor().submit(one, c)) for c in conns]
        return {address: f.result() for address, f in futures}

    def _each(self, cmd: _Cmd, conns: Optional[List[_Conn]] = None) -> Dict[str, Any]:
        """One command on every server: ``{address: value or exception}``."""
        out = {}
        for address, answer in self._fanout([cmd], conns).items():
            out[address] = answer if isinstance(answer, BaseException) else answer[0]
        return out

    # -- listings ------------------------------------------------------------------

    @overload
    def status(self, per_server: Literal[False] = ...) -> List[FunctionStatus]: ...
    @overload
    def status(self, per_server: Literal[True]) -> PerServer[List[FunctionStatus]]: ...

    def status(self, per_server: bool = False) -> Any:
        """Jobs and workers per function (``status``).

        Returns:
            merged: ``[FunctionStatus]`` sorted by name, numbers summed over
            the servers; per_server: ``{address: [FunctionStatus] or exception}``
            in gearmand's (unsorted) order.
        Raises (merged only): the first server's failure, see the module doc.
        """
        results = self._each(_STATUS)
        if per_server:
            return results
        _raise_first(results)
        return merge_status(results.values())

    @overload
    def priority_status(self, per_server: Literal[False] = ...) -> List[PriorityStatus]: ...
    @overload
    def priority_status(self, per_server: Literal[True]) -> PerServer[List[PriorityStatus]]: ...

    def priority_status(self, per_server: bool = False) -> Any:
        """Waiting jobs per function and priority (``prioritystatus``).

        Returns and raises as :meth:`status`, with :class:`PriorityStatus`.
        """
        results = self._each(_PRIORITY)
        if per_server:
            return results
        _raise_first(results)
        return merge_priority_status(results.values())

    @overload
    def workers(self, per_server: Literal[False] = ...) -> List[WorkerInfo]: ...
    @overload
    def workers(self, per_server: Literal[True]) -> PerServer[List[WorkerInfo]]: ...

    def workers(self, per_server: bool = False) -> Any:
        """Every connection of every server (``workers``): workers, clients, admin connections.

        Returns:
            merged: ``[WorkerInfo]``, server by server in pool order (each
            entry's ``server`` says where); per_server: ``{address: [WorkerInfo]
            or exception}``.  Filter on ``info.functions`` for real workers.
        Raises (merged only): the first server's failure.
        """
        results = self._each(_WORKERS)
        if per_server:
            return results
        _raise_first(results)
        return [w for listing in results.values() for w in listing]

    @overload
    def show_jobs(self, per_server: Literal[False] = ...) -> List[JobInfo]: ...
    @overload
    def show_jobs(self, per_server: Literal[True]) -> PerServer[List[JobInfo]]: ...

    def show_jobs(self, per_server: bool = False) -> Any:
        """Every job the servers hold (``show jobs``), queued or running.

        Returns:
            merged: ``[JobInfo]`` server by server (``server`` set);
            per_server: ``{address: [JobInfo] or exception}``.
            Handles are only unique per server: two gearmand on one host
            both issue ``H:host:1``.
        Raises (merged only): the first server's failure.
        """
        results = self._each(_JOBS)
        if per_server:
            return results
        _raise_first(results)
        return [j for listing in results.values() for j in listing]

    @overload
    def show_unique_jobs(self, per_server: Literal[False] = ...) -> List[str]: ...
    @overload
    def show_unique_jobs(self, per_server: Literal[True]) -> PerServer[List[str]]: ...

    def show_unique_jobs(self, per_server: bool = False) -> Any:
        """The unique id of every job (``show unique jobs``; ``''`` for an empty unique).

        Returns:
            merged: ``[str]`` server by server; per_server: ``{address: [str]
            or exception}``.
        Raises (merged only): the first server's failure.
        """
        results = self._each(_UNIQUES)
        if per_server:
            return results
        _raise_first(results)
        return [u for listing in results.values() for u in listing]

    # -- per-server facts ---------------------------------------------------------------

    def _facts(self, cmd: _Cmd, per_server: bool) -> Any:
        results = self._each(cmd)
        if not per_server:
            _raise_first(results)
        return results

    @overload
    def version(self, per_server: Literal[False] = ...) -> Dict[str, str]: ...
    @overload
    def version(self, per_server: Literal[True]) -> PerServer[str]: ...

    def version(self, per_server: bool = False) -> Any:
        """Each server's version (``version``), e.g. ``{"h1:4730": "1.1.20+ds"}``.

        Merged, the first failure is raised; per_server holds it instead.
        """
        return self._facts(_VERSION, per_server)

    @overload
    def getpid(self, per_server: Literal[False] = ...) -> Dict[str, int]: ...
    @overload
    def getpid(self, per_server: Literal[True]) -> PerServer[int]: ...

    def getpid(self, per_server: bool = False) -> Any:
        """Each server's process id (``getpid``), as int; raises as :meth:`version`."""
        return self._facts(_GETPID, per_server)

    @overload
    def verbose(self, per_server: Literal[False] = ...) -> Dict[str, str]: ...
    @overload
    def verbose(self, per_server: Literal[True]) -> PerServer[str]: ...

    def verbose(self, per_server: bool = False) -> Any:
        """Each server's log level (``verbose``), e.g. ``"ERROR"``; raises as :meth:`version`.

        gearmand only reports the level; it cannot be changed at run time.
        """
        return self._facts(_VERBOSE, per_server)

    @overload
    def info(self, per_server: Literal[False] = ...) -> Dict[str, ServerInfo]: ...
    @overload
    def info(self, per_server: Literal[True]) -> PerServer[ServerInfo]: ...

    def info(self, per_server: bool = False) -> Any:
        """``version``, ``getpid`` and ``verbose`` of each server in one round trip.

        Returns ``{address: ServerInfo}`` (per_server: or the exception); raises as :meth:`version`.
        """
        results: Dict[str, Any] = {}
        for address, answer in self._fanout([_VERSION, _GETPID, _VERBOSE]).items():
            if not isinstance(answer, BaseException):
                bad = [a for a in answer if isinstance(a, BaseException)]
                answer = bad[0] if bad else ServerInfo(address, *answer)
            results[address] = answer
        if not per_server:
            _raise_first(results)
        return results

    def snapshot(self) -> PerServer[Snapshot]:
        """``info``, ``status`` and ``workers`` of each server in one round trip.

        Returns ``{address: Snapshot or exception}`` (always the per-server
        form: a dashboard shows the servers that answered and says which did not).
        """
        results: Dict[str, Any] = {}
        cmds = [_VERSION, _GETPID, _VERBOSE, _STATUS, _WORKERS]
        for address, answer in self._fanout(cmds).items():
            if not isinstance(answer, BaseException):
                bad = [a for a in answer if isinstance(a, BaseException)]
                answer = bad[0] if bad else Snapshot(ServerInfo(address, *answer[:3]),
                                                     answer[3], answer[4])
            results[address] = answer
        return results

    # -- changes ---------------------------------------------------------------------------

    def _simple(self, line: str, per_server: bool, conns: Optional[List[_Conn]] = None) -> Any:
        results = self._each(_Cmd(line, _LINE, _ok_true), conns)
        if per_server:
            return results
        _raise_first(results)
        return None

    @overload
    def cancel_job(self, handle: Union[str, bytes], server: Optional[str] = ...,
                   per_server: Literal[False] = ...) -> str: ...
    @overload
    def cancel_job(self, handle: Union[str, bytes], server: Optional[str] = ...,
                   *, per_server: Literal[True]) -> PerServer[bool]: ...

    def cancel_job(self, handle: Union[str, bytes], server: Optional[str] = None,
                   per_server: bool = False) -> Any:
        """Cancel a job (``cancel job HANDLE``).

        gearmand tells waiting clients the job failed and drops it when a worker
        would take it; a job already running is not stopped (docs/protocol.md §3.11).

        Handles are only unique per server, so the merged form first looks the
        handle up (``show jobs``) and cancels it on the one server that holds it.

        Args:
            handle: the job handle.
            server: cancel on this server only (``host:port`` of the pool).
            per_server: send ``cancel job`` to every server (or ``server``) and
                return ``{address: True (cancelled) / False (unknown there) / exception}``.
        Returns:
            merged: the address of the server where the job was cancelled.
        Raises:
            ServerError (``server_code`` ``UNKNOWN_JOB``): no server holds it;
            InvalidArgumentError: several servers hold a job with this handle
            (pass ``server``), or ``server`` is not in the pool;
            ServerUnavailable etc.: a server that might hold it failed.
        """
        text = command_word(handle, "job handle")
        conns = self._conns_for(server)
        cmd = _Cmd(f"cancel job {text}", _LINE, _ok_true)
        if per_server:
            out: Dict[str, Any] = {}
            for address, value in self._each(cmd, conns).items():
                if isinstance(value, ServerError) and value.server_code == "UNKNOWN_JOB":
                    value = False
                out[address] = value
            return out
        if len(conns) > 1:
            listings = self._each(_JOBS, conns)
            holders = [c for c in conns if not isinstance(listings[c.address], BaseException)
                       and any(j.handle == text for j in listings[c.address])]
            if len(holders) > 1:
                raise InvalidArgumentError(
                    f"job handle {text!r} exists on several servers "
                    f"({', '.join(c.address for c in holders)}); name the server")
            if not holders:
                _raise_first(listings)
                raise ServerError(f"no server knows job {text!r}: UNKNOWN_JOB",
                                  server_code="UNKNOWN_JOB", results=listings)
            conns = holders
        results = self._each(cmd, conns)
        _raise_first(results)
        return conns[0].address

    @overload
    def create_function(self, name: Union[str, bytes], per_server: Literal[False] = ...) -> None: ...
    @overload
    def create_function(self, name: Union[str, bytes], per_server: Literal[True]) -> PerServer[bool]: ...

    def create_function(self, name: Union[str, bytes], per_server: bool = False) -> Any:
        """Create an empty function on every server (``create function NAME``; shows in ``status``).

        Returns None (per_server: ``{address: True or exception}``); merged,
        raises the first failure.
        """
        return self._simple(f"create function {command_word(name, 'function name')}", per_server)

    @overload
    def drop_function(self, name: Union[str, bytes], per_server: Literal[False] = ...) -> List[str]: ...
    @overload
    def drop_function(self, name: Union[str, bytes], per_server: Literal[True]) -> PerServer[bool]: ...

    def drop_function(self, name: Union[str, bytes], per_server: bool = False) -> Any:
        """Remove a function from every server that has it (``drop function NAME``).

        gearmand refuses while workers are registered for it or jobs run, and
        matches the name case-insensitively; jobs still queued for it are
        orphaned (they stay in ``show jobs``).

        Returns:
            merged: the addresses where it was dropped; per_server:
            ``{address: True (dropped) / False (not there) / exception}``.
        Raises (merged): ServerError if no server had it, or the first other
        failure (e.g. ServerError "there are still connected workers ...").
        """
        text = command_word(name, "function name")
        out: Dict[str, Any] = {}
        for address, value in self._each(_Cmd(f"drop function {text}", _LINE, _ok_true)).items():
            if isinstance(value, ServerError) and "not found" in getattr(value, "text", ""):
                value = False
            out[address] = value
        if per_server:
            return out
        _raise_first(out)
        dropped = [a for a, v in out.items() if v is True]
        if not dropped:
            raise ServerError(f"function {text!r} not found on any server",
                              server_code="", results=out)
        return dropped

    @overload
    def maxqueue(self, function: Union[str, bytes], high: Optional[int] = ...,
                 normal: Optional[int] = ..., low: Optional[int] = ...,
                 per_server: Literal[False] = ...) -> None: ...
    @overload
    def maxqueue(self, function: Union[str, bytes], high: Optional[int] = ...,
                 normal: Optional[int] = ..., low: Optional[int] = ...,
                 *, per_server: Literal[True]) -> PerServer[bool]: ...

    def maxqueue(self, function: Union[str, bytes], high: Optional[int] = None,
                 normal: Optional[int] = None, low: Optional[int] = None,
                 per_server: bool = False) -> Any:
        """Limit a function's queue per priority on every server (``maxqueue``).

        A limit of None or <= 0 means unlimited; ``maxqueue(fn)`` removes every
        limit.  gearmand then refuses new jobs (QueueFullError at the client)
        while the function's queued + running jobs reach the limit of the new
        job's priority.  The limit applies to each server separately.

        gearmand answers OK to ``maxqueue`` for a function it does not know yet
        and then forgets the limit, so when a limit is set the function is
        first created (``create function``, which keeps an existing
        function's jobs and limits) in the same round trip.

        Returns None (per_server: ``{address: True or exception}``).
        """
        text = command_word(function, "function name")
        h, n, lo = _limit(high, "high"), _limit(normal, "normal"), _limit(low, "low")
        cmds = [_Cmd(f"maxqueue {text} {h} {n} {lo}", _LINE, _ok_true)]
        if h or n or lo:
            cmds.insert(0, _Cmd(f"create function {text}", _LINE, _ok_true))
        results: Dict[str, Any] = {}
        for address, answer in self._fanout(cmds).items():
            if not isinstance(answer, BaseException):
                bad = [a for a in answer if isinstance(a, BaseException)]
                answer = bad[0] if bad else True
            results[address] = answer
        if per_server:
            return results
        _raise_first(results)
        return None

    # -- raw ----------------------------------------------------------------------------

    def command(self, line: str, listing: bool = False) -> Dict[str, Any]:
        """Send one raw admin command to every server; ``{address: lines or exception}``.

        ``listing``: the answer is a listing ended by ``.`` (returned as a
        list of lines); else one line (returned as a one-element list).  An
        ``ERR`` answer is a ServerError in the result.
        """
        if not isinstance(line, str) or not line.strip() or "\n" in line or "\r" in line:
            raise InvalidArgumentError("one admin command, without line breaks")
        cmd = _Cmd(line.strip(), _LISTING if listing else _LINE,
                   (lambda lines, server: lines) if listing else (lambda text, server: [text]))
        return self._each(cmd)

    # -- lifetime ---------------------------------------------------------------------------

    def close(self) -> None:
        """Close every connection (the next call opens new ones)."""
        for c in self._conns:
            with c.lock:
                c.close()
        with self._pool_lock:
            pool, self._pool = self._pool, None
        if pool is not None and self._pool_pid == os.getpid():
            pool.shutdown(wait=False)

    def __enter__(self) -> "Admin":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<gearman.admin.Admin servers={self.servers}>"
