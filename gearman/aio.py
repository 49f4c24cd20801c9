"""asyncio client and worker on the same Cython core as the blocking API.

The event loop watches the engine's own non-blocking sockets (``add_reader`` /
``add_writer``) and calls ``engine.pump()`` when one is ready: routing, reply
matching, failover and TLS are the blocking client's, byte for byte, with no
thread hop per job.  Works on the default loop and on uvloop.

    async with AsyncGearmanClient("127.0.0.1:4730") as client:
        handle = await client.do_background("resize", b"...")
        result = await client.do_normal("reverse", b"abc", timeout=5)

Cancelling an ``await`` (or its timeout) abandons that job cleanly: the
connection stays consistent and a late answer is dropped.
"""
from __future__ import annotations

import asyncio
import contextvars
import inspect
import logging
import sys
import time
from collections import deque
from typing import (Any, AsyncIterator, Callable, Deque, Dict, List, Optional, Sequence,
                    Set, Tuple, Union, cast)

from gearman import _config, _core, events
from gearman import constants as C
from gearman._pecl_client import BACKGROUND, FOREGROUND, GearmanTask, task_outcome
from gearman.errors import GearmanError, GearmanTimeoutError, InvalidArgumentError, InvalidTypeError
from gearman._pecl_worker import MAX_PREFETCH, GearmanJob

__all__ = ["AsyncGearmanClient", "AsyncGearmanWorker", "AsyncGearmanTimeoutError"]

log = logging.getLogger("gearman.aio")
Payload = Union[bytes, bytearray, memoryview, str]
_EV = _core.EVENT_INDEX
#: asyncio tasks take a ``context`` (Python 3.11+): a plain function's job can
#: then run inline even with event listeners (see AsyncGearmanWorker._run_plain)
_TASK_CONTEXT = sys.version_info >= (3, 11)


def _unwatch(loop: asyncio.AbstractEventLoop, fd: int) -> None:
    """Stop watching fd.  The engine may have closed it since the last sync (a
    failed or demoted server, output that stalled): the selector forgets a
    closed descriptor, and removing it is then not an error."""
    for remove in (loop.remove_reader, loop.remove_writer):
        try:
            remove(fd)
        except (OSError, ValueError):
            pass


class _LoopDriver:
    """Keeps an event loop watching exactly the sockets an engine needs."""

    def __init__(self, engine: Any, on_io: Callable[[], None]) -> None:
        self.engine = engine
        self.on_io = on_io
        self.loop: Optional[asyncio.AbstractEventLoop] = None
        self.watched: Dict[int, Tuple[int, int]] = {}
        self.timer: Optional[asyncio.TimerHandle] = None

    def attach(self) -> asyncio.AbstractEventLoop:
        loop = asyncio.get_running_loop()
        if self.loop is not None and self.loop is not loop:
            self.detach()
        self.loop = loop
        return loop

    def sync(self) -> None:
        """Re-register readers/writers after the engine's connections changed."""
        loop = self.loop
        if loop is None or loop.is_closed():
            return
        want = {fd: (ev, gen) for fd, ev, gen in self.engine.watch_list()}
        for fd, old in list(self.watched.items()):
            if want.get(fd) != old:
                _unwatch(loop, fd)
                del self.watched[fd]
        for fd, (ev, gen) in want.items():
            if fd in self.watched:
                continue
            if ev & _core.POLL_IN:
                loop.add_reader(fd, self.on_io)
            if ev & _core.POLL_OUT:
                loop.add_writer(fd, self.on_io)
            self.watched[fd] = (ev, gen)
        deadline = self.engine.next_deadline()
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        if deadline >= 0:
            delay = max(0.0, deadline - time.monotonic()) + 0.001
            self.timer = loop.call_later(delay, self.on_io)

    def detach(self) -> None:
        loop = self.loop
        if loop is not None and not loop.is_closed():
            for fd in self.watched:
                _unwatch(loop, fd)
        self.watched.clear()
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        self.loop = None


class AsyncGearmanClient:
    """An asyncio Gearman client (the blocking client's engine, driven by the loop).

    ``AsyncGearmanClient("h1:4730,h2")`` (or any server list docs/design.md
    names: ``["h1:4730", ("h2", 4731)]``...) or ``add_server(host, port)``; with
    no server, the servers ``$GEARMAN_SERVERS`` names, else the first call
    raises NoServersError.  ``timeout`` (seconds) is the
    default limit of each call.
    """

    def __init__(self, servers: Any = None, *, timeout: Optional[float] = None,
                 connect_timeout: float = 5.0, max_packet_size: int = _config.MAX_PACKET_SIZE,
                 ssl_context: Any = None, generate_unique: bool = True,
                 keepalive: Optional[Tuple[int, int, int]] = _config.KEEPALIVE,
                 tcp_user_timeout: Optional[float] = None) -> None:
        engine = _config.Transport(connect_timeout, max_packet_size, ssl_context, keepalive,
                                   tcp_user_timeout).apply(_core.ClientEngine())
        engine.task_type = GearmanTask
        engine.generate_unique = generate_unique
        engine.exceptions = True
        engine.finished_log = []
        self._engine = engine
        self._timeout = timeout
        self._futures: Dict[Any, "asyncio.Future[Any]"] = {}
        self._batches: Dict[Any, "asyncio.Future[Any]"] = {}
        self.last_batch_errors: Dict[int, BaseException] = {}
        self._kick_pending = False
        self._driver = _LoopDriver(engine, self._io)
        events.attach(self)         # event listeners: _events, held by the engine
        self.add_servers(servers)

    @property
    def _events(self) -> Any:
        """gearman.events: the Emitter this client's requests go to, or None."""
        return self._engine._events

    @_events.setter
    def _events(self, value: Any) -> None:
        self._engine._events = value

    # -- servers -------------------------------------------------------------------------
    def add_server(self, host: str = "localhost", port: int = 4730) -> None:
        """Add a job server (no I/O)."""
        _config.add_to_engine(self._engine, [_config.parse_server((host, port))])

    def add_servers(self, servers: Any) -> None:
        """Add servers from ``"h1:4730,h2,[::1]:4731"`` or any server list
        docs/design.md names (None: none)."""
        _config.add_to_engine(self._engine, _config.parse_servers(servers))

    @property
    def servers(self) -> List[str]:
        return [c.key for c in self._engine.servers]

    # -- the loop side ---------------------------------------------------------------------
    def _io(self) -> None:
        try:
            self._engine.pump()
        finally:
            for task in self._engine.take_finished():
                fut = self._futures.pop(task, None)
                if fut is not None and not fut.done():
                    fut.set_result(task)
            for batch, fut in self._batches.items():
                if batch.done >= batch.n and not fut.done():
                    fut.set_result(None)
            self._driver.sync()

    def _kick(self, loop: asyncio.AbstractEventLoop) -> None:
        # Many coroutines submitting in one loop iteration share one pump: their
        # packets leave together, pipelined, with one send per connection.
        if not self._kick_pending:
            self._kick_pending = True
            loop.call_soon(self._kicked)

    def _kicked(self) -> None:
        self._kick_pending = False
        self._io()

    async def _wait(self, tasks: Sequence[Any], timeout: Optional[float]) -> None:
        loop = self._driver.attach()
        started = _core.monotonic()
        futs = []
        for t in tasks:
            if t.finished:
                continue
            fut = loop.create_future()
            self._futures[t] = fut
            futs.append(fut)
        self._kick(loop)
        if timeout is None:
            timeout = self._timeout
        try:
            if len(futs) == 1:
                if timeout is None:
                    await futs[0]
                else:
                    # one timer per call (cheaper than wait_for's extra task and waiter)
                    timer = loop.call_later(timeout, _expire, futs[0])
                    try:
                        await futs[0]
                    finally:
                        timer.cancel()
            elif futs:
                await asyncio.wait_for(asyncio.gather(*futs), timeout)
        except asyncio.TimeoutError:
            for t in tasks:
                self._futures.pop(t, None)
            # the blocking client's timeout policy (silent servers demoted, the
            # tasks abandoned): the engine's
            timed_out = self._engine.timed_out(list(tasks), started,
                                               -1.0 if timeout is None else timeout,
                                               AsyncGearmanTimeoutError)
            self._kick(loop)        # other calls' requests may have ended with it
            raise _as_async_timeout(timed_out) from None
        except BaseException as exc:
            for t in tasks:
                self._futures.pop(t, None)
                self._engine.abandon(t, exc)
            raise

    def _ensure_servers(self) -> None:
        if not self._engine.servers:
            _config.add_to_engine(self._engine, _config.env_servers())
        if not self._engine.servers:
            # here, not in the engine: job_status and ping ask each server, and with
            # none they would end in a StopIteration (or "True") instead
            raise _config.no_servers_error()

    # -- the do-family -----------------------------------------------------------------------
    async def _do(self, cmd: int, function: Any, workload: Any, unique: Any,
                  timeout: Optional[float], callbacks: Optional[Dict[str, Callable[..., Any]]] = None) -> Any:
        self._ensure_servers()
        task = self._engine.new_submit(cmd, function, workload, unique)
        if callbacks:
            table: List[Any] = [None] * len(_core.EVENTS)
            for name, cb in callbacks.items():
                if cb is not None:
                    table[_EV[name]] = cb
            task.callbacks = table
        self._engine.submit(task)
        await self._wait([task], timeout)
        return task_outcome(task)

    async def do_normal(self, function: Union[str, bytes], workload: Payload,
                        unique: Optional[Union[str, bytes]] = None, *,
                        timeout: Optional[float] = None,
                        on_data: Optional[Callable[[bytes], Any]] = None,
                        on_status: Optional[Callable[[int, int], Any]] = None,
                        on_warning: Optional[Callable[[bytes], Any]] = None) -> bytes:
        """Run a job and return its result (WORK_DATA payloads + WORK_COMPLETE payload).

        ``on_data`` / ``on_warning`` / ``on_status`` are called (plain functions)
        for each intermediate packet.  Raises as GearmanClient.doNormal, plus
        asyncio.TimeoutError on ``timeout`` (the job is abandoned).
        """
        return cast(bytes, await self._do(FOREGROUND["normal"], function, workload, unique,
                                          timeout, _stream_callbacks(on_data, on_status,
                                                                     on_warning)))

    async def do_high(self, function: Union[str, bytes], workload: Payload,
                      unique: Optional[Union[str, bytes]] = None, *,
                      timeout: Optional[float] = None) -> bytes:
        """As :meth:`do_normal`, at high priority."""
        return cast(bytes, await self._do(FOREGROUND["high"], function, workload, unique, timeout))

    async def do_low(self, function: Union[str, bytes], workload: Payload,
                     unique: Optional[Union[str, bytes]] = None, *,
                     timeout: Optional[float] = None) -> bytes:
        """As :meth:`do_normal`, at low priority."""
        return cast(bytes, await self._do(FOREGROUND["low"], function, workload, unique, timeout))

    async def do_background(self, function: Union[str, bytes], workload: Payload,
                            unique: Optional[Union[str, bytes]] = None, *,
                            timeout: Optional[float] = None) -> str:
        """Queue a background job; return its handle once the server accepted it."""
        return cast(str, await self._do(BACKGROUND["normal"], function, workload, unique, timeout))

    async def do_high_background(self, function: Union[str, bytes], workload: Payload,
                                 unique: Optional[Union[str, bytes]] = None, *,
                                 timeout: Optional[float] = None) -> str:
        return cast(str, await self._do(BACKGROUND["high"], function, workload, unique, timeout))

    async def do_low_background(self, function: Union[str, bytes], workload: Payload,
                                unique: Optional[Union[str, bytes]] = None, *,
                                timeout: Optional[float] = None) -> str:
        return cast(str, await self._do(BACKGROUND["low"], function, workload, unique, timeout))

    async def stream(self, function: Union[str, bytes], workload: Payload,
                     unique: Optional[Union[str, bytes]] = None, *,
                     timeout: Optional[float] = None) -> AsyncIterator[Tuple[str, Any]]:
        """Run a foreground job and yield its events as they come:
        ``("data", bytes)``, ``("warning", bytes)``, ``("status", (num, den))``,
        then ``("complete", result)``.  A failure raises at the end."""
        queue: "asyncio.Queue[Any]" = asyncio.Queue()
        job = asyncio.ensure_future(self._do(
            FOREGROUND["normal"], function, workload, unique, timeout,
            _stream_callbacks(lambda d: queue.put_nowait(("data", d)),
                              lambda n, d: queue.put_nowait(("status", (n, d))),
                              lambda w: queue.put_nowait(("warning", w)))))
        job.add_done_callback(lambda f: queue.put_nowait(None))
        try:
            while True:
                item = await queue.get()
                if item is None:
                    break
                yield item
            yield ("complete", job.result())
        finally:
            if not job.done():
                job.cancel()

    async def submit_many(self, function: Union[str, bytes], workloads: Sequence[Any], *,
                          uniques: Optional[Sequence[Any]] = None, priority: str = "normal",
                          timeout: Optional[float] = None) -> List[Optional[str]]:
        """Pipelined background batch (the blocking client's submit_batch engine).

        Returns the handles in order; a job that was not accepted has None and
        its error in ``self.last_batch_errors``.
        """
        if priority not in BACKGROUND:
            raise InvalidArgumentError(f"priority must be one of {sorted(BACKGROUND)}")
        self._ensure_servers()
        loop = self._driver.attach()
        started = _core.monotonic()
        batch = self._engine.submit_batch(BACKGROUND[priority], function, workloads, uniques)
        done = loop.create_future()
        self._batches[batch] = done
        if timeout is None:
            timeout = self._timeout
        try:
            self._io()
            await asyncio.wait_for(done, timeout)
        except asyncio.TimeoutError:
            # as submit_batch: silent servers demoted, the handles and errors kept
            timed_out = self._engine.batch_timed_out(batch, None, started,
                                                     -1.0 if timeout is None else timeout,
                                                     AsyncGearmanTimeoutError)
            self.last_batch_errors = dict(timed_out.errors)
            self._kick(loop)
            raise _as_async_timeout(timed_out) from None
        except BaseException as exc:
            self._engine.abandon_batch(batch, exc)
            raise
        finally:
            self._batches.pop(batch, None)
        self.last_batch_errors = dict(batch.errors)
        return list(batch.handles)

    async def job_status(self, handle: Union[str, bytes], *,
                         timeout: Optional[float] = None) -> List[Any]:
        """``[known, running, numerator, denominator]`` (see GearmanClient.jobStatus)."""
        self._ensure_servers()
        engine = self._engine
        hs = handle.decode("utf-8", "surrogateescape") if isinstance(handle, bytes) else handle
        if not isinstance(hs, str):
            raise InvalidTypeError("job handle must be str or bytes")
        issuers = engine.servers_of(hs)       # several if two servers issued the same string
        targets = issuers or list(engine.servers)
        tasks = []
        for c in targets:
            t = engine.new_request(_core.KIND_STATUS, hs)
            engine.submit_to(c, t)
            tasks.append(t)
        await self._wait(tasks, timeout)
        answered = [t for t in tasks if t.exception is None]
        for t in answered:
            if t.isKnown():
                return [True, bool(t.isRunning()), t.taskNumerator(), t.taskDenominator()]
        if not answered or (len(issuers) > 1 and len(answered) < len(tasks)):
            # an issuer that could not answer: "unknown" would not mean finished
            raise cast(BaseException, next(t.exception for t in tasks if t.exception is not None))
        return [False, False, 0, 0]

    async def ping(self, data: Payload = b"", *, timeout: Optional[float] = None) -> bool:
        """ECHO every server; True if each echoed ``data``.  Raises on failure."""
        self._ensure_servers()
        tasks = []
        for c in list(self._engine.servers):
            t = self._engine.new_request(_core.KIND_ECHO, data)
            self._engine.submit_to(c, t)
            tasks.append(t)
        await self._wait(tasks, timeout)
        for t in tasks:
            if t.exception is not None:
                raise t.exception
            if t.result != t.workload():
                raise GearmanError("a server echoed different bytes",
                                   code=C.GEARMAN_ECHO_DATA_CORRUPTION)
        return True

    async def close(self) -> None:
        """Close every connection; jobs in flight end with LostConnectionError."""
        self._driver.detach()
        self._engine.close()
        for task in self._engine.take_finished():
            fut = self._futures.pop(task, None)
            if fut is not None and not fut.done():
                fut.set_result(task)

    async def __aenter__(self) -> "AsyncGearmanClient":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()


class AsyncGearmanTimeoutError(GearmanTimeoutError, asyncio.TimeoutError):
    """Raised when an asyncio call did not finish within its timeout (also an
    ``asyncio.TimeoutError`` on every Python, as ``wait_for`` raises)."""


def _as_async_timeout(err: GearmanTimeoutError) -> BaseException:
    """``err`` as an asyncio.TimeoutError too: a ServerSilentError is one from
    Python 3.11 (asyncio's is the builtin TimeoutError then); before, its
    fields go to an AsyncGearmanTimeoutError caused by it."""
    if isinstance(err, asyncio.TimeoutError):
        return err
    wrapped = AsyncGearmanTimeoutError(str(err), code=err.code, **{
        k: v for k, v in vars(err).items() if k not in ("message", "code")})
    wrapped.__cause__ = err
    return wrapped


def _expire(fut: "asyncio.Future[Any]") -> None:
    if not fut.done():
        fut.set_exception(asyncio.TimeoutError())


def _stream_callbacks(on_data: Optional[Callable[[bytes], Any]],
                      on_status: Optional[Callable[[int, int], Any]],
                      on_warning: Optional[Callable[[bytes], Any]]) -> Optional[Dict[str, Callable[..., Any]]]:
    if on_data is None and on_status is None and on_warning is None:
        return None
    table: Dict[str, Callable[..., Any]] = {}
    if on_data is not None:
        table["data"] = lambda task, ctx: (on_data(task.data()), None)[1]
    if on_warning is not None:
        table["warning"] = lambda task, ctx: (on_warning(task.data()), None)[1]
    if on_status is not None:
        table["status"] = lambda task, ctx: (on_status(task.taskNumerator(),
                                                        task.taskDenominator()), None)[1]
    return table


class _Slot:
    """What a job of an AsyncGearmanWorker sends through (``job._worker``): the
    worker's one engine, with one connection per server."""

    def __init__(self, owner: "AsyncGearmanWorker") -> None:
        engine = _core.WorkerEngine()
        engine.job_type = GearmanJob
        # results are queued and written as the socket takes them: a slow or
        # stalled server never blocks the event loop (see _flush_output)
        engine.blocking_send = False
        # a job's answer carries the GRAB that takes its place
        engine.eager_grab = True
        # N jobs at once: each connection keeps N jobs assigned (running,
        # queued here, or GRABs out)
        engine.prefetch = owner._concurrency
        owner._transport.apply(engine)
        _config.add_to_engine(engine, owner._servers)
        engine.functions = dict(owner._functions_ms)
        if owner._client_id is not None:
            engine.client_id = owner._client_id
        engine._events = owner._events     # event listeners (kept current by the owner)
        self._engine = engine       # GearmanJob sends through worker._engine
        self._exceptions = True
        self.ready = asyncio.Event()
        self.driver = _LoopDriver(engine, self.ready.set)


class AsyncGearmanWorker:
    """An asyncio worker: ``register(name, fn)`` then ``await run()``.

    ``fn(job)`` may be ``async def`` or plain; it gets a PECL GearmanJob
    (``job.workload()``, ``job.sendStatus()``...), and its return value is the
    result.  An ``async def`` function's job runs in a task of its own; a
    plain function's runs in the serving task (it cannot yield to another
    job anyway), and an awaitable it returns is awaited in a task.  Up to
    ``concurrency`` jobs run at once, on one connection per server that keeps
    ``concurrency`` jobs assigned (GRABs outstanding), so the next job is there
    as soon as one ends.  ``stop()`` (or cancelling ``run()``) drains: running
    jobs finish and their results go out, nothing new is taken, and jobs
    assigned but not started go back to the queue.
    """

    def __init__(self, servers: Any = None, *, concurrency: int = 1,
                 connect_timeout: float = 5.0, ssl_context: Any = None,
                 client_id: Optional[str] = None,
                 max_packet_size: int = _config.MAX_PACKET_SIZE,
                 keepalive: Optional[Tuple[int, int, int]] = _config.KEEPALIVE,
                 tcp_user_timeout: Optional[float] = None) -> None:
        if isinstance(concurrency, bool) or not isinstance(concurrency, int):
            raise InvalidTypeError("concurrency must be an int")
        if not 1 <= concurrency <= MAX_PREFETCH:
            raise InvalidArgumentError(f"concurrency must be between 1 and {MAX_PREFETCH}")
        self._servers: List[_config.Server] = _config.parse_servers(servers)
        self._concurrency = concurrency
        self._transport = _config.Transport(connect_timeout, max_packet_size, ssl_context,
                                            keepalive, tcp_user_timeout)
        self._transport.apply(_core.WorkerEngine())     # checked now, before any I/O
        self._client_id = client_id.encode() if client_id else None
        self._functions: Dict[bytes, Callable[..., Any]] = {}
        self._functions_ms: Dict[bytes, int] = {}
        # the functions that are not coroutine functions: run inline (see _serve)
        self._plain: Set[bytes] = set()
        self._stopping: Optional[asyncio.Event] = None
        self._slot: Optional[_Slot] = None
        self.jobs_done = 0
        self._emitter: Any = None
        events.attach(self)         # event listeners: _events, given to each run's engine

    @property
    def _events(self) -> Any:
        """gearman.events: the Emitter this worker's jobs go to, or None."""
        return self._emitter

    @_events.setter
    def _events(self, value: Any) -> None:
        self._emitter = value
        if self._slot is not None:
            self._slot._engine._events = value

    def add_server(self, host: str = "localhost", port: int = 4730) -> None:
        self._servers.append(_config.parse_server((host, port)))

    def register(self, name: Union[str, bytes], fn: Callable[..., Any], timeout: int = 0) -> None:
        """Serve ``name`` with ``fn(job)`` (async or plain); ``timeout`` in seconds."""
        if not callable(fn):
            raise InvalidTypeError("fn must be callable")
        key = _core.validate_function_name(name)
        self._functions[key] = fn
        self._functions_ms[key] = _config.seconds_to_ms(int(timeout))
        if inspect.iscoroutinefunction(fn):
            self._plain.discard(key)
        else:
            self._plain.add(key)

    def stop(self) -> None:
        """Drain and return from run(): running jobs finish, nothing new is taken."""
        if self._stopping is not None:
            self._stopping.set()
        if self._slot is not None:
            self._slot.ready.set()

    async def run(self, handle_signals: bool = False) -> int:
        """Serve until stop(), cancellation or (with ``handle_signals``) SIGTERM/SIGINT;
        each way drains: running jobs finish and are reported, jobs assigned and
        not started go back to the queue.  Returns the jobs run."""
        if not self._functions:
            raise InvalidArgumentError("no function is registered")
        if not self._servers:
            self._servers = _config.library_servers(None)
        self._stopping = asyncio.Event()
        installed = []
        if handle_signals:
            import signal
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGTERM, signal.SIGINT):
                try:
                    loop.add_signal_handler(sig, self.stop)
                    installed.append(sig)
                except (NotImplementedError, RuntimeError):
                    pass
        slot = self._slot = _Slot(self)
        # the tasks of the jobs running now (a job's task removes itself when it ends)
        running: Dict[GearmanJob, "asyncio.Task[None]"] = {}
        try:
            await self._serve(slot, running)
        finally:
            self._stopping.set()
            try:
                if running:
                    await asyncio.gather(*running.values(), return_exceptions=True)
                # the answers go out before the connections close (a close
                # drops unsent output: gearmand would run those jobs again)
                await self._flush_output(slot)
            finally:
                slot.driver.detach()            # before any socket closes
                slot._engine.cancel_grab()      # prefetched jobs back to the queue
                slot._engine.close()
                self._slot = None
                for sig in installed:
                    asyncio.get_running_loop().remove_signal_handler(sig)
        return self.jobs_done

    async def _serve(self, slot: _Slot, running: Dict[GearmanJob, "asyncio.Task[None]"]) -> None:
        """The one loop: take the jobs that arrived (up to ``concurrency``
        running), start them, and sleep until there is I/O or a job ended."""
        assert self._stopping is not None
        slot.driver.attach()
        engine = slot._engine
        queued: Deque[GearmanJob] = deque()
        limit = self._concurrency
        io_timeout = engine.io_timeout
        stopping = self._stopping
        plain = self._plain
        loop = asyncio.get_running_loop()
        while not stopping.is_set():
            # grab() reads what arrived, sends the GRABs each connection is
            # short of and writes pending output, without waiting; it hands
            # out at most `concurrency` jobs per connection
            while True:
                job = engine.grab(-1.0, False)
                if job is None:
                    break
                job._worker = slot
                queued.append(job)
            while queued and len(running) < limit and not stopping.is_set():
                job = queued.popleft()
                if job._function in plain and (engine._events is None or _TASK_CONTEXT):
                    # a plain function runs to its end without yielding, in a
                    # task or not: run it here, without a task per job
                    self._run_plain(slot, job, running)
                else:
                    running[job] = loop.create_task(self._run_job(slot, job, running))
            if stopping.is_set():
                break       # stop() from a job run inline: its wake-up was here
            # a server that takes no output for io_timeout is dropped (gearmand
            # re-queues the jobs it got no answer for); the others go on
            left = engine.drop_stalled_output(io_timeout)
            await self._wait_io(slot, left if left >= 0 else None)
        # stopping: the queued jobs were never started; cancel_grab() hands
        # them back with the connections' other prefetched jobs

    def _run_plain(self, slot: _Slot, job: GearmanJob,
                   running: Dict[GearmanJob, "asyncio.Task[None]"]) -> None:
        """Run a job of a plain (not ``async def``) function in the serving
        task.  With event listeners, in a context of its own: job_started and
        the job's end then share it even if the function returns an
        awaitable, which a task of that same context finishes."""
        if slot._engine._events is None:
            self._plain_job(slot, job, running, None)
        else:
            ctx = contextvars.copy_context()
            ctx.run(self._plain_job, slot, job, running, ctx)

    def _plain_job(self, slot: _Slot, job: GearmanJob, running: Dict[GearmanJob, "asyncio.Task[None]"],
                   ctx: Optional[contextvars.Context]) -> None:
        engine = slot._engine
        fn = self._functions.get(job._function)
        if engine._events is not None:
            engine.start_job(job)
        handed_off = False
        try:
            if fn is None:      # unregistered since the job was grabbed
                engine.settle(job, None, _core.NO_CALLBACK, slot._exceptions)
            else:
                try:
                    result = fn(job)
                except asyncio.CancelledError:
                    # raised by the function itself: that job fails, the worker goes on
                    if not job._finished:
                        job.sendFail()
                    return
                except Exception as exc:    # the worker goes on; the client is told
                    engine.settle(job, None, exc, slot._exceptions)
                else:
                    if (result is not None and type(result) is not bytes
                            and inspect.isawaitable(result)):
                        # a plain function that returned an awaitable: a task
                        # awaits it and answers the job
                        coro = self._run_job(slot, job, running, result)
                        loop = asyncio.get_running_loop()
                        if ctx is not None and sys.version_info >= (3, 11):
                            running[job] = loop.create_task(coro, context=ctx)
                        else:
                            running[job] = loop.create_task(coro)
                        handed_off = True
                        return
                    engine.settle(job, result, None, slot._exceptions)
        except GearmanError as exc:
            log.warning("could not report job %s: %s", job.handle(), exc)
        finally:
            if not handed_off:
                engine.end_job(job)     # a job that ended some other way (no-op once ended)
        self.jobs_done += 1

    @staticmethod
    async def _wait_io(slot: _Slot, timeout: Optional[float] = None) -> None:
        """Sleep until the slot's engine has I/O to do (or ``timeout`` passes)."""
        slot.ready.clear()
        slot.driver.sync()
        if timeout is None:
            await slot.ready.wait()
        else:
            try:
                await asyncio.wait_for(slot.ready.wait(), timeout)
            except asyncio.TimeoutError:
                pass

    async def _flush_output(self, slot: _Slot) -> None:
        """Wait, without blocking the loop, until the kernel took what the jobs
        sent; a server that takes nothing for ``io_timeout`` seconds is
        dropped (gearmand re-queues a job whose answer it never got)."""
        engine = slot._engine
        while engine.flush() > 0:
            left = engine.drop_stalled_output(engine.io_timeout)
            if left < 0:
                return
            await self._wait_io(slot, left)

    async def _run_job(self, slot: _Slot, job: GearmanJob, running: Dict[GearmanJob, "asyncio.Task[None]"],
                       started: Any = None) -> None:
        """Run a job's function in this task and answer the job, then leave
        ``running`` and wake the serving loop; ``started``: the awaitable a
        plain function returned (it was called, and the job started, by
        _plain_job in this task's context)."""
        engine = slot._engine
        fn = None if started is not None else self._functions.get(job._function)
        if started is None and engine._events is not None:
            # job_started here and the job's end (settle / end_job) in this same
            # task: a tracing listener's current span is this job's
            engine.start_job(job)
        try:
            if started is None and fn is None:
                engine.settle(job, None, _core.NO_CALLBACK, slot._exceptions)
            else:
                try:
                    result = fn(job) if fn is not None else started
                    if inspect.isawaitable(result):
                        result = await result
                except asyncio.CancelledError:
                    try:
                        if not job._finished:
                            job.sendFail()
                    finally:
                        engine.end_job(job)
                    raise
                except Exception as exc:    # the worker goes on; the client is told
                    engine.settle(job, None, exc, slot._exceptions)
                else:
                    # the one outcome routine: a result that cannot be sent (not
                    # bytes-like, not encodable) fails the job instead of leaving it
                    # assigned to this worker unanswered
                    engine.settle(job, result, None, slot._exceptions)
        except GearmanError as exc:
            log.warning("could not report job %s: %s", job.handle(), exc)
        finally:
            engine.end_job(job)         # a job that ended some other way (no-op once ended)
            running.pop(job, None)
            slot.ready.set()            # a slot is free: the serving loop starts the next job
        self.jobs_done += 1
