"""The event hooks (gearman.events) wired into the client and the worker, end to end.

Real gearmand, real jobs: each test attaches a recording listener to one
client or worker (``events.add_listener(rec, source=obj)``) and checks the
events that object emitted, in order, with their arguments.  The Prometheus
listener is scraped over real HTTP and parsed with prometheus_client's parser.
"""
import asyncio
import threading
import urllib.request

import pytest

import gearman
from gearman import errors, events
from gearman.aio import AsyncGearmanClient, AsyncGearmanWorker
from gearman.events import EVENTS, Listener
from gearman.testing import wait_until


class Recorder(Listener):
    """Records ``(event, args, thread id, asyncio task)`` for every event."""

    def __init__(self):
        self.calls = []
        self.lock = threading.Lock()

    def __getattribute__(self, name):
        if name in EVENTS:
            def record(*args):
                try:
                    task = asyncio.current_task()
                except RuntimeError:
                    task = None
                with object.__getattribute__(self, "lock"):
                    object.__getattribute__(self, "calls").append(
                        (name, args, threading.get_ident(), task))
            return record
        return object.__getattribute__(self, name)

    def names(self):
        return [c[0] for c in self.calls]

    def of(self, name):
        return [c[1] for c in self.calls if c[0] == name]


@pytest.fixture(autouse=True)
def no_global_listeners_left():
    before = events.listeners()
    yield
    assert events.listeners() == before


def listen(source):
    rec = Recorder()
    events.add_listener(rec, source=source)
    return rec


def make_worker(gearmand, functions):
    w = gearman.GearmanWorker()
    w.addServer("127.0.0.1", gearmand.port)
    for name, cb in functions.items():
        w.addFunction(name, cb)
    w.setTimeout(5000)
    return w


def work_in_thread(worker, n):
    """Run ``n`` jobs on a thread; returns the thread (join it)."""
    th = threading.Thread(target=lambda: [worker.work() for _ in range(n)], daemon=True)
    th.start()
    return th


# -- no listener ------------------------------------------------------------------------------

def test_nothing_listens_by_default(gearmand, fn):
    c = gearman.GearmanClient()
    w = gearman.GearmanWorker()
    assert c._events is None and c._engine._events is None
    assert w._events is None and w._engine._events is None
    rec = listen(c)
    assert c._engine._events is not None and c._engine._events is c._events
    events.remove_listener(rec, source=c)
    assert c._engine._events is None
    # a global listener reaches every client and worker made before or after
    g = Recorder()
    events.add_listener(g)
    try:
        c2 = gearman.GearmanClient()
        assert c._engine._events is not None and c2._engine._events is not None
        assert w._engine._events is not None
    finally:
        events.remove_listener(g)
    assert c._engine._events is None and w._engine._events is None
    assert c2._engine._events is None


def test_every_event_is_wired():
    assert all(events.EMISSION_POINTS.values())


# -- the blocking client and worker ----------------------------------------------------------------

def test_do_normal_and_its_job(gearmand, client, fn):
    w = make_worker(gearmand, {fn: lambda job, ctx: job.workload()[::-1]})
    crec, wrec = listen(client), listen(w)
    th = work_in_thread(w, 1)
    assert client.doNormal(fn, b"abc", "u-1") == b"cba"
    th.join(10)
    assert crec.names() == ["request_submitted", "request_accepted", "request_completed"]
    (req, f, unique, bg, prio), = crec.of("request_submitted")
    assert (f, unique, bg, prio) == (fn, "u-1", False, "normal")
    (req2, f, server, handle), = crec.of("request_accepted")
    assert req2 is req and server == f"127.0.0.1:{gearmand.port}" and handle.startswith("H:")
    assert crec.of("request_completed") == [(req, fn, server, handle)]

    assert wrec.names() == ["job_grabbed", "job_started", "job_completed"]
    (job, f, wserver, whandle, wunique), = wrec.of("job_grabbed")
    assert (f, wserver, whandle, wunique) == (fn, server, handle, "u-1")
    assert wrec.of("job_started") == [(job, fn, server, handle)]
    (job3, f, s, h, duration), = wrec.of("job_completed")
    assert job3 is job and duration >= 0.0
    # job_started and its end on the same thread (the worker's)
    started = [c for c in wrec.calls if c[0] == "job_started"][0]
    ended = [c for c in wrec.calls if c[0] == "job_completed"][0]
    assert started[2] == ended[2] == th.ident
    w.close()


def test_background_request_ends_when_accepted(client, fn):
    rec = listen(client)
    handle = client.doHighBackground(fn, b"x")
    assert rec.names() == ["request_submitted", "request_accepted"]
    assert rec.of("request_submitted")[0][1:] == (fn, rec.of("request_submitted")[0][2], True, "high")
    assert rec.of("request_accepted")[0][3] == handle
    client.doLowBackground(fn, b"y")
    assert rec.of("request_submitted")[1][4] == "low"


def test_a_raising_job_and_a_failing_job(gearmand, client, fn):
    def cb(job, ctx):
        if job.workload() == b"boom":
            raise ValueError("boom")
        job.setReturn(gearman.GEARMAN_WORK_FAIL)
        return b""

    w = make_worker(gearmand, {fn: cb})
    crec, wrec = listen(client), listen(w)
    th = work_in_thread(w, 2)
    with pytest.raises(errors.JobExceptionError):
        client.doNormal(fn, b"boom")
    with pytest.raises(errors.JobFailedError):
        client.doNormal(fn, b"fail")
    th.join(10)
    assert wrec.names() == ["job_grabbed", "job_started", "job_raised",
                            "job_grabbed", "job_started", "job_failed"]
    raised = wrec.of("job_raised")[0]
    assert isinstance(raised[5], ValueError) and raised[4] >= 0.0
    assert crec.names() == ["request_submitted", "request_accepted", "request_exception",
                            "request_submitted", "request_accepted", "request_failed"]
    exc_event = crec.of("request_exception")[0]
    assert b"ValueError: boom" in exc_event[4]
    assert crec.of("request_failed")[0][3] == wrec.of("job_failed")[0][3]     # the handle
    w.close()


def test_a_job_without_callback_starts_and_fails(gearmand, fn):
    w = make_worker(gearmand, {fn: lambda job, ctx: b""})
    rec = listen(w)
    w._callbacks.clear()            # registered with the server, no callback here
    c = gearman.GearmanClient()
    c.addServer("127.0.0.1", gearmand.port)
    c.doBackground(fn, b"x")
    assert w.work()
    assert rec.names() == ["job_grabbed", "job_started", "job_failed"]
    w.close()
    c.close()


def test_a_job_the_function_finishes_itself(gearmand, client, fn):
    def cb(job, ctx):
        job.sendException(b"my own")
        return None

    w = make_worker(gearmand, {fn: cb})
    rec = listen(w)
    th = work_in_thread(w, 1)
    with pytest.raises(errors.JobExceptionError):
        client.doNormal(fn, b"x")
    th.join(10)
    assert rec.names() == ["job_grabbed", "job_started", "job_failed"]
    w.close()


def test_timed_out_request(client, fn):
    rec = listen(client)
    client.setTimeout(300)
    with pytest.raises(errors.GearmanTimeoutError):
        client.doNormal(fn, b"nobody serves this")
    assert rec.names() == ["request_submitted", "request_accepted", "request_timed_out"]
    handle = rec.of("request_accepted")[0][3]
    assert rec.of("request_timed_out")[0][3] == handle


def test_unreachable_server_is_a_lost_connection(dead_port, fn):
    c = gearman.GearmanClient()
    c.addServer("127.0.0.1", dead_port)
    rec = listen(c)
    with pytest.raises(errors.ServerUnavailable):
        c.doBackground(fn, b"x")
    assert rec.names() == ["request_submitted", "request_lost_connection"]
    assert rec.of("request_lost_connection")[0][3] is None       # never accepted
    c.close()


def test_lost_connection_while_the_job_runs(gearmand_factory, fn):
    server = gearmand_factory()
    c = gearman.GearmanClient()
    c.addServer("127.0.0.1", server.port)
    c.setTimeout(20000)
    rec = listen(c)
    errs = []

    def call():
        try:
            c.doNormal(fn, b"x")
        except errors.GearmanError as e:
            errs.append(e)

    th = threading.Thread(target=call)
    th.start()
    assert wait_until(lambda: "request_accepted" in rec.names(), 10)
    server.kill()
    th.join(20)
    assert errs and isinstance(errs[0], errors.LostConnectionError)
    assert rec.names() == ["request_submitted", "request_accepted", "request_lost_connection"]
    assert rec.of("request_lost_connection")[0][3] == rec.of("request_accepted")[0][3]


def test_add_task_and_run_tasks(gearmand, client, fn):
    w = make_worker(gearmand, {fn: lambda job, ctx: job.workload().upper()})
    rec = listen(client)
    tasks = [client.addTask(fn, b"a"), client.addTask(fn, b"b"), client.addTaskBackground(fn, b"c")]
    # the background one ends when accepted; the two foreground ones need the worker
    th = work_in_thread(w, 3)
    assert client.runTasks()
    th.join(10)
    names = rec.names()
    assert names.count("request_submitted") == 3 and names.count("request_accepted") == 3
    assert names.count("request_completed") == 2
    assert [a[0] for a in rec.of("request_submitted")] == tasks
    assert {a[0] for a in rec.of("request_completed")} == set(tasks[:2])
    w.close()


def test_submit_batch_emits_per_job(gearmand, client, fn):
    rec = listen(client)
    handles = client.submit_batch(fn, [b"1", b"2", b"3"], uniques=["a", None, "c"])
    subs = rec.of("request_submitted")
    assert len(subs) == 3
    batch = subs[0][0][0]
    assert [s[0] for s in subs] == [(batch, 0), (batch, 1), (batch, 2)]
    assert [s[2] for s in subs] == ["a", None, "c"]
    assert all(s[3] is True for s in subs)
    acc = rec.of("request_accepted")
    assert sorted((a[0][1], a[3]) for a in acc) == list(enumerate(handles))


def test_server_demoted_and_restored(gearmand_factory, fn):
    a, b = gearmand_factory(), gearmand_factory()
    c = gearman.GearmanClient()
    c.addServer("127.0.0.1", a.port)
    c.addServer("127.0.0.1", b.port)
    c.setTimeout(1000)
    c.doBackground(fn, b"warm", "warm-0")
    rec = listen(c)
    b.pause()
    try:
        for i in range(50):
            try:
                c.doBackground(fn, b"x", f"u{i}")
            except errors.GearmanTimeoutError:
                break
        demoted = rec.of("server_demoted")
        assert demoted and demoted[0][0] == f"127.0.0.1:{b.port}"
        assert demoted[0][2] > 0                 # the backoff
        assert "request_timed_out" in rec.names()
    finally:
        b.resume()
    assert wait_until(lambda: (c.doBackground(fn, b"z"), bool(rec.of("server_restored")))[1],
                      timeout=20)
    assert rec.of("server_restored")[0] == (f"127.0.0.1:{b.port}",)
    c.close()


def test_a_broken_listener_never_breaks_a_job(gearmand, client, fn):
    class Broken(Listener):
        def job_started(self, *args):
            raise RuntimeError("listener bug")

        def request_accepted(self, *args):
            raise RuntimeError("listener bug")

    w = make_worker(gearmand, {fn: lambda job, ctx: b"ok"})
    broken = Broken()
    events.add_listener(broken, source=w)
    events.add_listener(broken, source=client)
    th = work_in_thread(w, 1)
    assert client.doNormal(fn, b"x") == b"ok"
    th.join(10)
    w.close()


def test_serve_and_prefetch_emit_per_job(gearmand, client, fn):
    for i in range(5):
        client.doBackground(fn, b"%d" % i)
    w = gearman.GearmanWorker(prefetch=3)
    w.addServer("127.0.0.1", gearmand.port)
    w.addFunction(fn, lambda job, ctx: b"")
    rec = listen(w)
    assert w.serve(handle_signals=False, max_jobs=5) == 5
    assert rec.names().count("job_completed") == 5
    started = [a[0] for a in rec.of("job_started")]
    assert len(set(map(id, started))) == 5
    assert [a[0] for a in rec.of("job_completed")] == started
    w.close()


# -- asyncio -----------------------------------------------------------------------------------------

def test_asyncio_client_and_worker(gearmand, fn):
    async def main():
        worker = AsyncGearmanWorker(gearmand.address, concurrency=2)

        async def job(j):
            await asyncio.sleep(0)
            if j.workload() == b"boom":
                raise KeyError("boom")
            return j.workload()[::-1]

        worker.register(fn, job)
        wrec = listen(worker)
        run = asyncio.ensure_future(worker.run())
        async with AsyncGearmanClient(gearmand.address, timeout=20) as client:
            crec = listen(client)
            assert await client.do_normal(fn, b"abc") == b"cba"
            with pytest.raises(errors.JobExceptionError):
                await client.do_normal(fn, b"boom")
            handles = await client.submit_many(fn + "-nobody", [b"1", b"2"])
            # a timeout and a cancellation
            with pytest.raises(asyncio.TimeoutError):
                await client.do_normal(fn + "-nobody", b"x", timeout=0.3)
            t = asyncio.ensure_future(client.do_normal(fn + "-nobody", b"y"))
            await asyncio.sleep(0.2)
            t.cancel()
            with pytest.raises(asyncio.CancelledError):
                await t
        worker.stop()
        await run
        return wrec, crec, handles

    wrec, crec, handles = asyncio.run(main())
    assert wrec.names().count("job_started") == 2
    assert sorted(n for n in wrec.names() if n in ("job_completed", "job_raised")) == \
        ["job_completed", "job_raised"]
    # each job's start and end in the same asyncio task
    for name in ("job_completed", "job_raised"):
        end = [c for c in wrec.calls if c[0] == name][0]
        start = [c for c in wrec.calls if c[0] == "job_started" and c[1][0] is end[1][0]][0]
        assert start[3] is not None and start[3] is end[3]
    names = crec.names()
    assert names.count("request_submitted") == 6
    assert names.count("request_completed") == 1 and names.count("request_exception") == 1
    assert names.count("request_timed_out") == 1 and names.count("request_abandoned") == 1
    assert isinstance(crec.of("request_abandoned")[0][4], asyncio.CancelledError)
    assert sorted(a[3] for a in crec.of("request_accepted") if isinstance(a[0], tuple)) == \
        sorted(handles)


# -- Prometheus, in process ------------------------------------------------------------------------

def test_prometheus_listener_scraped_over_http(gearmand, client, fn):
    from prometheus_client.parser import text_string_to_metric_families

    from gearman.metrics import PrometheusListener, serve_metrics

    def cb(job, ctx):
        if job.workload() == b"boom":
            raise RuntimeError("boom")
        return b"ok"

    w = make_worker(gearmand, {fn: cb})
    listener = PrometheusListener()
    events.add_listener(listener, source=w)
    events.add_listener(listener, source=client)
    th = work_in_thread(w, 3)
    assert client.doNormal(fn, b"a") == b"ok"
    assert client.doNormal(fn, b"b") == b"ok"
    with pytest.raises(errors.JobExceptionError):
        client.doNormal(fn, b"boom")
    th.join(10)
    with serve_metrics(0, "127.0.0.1", listener.registry) as server:
        text = urllib.request.urlopen(server.url, timeout=10).read().decode()
    samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    fl = (("function", fn),)
    assert samples[("gearman_worker_jobs_grabbed_total", fl)] == 3
    assert samples[("gearman_worker_jobs_started_total", fl)] == 3
    assert samples[("gearman_worker_jobs_in_progress", fl)] == 0
    assert samples[("gearman_worker_jobs_finished_total",
                    (("function", fn), ("outcome", "completed")))] == 2
    assert samples[("gearman_worker_jobs_finished_total",
                    (("function", fn), ("outcome", "raised")))] == 1
    assert samples[("gearman_worker_job_duration_seconds_count",
                    (("function", fn), ("outcome", "completed")))] == 2
    assert samples[("gearman_client_requests_submitted_total", fl)] == 3
    assert samples[("gearman_client_requests_accepted_total", fl)] == 3
    assert samples[("gearman_client_requests_finished_total",
                    (("function", fn), ("outcome", "completed")))] == 2
    assert samples[("gearman_client_requests_finished_total",
                    (("function", fn), ("outcome", "exception")))] == 1
    w.close()
