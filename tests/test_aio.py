"""gearman.aio against real gearmand, on the default event loop and on uvloop."""
import asyncio
import time

import pytest

import gearman
from gearman import errors
from gearman.aio import AsyncGearmanClient, AsyncGearmanWorker
from gearman.testing import wait_until


@pytest.fixture(params=["asyncio", "uvloop"])
def run(request):
    """Run a coroutine to completion on the chosen loop (bounded).

    The loop is made, and made current, before the test body runs: an
    ``asyncio.Event()`` the test makes outside a coroutine then belongs to the
    loop the test runs on.  Python 3.9 binds such a primitive to the current
    loop when it is made (3.10 and later when it is first awaited), so a loop
    made only inside ``runner`` fails on 3.9 with "got Future attached to a
    different loop"."""
    if request.param == "uvloop":
        import uvloop      # a test dependency: installed by scripts/setup.sh
        policy = uvloop.EventLoopPolicy()
    else:
        policy = asyncio.DefaultEventLoopPolicy()
    loop = policy.new_event_loop()
    asyncio.set_event_loop(loop)

    def runner(coro, timeout=60):
        return loop.run_until_complete(asyncio.wait_for(coro, timeout))

    try:
        yield runner
    finally:
        asyncio.set_event_loop(None)
        loop.close()


async def with_worker(address, functions, body, concurrency=20):
    w = AsyncGearmanWorker(address, concurrency=concurrency)
    for name, fn in functions.items():
        w.register(name, fn)
    wt = asyncio.ensure_future(w.run())
    try:
        return await body()
    finally:
        w.stop()
        await asyncio.wait_for(wt, 10)


def test_thousand_concurrent_foreground_jobs(run, gearmand, fn):
    async def rev(job):
        await asyncio.sleep(0.001)
        return job.workload()[::-1]

    async def body():
        async with AsyncGearmanClient(gearmand.address) as c:
            res = await asyncio.gather(*[c.do_normal(fn, f"job-{i}") for i in range(1000)])
            assert res == [f"job-{i}".encode()[::-1] for i in range(1000)]

    run(with_worker(gearmand.address, {fn: rev}, body, concurrency=50))


def test_background_status_ping_and_batch(run, gearmand, fn):
    async def body():
        async with AsyncGearmanClient(gearmand.address) as c:
            h = await c.do_background(fn, b"x")
            assert await c.job_status(h) == [True, False, 0, 0]
            assert await c.ping(b"hello") is True
            handles = await c.submit_many(fn, [b"w"] * 3000)
            assert len(set(handles)) == 3000 and None not in handles
            assert await c.do_high_background(fn, b"h") != await c.do_low_background(fn, b"l")

    run(body())
    assert f"{fn}\t3003\t0\t0" in gearmand.admin("status")


def test_stream_and_callbacks(run, gearmand, fn):
    async def work(job):
        job.sendData(b"d1")
        job.sendStatus(1, 2)
        job.sendWarning(b"w")
        return b"end"

    async def body():
        async with AsyncGearmanClient(gearmand.address) as c:
            events = [e async for e in c.stream(fn, b"x")]
            assert events == [("data", b"d1"), ("status", (1, 2)), ("warning", b"w"),
                              ("complete", b"d1end")]
            seen = []
            r = await c.do_normal(fn, b"y", on_data=seen.append,
                                  on_status=lambda n, d: seen.append((n, d)))
            assert r == b"d1end" and seen == [b"d1", (1, 2)]

    run(with_worker(gearmand.address, {fn: work}, body))


def test_plain_functions_failures_and_exceptions(run, gearmand, fn):
    def plain(job):
        if job.workload() == b"fail":
            job.sendFail()
            return None
        if job.workload() == b"raise":
            raise ValueError("no good")
        if job.workload() == b"badtype":
            return object()             # not bytes-like: the job must still be answered
        return b"plain:" + job.workload()

    async def body():
        async with AsyncGearmanClient(gearmand.address) as c:
            assert await c.do_normal(fn, b"ok") == b"plain:ok"
            with pytest.raises(errors.JobFailedError):
                await c.do_normal(fn, b"fail")
            with pytest.raises(errors.JobExceptionError) as ei:
                await c.do_normal(fn, b"raise")
            assert b"no good" in ei.value.payload
            with pytest.raises(errors.JobExceptionError) as ei:
                await c.do_normal(fn, b"badtype", timeout=10)
            assert b"InvalidTypeError" in ei.value.payload
            assert await c.do_normal(fn, b"again") == b"plain:again"

    run(with_worker(gearmand.address, {fn: plain}, body))


def test_timeout_and_cancellation_leave_the_client_consistent(run, gearmand, fn):
    release = asyncio.Event()

    async def slow(job):
        if job.workload() == b"slow":
            await release.wait()
        return b"r:" + job.workload()

    async def body():
        async with AsyncGearmanClient(gearmand.address) as c:
            with pytest.raises(asyncio.TimeoutError):
                await c.do_normal(fn + "-nobody", b"x", timeout=0.2)
            pending = asyncio.ensure_future(c.do_normal(fn, b"slow"))
            await asyncio.sleep(0.2)
            pending.cancel()
            with pytest.raises(asyncio.CancelledError):
                await pending
            release.set()           # the abandoned job now completes; its answer is dropped
            assert await c.do_normal(fn, b"next", timeout=10) == b"r:next"
            assert await c.ping() is True

    run(with_worker(gearmand.address, {fn: slow}, body, concurrency=2))


def test_cancelled_requests_the_kernel_never_took_never_arrive(run, gearmand_factory, fn):
    """Requests cancelled while their bytes are still in the client's buffer
    (a stopped server, the kernel's buffers full) are taken back, in whatever
    order they are cancelled: after SIGCONT the server receives none of them."""
    server = gearmand_factory()

    async def body():
        async with AsyncGearmanClient(server.address) as c:
            await c.do_background(fn, b"warm", timeout=10)
            server.pause()
            try:
                large = asyncio.ensure_future(c.do_background(fn, b"x" * (16 << 20)))
                await asyncio.sleep(0.2)
                conn = c._engine.servers[0]
                left = conn.unsent
                assert 0 < left < 16 << 20          # the kernel took part of it
                small = [asyncio.ensure_future(c.do_background(fn, b"s%d" % i))
                         for i in range(200)]
                await asyncio.sleep(0.05)
                assert conn.in_flight == 201
                for t in small[::2] + small[1::2]:  # not the order they were queued in
                    t.cancel()
                await asyncio.gather(*small, return_exceptions=True)
                assert conn.unsent <= left          # (the kernel may take more of the large one)
                assert conn.in_flight == 1
                large.cancel()
                await asyncio.gather(large, return_exceptions=True)
            finally:
                server.resume()
            await c.do_background(fn, b"after", timeout=10)
            await asyncio.sleep(0.5)
            assert server.queued(fn) == 3           # warm, the large one, after

    run(body())


def test_errors_are_the_blocking_clients(run, free_port, fn):
    async def body():
        c = AsyncGearmanClient(f"127.0.0.1:{free_port}")
        with pytest.raises(errors.ServerUnavailable):
            await c.do_background(fn, b"x")
        with pytest.raises(errors.InvalidArgumentError):
            await c.do_background(fn, b"x", "u" * 65)
        with pytest.raises(errors.InvalidTypeError):
            await c.do_normal(fn, 12.5)
        await c.close()

    run(body())


def test_server_restart_and_several_servers(run, gearmand_factory, fn):
    a, b = gearmand_factory(), gearmand_factory()
    addresses = f"{a.address},{b.address}"

    async def work(job):
        return b"ok:" + job.workload()

    async def body():
        async with AsyncGearmanClient(addresses) as c:
            res = await asyncio.gather(*[c.do_normal(fn, str(i), f"u{i}") for i in range(40)])
            assert sorted(res) == sorted(b"ok:%d" % i for i in range(40))
            a.restart()
            # the worker reconnects to the restarted server on its own
            deadline = time.monotonic() + 15
            while f"{fn}\t0\t0\t" not in a.admin("status") or \
                    f"{fn}\t0\t0\t0" in a.admin("status"):
                assert time.monotonic() < deadline, a.admin("status")
                await asyncio.sleep(0.05)
            res = await asyncio.gather(*[c.do_normal(fn, str(i), f"v{i}") for i in range(40)])
            assert sorted(res) == sorted(b"ok:%d" % i for i in range(40))

    run(with_worker(addresses, {fn: work}, body, concurrency=4))


def test_worker_drains_on_stop(run, gearmand, fn):
    started = asyncio.Event()

    async def slow(job):
        started.set()
        await asyncio.sleep(0.3)
        return b"finished"

    async def body():
        w = AsyncGearmanWorker(gearmand.address, concurrency=3)
        w.register(fn, slow)
        wt = asyncio.ensure_future(w.run())
        async with AsyncGearmanClient(gearmand.address) as c:
            job = asyncio.ensure_future(c.do_normal(fn, b"x"))
            await started.wait()
            w.stop()                 # the running job still finishes and is delivered
            assert await job == b"finished"
            assert await wt == 1

    run(body())


ASYNC_WORKER_SCRIPT = r"""
import asyncio, sys
from gearman.aio import AsyncGearmanWorker
async def slow(job):
    print("started", flush=True)
    await asyncio.sleep(1.0)
    return b"done"
async def main():
    w = AsyncGearmanWorker(sys.argv[1], concurrency=2)
    w.register(sys.argv[2], slow)
    print("ready", flush=True)
    print("served", await w.run(handle_signals=True), flush=True)
asyncio.run(main())
"""


def test_async_worker_drains_on_sigterm(gearmand, fn, tmp_path):
    import signal
    import subprocess
    import sys
    import threading
    script = tmp_path / "aw.py"
    script.write_text(ASYNC_WORKER_SCRIPT)
    proc = subprocess.Popen([sys.executable, str(script), gearmand.address, fn],
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "ready"
        assert wait_until(lambda: f"{fn}\t0\t0\t" in gearmand.admin("status"), timeout=15)
        c = gearman.GearmanClient()
        c.addServer("127.0.0.1", gearmand.port)
        c.setTimeout(15000)
        result = []
        th = threading.Thread(target=lambda: result.append(c.doNormal(fn, b"x")))
        th.start()
        assert proc.stdout.readline().strip() == "started"
        proc.send_signal(signal.SIGTERM)
        th.join(15)
        assert result == [b"done"]
        out, _ = proc.communicate(timeout=15)
        assert out.strip() == "served 1" and proc.returncode == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_large_result_to_a_stalled_server_does_not_block_the_loop(run, gearmand_factory, fn):
    """A result the server does not take (SIGSTOP) is written as the socket takes
    it: the event loop keeps running other coroutines meanwhile, and the result
    goes out once the server resumes."""
    server = gearmand_factory()
    big = b"r" * (32 * 1024 * 1024)
    ticks = []
    returned = asyncio.Event()

    def job_fn(job):
        server.pause()              # the server stops reading from here on
        returned.set()
        return big

    async def ticker():
        while True:
            ticks.append(time.monotonic())
            await asyncio.sleep(0.02)

    async def body():
        w = AsyncGearmanWorker(server.address, concurrency=1)
        w.register(fn, job_fn)
        wt = asyncio.ensure_future(w.run())
        tt = asyncio.ensure_future(ticker())
        try:
            c = gearman.GearmanClient()
            c.addServer("127.0.0.1", server.port)
            c.doBackground(fn, b"x")
            c.close()
            await asyncio.wait_for(returned.wait(), 10)
            before = len(ticks)
            await asyncio.sleep(1.0)
            # a loop blocked in a send would not have run the ticker at all
            assert len(ticks) - before >= 10
            server.resume()
            assert await asyncio.wait_for(_jobs_done(w, 1), 20)
        finally:
            server.resume()
            tt.cancel()
            w.stop()
            await asyncio.wait_for(wt, 20)
        assert w.jobs_done == 1

    run(body())


def _queue(gearmand, fn, n):
    c = gearman.GearmanClient()
    c.addServer("127.0.0.1", gearmand.port)
    for i in range(n):
        c.doBackground(fn, b"%d" % i)
    c.close()


def _run_the_rest(gearmand, fn, n):
    """What a blocking worker then finds queued for ``fn`` (up to ``n`` jobs)."""
    rest = []
    w2 = gearman.GearmanWorker()
    w2.addServer("127.0.0.1", gearmand.port)
    w2.addFunction(fn, lambda job, ctx: rest.append(job.workload()) or b"ok")
    w2.setTimeout(5000)
    while len(rest) < n and w2.work():
        pass
    w2.close()
    return rest


async def _jobs_done(w, n):
    while w.jobs_done < n:
        await asyncio.sleep(0.02)
    return True


def test_unencodable_result_fails_the_job_and_the_slot_goes_on(run, gearmand, fn):
    """A result UTF-8 cannot encode (a lone surrogate) ends its job with
    WORK_EXCEPTION naming the cause; the same worker slot serves the next job."""
    def job_fn(job):
        return "bad \udc80" if job.workload() == b"poison" else b"ok"

    async def body():
        async with AsyncGearmanClient(gearmand.address) as c:
            with pytest.raises(errors.JobExceptionError) as ei:
                await c.do_normal(fn, b"poison", timeout=10)
            assert b"UnicodeEncodeError" in ei.value.payload
            assert await c.do_normal(fn, b"fine", timeout=10) == b"ok"

    run(with_worker(gearmand.address, {fn: job_fn}, body, concurrency=1))


def _workers_for(server, fn):
    """Connections gearmand lists as able to do ``fn``."""
    return [line for line in server.admin("workers").splitlines()
            if line.endswith(" " + fn) or f" {fn} " in line + " "]


def test_concurrency_runs_n_jobs_at_once_on_one_connection(run, gearmand, fn):
    """concurrency=4: four jobs run at once, all from one connection to the
    server (four jobs assigned to it), and the rest follow in order."""
    running, peak, done = [0], [0], []
    release = asyncio.Event()

    async def job_fn(job):
        running[0] += 1
        peak[0] = max(peak[0], running[0])
        await release.wait()
        running[0] -= 1
        done.append(job.workload())
        return b"ok"

    async def body():
        _queue(gearmand, fn, 10)
        w = AsyncGearmanWorker(gearmand.address, concurrency=4)
        w.register(fn, job_fn)
        wt = asyncio.ensure_future(w.run())
        try:
            deadline = time.monotonic() + 10
            while running[0] < 4:
                assert time.monotonic() < deadline, running
                await asyncio.sleep(0.02)
            await asyncio.sleep(0.2)
            assert running[0] == 4 and peak[0] == 4
            assert len(_workers_for(gearmand, fn)) == 1, gearmand.admin("workers")
            assert f"{fn}\t10\t4\t1" in gearmand.admin("status")
            release.set()
            assert await asyncio.wait_for(_jobs_done(w, 10), 20)
            assert sorted(done) == sorted(b"%d" % i for i in range(10))
        finally:
            release.set()
            w.stop()
            await asyncio.wait_for(wt, 20)

    run(body())


def test_stop_hands_jobs_assigned_and_not_started_back(run, gearmand, fn):
    """concurrency=2 with jobs assigned beyond the two running: on stop the two
    finish and the others go back to the queue (none lost, none run twice)."""
    started = []
    release = asyncio.Event()

    async def slow(job):
        started.append(job.workload())
        await release.wait()
        return b"ok"

    async def body():
        _queue(gearmand, fn, 8)
        w = AsyncGearmanWorker(gearmand.address, concurrency=2)
        w.register(fn, slow)
        wt = asyncio.ensure_future(w.run())
        deadline = time.monotonic() + 10
        while len(started) < 2:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.02)
        w.stop()
        release.set()
        assert await asyncio.wait_for(wt, 20) == 2
        assert started == [b"0", b"1"]
        # the others are queued again at once, for another worker
        deadline = time.monotonic() + 5
        while f"{fn}\t6\t0\t" not in gearmand.admin("status"):
            assert time.monotonic() < deadline, gearmand.admin("status")
            await asyncio.sleep(0.05)
        rest = _run_the_rest(gearmand, fn, 6)
        assert sorted(started + rest) == sorted(b"%d" % i for i in range(8))

    run(body())


def test_timeouts_name_what_was_awaited(run, gearmand, fn):
    """An asyncio timeout is a GearmanTimeoutError (and an asyncio.TimeoutError)
    whose message says what the call waited for: here a worker, since the
    server accepted the job."""
    async def body():
        async with AsyncGearmanClient(gearmand.address) as c:
            with pytest.raises(asyncio.TimeoutError) as ei:
                await c.do_normal(fn, b"nobody serves this", timeout=0.3)
            assert isinstance(ei.value, errors.GearmanTimeoutError)
            assert "waiting for a worker to finish job H:" in str(ei.value)

    run(body())


# -- plain (not async def) functions run in the serving task, without a task per job --------

@pytest.mark.parametrize("queued", [3, 10])
def test_stop_from_a_plain_function_ends_run_and_hands_the_rest_back(run, gearmand, fn, queued):
    """stop() called by a plain function (run in the serving task itself):
    run() returns after that job, the jobs assigned and not started go back
    to the queue, and another worker runs them; none lost, none run twice.
    With 3 queued the third job is the last: no more I/O comes after it."""
    started = []

    def plain(job):
        started.append(job.workload())
        if len(started) == 3:
            w.stop()
        return b"ok"

    w = AsyncGearmanWorker(gearmand.address, concurrency=4)
    w.register(fn, plain)

    async def body():
        _queue(gearmand, fn, queued)
        # bounded: before the serving loop looked at stop() after running jobs
        # inline, this run() slept on I/O that never came (the queue empty)
        return await asyncio.wait_for(w.run(), 20)

    assert run(body()) == 3
    assert started == [b"0", b"1", b"2"]
    rest = _run_the_rest(gearmand, fn, queued - 3) if queued > 3 else []
    assert sorted(started + rest) == sorted(b"%d" % i for i in range(queued))


def test_plain_function_returning_an_awaitable_and_raising_cancelled(run, gearmand, fn):
    """A plain function that returns an awaitable (a coroutine made by
    another function) has it awaited, and its result is the job's; one that
    raises CancelledError itself fails that job and the worker goes on; the
    jobs of plain functions run one after the other, never two at once."""
    running, peak = [0], [0]

    async def later(data):
        await asyncio.sleep(0.01)
        return b"later:" + data

    def plain(job):
        running[0] += 1
        peak[0] = max(peak[0], running[0])
        try:
            data = job.workload()
            if data == b"cancel":
                raise asyncio.CancelledError()
            if data.startswith(b"later"):
                return later(data)
            return b"now:" + data
        finally:
            running[0] -= 1

    async def body():
        async with AsyncGearmanClient(gearmand.address, timeout=20) as c:
            assert await c.do_normal(fn, b"a") == b"now:a"
            assert await c.do_normal(fn, b"later1") == b"later:later1"
            with pytest.raises(errors.JobFailedError):
                await c.do_normal(fn, b"cancel")
            got = await asyncio.gather(*(c.do_normal(fn, b"%s%d" % (k, i))
                                         for i in range(20) for k in (b"x", b"later")))
            assert got == [b"%s:%s%d" % (b"now" if k == b"x" else b"later", k, i)
                           for i in range(20) for k in (b"x", b"later")]

    run(with_worker(gearmand.address, {fn: plain}, body, concurrency=8))
    assert peak[0] == 1


def test_client_and_worker_made_outside_a_loop_serve_in_successive_loops(gearmand, fn):
    """Legacy code makes its client and worker before any loop runs (at import,
    in an application object), then runs them with asyncio.run(), maybe more
    than once, maybe on uvloop.  Python 3.9 binds an asyncio primitive made
    outside a running loop to the loop current then, 3.10 and later to the
    first loop that awaits it: either way, a Future, Event or Queue the client
    or worker kept from one loop fails in the next with "attached to a
    different loop", on every interpreter.  (A second client is made after
    the first asyncio.run(), which on 3.9 leaves no current loop.)"""
    import uvloop

    async def echo(job):
        await asyncio.sleep(0)
        return b"echo:" + job.workload()

    worker = AsyncGearmanWorker(gearmand.address, concurrency=2)
    worker.register(fn, echo)
    first = AsyncGearmanClient(gearmand.address)

    async def session(client, tag):
        before = worker.jobs_done
        served = asyncio.ensure_future(worker.run())
        try:
            assert await client.do_normal(fn, tag, timeout=30) == b"echo:" + tag
            streamed = [ev async for ev in client.stream(fn, tag, timeout=30)]
            assert streamed == [("complete", b"echo:" + tag)]
            assert await client.ping(timeout=30) is True
        finally:
            worker.stop()
            n = await asyncio.wait_for(served, 30)
        assert n == before + 2          # run() returns the worker's running total
        return tag

    assert asyncio.run(session(first, b"one")) == b"one"
    second = AsyncGearmanClient(gearmand.address)
    assert asyncio.run(session(first, b"two")) == b"two"
    assert asyncio.run(session(second, b"three")) == b"three"
    loop = uvloop.new_event_loop()
    try:
        assert loop.run_until_complete(session(first, b"four")) == b"four"
    finally:
        loop.close()
    for client in (first, second):
        asyncio.run(client.close())
