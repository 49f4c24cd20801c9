"""A client against servers that are alive but silent (SIGSTOP: the kernel
still accepts and acknowledges, nothing answers), against servers that issue
the same handles, and against inputs that must be refused before any I/O.

The policy is in docs/reliability.md ("Silent servers"): a server that answered
nothing while a call waited on it, until the call timed out, is demoted;
routing skips it until a probe of its own is answered; the connection is
reset, so what it held is dropped, and its requests end with
ServerSilentError (``submitted`` False: never sent, safe to submit again).
"""
import math
import threading
import time

import pytest

import gearman
from gearman import errors
from gearman.testing import wait_until


@pytest.fixture
def pool(gearmand_factory):
    """Two fresh gearmand; the second is the one the tests stop."""
    a, b = gearmand_factory(), gearmand_factory()
    yield a, b
    b.resume()


def client_on(*servers, timeout_ms=1000):
    c = gearman.GearmanClient()
    for s in servers:
        c.addServer("127.0.0.1", s.port)
    c.setTimeout(timeout_ms)
    return c


def test_a_silent_server_costs_one_timeout_not_one_per_call(pool, fn):
    """Of 50 sequential doBackground calls (uniques: half hash to the stopped
    server), one times out; the others go to the next server in hash order."""
    a, b = pool
    c = client_on(a, b)
    c.doBackground(fn, b"warm-a", "warm-0")
    b.pause()
    outcomes = []
    for i in range(50):
        try:
            c.doBackground(fn, b"x", f"u{i}")
            outcomes.append("ok")
        except errors.GearmanTimeoutError as e:
            outcomes.append(e)
    failed = [o for o in outcomes if o != "ok"]
    assert len(failed) <= 1, failed
    assert all(isinstance(e, errors.ServerSilentError) for e in failed)
    assert c._engine.servers[1].demoted
    # later calls still avoid it
    for i in range(10):
        assert c.doBackground(fn, b"y", f"v{i}").startswith("H:")
    assert a.queued(fn) >= 58
    b.resume()
    # a probe of its own brings it back (calls drive the client's I/O) ...
    assert wait_until(lambda: (c.doBackground(fn, b"z"),
                               not c._engine.servers[1].demoted)[1], timeout=20)
    # ... and calls reach it again (round robin without uniques)
    time.sleep(0.5)                              # what b held from before is read by now
    before = b.queued(fn)
    for _ in range(4):
        c.doBackground(fn, b"back")
    assert b.queued(fn) >= before + 2
    c.close()


def test_run_tasks_and_batches_report_what_the_healthy_server_accepted(pool, fn):
    a, b = pool
    c = client_on(a, b)
    b.pause()
    tasks = [c.addTaskBackground(fn, b"t%d" % i) for i in range(200)]
    with pytest.raises(errors.GearmanTimeoutError):
        c.runTasks()
    accepted = [t for t in tasks if t.jobHandle()]
    assert len(accepted) == 100                  # round robin: every one a sends
    silent = [t for t in tasks if not t.jobHandle()]
    assert all(isinstance(t.exception, errors.ServerSilentError) for t in silent)
    assert c._engine.outstanding == 0
    # the stopped server is demoted: the next run goes to a alone
    again = [c.addTaskBackground(fn, b"u%d" % i) for i in range(200)]
    c.runTasks()
    assert all(t.jobHandle() for t in again)
    c.close()

    c2 = client_on(a, b)
    with pytest.raises(errors.GearmanTimeoutError) as ei:
        c2.submit_batch(fn, [b"b%d" % i for i in range(200)])
    handles, errs = ei.value.handles, ei.value.errors
    assert sum(h is not None for h in handles) == 100
    assert all(isinstance(errs[i], errors.ServerSilentError)
               for i, h in enumerate(handles) if h is None)
    assert a.queued(fn) == 100 + 200 + 100
    c2.close()


def test_the_timeout_covers_waiting_for_the_clients_lock(pool, fn):
    """8 threads share a client whose only server is stopped: each call ends
    within its own timeout (waiting for the others' calls counts), instead of
    1, 2, ... 8 timeouts."""
    _, b = pool
    c = client_on(b)
    b.pause()
    took = []

    def call():
        t0 = time.monotonic()
        with pytest.raises(errors.GearmanTimeoutError):
            c.doBackground(fn, b"x")
        took.append(time.monotonic() - t0)

    threads = [threading.Thread(target=call) for _ in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(30)
    assert len(took) == 8
    # a correctness bound, not a speed one: the bug made the last call wait 8 s
    assert max(took) < 3.0, took
    c.close()


def test_timed_out_batches_keep_no_memory_and_are_not_all_delivered_late(pool, fn):
    """Batches that time out on a stopped server leave nothing queued in the
    client; after SIGCONT only what the kernel had taken arrives, and every
    job that may arrive was reported as of unknown outcome (submitted None)."""
    _, b = pool
    c = client_on(b, timeout_ms=300)
    c.doBackground(fn, b"warm")
    b.pause()
    not_sent = unknown = 0
    for _ in range(20):
        with pytest.raises(errors.GearmanTimeoutError) as ei:
            c.submit_batch(fn, [b"payload-%d" % i for i in range(5000)])
        for err in ei.value.errors.values():
            if getattr(err, "submitted", None) is False:
                not_sent += 1
            else:
                unknown += 1
        assert sum(conn.in_flight for conn in c._engine.servers) == 0
        assert c._engine.outstanding == 0
    assert not_sent + unknown == 20 * 5000      # every job accounted for, none accepted
    b.resume()
    # gearmand first works through whatever the kernel held for it: give this call
    # time (what is measured is what arrives, not how fast it catches up)
    c.setTimeout(10000)
    c.doBackground(fn, b"after")                 # gearmand is answering again
    time.sleep(1.0)                              # let it read whatever it still holds
    delivered = b.queued(fn) - 2
    assert delivered <= unknown
    assert delivered < 20 * 5000
    c.close()


def test_requests_given_up_before_the_kernel_took_them_never_arrive(pool, fn):
    """A timeout too short to call the server silent (under 0.2 s) does not
    reset the connection.  A request given up on whose bytes are still in the
    client's own buffer (the kernel's buffers are full) is taken back: it never
    reaches the server when it wakes.  One the kernel took in part goes out
    whole (cutting it would break the stream)."""
    _, b = pool
    c = client_on(b, timeout_ms=50)
    c.doBackground(fn, b"warm")
    b.pause()
    with pytest.raises(errors.GearmanTimeoutError) as ei:
        c.doBackground(fn, b"x" * (16 << 20))      # fills the kernel's buffers
    assert not isinstance(ei.value, errors.ServerSilentError)   # not demoted
    conn = c._engine.servers[0]
    left = conn.unsent
    assert 0 < left < 16 << 20                      # the kernel took part of it
    for i in range(20):
        with pytest.raises(errors.GearmanTimeoutError):
            c.doBackground(fn, b"small-%d" % i)
        assert conn.unsent <= left                  # taken back at once (the kernel
        left = conn.unsent                          # may still take some of the large one)
    for _ in range(3):                              # payloads held by reference (>= 128 KiB)
        with pytest.raises(errors.GearmanTimeoutError):
            c.doBackground(fn, b"y" * (1 << 20))
        assert conn.unsent <= left
        left = conn.unsent
    assert conn.in_flight == 1                      # only the large one is left
    assert not conn.demoted
    b.resume()
    c.setTimeout(10000)
    c.doBackground(fn, b"after")
    time.sleep(0.5)
    assert b.queued(fn) == 3                        # warm, the large one, after
    c.close()


def test_two_servers_issuing_the_same_handle(gearmand_factory, fn):
    """Two fresh gearmand both count from H:host:1: jobStatus asks both and
    never reports finished a job that one of them still holds."""
    a, b = gearmand_factory(), gearmand_factory()
    c = client_on(a, b, timeout_ms=5000)
    # one queued job on each server, same handle string
    handles = {}
    for i in range(100):
        h = c.doBackground(fn, b"x", f"pick-{i}")
        srv = c._engine.server_of(h)
        handles.setdefault(srv.port, h)
        if len(handles) == 2:
            break
    assert len(handles) == 2
    h_a, h_b = handles[a.port], handles[b.port]
    assert h_a == h_b                            # the collision this test is about
    # b's job is done (a worker takes it); a's is still queued
    w = gearman.GearmanWorker()
    w.addServer("127.0.0.1", b.port)
    w.addFunction(fn, lambda job, ctx: b"")
    w.setTimeout(1000)
    assert w.work() is True
    while w.work():                              # b may have had several jobs
        pass
    w.close()
    assert wait_until(lambda: b.queued(fn) == 0)
    assert a.queued(fn) >= 1
    assert c.jobStatus(h_a)[0] is True           # a still holds it: not "finished"
    # a client that did not make the handle asks every server: same answer
    fresh = client_on(a, b, timeout_ms=5000)
    assert fresh.jobStatus(h_a)[0] is True
    c.close()
    fresh.close()


@pytest.mark.parametrize("call, exc", [
    (lambda c: c.doBackground(None, b"x"), errors.InvalidTypeError),
    (lambda c: c.doNormal(None, b"x"), errors.InvalidTypeError),
    (lambda c: c.addTaskBackground(None, b"x"), errors.InvalidTypeError),
    (lambda c: c.addTaskStatus(None), errors.InvalidTypeError),
    (lambda c: c.submit_job(None, b"x", background=True), errors.InvalidTypeError),
    (lambda c: c.addServer("a" * 300), errors.InvalidArgumentError),
    (lambda c: c.addServer("x" * 64 + ".example"), errors.InvalidArgumentError),
    (lambda c: c.addServer("bad\udc80host"), errors.InvalidArgumentError),
    (lambda c: c.addServer("127.0.0.1\x00evil"), errors.InvalidArgumentError),
    (lambda c: c.submit_batch("fn", "abc"), errors.InvalidTypeError),
    (lambda c: gearman.GearmanClient([("127.0.0.1", 65536 + 4730)]), errors.InvalidArgumentError),
    (lambda c: gearman.GearmanClient([{"host": "127.0.0.1", "port": 70000}]), errors.InvalidArgumentError),
    (lambda c: gearman.GearmanClient(connect_timeout=math.nan), errors.InvalidArgumentError),
    (lambda c: gearman.GearmanClient(connect_timeout=math.inf), errors.InvalidArgumentError),
    (lambda c: gearman.GearmanClient(max_packet_size=2 ** 70), errors.InvalidArgumentError),
    (lambda c: gearman.GearmanWorker(connect_timeout=math.nan), errors.InvalidArgumentError),
], ids=["doBackground-None", "doNormal-None", "addTask-None", "addTaskStatus-None",
        "submit_job-None", "host-300", "label-64", "surrogate", "nul", "batch-of-a-str",
        "tuple-port-wraps", "dict-port", "nan-timeout", "inf-timeout", "huge-max-packet",
        "worker-nan-timeout"])
def test_bad_inputs_are_refused_before_anything_is_sent(gearmand, fn, call, exc):
    c = client_on(gearmand, timeout_ms=5000)
    before = gearmand.admin("status")
    with pytest.raises(exc):
        call(c)
    assert c._engine.outstanding == 0
    assert c.doBackground(fn, b"still usable").startswith("H:")
    assert gearmand.admin("status").count("\n") <= before.count("\n") + 1
    c.close()
