"""Threads sharing one client or worker, and signals interrupting blocking calls.

The documented contract (gearman/client.py): one lock per client, so a client
may be shared between threads and its calls are serialised; the same holds for
a worker.  Replies are matched FIFO per connection (JOB_CREATED has no request
id), so a broken lock would show up as swapped handles or results: every check
here compares each thread's answers with what that thread asked.

Signals: a Python handler fired every 2 ms (SIGUSR1) interrupts poll(),
send() and recv() with EINTR all through do*, runTasks, submit_batch and work();
no call may fail, return early or overrun its timeout because of it.  A handler
that raises propagates out of the call and leaves the client usable.
"""
import os
import signal
import threading
import time
import uuid

import pytest

import gearman
from gearman import errors

MIB = 1024 * 1024


@pytest.fixture
def workers(gearmand):
    """Worker threads (each its own GearmanWorker) serving ``fn`` as ``r:<workload>``."""
    started = []

    def start(fn, n=2, callback=None):
        for _ in range(n):
            w = gearman.GearmanWorker()
            w.addServer("127.0.0.1", gearmand.port)
            w.addFunction(fn, callback or (lambda job, ctx: b"r:" + job.workload()))
            w.setTimeout(100)
            stop = threading.Event()

            def loop(w=w, stop=stop):
                while not stop.is_set():
                    w.work()

            th = threading.Thread(target=loop, daemon=True)
            th.start()
            started.append((w, stop, th))

    yield start
    for w, stop, _th in started:
        stop.set()
        w.stop()
    for w, _stop, th in started:
        th.join(10)
        w.close()


def run_threads(n, target):
    """Run ``target(i)`` in n threads; re-raise the first failure."""
    failures = []

    def wrap(i):
        try:
            target(i)
        except BaseException as e:          # noqa: BLE001 - reported below
            failures.append(e)

    threads = [threading.Thread(target=wrap, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
        assert not t.is_alive(), "a thread hung"
    if failures:
        raise failures[0]


# -- one client, many threads ------------------------------------------------------------

def test_threads_share_one_client_for_do_normal(client, workers, fn):
    workers(fn, n=3)
    client.setTimeout(60000)

    def submit(i):
        for k in range(60):
            w = b"t%d-%d-" % (i, k) + os.urandom(k)
            assert client.doNormal(fn, w) == b"r:" + w

    run_threads(8, submit)


def test_threads_get_their_own_handles(client, gearmand, fn):
    """Background submissions from 8 threads: each thread's handle is the one of
    its own job (a second submission with the same unique coalesces onto it)."""
    got = {}

    def submit(i):
        for k in range(50):
            u = f"{i}-{k}-{uuid.uuid4().hex[:8]}"
            got[u] = client.doBackground(fn, u.encode(), u)

    run_threads(8, submit)
    assert len(got) == 400 and len(set(got.values())) == 400
    other = gearman.GearmanClient()
    other.addServer("127.0.0.1", gearmand.port)
    for u, h in got.items():
        assert other.doBackground(fn, b"again", u) == h, u
    other.close()


def test_threads_mixing_every_blocking_call(client, workers, fn):
    workers(fn, n=2)
    client.setTimeout(60000)

    def mixed(i):
        for k in range(25):
            w = b"%d.%d" % (i, k)
            kind = (i + k) % 5
            if kind == 0:
                assert client.doNormal(fn, w) == b"r:" + w
            elif kind == 1:
                h = client.doBackground(fn, w)
                assert h.startswith("H:")
                st = client.jobStatus(h)
                assert len(st) == 4
            elif kind == 2:
                assert client.ping(w)
            elif kind == 3:
                hs = client.submit_batch(fn, [w + b"a", w + b"b", w + b"c"])
                assert len(hs) == 3 and len(set(hs)) == 3
            else:
                assert client.doHigh(fn, w) == b"r:" + w

    run_threads(6, mixed)


def test_threads_each_running_their_own_tasks(client, workers, fn):
    """addTask* + runTasks per thread on a shared client: a runTasks may also
    run other threads' tasks, but every task ends with its own answer."""
    workers(fn, n=3)
    client.setTimeout(60000)

    def tasks(i):
        for k in range(20):
            mine = [client.addTask(fn, b"%d/%d/%d" % (i, k, j)) for j in range(5)]
            client.runTasks()
            for j, t in enumerate(mine):
                assert t.returnCode() == gearman.GEARMAN_SUCCESS, (i, k, j, t.returnCode())
                assert t.data() == b"r:%d/%d/%d" % (i, k, j)

    run_threads(6, tasks)


def test_threads_share_one_worker(gearmand, client, fn):
    """work() from 3 threads on one worker: calls are serialised, every job runs
    exactly once and its answer reaches its caller."""
    seen = []
    w = gearman.GearmanWorker()
    w.addServer("127.0.0.1", gearmand.port)
    w.addFunction(fn, lambda job, ctx: seen.append(job.workload()) or b"ok:" + job.workload())
    w.setTimeout(100)
    stop = threading.Event()

    def loop(_i):
        while not stop.is_set():
            w.work()

    th = threading.Thread(target=run_threads, args=(3, loop), daemon=True)
    th.start()
    try:
        results = [client.doNormal(fn, b"%d" % i) for i in range(60)]
    finally:
        stop.set()
        th.join(30)
        w.close()
    assert results == [b"ok:%d" % i for i in range(60)]
    assert sorted(seen) == sorted(b"%d" % i for i in range(60))


def test_stop_from_another_thread_while_many_wait(gearmand, fn):
    w = gearman.GearmanWorker()
    w.addServer("127.0.0.1", gearmand.port)
    w.addFunction(fn, lambda job, ctx: b"")
    returned = []

    def loop(_i):
        returned.append(w.work())

    th = threading.Thread(target=run_threads, args=(1, loop))
    th.start()
    time.sleep(0.3)
    w.stop()
    th.join(10)
    assert not th.is_alive() and returned == [False]
    assert w.returnCode() == gearman.GEARMAN_SHUTDOWN
    w.close()


# -- signals: EINTR everywhere ------------------------------------------------------------

class Ticker:
    """A Python-handled SIGUSR1 every ``interval`` seconds, sent by a helper
    thread, alternately to the main thread (pthread_kill: its poll() gets EINTR)
    and to the process (any thread's system call may get it).  SIGALRM and
    setitimer are left to pytest-timeout."""

    def __init__(self, interval=0.002, action=None):
        self.count = 0
        self.action = action
        self.interval = interval
        self._stop = threading.Event()

    def _handler(self, signum, frame):
        self.count += 1
        if self.action is not None:
            self.action(self)

    def _send(self):
        main = threading.main_thread().ident
        n = 0
        while not self._stop.wait(self.interval):
            n += 1
            if n % 2:
                signal.pthread_kill(main, signal.SIGUSR1)
            else:
                os.kill(os.getpid(), signal.SIGUSR1)

    def __enter__(self):
        self.previous = signal.signal(signal.SIGUSR1, self._handler)
        self._thread = threading.Thread(target=self._send, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(5)
        time.sleep(0.05)            # a signal still in flight meets our handler
        signal.signal(signal.SIGUSR1, self.previous)
        return False


def test_eintr_during_do_normal(client, workers, fn):
    workers(fn, n=1, callback=lambda job, ctx: (time.sleep(0.2), b"slow:" + job.workload())[1])
    client.setTimeout(30000)
    with Ticker() as t:
        for i in range(5):
            assert client.doNormal(fn, b"%d" % i) == b"slow:%d" % i
    assert t.count > 100, f"only {t.count} signals fired"


def test_eintr_during_large_transfers(client, workers, fn):
    workers(fn, n=1)
    client.setTimeout(60000)
    data = os.urandom(8 * MIB)
    with Ticker(0.001) as t:
        assert client.doNormal(fn, data) == b"r:" + data
    assert t.count > 0


def test_eintr_during_run_tasks_and_batches(client, workers, fn):
    workers(fn, n=2, callback=lambda job, ctx: (time.sleep(0.001), b"r:" + job.workload())[1])
    client.setTimeout(60000)
    with Ticker() as t:
        tasks = [client.addTask(fn, b"%d" % i) for i in range(300)]
        client.runTasks()
        handles = client.submit_batch(fn + "-bg", [b"%d" % i for i in range(2000)])
    assert [x.data() for x in tasks] == [b"r:%d" % i for i in range(300)]
    assert len(handles) == 2000 and all(handles)
    assert t.count > 10


def test_eintr_during_work(gearmand, fn):
    """work() in the main thread (where Python runs its handlers), the client
    in another thread."""
    w = gearman.GearmanWorker()
    w.addServer("127.0.0.1", gearmand.port)
    w.addFunction(fn, lambda job, ctx: (time.sleep(0.02), b"w:" + job.workload())[1])
    w.setTimeout(10000)
    c = gearman.GearmanClient()
    c.addServer("127.0.0.1", gearmand.port)
    c.setTimeout(30000)
    results = []

    def submit():
        for i in range(20):
            time.sleep(0.01)
            results.append(c.doNormal(fn, b"%d" % i))

    th = threading.Thread(target=submit)
    th.start()
    with Ticker() as t:
        done = [w.work() for _ in range(20)]
    th.join(30)
    assert done == [True] * 20, w.error()
    assert results == [b"w:%d" % i for i in range(20)]
    assert t.count > 50
    w.close()
    c.close()


def test_eintr_does_not_stretch_or_cut_timeouts(client, gearmand, fn):
    """Interrupted polls resume with the remaining time, not the whole timeout
    again (which could wait forever under a steady signal rate), and not less."""
    w = gearman.GearmanWorker()
    w.addServer("127.0.0.1", gearmand.port)
    w.addFunction(fn + "-idle", lambda job, ctx: b"")
    w.setTimeout(1000)
    client.setTimeout(1000)
    with Ticker(0.003):
        t0 = time.monotonic()
        assert w.work() is False
        idle = time.monotonic() - t0
        t0 = time.monotonic()
        with pytest.raises(errors.GearmanTimeoutError):
            client.doNormal(fn + "-nobody", b"x")
        waited = time.monotonic() - t0
    assert w.returnCode() == gearman.GEARMAN_TIMEOUT
    assert 0.9 <= idle < 4.0, idle
    assert 0.9 <= waited < 4.0, waited
    w.close()


def test_eintr_during_connect_to_a_black_hole(fn):
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location(
        "cygearman_tests_faultproxy", Path(__file__).resolve().parent / "_faultproxy.py")
    fp = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(fp)
    with fp.Blackhole() as hole:
        c = gearman.GearmanClient(connect_timeout=1.0)
        c.addServer("127.0.0.1", hole.port)
        with Ticker() as t:
            t0 = time.monotonic()
            with pytest.raises(errors.ServerUnavailable):
                c.doBackground(fn, b"x")
            took = time.monotonic() - t0
    assert 0.9 <= took < 4.0, took
    assert t.count > 100


class Interrupt(Exception):
    pass


def test_exception_from_a_signal_handler_propagates_and_the_client_stays_usable(
        client, workers, fn):
    """A handler that raises (as Ctrl-C's does) ends the call with its exception;
    the abandoned job's late answer is never taken for the next call's."""
    gate = threading.Event()
    workers(fn, n=1, callback=lambda job, ctx: (
        gate.wait(5) if job.workload() == b"first" else None, b"r:" + job.workload())[1])
    client.setTimeout(30000)

    def raise_once(ticker):
        if ticker.count == 50:
            raise Interrupt()

    with Ticker(action=raise_once):
        with pytest.raises(Interrupt):
            client.doNormal(fn, b"first")
    gate.set()
    assert client.doNormal(fn, b"second") == b"r:second"
    assert client.doNormal(fn, b"third") == b"r:third"


def test_keyboard_interrupt_out_of_work_leaves_the_worker_usable(gearmand, client, fn):
    w = gearman.GearmanWorker()
    w.addServer("127.0.0.1", gearmand.port)
    w.addFunction(fn, lambda job, ctx: b"k:" + job.workload())
    w.setTimeout(5000)

    def interrupt(ticker):
        if ticker.count == 30:
            raise KeyboardInterrupt

    with Ticker(action=interrupt):
        with pytest.raises(KeyboardInterrupt):
            w.work()
    results = []
    th = threading.Thread(target=lambda: results.append(client.doNormal(fn, b"after")))
    th.start()
    assert w.work() is True
    th.join(10)
    assert results == [b"k:after"]
    w.close()


def test_signals_while_many_threads_share_a_client(client, workers, fn):
    workers(fn, n=2)
    client.setTimeout(60000)

    ticker = Ticker()

    def submit(i):
        # at least 30 calls each, and on until 20 signals came in (a fast run
        # could otherwise end before the ticker fired often); bounded by count
        k = 0
        while (k < 30 or ticker.count < 20) and k < 5000:
            w = b"%d:%d" % (i, k)
            assert client.doNormal(fn, w) == b"r:" + w
            k += 1

    with ticker as t:
        run_threads(4, submit)
    assert t.count >= 20
