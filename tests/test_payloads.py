"""Large payloads through a real gearmand and a real worker, and max_packet_size.

16 and 64 MiB round trips are checked byte for byte (random bytes with NULs and
``\\0RES``/``\\0REQ`` sequences planted inside); the 256 MiB round trip is a step
of the soak script (``scripts/soak.py``), not of the suite.  Linearity is
asserted by counting, not timing: the memory a round trip allocates is a fixed
multiple of the payload, whatever its size.  ``max_packet_size`` must refuse a
larger payload with a clear error on every path: a workload before anything is
sent, a result coming back, a job handed to a worker.
"""
import gc
import hashlib
import os
import threading
import tracemalloc

import pytest

import gearman
from gearman import errors

MIB = 1024 * 1024


def payload(size, seed=0):
    """Random bytes with protocol look-alikes planted at awkward places."""
    data = bytearray(os.urandom(size))
    marks = (b"\x00RES\x00\x00\x00\x0d", b"\x00REQ", b"\x00\x00\x00", b"\r\n.\r\n")
    step = max(size // 17, 1)
    for i, pos in enumerate(range(0, max(size - 16, 0), step)):
        m = marks[i % len(marks)]
        data[pos:pos + len(m)] = m
    if size >= 4:
        data[-4:] = b"\x00RES"
    return bytes(data)


def _serve(w, stop):
    while not stop.is_set():
        w.work()


@pytest.fixture
def echo_worker(gearmand):
    """A real worker thread serving ``<fn>`` (echo) with a given max_packet_size."""
    started = []

    def start(fn, max_packet_size=64 * MIB, seen=None):
        w = gearman.GearmanWorker(max_packet_size=max_packet_size)
        w.addServer("127.0.0.1", gearmand.port)

        def echo(job, ctx):
            data = job.workload()
            if seen is not None:
                seen.append(hashlib.sha256(data).hexdigest())
            return data

        w.addFunction(fn, echo)
        w.setTimeout(100)
        stop = threading.Event()
        th = threading.Thread(target=_serve, args=(w, stop), daemon=True)
        th.start()
        started.append((w, stop, th))
        return w

    yield start
    for w, stop, th in started:
        stop.set()
        w.stop()
        th.join(30)
        w.close()


def make_client(gearmand, **kw):
    c = gearman.GearmanClient(**kw)
    c.addServer("127.0.0.1", gearmand.port)
    c.setTimeout(120000)
    return c


@pytest.mark.parametrize("size", [16 * MIB, 64 * MIB], ids=["16MiB", "64MiB"])
def test_large_round_trip_is_byte_exact_with_default_limits(gearmand, echo_worker, fn, size):
    """docs/reliability.md §6: max_packet_size bounds the payload and defaults to 64 MiB,
    so a 64 MiB payload passes with the defaults on both sides."""
    seen = []
    echo_worker(fn, seen=seen)                     # default max_packet_size
    c = make_client(gearmand)                       # default max_packet_size
    c.setTimeout(30000)                             # a hang check, not a speed check
    data = payload(size)
    result = c.doNormal(fn, data)
    assert len(result) == size
    assert result == data
    assert seen == [hashlib.sha256(data).hexdigest()]
    c.close()


def test_16mib_in_chunks_and_in_the_background(gearmand, fn):
    """A worker streaming its 16 MiB answer in WORK_DATA chunks; a 16 MiB
    background job reaches its worker intact."""
    data = payload(16 * MIB, seed=1)
    got = []
    w = gearman.GearmanWorker()
    w.addServer("127.0.0.1", gearmand.port)

    def chunked(job, ctx):
        wl = job.workload()
        for i in range(0, len(wl), MIB):
            job.sendData(wl[i:i + MIB])
        return b""

    def sink(job, ctx):
        got.append(hashlib.sha256(job.workload()).hexdigest())
        return b""

    w.addFunction(fn, chunked)
    w.addFunction(fn + "-bg", sink)
    w.setTimeout(100)
    stop = threading.Event()
    th = threading.Thread(target=_serve, args=(w, stop), daemon=True)
    th.start()
    try:
        c = make_client(gearmand)
        chunks = []
        c.setDataCallback(lambda task: chunks.append(task.data()))
        task = c.addTask(fn, data)
        c.runTasks()
        assert task.returnCode() == gearman.GEARMAN_SUCCESS
        assert len(chunks) == 16 and b"".join(chunks) == data
        assert c.doNormal(fn, data) == data          # do* joins the chunks
        c.doBackground(fn + "-bg", data)
        assert gearman.testing.wait_until(lambda: got, timeout=30)
        assert got == [hashlib.sha256(data).hexdigest()]
        # the batch call, with payloads large enough to be sent by reference
        # between small ones: each reaches the worker intact
        batch = [payload(n, seed=n) for n in (300 * 1024, 5, 1 * MIB, 128 * 1024, 17)]
        del got[:]
        handles = c.submit_batch(fn + "-bg", batch)
        assert len(handles) == len(batch) and all(handles)
        assert gearman.testing.wait_until(lambda: len(got) == len(batch), timeout=30)
        assert sorted(got) == sorted(hashlib.sha256(b).hexdigest() for b in batch)
        c.close()
    finally:
        stop.set()
        w.stop()
        th.join(30)
        w.close()


@pytest.mark.parametrize("size", [0, 1, 11, 12, 13, 8191, 8192, 8193, 65535, 65536, 65537,
                                  65536 * 2 + 7, MIB - 1, MIB, MIB + 1])
def test_sizes_around_buffer_boundaries(gearmand, echo_worker, fn, size):
    echo_worker(fn)
    c = make_client(gearmand)
    data = payload(size, seed=size)
    assert c.doNormal(fn, data) == data
    c.close()


def test_payload_of_exactly_max_packet_size_round_trips(gearmand, echo_worker, fn):
    """max_packet_size bounds the *payload*: a job of exactly the limit passes
    although its JOB_ASSIGN / WORK_COMPLETE packets carry a handle, a function
    name and a unique on top."""
    limit = MIB
    echo_worker(fn, max_packet_size=limit)
    c = make_client(gearmand, max_packet_size=limit)
    c.setTimeout(10000)
    data = payload(limit, seed=3)
    assert c.doNormal(fn, data) == data
    c.close()


def _round_trip_peak(gearmand, fn, size):
    """Allocation peak of one round trip with a fresh client and worker."""
    w = gearman.GearmanWorker(max_packet_size=64 * MIB)
    w.addServer("127.0.0.1", gearmand.port)
    w.addFunction(fn, lambda job, ctx: job.workload())
    w.setTimeout(100)
    c = make_client(gearmand, max_packet_size=64 * MIB)
    data = payload(size, seed=size)
    stop = threading.Event()
    th = threading.Thread(target=_serve, args=(w, stop), daemon=True)
    gc.collect()
    tracemalloc.start()
    try:
        th.start()
        result = c.doNormal(fn, data)
        _cur, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        stop.set()
        w.stop()
        th.join(30)
        w.close()
        c.close()
    assert result == data
    return peak


def test_round_trip_memory_is_a_fixed_multiple_of_the_payload(gearmand, fn):
    """Linear, by counting: client and worker (one process here) allocate a
    bounded number of payload-sized buffers, the same multiple at 1, 4 and 16 MiB.
    A quadratic receive (gear's ``bytes +=``) or per-read copies would grow it."""
    ratios = {}
    for size in (MIB, 4 * MIB, 16 * MIB):
        ratios[size] = _round_trip_peak(gearmand, fn, size) / size
    assert max(ratios.values()) < 10, ratios
    assert max(ratios.values()) - min(ratios.values()) < 1.5, ratios


def test_big_payload_buffers_are_not_kept_after_the_call(gearmand, echo_worker, fn):
    """After one 16 MiB job, a long-lived client and worker (both in this
    process) must not keep payload-sized connection buffers for good: they would
    be held until the next reconnect, 4 x 32 MiB here."""
    echo_worker(fn)
    c = make_client(gearmand)
    assert c.doNormal(fn, b"warm") == b"warm"
    data = payload(16 * MIB, seed=5)
    gc.collect()
    tracemalloc.start()
    try:
        result = c.doNormal(fn, data)
        assert result == data
        del result
        c.doNormal(fn, b"small")                     # the connection is idle again
        gc.collect()
        retained, _peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert retained < 4 * MIB, f"the client kept {retained / MIB:.1f} MiB after the call"
    c.close()


# -- max_packet_size refuses larger payloads clearly -------------------------------------

def test_workload_over_the_limit_is_refused_before_any_io(dead_port, fn):
    """Refused locally (the server is not even reachable): code DATA_TOO_LARGE."""
    c = gearman.GearmanClient(max_packet_size=MIB)
    c.addServer("127.0.0.1", dead_port)
    for call in (c.doNormal, c.doBackground, c.doHigh, c.doLowBackground):
        with pytest.raises(errors.InvalidArgumentError) as ei:
            call(fn, b"x" * (MIB + 1))
        assert ei.value.code == gearman.GEARMAN_DATA_TOO_LARGE
        assert "max_packet_size" in str(ei.value)
        assert c.returnCode() == gearman.GEARMAN_DATA_TOO_LARGE
    with pytest.raises(errors.InvalidArgumentError):
        c.addTask(fn, b"x" * (MIB + 1))
    with pytest.raises(errors.InvalidArgumentError):
        c.submit_batch(fn, [b"ok", b"x" * (MIB + 1)])
    with pytest.raises(errors.InvalidArgumentError):
        c.ping(b"x" * (MIB + 1))


def test_default_limit_is_64_mib(dead_port, fn):
    c = gearman.GearmanClient()
    c.addServer("127.0.0.1", dead_port)
    assert c.max_packet_size == 64 * MIB
    with pytest.raises(errors.InvalidArgumentError):
        c.doBackground(fn, bytes(64 * MIB + 1))


def test_result_over_the_client_limit_is_a_clear_error(gearmand, fn):
    """A worker answers with more than the client accepts: the caller gets
    PacketTooLargeError (GEARMAN_DATA_TOO_LARGE) naming the limit, not an
    anonymous lost connection."""
    w = gearman.GearmanWorker()
    w.addServer("127.0.0.1", gearmand.port)
    w.addFunction(fn, lambda job, ctx: b"r" * (2 * MIB))
    w.setTimeout(100)
    stop = threading.Event()
    th = threading.Thread(target=_serve, args=(w, stop), daemon=True)
    th.start()
    try:
        c = make_client(gearmand, max_packet_size=MIB)
        c.setTimeout(10000)
        with pytest.raises(errors.GearmanError) as ei:
            c.doNormal(fn, b"x")
        assert isinstance(ei.value, errors.PacketTooLargeError), \
            f"{type(ei.value).__name__}: {ei.value}"
        assert "max_packet_size" in str(ei.value)
        c.close()
    finally:
        stop.set()
        w.stop()
        th.join(30)
        w.close()


def test_job_over_the_worker_limit_is_reported_by_work(gearmand, fn):
    """A job bigger than the worker's max_packet_size: work() returns False
    and says why (GEARMAN_DATA_TOO_LARGE), instead of a silent timeout while the
    job bounces between reconnects."""
    c = make_client(gearmand)
    c.doBackground(fn, b"b" * (2 * MIB))
    w = gearman.GearmanWorker(max_packet_size=MIB)
    w.addServer("127.0.0.1", gearmand.port)
    w.addFunction(fn, lambda job, ctx: b"")
    w.setTimeout(2000)
    assert w.work() is False
    assert w.returnCode() == gearman.GEARMAN_DATA_TOO_LARGE, (w.returnCode(), w.error())
    assert "max_packet_size" in w.error()
    w.close()
    c.close()


def test_job_over_one_worker_limit_is_not_lost(gearmand, fn):
    """The job a small-limit worker could not take stays queued: a worker with
    a larger limit runs it and the waiting client gets its answer."""
    data = payload(2 * MIB, seed=7)
    small = gearman.GearmanWorker(max_packet_size=MIB)
    small.addServer("127.0.0.1", gearmand.port)
    small.addFunction(fn, lambda job, ctx: b"small took it")
    small.setTimeout(1000)
    results = []
    c = make_client(gearmand)
    c.setTimeout(30000)
    th = threading.Thread(target=lambda: results.append(c.doNormal(fn, data)))
    th.start()
    assert small.work() is False              # could not take it
    small.close()
    big = gearman.GearmanWorker()
    big.addServer("127.0.0.1", gearmand.port)
    big.addFunction(fn, lambda job, ctx: job.workload())
    big.setTimeout(10000)
    assert big.work() is True
    th.join(30)
    assert results == [data]
    big.close()
    c.close()
