"""Every door onto the engine gets the blocking client's failure policy.

The blocking PECL client demotes a silent server and probes it (docs/reliability.md
§5a), its timeout covers waiting for the object's lock, and a batch timeout
carries the accepted handles. The same policy lives in the engine for the other
doors: the asyncio client (``engine.timed_out`` / ``batch_timed_out``), ping/echo,
jobStatusByUniqueKey and wait(), single-server clients and workers (the demotion
ends whenever the server answers again), TLS connections (the idle check before
reuse), and malformed answers (a STATUS_RES with missing fields). Each test ran
against real gearmand (SIGSTOP for a silent server) and failed before its fix.

Time bounds are multiples of the configured timeout: hang checks, not speed checks.
Tests that need a network namespace are in test_doors_netns.py.
"""
import asyncio
import importlib.util
import pathlib
import select
import socket
import threading
import time

import pytest

import gearman
from gearman import constants as C
from gearman import errors, events
from gearman.aio import AsyncGearmanClient
from gearman.testing import hold_lock, wait_until

HERE = pathlib.Path(__file__).resolve().parent


def _load(name):
    """A helper module of the suite, loaded by path (the suite runs with
    ``--import-mode=importlib``): its classes, not its tests."""
    spec = importlib.util.spec_from_file_location(f"cygearman_doors_{name}", HERE / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


class Gauge(events.Listener):
    """What gearman.metrics' ``gearman_server_demoted`` gauge shows: 1 from a
    server_demoted, 0 from a server_restored."""

    def __init__(self):
        self.value = {}
        self.lock = threading.Lock()

    def server_demoted(self, server, reason, backoff):
        with self.lock:
            self.value[server] = 1

    def server_restored(self, server):
        with self.lock:
            self.value[server] = 0


@pytest.fixture(params=["asyncio", "uvloop"])
def run(request):
    """Run a coroutine on the default event loop or on uvloop (the driver
    watches sockets the engine closes when it demotes a server)."""
    if request.param == "uvloop":
        import uvloop      # a test dependency: installed by scripts/setup.sh
        policy = uvloop.EventLoopPolicy()
    else:
        policy = asyncio.DefaultEventLoopPolicy()

    def runner(coro, timeout=120):
        loop = policy.new_event_loop()
        try:
            return loop.run_until_complete(asyncio.wait_for(coro, timeout))
        finally:
            loop.close()

    return runner


@pytest.fixture
def pool(gearmand_factory):
    """Two fresh gearmand; the second is the one the tests stop."""
    a, b = gearmand_factory(), gearmand_factory()
    yield a, b
    b.resume()


def client_on(*servers, timeout_ms=1000, **kw):
    c = gearman.GearmanClient(**kw)
    for s in servers:
        c.addServer("127.0.0.1", s.port)
    c.setTimeout(timeout_ms)
    return c


def conn_of(engine, server):
    return next(c for c in engine.servers if c.port == server.port)


def sock_of(engine):
    """A duplicate of the engine's first open connection's socket (getsockopt
    on it sees the same socket)."""
    fds = [fd for fd, _ev, _gen in engine.watch_list()]
    assert fds, "no open connection"
    return socket.fromfd(fds[0], socket.AF_INET, socket.SOCK_STREAM)


# -- 1. the asyncio client demotes and probes as the blocking client does ----------------

def test_asyncio_client_demotes_a_silent_server_and_probes_it(run, pool, fn):
    """Pool [silent, healthy], timeout T: of 20 sequential do_background calls
    at most one times out (the one that found the server silent), the whole run
    takes about one T, the server is demoted, its probe brings it back after
    SIGCONT, and what the abandoned requests left does not all reach it late."""
    a, b = pool
    T = 1.0

    async def main():
        c = AsyncGearmanClient(timeout=T)
        c.add_server("127.0.0.1", b.port)
        c.add_server("127.0.0.1", a.port)
        for i in range(4):                          # both connections up (round robin)
            await c.do_background(fn, b"warm-%d" % i)
        warm_b = b.queued(fn)
        b.pause()
        failed = []
        t0 = time.monotonic()
        for i in range(20):
            try:
                assert (await c.do_background(fn, b"x-%d" % i)).startswith("H:")
            except errors.GearmanTimeoutError as e:
                failed.append(e)
        took = time.monotonic() - t0
        silent = conn_of(c._engine, b)
        demoted = silent.demoted
        b.resume()
        # routing starts its probe once the backoff is over; the loop reads the answer
        restored = False
        deadline = time.monotonic() + 20 * T
        while time.monotonic() < deadline:
            await c.do_background(fn + "-after", b"y")
            if not silent.demoted:
                restored = True
                break
            await asyncio.sleep(0.05)
        await c.close()
        return warm_b, failed, took, demoted, restored

    warm_b, failed, took, demoted, restored = run(main())
    assert len(failed) <= 1, failed                 # before: 10 of 20, one per call landing there
    assert all(isinstance(e, errors.ServerSilentError) for e in failed), failed
    assert all(isinstance(e, asyncio.TimeoutError) for e in failed), failed
    assert took < 3 * T, took                       # before: 10 T
    assert demoted
    assert restored
    # the timed-out request's bytes may have reached the kernel (submitted None);
    # nothing else queued for the stopped server arrives when it wakes up
    late = b.queued(fn) - warm_b
    assert late <= sum(1 for e in failed if e.submitted is None), (late, failed)


def test_asyncio_ping_and_job_status_demote_a_silent_server(run, pool, fn):
    """The other asyncio calls that wait (ping, job_status) time out through the
    same engine routine: the silent server is demoted, the error says so."""
    a, b = pool
    T = 0.5

    async def main():
        c = AsyncGearmanClient(timeout=T)
        c.add_server("127.0.0.1", b.port)
        handle = await c.do_background(fn, b"warm")
        b.pause()
        out = []
        with pytest.raises(errors.GearmanTimeoutError) as ei:
            await c.job_status(handle)
        out.append((ei.value, conn_of(c._engine, b).demoted))
        await c.close()
        c = AsyncGearmanClient(timeout=T)
        c.add_server("127.0.0.1", a.port)
        c.add_server("127.0.0.1", b.port)
        with pytest.raises(errors.GearmanTimeoutError) as ei:
            await c.ping(b"x")
        out.append((ei.value, conn_of(c._engine, b).demoted))
        await c.close()
        return out

    for err, demoted in run(main()):
        assert isinstance(err, asyncio.TimeoutError)
        assert demoted, err


# -- 2. the asyncio batch timeout is the blocking one ------------------------------------

def test_asyncio_submit_many_timeout_carries_the_handles(run, pool, fn):
    """submit_many's timeout is a GearmanTimeoutError (and an asyncio one) with
    ``handles`` (what the healthy server accepted) and ``errors`` (why the others
    were not: ServerSilentError), also kept in last_batch_errors, as submit_batch."""
    a, b = pool
    T = 1.0

    async def main():
        c = AsyncGearmanClient(timeout=T)
        c.add_server("127.0.0.1", a.port)
        c.add_server("127.0.0.1", b.port)
        b.pause()
        with pytest.raises(asyncio.TimeoutError) as ei:
            await c.submit_many(fn, [b"b%d" % i for i in range(200)])
        demoted = conn_of(c._engine, b).demoted
        # the next batch goes to the healthy server alone
        again = await c.submit_many(fn, [b"c%d" % i for i in range(50)])
        outstanding = c._engine.outstanding
        last = c.last_batch_errors
        await c.close()
        return ei.value, demoted, again, outstanding, last

    err, demoted, again, outstanding, last = run(main())
    assert isinstance(err, errors.GearmanTimeoutError), type(err)
    assert err.handles is not None and len(err.handles) == 200
    assert sum(h is not None for h in err.handles) == 100       # round robin: a's half
    missing = [i for i, h in enumerate(err.handles) if h is None]
    assert sorted(err.errors) == missing
    assert all(isinstance(err.errors[i], errors.ServerSilentError) for i in missing)
    assert demoted
    assert all(again) and last == {}
    assert outstanding == 0
    assert a.queued(fn) == 100 + 50


def test_asyncio_submit_many_timeout_updates_last_batch_errors(run, pool, fn):
    _a, b = pool

    async def main():
        c = AsyncGearmanClient(timeout=0.5)
        c.add_server("127.0.0.1", b.port)
        b.pause()
        with pytest.raises(errors.GearmanTimeoutError) as ei:
            await c.submit_many(fn, [b"x"] * 10)
        last = c.last_batch_errors
        await c.close()
        return ei.value, last

    err, last = run(main())
    assert last == err.errors and len(last) == 10
    assert err.handles == [None] * 10


def test_an_asyncio_timeout_is_an_asyncio_timeout_error_with_the_engine_s_fields():
    """What the engine returns for a silent server (ServerSilentError) reaches an
    asyncio caller as an asyncio.TimeoutError on every Python (before 3.11
    asyncio's is not the builtin one): the same fields, the same message."""
    from gearman import aio
    err = errors.ServerSilentError("s:1 answered nothing", code=C.GEARMAN_TIMEOUT,
                                   server="s:1", submitted=False)
    err.handles, err.errors = [None], {0: err}
    out = aio._as_async_timeout(err)
    assert isinstance(out, asyncio.TimeoutError) and isinstance(out, errors.GearmanTimeoutError)
    assert (str(out), out.code, out.server, out.submitted) == (str(err), C.GEARMAN_TIMEOUT,
                                                                "s:1", False)
    assert out.handles == [None] and out.errors == {0: err}


# -- 4. every door's timeout covers waiting for the object's lock ------------------------

def _door(c, door):
    if door == "ping":
        return c.ping(b"x")
    if door == "echo":
        return c.echo(b"x")
    if door == "jobStatusByUniqueKey":
        return c.jobStatusByUniqueKey("some-unique")
    return c.wait()


@pytest.mark.parametrize("door", ["ping", "echo", "jobStatusByUniqueKey", "wait"])
def test_the_timeout_covers_waiting_for_the_lock(gearmand, door):
    """setTimeout(T) while another thread's call holds the client for 6 T: the
    call ends after about T, having sent nothing (before: after 6 T)."""
    T = 0.5
    c = client_on(gearmand, timeout_ms=int(T * 1000))
    c.ping(b"warm")
    th = hold_lock(c, 6 * T)
    t0 = time.monotonic()
    if door == "wait":
        assert c.wait() is False
    else:
        with pytest.raises(errors.GearmanTimeoutError) as ei:
            _door(c, door)
        assert ei.value.submitted is False
    took = time.monotonic() - t0
    th.join(30)
    assert took < 3 * T, took
    assert c.returnCode() == C.GEARMAN_TIMEOUT
    _door(c, door)                  # usable afterwards
    c.close()


@pytest.mark.parametrize("door", ["ping", "jobStatusByUniqueKey"])
def test_the_lock_wait_counts_against_the_timeout(pool, door):
    """The server is silent and another thread's call holds the client for 0.6 T:
    the call ends at about T from its start, not 0.6 T + T."""
    _a, b = pool
    T = 2.0
    c = client_on(b, timeout_ms=int(T * 1000))
    c.ping(b"warm")
    b.pause()
    th = hold_lock(c, 0.6 * T)
    t0 = time.monotonic()
    with pytest.raises(errors.GearmanTimeoutError):
        _door(c, door)
    took = time.monotonic() - t0
    th.join(30)
    assert took < 1.35 * T, took                    # before: 1.6 T
    c.close()


# -- 7. the demoted gauge returns to 0 whenever the server answers again ------------------

def test_a_single_server_client_is_restored_when_its_server_answers(pool, fn):
    """A client whose only server was found silent routes to it anyway; once it
    answers again it is no longer demoted and the gauge is back at 0."""
    _a, b = pool
    c = client_on(b)
    gauge = Gauge()
    events.add_listener(gauge, source=c)
    c.doBackground(fn, b"warm")
    b.pause()
    with pytest.raises(errors.ServerSilentError):
        c.doBackground(fn, b"x")
    key = f"127.0.0.1:{b.port}"
    assert gauge.value[key] == 1 and c._engine.servers[0].demoted
    b.resume()
    assert wait_until(lambda: (c.doBackground(fn, b"y"), gauge.value[key] == 0)[1],
                      timeout=20)
    assert not c._engine.servers[0].demoted
    c.close()


def test_an_asyncio_single_server_client_is_restored_too(run, pool, fn):
    _a, b = pool
    gauge = Gauge()

    async def main():
        c = AsyncGearmanClient(timeout=1.0)
        c.add_server("127.0.0.1", b.port)
        events.add_listener(gauge, source=c)
        await c.do_background(fn, b"warm")
        b.pause()
        with pytest.raises(errors.ServerSilentError):
            await c.do_background(fn, b"x")
        was = gauge.value.get(f"127.0.0.1:{b.port}")
        b.resume()
        handle = await c.do_background(fn, b"y")
        demoted = c._engine.servers[0].demoted
        await c.close()
        return was, handle, demoted

    was, handle, demoted = run(main())
    assert was == 1
    assert handle.startswith("H:")
    assert not demoted and gauge.value[f"127.0.0.1:{b.port}"] == 0


def test_a_worker_restores_a_server_demoted_by_a_connect_timeout(gearmand_factory, fn):
    """A worker demotes a server whose connect times out (here: gearmand stopped
    with its accept queue full, so SYNs are dropped); when it answers again the
    gauge returns to 0, and the worker serves its jobs."""
    g = gearmand_factory(extra_args=["--backlog=1"])
    CT = 0.5
    g.pause()
    fillers = []
    try:
        for _ in range(8):              # until the accept queue takes no more
            try:
                fillers.append(socket.create_connection(("127.0.0.1", g.port), timeout=CT))
            except OSError:
                break
        else:
            pytest.fail("the stopped gearmand kept accepting connections")
        w = gearman.GearmanWorker(connect_timeout=CT)
        w.addServer("127.0.0.1", g.port)
        w.addFunction(fn, lambda job, ctx: b"done:" + job.workload())
        w.setTimeout(int(2 * CT * 1000))
        gauge = Gauge()
        events.add_listener(gauge, source=w)
        key = f"127.0.0.1:{g.port}"
        assert w.work() is False
        assert gauge.value.get(key) == 1 and w._engine.servers[0].demoted
    finally:
        for s in fillers:
            s.close()
        g.resume()
    assert wait_until(lambda: (w.work(), gauge.value[key] == 0)[1], timeout=20 * CT)
    assert not w._engine.servers[0].demoted
    c = client_on(g, timeout_ms=10000)
    results = []
    th = threading.Thread(target=lambda: results.append(c.doNormal(fn, b"j")), daemon=True)
    th.start()
    assert wait_until(lambda: (w.work(), bool(results))[1], timeout=20)
    th.join(10)
    assert results == [b"done:j"]
    c.close()
    w.close()


# -- 8. TLS: a server restart between two calls costs nothing ------------------------------

@pytest.fixture(scope="module")
def tls_mod():
    return _load("test_tls")


@pytest.fixture(scope="module")
def certs(tls_mod, tmp_path_factory):
    return tls_mod.Certs(tmp_path_factory.mktemp("doors-tls"))


def _readable(sock):
    return bool(select.select([sock], [], [], 0)[0])


def test_a_tls_server_restart_between_two_calls_costs_nothing(gearmand_factory, tls_mod,
                                                              certs, fn):
    """gearmand behind a TLS front restarts between two calls: the front ends
    the client's TLS session (close_notify); the next call notices it before reuse and goes to
    a fresh connection (before: it was written to the dead one and ended
    "outcome unknown")."""
    g = gearmand_factory()
    front = tls_mod.TlsFront(certs, g.port)
    try:
        c = gearman.GearmanClient(ssl_context=certs.context(), connect_timeout=2.0)
        c.addServer("127.0.0.1", front.port)
        c.setTimeout(5000)
        for round_ in range(3):
            assert c.doBackground(fn, b"before-%d" % round_).startswith("H:")
            s = sock_of(c._engine)
            assert not _readable(s)         # the call read all there was
            g.restart()
            # socat sends its close_notify (and keeps the TCP connection open)
            assert wait_until(lambda s=s: _readable(s), timeout=10)
            s.close()
            assert c.doBackground(fn, b"after-%d" % round_).startswith("H:")
        c.close()
    finally:
        front.close()


# -- 9. TCP_USER_TIMEOUT bounds unacknowledged data, in line with keepalive --------------

def _tcp(sock, opt):
    return sock.getsockopt(socket.IPPROTO_TCP, opt)


def test_keepalive_and_tcp_user_timeout_are_set_on_every_connection(gearmand, fn):
    """Defaults: keepalive 30 s idle, 10 s x 6 probes, and TCP_USER_TIMEOUT their
    sum (90 s), on client and worker connections; both configurable per engine."""
    c = client_on(gearmand)
    c.ping(b"x")
    s = sock_of(c._engine)
    assert s.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) == 1
    assert (_tcp(s, socket.TCP_KEEPIDLE), _tcp(s, socket.TCP_KEEPINTVL),
            _tcp(s, socket.TCP_KEEPCNT)) == (30, 10, 6)
    assert _tcp(s, socket.TCP_USER_TIMEOUT) == 90_000
    s.close()

    e = c._engine
    assert e.keepalive == (30, 10, 6) and e.tcp_user_timeout is None
    e.keepalive = (5, 2, 3)                 # the next connect takes it
    c.close()
    c.ping(b"x")
    s = sock_of(e)
    assert (_tcp(s, socket.TCP_KEEPIDLE), _tcp(s, socket.TCP_KEEPINTVL),
            _tcp(s, socket.TCP_KEEPCNT)) == (5, 2, 3)
    assert _tcp(s, socket.TCP_USER_TIMEOUT) == 11_000     # 5 + 2 x 3 s
    s.close()
    e.tcp_user_timeout = 2.5
    c.close()
    c.ping(b"x")
    s = sock_of(e)
    assert _tcp(s, socket.TCP_USER_TIMEOUT) == 2_500
    s.close()
    e.tcp_user_timeout = 0                   # not set: the system's retransmission limit
    e.keepalive = None
    c.close()
    c.ping(b"x")
    s = sock_of(e)
    assert _tcp(s, socket.TCP_USER_TIMEOUT) == 0
    assert s.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) == 0
    s.close()
    c.close()

    w = gearman.GearmanWorker()
    w.addServer("127.0.0.1", gearmand.port)
    w.addFunction(fn, lambda job, ctx: b"")
    w.setTimeout(50)
    w.work()
    s = sock_of(w._engine)
    assert _tcp(s, socket.TCP_USER_TIMEOUT) == 90_000
    assert _tcp(s, socket.TCP_KEEPIDLE) == 30
    s.close()
    w.close()


@pytest.mark.parametrize("value", [(0, 1, 1), (1, 1, 128), (1, 2), "30,10,6", (1.5, 1, 1)])
def test_bad_keepalive_settings_are_refused(value):
    e = gearman.GearmanClient()._engine
    with pytest.raises(errors.GearmanError):
        e.keepalive = value
    assert e.keepalive == (30, 10, 6)


@pytest.mark.parametrize("value", [-1, float("nan"), float("inf"), 5e6, "90", True])
def test_bad_tcp_user_timeouts_are_refused(value):
    e = gearman.GearmanClient()._engine
    with pytest.raises(errors.GearmanError):
        e.tcp_user_timeout = value
    assert e.tcp_user_timeout is None


# -- 10. a STATUS_RES with missing fields names its cause ---------------------------------

@pytest.fixture(scope="module")
def hostile_mod():
    return _load("test_hostile")


@pytest.mark.parametrize("door", ["jobStatus", "jobStatusByUniqueKey"])
def test_a_status_answer_with_missing_fields_is_a_protocol_error(hostile_mod, door):
    """The answer is malformed: the call ends with the ProtocolLostConnectionError
    that names it, like every other malformed reply (before: a plain
    LostConnectionError "no live connection is left to finish the request")."""
    h = hostile_mod
    ask, answer = ((h.GET_STATUS, h.STATUS_RES) if door == "jobStatus" else (41, 42))

    def script(peer):
        p = peer.expect(ask)
        if p is None:
            return
        peer.send(h.res(answer, p[1][0], b"1"))          # 2 of its 5 (6) fields
        peer.stall()

    server = h.HostileServer(script)
    T = 1.5
    try:
        c = gearman.GearmanClient(connect_timeout=2.0)
        c.addServer("127.0.0.1", server.port)
        c.setTimeout(int(T * 1000))
        t0 = time.monotonic()
        with pytest.raises(errors.ProtocolLostConnectionError) as ei:
            if door == "jobStatus":
                c.jobStatus("H:hostile:1")
            else:
                c.jobStatusByUniqueKey("u-1")
        assert time.monotonic() - t0 < 2 * T
        err = ei.value
        assert isinstance(err, errors.LostConnectionError) and isinstance(err, errors.ProtocolError)
        assert "STATUS_RES" in str(err) and "arguments" in str(err), err
        assert isinstance(err.__cause__, errors.ProtocolError)
        c.close()
    finally:
        server.close()
