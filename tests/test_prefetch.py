"""GearmanWorker(prefetch=N) against real gearmand (issue 18).

gearmand's admin ``status`` counts a job assigned to a worker as running, so
"jobs held by the worker" (the running one plus those prefetched) is read
there while the first job is blocked in its callback.
"""
import socket
import struct
import subprocess
import sys
import threading
import time

import pytest

import gearman
from gearman import errors
from gearman.testing import wait_until


def _status(server, fn):
    return list(server.status().get(fn, (0, 0, 0)))


def _client(server):
    c = gearman.GearmanClient()
    c.addServer("127.0.0.1", server.port)
    c.setTimeout(15000)
    return c


def _queue(server, fn, payloads):
    c = _client(server)
    try:
        return [c.doBackground(fn, p) for p in payloads]
    finally:
        c.close()


#: Gate(block_on=FIRST): block on the first job, whichever it is
FIRST = object()


class Gate:
    """A callback that blocks on one job until released (``block_on``: a
    workload, FIRST, or None: never), and records every job."""

    def __init__(self, block_on=b"0"):
        self.block_on = block_on
        self.blocked = None
        self.entered = threading.Event()
        self.release = threading.Event()
        self.ran = []
        self.lock = threading.Lock()

    def __call__(self, job, ctx=None):
        w = job.workload() if hasattr(job, "workload") else job.data    # PECL or python-gearman job
        w = w.encode() if isinstance(w, str) else w
        if w == self.block_on or (self.block_on is FIRST and not self.entered.is_set()):
            self.blocked = w
            self.entered.set()
            assert self.release.wait(30)
        with self.lock:
            self.ran.append(w)
        return b"ok"


def _serving(w):
    t = threading.Thread(target=w.serve, kwargs={"handle_signals": False}, daemon=True)
    t.start()
    return t


def test_prefetch_is_validated_and_settable():
    w = gearman.GearmanWorker()
    assert w.prefetch == 1
    w.prefetch = 8
    assert w.prefetch == 8
    assert gearman.GearmanWorker(prefetch=3).prefetch == 3
    for bad in (0, -1, 1001):
        with pytest.raises(errors.InvalidArgumentError):
            gearman.GearmanWorker(prefetch=bad)
    for bad in ("2", 2.0, True):
        with pytest.raises(errors.InvalidTypeError):
            w.prefetch = bad
    assert w.prefetch == 8


@pytest.mark.parametrize("prefetch", [1, 4])
def test_the_worker_holds_prefetch_jobs_and_runs_them_in_order(gearmand, fn, prefetch):
    gate = Gate()
    _queue(gearmand, fn, [b"%d" % i for i in range(12)])
    w = gearman.GearmanWorker(prefetch=prefetch)
    w.addServer("127.0.0.1", gearmand.port)
    w.addFunction(fn, gate)
    t = _serving(w)
    try:
        assert gate.entered.wait(15)
        # the running job plus prefetch-1 assigned behind it, no more
        assert wait_until(lambda: _status(gearmand, fn)[1] == prefetch, timeout=10), \
            _status(gearmand, fn)
        time.sleep(0.3)
        assert _status(gearmand, fn)[1] == prefetch
        assert gate.ran == []           # one at a time: nothing ran beside job 0
        gate.release.set()
        assert wait_until(lambda: len(gate.ran) == 12, timeout=15)
        assert gate.ran == [b"%d" % i for i in range(12)]      # the order assigned
    finally:
        gate.release.set()
        w.stop()
        t.join(15)
        w.close()


def test_stop_hands_prefetched_jobs_back_none_lost_none_twice(gearmand, fn):
    gate = Gate()
    jobs = [b"%d" % i for i in range(9)]
    _queue(gearmand, fn, jobs)
    a = gearman.GearmanWorker(prefetch=5)
    a.addServer("127.0.0.1", gearmand.port)
    a.addFunction(fn, gate)
    t = _serving(a)
    other = Gate(block_on=None)
    b = gearman.GearmanWorker()
    try:
        assert gate.entered.wait(15)
        assert wait_until(lambda: _status(gearmand, fn)[1] == 5, timeout=10)
        a.stop()                        # finish job 0, hand the 4 prefetched back
        gate.release.set()
        t.join(15)
        assert not t.is_alive()
        assert gate.ran == [b"0"]
        # handed back at once, while worker a still exists and is not closed
        assert wait_until(lambda: _status(gearmand, fn)[1] == 0, timeout=5), _status(gearmand, fn)
        b.addServer("127.0.0.1", gearmand.port)
        b.addFunction(fn, other)
        tb = _serving(b)
        assert wait_until(lambda: len(other.ran) == 8, timeout=15), other.ran
        b.stop()
        tb.join(15)
        assert sorted(gate.ran + other.ran) == sorted(jobs)     # none lost, none twice
        assert _status(gearmand, fn)[0] == 0
    finally:
        gate.release.set()
        a.close()
        b.close()


def test_no_job_with_grabs_out_then_sleep_and_wake(gearmand, fn):
    ran = []
    w = gearman.GearmanWorker(prefetch=4)
    w.addServer("127.0.0.1", gearmand.port)
    w.addFunction(fn, lambda job, ctx: ran.append(job.workload()) or b"ok")
    t = _serving(w)
    try:
        # four GRABs, four NO_JOBs, then one PRE_SLEEP: asleep with nothing out
        assert wait_until(lambda: w._engine.grab_state()[0][1:] == (0, 0, True), timeout=10), \
            w._engine.grab_state()
        cpu0 = time.process_time()
        time.sleep(1.0)
        assert time.process_time() - cpu0 < 0.3       # asleep, not grabbing in a loop
        _queue(gearmand, fn, [b"x"])                   # NOOP wakes it
        assert wait_until(lambda: ran == [b"x"], timeout=10)
        _queue(gearmand, fn, [b"y%d" % i for i in range(6)])
        assert wait_until(lambda: len(ran) == 7, timeout=10)
        assert wait_until(lambda: w._engine.grab_state()[0][1:] == (0, 0, True), timeout=10)
    finally:
        w.stop()
        t.join(15)
        w.close()


def test_several_servers_each_connection_has_its_own_prefetch(gearmand_factory, fn):
    a, b = gearmand_factory(), gearmand_factory()
    gate = Gate(block_on=FIRST)
    _queue(a, fn, [b"a%d" % i for i in range(6)])
    _queue(b, fn, [b"b%d" % i for i in range(6)])
    w = gearman.GearmanWorker(prefetch=3)
    w.addServer("127.0.0.1", a.port)
    w.addServer("127.0.0.1", b.port)
    w.addFunction(fn, gate)
    t = _serving(w)
    try:
        assert gate.entered.wait(15)
        # the blocked job's connection holds it and two more; while the worker
        # sits in the callback the other connection holds at most its own three
        # (which server answered first is the scheduler's choice)
        held, other = (a, b) if gate.blocked[:1] == b"a" else (b, a)
        assert wait_until(lambda: _status(held, fn)[1] == 3, timeout=10), _status(held, fn)
        assert _status(other, fn)[1] <= 3
        gate.release.set()
        assert wait_until(lambda: len(gate.ran) == 12, timeout=15)
        assert sorted(gate.ran) == sorted([b"a%d" % i for i in range(6)] + [b"b%d" % i for i in range(6)])
        # per server, the order assigned
        assert [x for x in gate.ran if x[:1] == b"a"] == [b"a%d" % i for i in range(6)]
        assert [x for x in gate.ran if x[:1] == b"b"] == [b"b%d" % i for i in range(6)]
    finally:
        gate.release.set()
        w.stop()
        t.join(15)
        w.close()


def test_can_do_timeout_holds_one_job_per_connection(gearmand, fn):
    """gearmand arms a CAN_DO_TIMEOUT when it assigns the job (and 1.1.20 keeps
    one timer per connection): a prefetched job would spend its time limit
    waiting, so a function with a timeout is served one job at a time."""
    gate = Gate()
    handles = _queue(gearmand, fn, [b"%d" % i for i in range(5)])
    w = gearman.GearmanWorker(prefetch=4)
    w.addServer("127.0.0.1", gearmand.port)
    w.addFunction(fn, gate, None, 30)
    t = _serving(w)
    try:
        assert gate.entered.wait(15)
        time.sleep(0.5)
        assert _status(gearmand, fn)[1] == 1
        gate.release.set()
        assert wait_until(lambda: len(gate.ran) == 5, timeout=15)
        assert gate.ran == [b"%d" % i for i in range(5)]
        # nothing re-queued: none of these jobs is left (retried or not)
        listed = gearmand.admin("show jobs").splitlines()
        assert not [line for line in listed if line.split("\t")[0] in handles]
    finally:
        gate.release.set()
        w.stop()
        t.join(15)
        w.close()


def _submit_foreground(port, fn, payload):
    """A foreground SUBMIT_JOB from a raw connection; returns it once JOB_CREATED came."""
    body = b"\0".join([fn.encode(), b"", payload])
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(b"\0REQ" + struct.pack(">II", 7, len(body)) + body)
    hdr = b""
    while len(hdr) < 12:
        chunk = s.recv(12 - len(hdr))
        assert chunk
        hdr += chunk
    assert struct.unpack(">4sII", hdr)[1] == 8        # JOB_CREATED
    return s


def test_a_prefetched_job_whose_client_went_away(gearmand, fn):
    """A foreground job assigned (prefetched) to the worker whose client then
    disconnects still runs; gearmand discards its result; the worker goes on."""
    gate = Gate()
    _queue(gearmand, fn, [b"0"])
    orphan_client = _submit_foreground(gearmand.port, fn, b"orphan")
    w = gearman.GearmanWorker(prefetch=3)
    w.addServer("127.0.0.1", gearmand.port)
    w.addFunction(fn, gate)
    t = _serving(w)
    try:
        assert gate.entered.wait(15)
        assert wait_until(lambda: _status(gearmand, fn)[1] == 2, timeout=10)   # prefetched
        orphan_client.close()               # its client goes away
        time.sleep(0.2)
        gate.release.set()
        assert wait_until(lambda: gate.ran == [b"0", b"orphan"], timeout=10), gate.ran
        c = _client(gearmand)
        assert c.doNormal(fn, b"after") == b"ok"
        c.close()
        assert gate.ran == [b"0", b"orphan", b"after"]
        assert wait_until(lambda: _status(gearmand, fn)[:2] == [0, 0], timeout=5)
    finally:
        orphan_client.close()
        gate.release.set()
        w.stop()
        t.join(15)
        w.close()


def test_python_gearman_worker_accepts_prefetch(gearmand, fn):
    from gearman.worker import GearmanWorker as LegacyWorker
    gate = Gate()
    _queue(gearmand, fn, [b"%d" % i for i in range(6)])
    w = LegacyWorker([gearmand.address], prefetch=3)
    w.register_task(fn, lambda worker, job: gate(job))
    t = threading.Thread(target=w.work, kwargs={"poll_timeout": 0.2}, daemon=True)
    t.start()
    try:
        assert gate.entered.wait(15)
        assert wait_until(lambda: _status(gearmand, fn)[1] == 3, timeout=10), _status(gearmand, fn)
        gate.release.set()
        assert wait_until(lambda: len(gate.ran) == 6, timeout=15)
        assert gate.ran == [b"%d" % i for i in range(6)]
    finally:
        gate.release.set()
        w.shutdown()
        t.join(15)


RUNNER_JOBS = """
import time
def slow(job, ctx):
    if job.workload() == b"0":
        print("started", flush=True)
        time.sleep(1.0)
    return b"ran:" + job.workload()
"""


def test_runner_prefetch_and_sigterm_hands_the_rest_back(gearmand, fn, tmp_path):
    import signal
    (tmp_path / "pfjobs.py").write_text(RUNNER_JOBS)
    bad = subprocess.run([sys.executable, "-m", "gearman.runner", "-s", gearmand.address,
                          "-f", f"{fn}=pfjobs:slow", "--prefetch", "0"],
                         cwd=tmp_path, capture_output=True, text=True, timeout=30)
    assert bad.returncode == 2 and "--prefetch" in bad.stderr
    _queue(gearmand, fn, [b"%d" % i for i in range(6)])
    proc = subprocess.Popen([sys.executable, "-m", "gearman.runner", "-s", gearmand.address,
                             "-f", f"{fn}=pfjobs:slow", "--prefetch", "4", "-q"],
                            cwd=tmp_path, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "started"
        assert wait_until(lambda: _status(gearmand, fn)[1] == 4, timeout=10), _status(gearmand, fn)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(15) == 0
        # job 0 finished; the 3 prefetched and the 2 never assigned are queued again
        assert wait_until(lambda: _status(gearmand, fn)[:2] == [5, 0], timeout=10), _status(gearmand, fn)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
