"""The python-gearman 2.x surface (drop-in), end to end against a real gearmand.

Written the way legacy code uses the library: ``GearmanClient(host_list)`` +
``submit_job``, ``GearmanWorker(host_list)`` + ``register_task`` + ``work()``,
``GearmanAdminClient``, ``gearman.protocol``.
"""
import importlib
import json
import socket
import threading
import time
import uuid

import pytest

import gearman
from gearman import errors, protocol
from gearman._legacy_client import LegacyClientMixin
from gearman._legacy_worker import LegacyWorkerMixin
from gearman.admin_client import ECHO_STRING, GearmanAdminClient
from gearman.connection import GearmanConnection
from gearman.connection_manager import DataEncoder, GearmanConnectionManager, NoopEncoder
from gearman.constants import (
    JOB_COMPLETE, JOB_CREATED, JOB_FAILED, JOB_UNKNOWN,
    PRIORITY_HIGH, PRIORITY_LOW, PRIORITY_NONE,
)
from gearman.job import GearmanJob, GearmanJobRequest
from gearman.testing import wait_until

GearmanClient = gearman.GearmanClient
GearmanWorker = gearman.GearmanWorker


class JSONDataEncoder(DataEncoder):
    @classmethod
    def encode(cls, encodable_object):
        return json.dumps(encodable_object)

    @classmethod
    def decode(cls, decodable_string):
        return json.loads(decodable_string)


class JSONClient(GearmanClient):
    data_encoder = JSONDataEncoder


class JSONWorker(GearmanWorker):
    data_encoder = JSONDataEncoder


@pytest.fixture
def fn():
    return "pg-" + uuid.uuid4().hex[:12]


@pytest.fixture
def gm_client(gearmand):
    c = GearmanClient([gearmand.address])
    yield c
    c.shutdown()


@pytest.fixture
def legacy_worker(gearmand):
    """``start({task: callback}, cls=GearmanWorker, server=None, client_id=None)``: a
    python-gearman worker looping in ``work(poll_timeout=0.5)`` in a thread."""
    running = []

    def start(tasks, cls=GearmanWorker, server=None, client_id=None):
        stop = threading.Event()

        class Stoppable(cls):
            def after_poll(self, any_activity):
                return not stop.is_set()

        w = Stoppable([(server or gearmand).address])
        if client_id:
            w.set_client_id(client_id)
        for name, cb in tasks.items():
            w.register_task(name, cb)
        errors_seen = []

        def loop():
            try:
                w.work(poll_timeout=0.5)
            except BaseException as exc:  # surfaced by the teardown
                errors_seen.append(exc)

        th = threading.Thread(target=loop, daemon=True)
        th.start()
        running.append((w, stop, th, errors_seen))
        return w

    yield start
    for w, stop, th, errors_seen in running:
        stop.set()
        w.stop()
        th.join(10)
        assert not th.is_alive(), "legacy worker did not stop"
        w.shutdown()
        assert not errors_seen, errors_seen


def status_line(server, fn):
    for line in server.admin("status").splitlines():
        if line.startswith(fn + "\t"):
            return line
    return None


# --- constructors, hosts, module surface ------------------------------------------------

def test_every_host_form_reaches_the_server(gearmand, legacy_worker, fn):
    legacy_worker({fn: lambda worker, job: b"ok:" + job.data})
    forms = [
        [gearmand.address],
        [("127.0.0.1", gearmand.port)],
        [["127.0.0.1", gearmand.port]],
        [{"host": "127.0.0.1", "port": gearmand.port}],
        [{"host": "127.0.0.1", "port": gearmand.port, "keyfile": None,
          "certfile": None, "ca_certs": None}],
        gearmand.address,                                   # a bare string
    ]
    for hosts in forms:
        c = GearmanClient(hosts)
        try:
            [conn] = c.connection_list
            assert (conn.gearman_host, conn.gearman_port) == ("127.0.0.1", gearmand.port)
            r = c.submit_job(fn, b"x", poll_timeout=10)
            assert (r.state, r.result) == (JOB_COMPLETE, b"ok:x")
            assert conn.connected
        finally:
            c.shutdown()


def test_default_port_and_connection_objects():
    c = GearmanClient(["somehost", "otherhost:4731", ("third", 4732)])
    assert [(x.gearman_host, x.gearman_port) for x in c.connection_list] == [
        ("somehost", 4730), ("otherhost", 4731), ("third", 4732)]
    assert all(isinstance(x, GearmanConnection) and not x.connected for x in c.connection_list)
    assert GearmanConnection.connect_cooldown_seconds == 1.0
    assert isinstance(c, GearmanConnectionManager)
    assert c.data_encoder is NoopEncoder
    assert c.random_unique_bytes == 16
    assert GearmanClient([], 8).random_unique_bytes == 8
    added = c.add_connection("fourth:4733")
    assert (added.gearman_host, added.gearman_port) == ("fourth", 4733)
    assert len(c.connection_list) == 4
    with pytest.raises(errors.GearmanError):
        GearmanClient([object()])
    w = GearmanWorker(["somehost"])
    assert [(x.gearman_host, x.gearman_port) for x in w.connection_list] == [("somehost", 4730)]
    assert isinstance(w, GearmanConnectionManager)
    w.shutdown()


def test_top_level_names_of_python_gearman():
    assert issubclass(gearman.GearmanClient, LegacyClientMixin)
    assert issubclass(gearman.GearmanWorker, LegacyWorkerMixin)
    for name in ("GearmanClient", "GearmanWorker", "GearmanAdminClient", "DataEncoder",
                 "PRIORITY_NONE", "PRIORITY_LOW", "PRIORITY_HIGH", "JOB_UNKNOWN", "JOB_PENDING",
                 "JOB_CREATED", "JOB_FAILED", "JOB_COMPLETE"):
        assert hasattr(gearman, name), name
    assert gearman.DataEncoder is DataEncoder
    assert gearman.GearmanAdminClient is GearmanAdminClient
    assert importlib.import_module("gearman.client").RANDOM_UNIQUE_BYTES == 16
    assert importlib.import_module("gearman.worker").POLL_TIMEOUT_IN_SECONDS == 60.0
    assert gearman.GearmanClient([], 8).random_unique_bytes == 8


def test_job_and_request_objects():
    job = GearmanJob(None, "H:x:1", "task", "u", b"data")
    assert job.to_dict() == {"task": "task", "job_handle": "H:x:1", "unique": "u", "data": b"data"}
    req = GearmanJobRequest(job, initial_priority=PRIORITY_LOW, background=True, max_attempts=3)
    assert req.job is job and req.gearman_job is job
    assert (req.state, req.priority, req.background) == (JOB_UNKNOWN, PRIORITY_LOW, True)
    assert (req.connection_attempts, req.max_connection_attempts) == (0, 3)
    assert (req.result, req.exception, req.status, req.timed_out) == (None, None, {}, False)
    assert list(req.data_updates) == [] and list(req.warning_updates) == []
    assert not req.complete
    req.state = "CREATED"               # legacy code sets the literal string
    assert req.complete
    fg = GearmanJobRequest(job)
    fg.state = JOB_CREATED
    assert not fg.complete
    fg.state = JOB_FAILED
    assert fg.complete
    fg.status = {"numerator": 1, "denominator": 2}
    assert list(fg.status_updates) == [(1, 2)] and fg.server_status is fg.status
    fg.reset()
    assert fg.state == JOB_UNKNOWN and job.handle is None and fg.status == {}
    assert "GearmanJobRequest" in repr(fg) and "GearmanJob" in repr(job)


# --- submitting ----------------------------------------------------------------------------

def test_submit_job_foreground(gm_client, legacy_worker, fn):
    legacy_worker({fn: lambda worker, job: job.data[::-1]})
    r = gm_client.submit_job(fn, b"hello")
    assert isinstance(r, GearmanJobRequest)
    assert (r.state, r.complete, r.timed_out, r.result) == (JOB_COMPLETE, True, False, b"olleh")
    assert r.connection_attempts == 1
    assert r.job.task == fn and r.job.data == b"hello"
    assert isinstance(r.job.handle, str) and r.job.handle.startswith("H:")
    assert isinstance(r.job.unique, str) and r.job.unique        # generated
    assert r.job.connection is gm_client.connection_list[0]
    # str payloads go out as UTF-8, results are bytes; bytes task names work too
    assert gm_client.submit_job(fn.encode(), "h\u00e9").result == "h\u00e9".encode()[::-1]


def test_submit_job_background(gearmand, gm_client, legacy_worker, fn):
    r = gm_client.submit_job(fn, b"bg", background=True)
    assert (r.state, r.complete, r.timed_out, r.result) == (JOB_CREATED, True, False, None)
    assert r.job.handle.startswith("H:")
    assert status_line(gearmand, fn) == f"{fn}\t1\t0\t0"
    seen = []
    legacy_worker({fn: lambda worker, job: seen.append(job.data) or b""})
    assert wait_until(lambda: seen == [b"bg"])
    # background with wait_until_complete=True still returns at JOB_CREATED
    r = gm_client.submit_job(fn, b"bg2", background=True, wait_until_complete=True)
    assert r.state == JOB_CREATED and r.complete


def test_priorities(gearmand, gm_client, legacy_worker, fn):
    for data, priority in [(b"l1", PRIORITY_LOW), (b"n1", PRIORITY_NONE), (b"h1", PRIORITY_HIGH),
                           (b"l2", PRIORITY_LOW), (b"h2", PRIORITY_HIGH)]:
        assert gm_client.submit_job(fn, data, priority=priority, background=True).state == JOB_CREATED
    seen = []
    legacy_worker({fn: lambda worker, job: seen.append(job.data) or b""})
    assert wait_until(lambda: len(seen) == 5)
    assert seen == [b"h1", b"h2", b"n1", b"l1", b"l2"]
    # foreground priorities run too
    assert gm_client.submit_job(fn, b"x", priority=PRIORITY_HIGH).state == JOB_COMPLETE
    assert gm_client.submit_job(fn, b"y", priority=PRIORITY_LOW).state == JOB_COMPLETE
    with pytest.raises(KeyError):
        gm_client.submit_job(fn, b"z", priority="URGENT")


def test_unique_coalesces_background_jobs(gearmand, gm_client, fn):
    a = gm_client.submit_job(fn, b"one", unique="same-key", background=True)
    b = gm_client.submit_job(fn, b"two", unique=b"same-key", background=True)
    assert a.job.handle == b.job.handle
    assert a.job.unique == "same-key"
    assert status_line(gearmand, fn) == f"{fn}\t1\t0\t0"
    # '-' is sent as is: gearmand coalesces on the data
    e = gm_client.submit_job(fn, b"same data", unique="-", background=True)
    f = gm_client.submit_job(fn, b"same data", unique="-", background=True)
    assert e.job.handle == f.job.handle and e.job.unique == "-"
    c = gm_client.submit_job(fn, b"three", background=True)      # generated unique
    d = gm_client.submit_job(fn, b"three", background=True, unique="")
    assert len({a.job.handle, c.job.handle, d.job.handle, e.job.handle}) == 4
    assert status_line(gearmand, fn) == f"{fn}\t4\t0\t0"
    assert c.job.unique != d.job.unique
    assert "same-key" in {u["unique"] for u in GearmanAdminClient([gearmand.address]).get_unique_jobs()}


def test_same_unique_twice_in_the_foreground_from_one_client(gm_client, legacy_worker, fn):
    release = threading.Event()
    runs = []

    def slow(worker, job):
        runs.append(job.data)
        release.wait(10)
        return b"shared"

    legacy_worker({fn: slow})
    reqs = gm_client.submit_multiple_jobs(
        [{"task": fn, "data": b"a", "unique": "k"}, {"task": fn, "data": b"b", "unique": "k"}],
        wait_until_complete=False)
    assert [r.state for r in reqs] == [JOB_CREATED, JOB_CREATED]
    assert reqs[0].job.handle == reqs[1].job.handle
    release.set()
    gm_client.wait_until_jobs_completed(reqs, poll_timeout=10)
    assert [r.result for r in reqs] == [b"shared", b"shared"] and runs == [b"a"]


def test_wait_until_complete_false_then_wait_until_jobs_completed(gm_client, legacy_worker, fn):
    go = threading.Event()
    legacy_worker({fn: lambda worker, job: go.wait(10) and job.data.upper()})
    r = gm_client.submit_job(fn, b"abc", wait_until_complete=False)
    assert (r.state, r.complete, r.timed_out) == (JOB_CREATED, False, False)
    assert r.job.handle.startswith("H:")
    go.set()
    out = gm_client.wait_until_jobs_completed([r], poll_timeout=10)
    assert out == [r]
    assert (r.state, r.result, r.timed_out) == (JOB_COMPLETE, b"ABC", False)


def test_poll_timeout_returns_timed_out_requests(gearmand, fn):
    c = GearmanClient([gearmand.address])
    t0 = time.monotonic()
    r = c.submit_job(fn, b"nobody works this", poll_timeout=0.3)
    assert time.monotonic() - t0 < 5
    assert (r.state, r.timed_out, r.complete) == (JOB_CREATED, True, False)
    reqs = c.submit_multiple_jobs([{"task": fn, "data": b"%d" % i} for i in range(5)],
                                  poll_timeout=0.2)
    assert all(x.timed_out and x.state == JOB_CREATED for x in reqs)
    # the docs' recipe: submit the timed-out requests again -- nothing is re-sent
    again = c.submit_multiple_requests(reqs, wait_until_complete=False, poll_timeout=1)
    assert all(x.state == JOB_CREATED and not x.timed_out for x in again)
    assert all(x.connection_attempts == 1 for x in again)
    # a worker shows up: waiting again on the same requests resumes and completes them
    w = GearmanWorker([gearmand.address])
    w.register_task(fn, lambda worker, job: b"late:" + job.data)
    done = threading.Event()
    w.after_poll = lambda any_activity: not done.is_set()
    th = threading.Thread(target=w.work, kwargs={"poll_timeout": 0.2}, daemon=True)
    th.start()
    try:
        c.wait_until_jobs_completed([r] + reqs, poll_timeout=10)
        assert r.state == JOB_COMPLETE and r.result == b"late:nobody works this" and not r.timed_out
        assert [x.result for x in reqs] == [b"late:%d" % i for i in range(5)]
    finally:
        done.set()
        w.stop()
        th.join(10)
        w.shutdown()
        c.shutdown()


def test_submit_multiple_jobs_pipelined(gm_client, legacy_worker, fn):
    legacy_worker({fn: lambda worker, job: job.data + b"!"})
    jobs = [{"task": fn, "data": b"job-%d" % i} for i in range(3000)]
    reqs = gm_client.submit_multiple_jobs(jobs, poll_timeout=60)
    assert len(reqs) == 3000
    assert all(r.state == JOB_COMPLETE and not r.timed_out for r in reqs)
    assert [r.result for r in reqs] == [b"job-%d!" % i for i in range(3000)]
    assert len({r.job.handle for r in reqs}) == 3000
    # acceptance only (the barrier path), foreground and background, tuples and sets
    fg = gm_client.submit_multiple_jobs(tuple(jobs[:500]), wait_until_complete=False)
    assert all(r.state in (JOB_CREATED, JOB_COMPLETE) for r in fg)
    bg = gm_client.submit_multiple_jobs(jobs[:500], background=True, wait_until_complete=False)
    assert all(r.state == JOB_CREATED and r.complete for r in bg)
    gm_client.wait_until_jobs_completed(fg, poll_timeout=60)
    assert all(r.state == JOB_COMPLETE for r in fg)
    with pytest.raises(TypeError):
        gm_client.submit_multiple_jobs(iter(jobs))
    # a background key in the dicts is ignored: background is per call
    r, = gm_client.submit_multiple_jobs([{"task": fn, "data": b"k", "background": True}])
    assert r.state == JOB_COMPLETE and not r.background


def test_submit_multiple_requests_and_wait_until_jobs_accepted(gm_client, legacy_worker, fn):
    legacy_worker({fn: lambda worker, job: b"r"})
    reqs = [GearmanJobRequest(GearmanJob(None, None, fn, None, b"d%d" % i)) for i in range(10)]
    out = gm_client.wait_until_jobs_accepted(reqs, poll_timeout=10)
    assert out is reqs
    assert all(r.state in (JOB_CREATED, JOB_COMPLETE) and r.job.handle for r in reqs)
    gm_client.wait_until_jobs_completed(reqs, poll_timeout=10)
    assert all(r.result == b"r" for r in reqs)
    more = [GearmanJobRequest(GearmanJob(None, None, fn, "u-%d" % i, b"x"), background=True)
            for i in range(3)]
    assert gm_client.submit_multiple_requests(more) == more
    assert all(r.state == JOB_CREATED for r in more)


def test_updates_from_the_worker(gm_client, legacy_worker, fn):
    def work(worker, job):
        worker.send_job_data(job, b"d1")
        worker.send_job_warning(job, b"w1")
        worker.send_job_status(job, 3, 10)
        worker.send_job_data(job, "d2")
        worker.send_job_status(job, 7.0, 10)
        return b"done"

    legacy_worker({fn: work})
    r = gm_client.submit_job(fn, b"x", poll_timeout=10)
    assert r.state == JOB_COMPLETE and r.result == b"done"
    assert list(r.data_updates) == [b"d1", b"d2"]
    assert list(r.warning_updates) == [b"w1"]
    assert r.status["handle"] == r.job.handle
    assert (r.status["known"], r.status["running"]) == (True, True)
    assert (r.status["numerator"], r.status["denominator"]) == (7, 10)
    assert r.status["time_received"] <= time.time()


def test_send_job_failure_exception_and_complete(gm_client, legacy_worker, fn):
    def work(worker, job):
        if job.data == b"fail":
            worker.send_job_failure(job)
        elif job.data == b"exc":
            worker.send_job_exception(job, b"boom")
        elif job.data == b"early":
            worker.send_job_complete(job, b"explicit")
            return b"ignored"
        return b"stray complete is not sent"     # the job already ended

    legacy_worker({fn: work})
    r = gm_client.submit_job(fn, b"fail", poll_timeout=10)
    assert (r.state, r.exception, r.result, r.complete) == (JOB_FAILED, None, None, True)
    r = gm_client.submit_job(fn, b"exc", poll_timeout=10)
    assert (r.state, r.exception) == (JOB_FAILED, b"boom")
    r = gm_client.submit_job(fn, b"early", poll_timeout=10)
    assert (r.state, r.result) == (JOB_COMPLETE, b"explicit")
    # the worker is still serving after all of that
    assert gm_client.submit_job(fn, b"fail", poll_timeout=10).state == JOB_FAILED


def test_callback_exception_default_fails_the_job_and_worker_goes_on(gm_client, legacy_worker, fn,
                                                                      caplog):
    def work(worker, job):
        if job.data == b"raise":
            raise ValueError("bad input")
        if job.data == b"int":
            return 42                         # the default encoder refuses ints
        if job.data == b"none":
            return None                       # python-gearman's docs do this
        return b"fine"

    legacy_worker({fn: work})
    r = gm_client.submit_job(fn, b"raise", poll_timeout=10)
    assert (r.state, r.exception) == (JOB_FAILED, None)
    assert "bad input" in caplog.text
    assert gm_client.submit_job(fn, b"int", poll_timeout=10).state == JOB_FAILED
    r = gm_client.submit_job(fn, b"none", poll_timeout=10)
    assert (r.state, r.result) == (JOB_COMPLETE, b"")
    assert gm_client.submit_job(fn, b"ok", poll_timeout=10).result == b"fine"


def test_on_job_exception_override(gm_client, legacy_worker, fn):
    seen = []

    class Reporting(GearmanWorker):
        def on_job_exception(self, current_job, exc_info):
            seen.append((current_job.task, exc_info[0]))
            self.send_job_exception(current_job, "%s" % exc_info[1])
            return False

    def work(worker, job):
        raise RuntimeError("exploded")

    legacy_worker({fn: work}, cls=Reporting)
    r = gm_client.submit_job(fn, b"x", poll_timeout=10)
    assert (r.state, r.exception) == (JOB_FAILED, b"exploded")
    assert seen == [(fn, RuntimeError)]


def test_on_job_execute_and_complete_overrides(gm_client, legacy_worker, fn):
    calls = []

    class Hooked(GearmanWorker):
        def on_job_execute(self, current_job):
            calls.append(("execute", current_job.handle))
            return super().on_job_execute(current_job)

        def on_job_complete(self, current_job, job_result):
            calls.append(("complete", job_result))
            return super().on_job_complete(current_job, job_result + b"+hook")

    legacy_worker({fn: lambda worker, job: b"res"}, cls=Hooked)
    r = gm_client.submit_job(fn, b"x", poll_timeout=10)
    assert r.result == b"res+hook"
    assert calls == [("execute", r.job.handle), ("complete", b"res")]


def test_worker_job_object(gm_client, legacy_worker, fn):
    got = []

    def work(worker, job):
        got.append((worker, job))
        return b""

    w = legacy_worker({fn: work})
    r = gm_client.submit_job(fn, b"\x00bin\xff", unique="my-unique", poll_timeout=10)
    (worker, job), = got
    assert worker is w
    assert isinstance(job, GearmanJob)
    assert (job.task, job.unique, job.data) == (fn, "my-unique", b"\x00bin\xff")
    assert job.handle == r.job.handle and isinstance(job.handle, str)
    assert isinstance(job.connection, GearmanConnection) and job.connection.connected
    assert job.to_dict()["job_handle"] == job.handle


def test_register_task_with_str_and_bytes_names(gearmand, gm_client, legacy_worker, fn):
    as_str, as_bytes = fn + "-s", fn + "-b"
    w = legacy_worker({as_str: lambda worker, job: b"str", as_bytes.encode(): lambda worker, job: b"bytes"})
    assert gm_client.submit_job(as_str, b"", poll_timeout=10).result == b"str"
    assert gm_client.submit_job(as_bytes, b"", poll_timeout=10).result == b"bytes"
    assert gm_client.submit_job(as_str.encode(), b"", poll_timeout=10).result == b"str"
    assert set(w.worker_abilities) == {as_str, as_bytes}
    idle = GearmanWorker([gearmand.address])
    assert idle.register_task(b"x", lambda worker, job: b"") == b"x"
    assert idle.unregister_task(b"x") == b"x"
    assert idle.worker_abilities == {}
    with pytest.raises(errors.InvalidTypeError):
        idle.register_task("y", "not callable")
    idle.shutdown()


def test_unregister_task(gearmand, gm_client, legacy_worker, fn):
    other = fn + "-other"
    w = legacy_worker({fn: lambda worker, job: b"a", other: lambda worker, job: b"b"})
    assert gm_client.submit_job(other, b"", poll_timeout=10).result == b"b"
    w.unregister_task(other)
    assert gm_client.submit_job(fn, b"", poll_timeout=10).result == b"a"   # abilities re-sent
    r = gm_client.submit_job(other, b"", poll_timeout=0.5)
    assert r.timed_out and r.state == JOB_CREATED


def test_data_encoder_json_round_trip(gearmand, legacy_worker, fn):
    def work(worker, job):
        assert job.data == {"numbers": [1, 2, 3], "name": "\u00e9"}
        worker.send_job_data(job, {"progress": 0.5})
        worker.send_job_warning(job, ["careful"])
        return {"sum": sum(job.data["numbers"]), "name": job.data["name"]}

    legacy_worker({fn: work}, cls=JSONWorker)
    c = JSONClient([gearmand.address])
    try:
        r = c.submit_job(fn, {"numbers": [1, 2, 3], "name": "\u00e9"}, poll_timeout=10)
        assert r.state == JOB_COMPLETE
        assert r.result == {"sum": 6, "name": "\u00e9"}
        assert list(r.data_updates) == [{"progress": 0.5}]
        assert list(r.warning_updates) == [["careful"]]
        assert r.job.data == {"numbers": [1, 2, 3], "name": "\u00e9"}   # not encoded in place
    finally:
        c.shutdown()
    assert NoopEncoder.encode(b"x") == b"x" and NoopEncoder.decode(b"x") == b"x"
    with pytest.raises(TypeError):
        NoopEncoder.encode(3)
    with pytest.raises(NotImplementedError):
        DataEncoder.encode("x")


def test_get_job_status(gearmand, gm_client, legacy_worker, fn):
    r = gm_client.submit_job(fn, b"queued", background=True)
    assert gm_client.get_job_status(r) is r
    assert (r.status["known"], r.status["running"]) == (True, False)
    assert r.status["handle"] == r.job.handle and not r.timed_out

    started, release = threading.Event(), threading.Event()

    def work(worker, job):
        worker.send_job_status(job, 3, 14)
        started.set()
        release.wait(10)
        return b""

    legacy_worker({fn: work})
    assert started.wait(10)
    assert wait_until(lambda: gm_client.get_job_status(r).status["numerator"] == 3)
    assert (r.status["known"], r.status["running"], r.status["denominator"]) == (True, True, 14)
    assert "last_time_received" not in r.status
    # the docs' recipe: a request built by hand around a known handle
    job = GearmanJob(gm_client.connection_list[0], r.job.handle, None, None, None)
    manual = GearmanJobRequest(job)
    manual.state = "CREATED"
    other = GearmanClient([gearmand.address])
    try:
        job = GearmanJob(other.connection_list[0], r.job.handle, None, None, None)
        by_other = GearmanJobRequest(job)
        statuses = other.get_job_statuses([by_other], poll_timeout=5)
        assert statuses[0].status["known"] and statuses[0].status["numerator"] == 3
    finally:
        other.shutdown()
    release.set()
    assert wait_until(lambda: not gm_client.get_job_status(manual).status["known"])
    assert manual.status["running"] is False
    with pytest.raises(KeyError):
        gm_client.get_job_status(GearmanJobRequest(GearmanJob(None, None, fn, None, b"")))


def test_queue_full_fails_the_request_instead_of_hanging(gearmand, gm_client, fn):
    admin = GearmanAdminClient([gearmand.address])
    ok = gm_client.submit_job(fn, b"1", background=True, poll_timeout=10)
    assert admin.send_maxqueue(fn, 1) == "OK"       # gearmand ignores it for unknown functions
    full = gm_client.submit_job(fn, b"2", background=True, poll_timeout=10)
    assert ok.state == JOB_CREATED
    # refused, so not queued: python-gearman's ``complete`` (background: accepted) is False
    assert full.state == JOB_FAILED and not full.timed_out and not full.complete
    assert isinstance(full.error, errors.QueueFullError)
    fg = gm_client.submit_job(fn, b"3", poll_timeout=10)
    assert fg.state == JOB_FAILED and isinstance(fg.error, errors.QueueFullError)
    admin.send_maxqueue(fn, 0)


def test_server_unavailable(free_port, fn):
    c = GearmanClient([f"127.0.0.1:{free_port}"])
    with pytest.raises(errors.ServerUnavailable):
        c.submit_job(fn, b"x")
    with pytest.raises(errors.ServerUnavailable):
        c.submit_multiple_jobs([{"task": fn, "data": b"x"}], background=True)
    with pytest.raises(errors.ServerUnavailable):
        GearmanClient().submit_job(fn, b"x")          # no server at all
    w = GearmanWorker([f"127.0.0.1:{free_port}"])
    w.register_task(fn, lambda worker, job: b"")
    with pytest.raises(errors.ServerUnavailable):
        w.work(poll_timeout=0.2)
    with pytest.raises(errors.ServerUnavailable):
        GearmanAdminClient([f"127.0.0.1:{free_port}"]).get_status()


def test_failover_to_the_live_server(gearmand, legacy_worker, free_port, fn):
    legacy_worker({fn: lambda worker, job: b"ok"})
    c = GearmanClient([f"127.0.0.1:{free_port}", gearmand.address])
    try:
        reqs = c.submit_multiple_jobs([{"task": fn, "data": b"%d" % i} for i in range(20)],
                                      poll_timeout=20)
        assert all(r.result == b"ok" for r in reqs)
        assert {r.job.connection.gearman_port for r in reqs} == {gearmand.port}
    finally:
        c.shutdown()


def test_lost_connection_after_sending_exceeds_attempts(fn):
    """A peer that reads the submission and hangs up: the outcome is unknown."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    listener.settimeout(0.1)
    port = listener.getsockname()[1]
    done = threading.Event()

    def serve():
        while not done.is_set():
            try:
                conn, _ = listener.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            try:
                conn.settimeout(5)
                conn.recv(65536)
            except OSError:
                pass
            conn.close()

    th = threading.Thread(target=serve, daemon=True)
    th.start()
    try:
        c = GearmanClient([f"127.0.0.1:{port}"])
        with pytest.raises(errors.ExceededConnectionAttempts):
            c.submit_job(fn, b"x", poll_timeout=10)
        req = GearmanJobRequest(GearmanJob(None, None, fn, None, b"x"), max_attempts=2)
        with pytest.raises(errors.ExceededConnectionAttempts):
            c.submit_multiple_requests([req], poll_timeout=10)
        assert req.connection_attempts == 2
    finally:
        done.set()
        th.join(5)
        listener.close()


# --- worker loop --------------------------------------------------------------------------

def test_after_poll_stops_the_loop(gearmand, gm_client, fn):
    polls = []

    class Counting(GearmanWorker):
        def after_poll(self, any_activity):
            polls.append(any_activity)
            # python-gearman 2.0.2 polls twice per job (job assigned, job done: issue #49)
            return len([p for p in polls if p]) < 6

    for i in range(3):
        gm_client.submit_job(fn, b"%d" % i, background=True)
    w = Counting([gearmand.address])
    seen = []
    w.register_task(fn, lambda worker, job: seen.append(job.data) or b"")
    assert w.work(poll_timeout=5) is None             # returns once after_poll said False
    assert seen == [b"0", b"1", b"2"]
    assert polls[0] is False and polls.count(True) == 6
    w.shutdown()


def test_after_poll_idle_rounds_and_after_job(gearmand, gm_client, fn):
    idle = []

    class Idle(GearmanWorker):
        def after_poll(self, any_activity):
            idle.append(any_activity)
            return len(idle) < 3

    w = Idle([gearmand.address])
    w.register_task(fn, lambda worker, job: b"")
    t0 = time.monotonic()
    w.work(poll_timeout=0.1)
    assert idle == [False, False, False] and time.monotonic() - t0 < 5
    w.shutdown()

    class OneJob(GearmanWorker):
        def after_job(self):
            return False

    gm_client.submit_job(fn, b"a", background=True)
    gm_client.submit_job(fn, b"b", background=True)
    w = OneJob([gearmand.address])
    seen = []
    w.register_task(fn, lambda worker, job: seen.append(job.data) or b"")
    w.work(poll_timeout=5)
    assert seen == [b"a"]
    w.shutdown()


def test_work_after_shutdown(gearmand, gm_client, fn):
    seen = []

    class OneJob(GearmanWorker):
        def after_job(self):
            return False

    w = OneJob([gearmand.address])
    w.register_task(fn, lambda worker, job: seen.append(job.data) or b"")
    gm_client.submit_job(fn, b"1", background=True)
    w.work(poll_timeout=5)
    w.shutdown()
    gm_client.submit_job(fn, b"2", background=True)
    if hasattr(w._engine, "disconnect"):
        w.work(poll_timeout=5)               # python-gearman reconnected here
        assert seen == [b"1", b"2"]
    else:
        with pytest.raises(errors.InvalidWorkerState):
            w.work(poll_timeout=5)           # final, rather than a spinning retry loop
        assert seen == [b"1"]


def test_stop_from_another_thread_ends_work(gearmand, fn):
    w = GearmanWorker([gearmand.address])
    w.register_task(fn, lambda worker, job: b"")
    th = threading.Thread(target=w.work, kwargs={"poll_timeout": None}, daemon=True)
    th.start()
    time.sleep(0.3)
    w.stop()
    th.join(5)
    assert not th.is_alive()
    w.shutdown()


def test_set_client_id_is_listed_by_the_admin_client(gearmand, legacy_worker, fn):
    legacy_worker({fn: lambda worker, job: b""}, client_id="legacy-worker-" + fn)
    admin = GearmanAdminClient([gearmand.address])
    assert wait_until(lambda: any(w["client_id"] == "legacy-worker-" + fn
                                  for w in admin.get_workers()))
    me = [w for w in admin.get_workers() if w["client_id"] == "legacy-worker-" + fn][0]
    assert me["tasks"] == (fn,) and me["ip"] == "127.0.0.1" and me["file_descriptor"].isdigit()
    with pytest.raises(errors.InvalidArgumentError):
        GearmanWorker([gearmand.address]).set_client_id("")


def test_worker_serves_several_servers(gearmand_factory, fn):
    a, b = gearmand_factory(), gearmand_factory()
    for s in (a, b):
        c = GearmanClient([s.address])
        c.submit_multiple_jobs([{"task": fn, "data": s.address.encode()}] * 3, background=True)
        c.shutdown()
    seen = []

    class Six(GearmanWorker):
        def after_job(self):
            return len(seen) < 6

    w = Six([a.address, b.address])
    w.register_task(fn, lambda worker, job: seen.append(job.data) or b"")
    w.work(poll_timeout=5)
    assert sorted(seen) == sorted([a.address.encode()] * 3 + [b.address.encode()] * 3)
    w.shutdown()


def test_mixing_the_two_surfaces_on_one_worker(gearmand, gm_client, fn):
    pecl_fn, legacy_fn = fn + "-pecl", fn + "-legacy"
    # python-gearman loop serving a PECL addFunction callback too
    w = GearmanWorker([gearmand.address])
    w.addFunction(pecl_fn, lambda job, ctx: b"pecl:" + job.workload())
    w.register_task(legacy_fn, lambda worker, job: b"legacy:" + job.data)
    gm_client.submit_job(pecl_fn, b"1", background=True)
    gm_client.submit_job(legacy_fn, b"2", background=True)
    count = []
    w.after_job = lambda: (count.append(1), len(count) < 2)[1]
    w.work(poll_timeout=5)
    assert len(count) == 2
    w.shutdown()
    # PECL style worker (no host list): work() handles one job and returns a bool,
    # and the job object for a register_task callback is python-gearman's
    p = GearmanWorker()
    p.addServer("127.0.0.1", gearmand.port)
    p.setTimeout(5000)
    got = []
    p.register_task(legacy_fn, lambda worker, job: got.append(job) or b"done")
    t = threading.Thread(target=lambda: got.append(gm_client.submit_job(legacy_fn, b"3",
                                                                        poll_timeout=10)))
    t.start()
    assert p.work() is True
    t.join(10)
    job, req = got
    assert isinstance(job, GearmanJob) and job.data == b"3"
    assert req.result == b"done"
    p.shutdown()


# --- admin client --------------------------------------------------------------------------

def test_admin_client_every_command(gearmand, legacy_worker, gm_client, fn):
    admin = GearmanAdminClient([gearmand.address], poll_timeout=5)
    assert admin.connection_list[0].gearman_port == gearmand.port
    assert isinstance(admin.ping_server(), float)

    queued = gm_client.submit_job(fn, b"q", unique="admin-u-" + fn, background=True)
    status = {s["task"]: s for s in admin.get_status()}
    assert status[fn] == {"task": fn, "queued": 1, "running": 0, "workers": 0}
    assert isinstance(admin.get_status(), tuple)

    version = admin.get_version()
    assert version.startswith("OK ") and not version.endswith("\r")
    pid = admin.get_pid()
    assert pid == f"OK {gearmand.pid}"

    jobs = {j["handle"]: j for j in admin.get_jobs()}
    assert queued.job.handle in jobs
    assert set(jobs[queued.job.handle]) == {"handle", "queued", "canceled", "enabled"}
    assert {"unique": "admin-u-" + fn} in admin.get_unique_jobs()

    assert admin.cancel_job(queued.job.handle) == "OK"
    assert admin.cancel_job("H:nonexistent:1") == "ERR UNKNOWN_JOB"

    assert admin.send_maxqueue(fn, 10) == "OK"          # gearmand answers 'OK\r\n'
    assert admin.send_maxqueue(fn.encode(), 0) == "OK"

    legacy_worker({fn: lambda worker, job: b""}, client_id="admin-test-" + fn)
    assert wait_until(lambda: {s["task"]: s for s in admin.get_status()}[fn]["workers"] == 1)
    workers = admin.get_workers()
    assert isinstance(workers, tuple) and all(isinstance(w["tasks"], tuple) for w in workers)
    assert any(w["client_id"] == "admin-test-" + fn and w["tasks"] == (fn,) for w in workers)
    assert any(w["tasks"] == () for w in workers)      # the admin connection itself

    with pytest.raises(errors.InvalidArgumentError):
        admin.send_maxqueue("two words", 1)
    admin.shutdown()
    assert admin.ping_server() > 0                      # reconnects after shutdown()


def test_admin_send_shutdown_returns_none(gearmand_factory):
    server = gearmand_factory()
    admin = GearmanAdminClient([server.address])
    assert admin.send_shutdown() is None
    assert admin.send_shutdown(graceful=False) is None
    # gearmand >= 1.1.15 ignores it (ERR UNKNOWN_COMMAND); older ones stop
    if server.is_running():
        assert admin.get_version().startswith("OK")


def test_admin_client_hosts_and_timeout(gearmand):
    for host in (gearmand.address, [gearmand.address], [("127.0.0.1", gearmand.port)],
                 {"host": "127.0.0.1", "port": gearmand.port}):
        with GearmanAdminClient(host) as admin:
            assert admin.get_version().startswith("OK")
    with pytest.raises(errors.InvalidArgumentError):
        GearmanAdminClient([gearmand.address, gearmand.address])
    with pytest.raises(ValueError):
        GearmanAdminClient()
    # a server that accepts but never answers
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(1)
    try:
        admin = GearmanAdminClient([f"127.0.0.1:{silent.getsockname()[1]}"], poll_timeout=0.3)
        with pytest.raises(errors.InvalidAdminClientState):
            admin.get_status()
        with pytest.raises(errors.InvalidAdminClientState):
            admin.ping_server()
    finally:
        silent.close()
    assert ECHO_STRING == "ping? pong!"


# --- gearman.protocol ------------------------------------------------------------------

def _sample_args(cmd):
    return {name: (b"d\x00ta" if name == "data" else name.encode() + b"-%d" % cmd)
            for name in protocol.GEARMAN_PARAMS_FOR_COMMAND[cmd]}


@pytest.mark.parametrize("cmd", sorted(c for c in protocol.GEARMAN_PARAMS_FOR_COMMAND
                                       if c != protocol.GEARMAN_COMMAND_TEXT_COMMAND))
def test_protocol_binary_round_trip(cmd):
    args = _sample_args(cmd)
    for is_response in (False, True):
        packed = protocol.pack_binary_command(cmd, args, is_response=is_response)
        magic = protocol.MAGIC_RES_STRING if is_response else protocol.MAGIC_REQ_STRING
        assert packed[:4] == magic and len(packed) >= protocol.COMMAND_HEADER_SIZE
        parsed = protocol.parse_binary_command(packed + b"trailing", is_response=is_response)
        assert parsed == (cmd, args, len(packed))
        assert protocol.parse_binary_command(packed[:-1] if len(packed) > 12 else packed[:5],
                                             is_response=is_response) == (None, None, 0)
    assert protocol.get_command_name(cmd).startswith("GEARMAN_COMMAND_")


def test_protocol_details():
    p = protocol
    assert (p.GEARMAN_COMMAND_SUBMIT_JOB, p.GEARMAN_COMMAND_WORK_COMPLETE,
            p.GEARMAN_COMMAND_SUBMIT_JOB_LOW_BG, p.GEARMAN_COMMAND_STATUS_RES_UNIQUE) == (7, 13, 34, 42)
    assert p.GEARMAN_COMMAND_TEXT_COMMAND == 9999 and p.COMMAND_HEADER_SIZE == 12
    assert p.NULL_CHAR == b"\x00" and p.MAGIC_REQ_STRING == b"\x00REQ"
    assert p.get_command_name(7) == "GEARMAN_COMMAND_SUBMIT_JOB"
    assert p.get_command_name(12345) == 12345
    assert p.GEARMAN_COMMAND_TO_NAME[9999] == "GEARMAN_COMMAND_TEXT_COMMAND"
    assert p.submit_cmd_for_background_priority(False, None) == 7
    assert p.submit_cmd_for_background_priority(True, "LOW") == 34
    assert p.submit_cmd_for_background_priority(True, "HIGH") == 32
    with pytest.raises(KeyError):
        p.submit_cmd_for_background_priority(False, "MEDIUM")
    # str arguments are UTF-8 on the wire; wire format matches the spec
    packed = p.pack_binary_command(7, {"task": "f", "unique": "u", "data": "x"})
    assert packed == b"\x00REQ\x00\x00\x00\x07\x00\x00\x00\x05f\x00u\x00x"
    with pytest.raises(errors.ProtocolError):
        p.pack_binary_command(7, {"task": b"f", "data": b"x"})             # missing unique
    with pytest.raises(errors.ProtocolError):
        p.pack_binary_command(7, {"task": b"f\x00", "unique": b"u", "data": b"x"})
    with pytest.raises(errors.ProtocolError):
        p.pack_binary_command(7, {"task": 1.5, "unique": b"u", "data": b"x"})
    with pytest.raises(errors.ProtocolError):
        p.pack_binary_command(9999, {"raw_text": b"status"})
    with pytest.raises(errors.ProtocolError):
        p.parse_binary_command(packed, is_response=True)                   # wrong magic
    with pytest.raises(errors.ProtocolError):
        p.parse_binary_command(b"\x00RES\x00\x00\x00\x63\x00\x00\x00\x00")  # command 99
    assert p.parse_binary_command(b"\x00RES") == (None, None, 0)
    # text commands
    assert p.pack_text_command(9999, {"raw_text": "status\n"}) == b"status\n"
    assert p.parse_text_command(b"status\n") == (9999, {"raw_text": "status"}, 7)
    assert p.parse_text_command(b"OK\r\nrest") == (9999, {"raw_text": "OK"}, 4)
    assert p.parse_text_command(b"no newline yet") == (None, None, 0)
    with pytest.raises(errors.ProtocolError):
        p.parse_text_command(b"bad\x00line\n")
    with pytest.raises(errors.ProtocolError):
        p.pack_text_command(7, {"raw_text": "x"})
    with pytest.raises(errors.ProtocolError):
        p.pack_text_command(9999, {})
    assert p.GEARMAN_SERVER_COMMAND_SHOW_UNIQUE_JOBS == "show unique jobs"


def test_protocol_packets_are_understood_by_gearmand(gearmand, fn):
    """Packets from pack_binary_command, parsed back from gearmand's answers."""
    with socket.create_connection(("127.0.0.1", gearmand.port), timeout=5) as s:
        s.sendall(protocol.pack_binary_command(
            protocol.GEARMAN_COMMAND_SUBMIT_JOB_BG, {"task": fn, "unique": "", "data": b"x"}))
        s.sendall(protocol.pack_binary_command(protocol.GEARMAN_COMMAND_ECHO_REQ, {"data": b"hi"}))
        buf = b""
        answers = []
        while len(answers) < 2:
            buf += s.recv(4096)
            while True:
                cmd, args, size = protocol.parse_binary_command(buf)
                if cmd is None:
                    break
                answers.append((cmd, args))
                buf = buf[size:]
    (c1, a1), (c2, a2) = answers
    assert c1 == protocol.GEARMAN_COMMAND_JOB_CREATED and a1["job_handle"].startswith(b"H:")
    assert (c2, a2) == (protocol.GEARMAN_COMMAND_ECHO_RES, {"data": b"hi"})


def test_util_helpers():
    from gearman import util
    sw = util.Stopwatch(None)
    assert sw.get_time_remaining() is None and sw.has_time_remaining()
    sw = util.Stopwatch(0)
    assert sw.get_time_remaining() == 0.0 and not sw.has_time_remaining()
    assert 0 < util.Stopwatch(10).get_time_remaining() <= 10
    assert util.disambiguate_server_parameter("h") == ("h", 4730)
    assert util.disambiguate_server_parameter("h:1") == ("h", 1)
    assert util.disambiguate_server_parameter(("h", 2)) == ("h", 2)
    assert util.unlist([]) is None and util.unlist([5]) == 5
    with pytest.raises(ValueError):
        util.unlist([1, 2])
    a, b = socket.socketpair()
    try:
        b.send(b"x")
        r, w, x = util.select([a], [], [], 1.0)
        assert r == [a]
    finally:
        a.close()
        b.close()


# --- identifiers, complete, the one admin stack (issue 17) ----------------------------------

def test_identifiers_serve_bytes_and_str_code():
    from gearman.job import Identifier
    job = GearmanJob(None, b"H:host:12", "resize", b"u-1", b"")
    for value, text in ((job.handle, "H:host:12"), (job.task, "resize"), (job.unique, "u-1")):
        assert type(value) is Identifier and isinstance(value, str)
        raw = text.encode()
        # bytes-style code (pygearman ports)
        assert value.decode() == text and type(value.decode()) is str
        assert value == raw and raw == value and not (value != raw)
        assert bytes(value) == raw and b"<%s>" % value == b"<" + raw + b">"
        assert value + b"!" == raw + b"!" and b"!" + value == b"!" + raw
        assert {raw: 1}[value] == 1 and {value: 1}[raw] == 1 and raw in {value}
        # str-style code (python-gearman 2.0.2 on Python 2)
        assert value == text and {text: 1}[value] == 1
        assert json.loads(json.dumps({"k": value})) == {"k": text}
        assert "%s" % value == text and value + "," == text + "," and "," + value == "," + text
        assert type(value + ",") is str
    assert job.to_dict()["job_handle"] == b"H:host:12"
    # not UTF-8: kept byte for byte
    odd = GearmanJob(None, None, b"\xff\xfe", None, None).task
    assert bytes(odd) == b"\xff\xfe" and odd == b"\xff\xfe"
    # the documented limit: a non-ASCII identifier hashes as its str only
    accented = GearmanJob(None, None, "caf\u00e9", None, None).task
    assert accented == "caf\u00e9".encode() and {"caf\u00e9": 1}[accented] == 1
    assert accented.decode() == "caf\u00e9"
    assert GearmanJob(None, None, None, None, None).handle is None
    # the PECL surface keeps plain str
    assert issubclass(Identifier, str)


@pytest.mark.parametrize("background", [False, True])
def test_complete_means_what_it_meant_in_python_gearman(background):
    """2.0.2: background -> ``state in (JOB_CREATED)``; foreground -> COMPLETE or FAILED."""
    expected = {JOB_UNKNOWN: False, "PENDING": False, JOB_CREATED: background,
                JOB_FAILED: not background, JOB_COMPLETE: not background}
    for state, complete in expected.items():
        r = GearmanJobRequest(GearmanJob(None, None, "t", None, b""), background=background)
        r.state = state
        assert r.complete is complete, (background, state)


def test_admin_client_is_a_view_on_gearman_admin(gearmand, fn):
    import gearman.admin
    admin = GearmanAdminClient([gearmand.address], poll_timeout=5)
    assert isinstance(admin._admin, gearman.admin.Admin)
    assert admin._admin.servers == [gearmand.address]
    for bad in ("H:x\0y", "two words", "line\nbreak", ""):
        with pytest.raises(errors.InvalidArgumentError):
            admin.cancel_job(bad)
    admin.poll_timeout = 3
    assert admin._admin.timeout == 3 and admin.admin_client_timeout == 3
    assert admin.get_version().startswith("OK ")
    admin.shutdown()


def test_legacy_worker_does_not_import_the_worker_module():
    import ast
    import inspect
    from gearman import _legacy_worker
    tree = ast.parse(inspect.getsource(_legacy_worker))
    imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    imported |= {a.name for node in ast.walk(tree) if isinstance(node, ast.Import) for a in node.names}
    from_gearman = {a.name for node in ast.walk(tree)
                    if isinstance(node, ast.ImportFrom) and node.module == "gearman" for a in node.names}
    assert "gearman.worker" not in imported and "worker" not in from_gearman


def test_worker_loop_internals_of_python_gearman(gearmand, gm_client, fn):
    """establish_worker_connections / establish_connection / handler maps / set_job_lock."""
    w = GearmanWorker([gearmand.address, "127.0.0.1:1"])
    up, down = w.connection_list
    assert w.establish_worker_connections() == [up]
    assert sorted(c.gearman_port for c in w.randomized_connections) == sorted([gearmand.port, 1])
    with pytest.raises(errors.ConnectionError):
        w.establish_connection(down)
    with pytest.raises(AssertionError):
        w.establish_connection(GearmanConnection("elsewhere", 4730))
    assert w.handler_to_connection_map == {} and not w.has_job_lock()
    assert w.set_job_lock(object(), True) is False        # not one of this worker's handlers
    w.shutdown()
    c = GearmanClient([gearmand.address])
    [conn] = c.connection_list
    assert not conn.connected
    assert c.establish_connection(conn) is conn and conn.connected
    [(view, handler)] = c.connection_to_handler_map.items()
    assert view == conn and c.handler_to_connection_map == {handler: conn}
    assert handler.connection_manager is c
    c.shutdown()
    with pytest.raises(errors.ServerUnavailable):
        c.poll_connections_until_stopped(c.connection_list, lambda any_activity: True, timeout=1)
