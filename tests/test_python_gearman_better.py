"""python-gearman drop-in, the items of issue 5 not covered by test_python_gearman.py.

* ``max_retries``: a request whose connection broke before the server
  accepted it is sent again, each send counting in ``connection_attempts``;
  beyond ``max_connection_attempts`` -> ExceededConnectionAttempts.  A job the
  server had accepted is never re-sent behind the caller's back.
* ``data_encoder``: applied exactly where python-gearman 2.0.2 applied it
  (client: SUBMIT_JOB data out; WORK_DATA / WORK_WARNING / WORK_COMPLETE /
  WORK_EXCEPTION in.  Worker: JOB_ASSIGN data in; WORK_DATA / WORK_WARNING /
  WORK_COMPLETE / WORK_EXCEPTION out.  Admin client: nowhere) and to nothing
  else (task names, uniques, handles, status numbers, admin text).
* "Better than the forks" (docs/migration.md, section 2), one test each.

The connection failures are real: a proxy between client and gearmand drops
or cuts connections (``_cut_proxy.py``), or gearmand is killed or restarted.
"""
import gc
import importlib.util
import logging
import pathlib
import socket
import struct
import threading
import time
import tracemalloc
import uuid
import weakref

import pytest

import gearman
from gearman import errors
from gearman.constants import JOB_COMPLETE, JOB_CREATED, JOB_FAILED, JOB_UNKNOWN
from gearman.testing import wait_until

_spec = importlib.util.spec_from_file_location(
    "cygearman_tests_cut_proxy", pathlib.Path(__file__).with_name("_cut_proxy.py"))
cut_proxy = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(cut_proxy)


@pytest.fixture
def fn():
    return "pgb-" + uuid.uuid4().hex[:12]


@pytest.fixture
def workers():
    """``workers.start(host_list, {task: cb}, cls=GearmanWorker, poll_timeout=0.5)``: a
    python-gearman ``work()`` loop in a thread; stopped, joined and checked at the end."""
    running = []

    class Workers:
        def start(self, host_list, tasks, cls=gearman.GearmanWorker, poll_timeout=0.5):
            w = cls(host_list)
            for name, cb in tasks.items():
                w.register_task(name, cb)
            failures = []

            def loop():
                try:
                    w.work(poll_timeout=poll_timeout)
                except BaseException as exc:
                    failures.append(exc)

            th = threading.Thread(target=loop, daemon=True)
            th.start()
            running.append((w, th, failures))
            return w, th, failures

    yield Workers()
    for w, th, failures in running:
        deadline = time.monotonic() + 10
        while th.is_alive() and time.monotonic() < deadline:
            w.stop()
            th.join(0.2)
        assert not th.is_alive(), "worker thread did not stop"
        w.shutdown()
        assert not failures, failures


def registered(server, task):
    def check():
        for line in server.admin("status").splitlines():
            parts = line.split("\t")
            if parts[0] == task and int(parts[3]) >= 1:
                return True
        return False
    return wait_until(check)


def raw_packets(sock, count, timeout=10.0):
    """Read ``count`` binary packets (command, [args]) from a raw socket."""
    sock.settimeout(timeout)
    buf, out = b"", []
    while len(out) < count:
        while len(buf) >= 12:
            magic, cmd, size = struct.unpack(">4sII", buf[:12])
            if len(buf) < 12 + size:
                break
            out.append((cmd, buf[12:12 + size].split(b"\0")))
            buf = buf[12 + size:]
        if len(out) >= count:
            break
        chunk = sock.recv(65536)
        if not chunk:
            break
        buf += chunk
    return out


def raw_request(cmd, *args):
    body = b"\0".join(args)
    return struct.pack(">4sII", b"\0REQ", cmd, len(body)) + body


# --- max_retries ---------------------------------------------------------------------------

@pytest.mark.parametrize("max_retries, dropped, outcome", [
    (0, 1, "exceeded"), (1, 1, "complete"), (2, 2, "complete"), (1, 2, "exceeded"),
])
def test_max_retries_resends_a_request_lost_before_acceptance(gearmand, workers, fn,
                                                               max_retries, dropped, outcome):
    """The proxy reads the first ``dropped`` connections' requests and hangs up."""
    workers.start([gearmand.address], {fn: lambda worker, job: b"r:" + job.data})
    assert registered(gearmand, fn)
    proxy = cut_proxy.CutProxy(gearmand.port, drop_first=dropped)
    c = gearman.GearmanClient([proxy.address])
    try:
        if outcome == "exceeded":
            with pytest.raises(errors.ExceededConnectionAttempts):
                c.submit_job(fn, b"x", max_retries=max_retries, poll_timeout=10)
            assert proxy.accepted == max_retries + 1
        else:
            r = c.submit_job(fn, b"x", max_retries=max_retries, poll_timeout=10)
            assert (r.state, r.result) == (JOB_COMPLETE, b"r:x")
            assert (r.connection_attempts, r.max_connection_attempts) == (dropped + 1, max_retries + 1)
            assert proxy.accepted == dropped + 1
    finally:
        c.shutdown()
        proxy.close()


def test_max_retries_for_a_batch_sends_each_job_once_more(gearmand_factory, fn):
    server = gearmand_factory()
    proxy = cut_proxy.CutProxy(server.port, drop_first=1)
    c = gearman.GearmanClient([proxy.address])
    try:
        reqs = c.submit_multiple_jobs([{"task": fn, "data": b"%d" % i} for i in range(200)],
                                      background=True, max_retries=1, poll_timeout=10)
        assert all(r.state == JOB_CREATED and r.connection_attempts == 2 for r in reqs)
        assert len({r.job.handle for r in reqs}) == 200
        # the dropped connection never reached gearmand: nothing was queued twice
        assert f"{fn}\t200\t0\t0" in server.admin("status").splitlines()
    finally:
        c.shutdown()
        proxy.close()


def test_an_accepted_job_is_not_resent_behind_the_callers_back(gearmand_factory, workers, fn):
    """Lost while running: JOB_UNKNOWN with one attempt, even with retries left
    (a re-send could run the job twice); the caller may re-submit it."""
    server = gearmand_factory()
    proxy = cut_proxy.CutProxy(server.port)
    runs, started = [], threading.Event()

    def work(worker, job):
        runs.append(job.data)
        started.set()
        time.sleep(0.3)
        return b"done"

    workers.start([server.address], {fn: work})
    assert registered(server, fn)
    c = gearman.GearmanClient([proxy.address])
    try:
        # cut while the job runs, once the client surely read JOB_CREATED (gearmand
        # sends it before assigning the job; the client's thread may need a moment)
        threading.Thread(target=lambda: started.wait(10) and (time.sleep(0.1), proxy.cut()),
                         daemon=True).start()
        r = c.submit_job(fn, b"once", max_retries=5, poll_timeout=10)
        assert (r.state, r.timed_out, r.connection_attempts) == (JOB_UNKNOWN, False, 1)
        assert runs == [b"once"]
        # re-submitting is the caller's decision, and counts as an attempt
        c.submit_multiple_requests([r], poll_timeout=10)
        assert (r.state, r.result, r.connection_attempts) == (JOB_COMPLETE, b"done", 2)
    finally:
        c.shutdown()
        proxy.close()


def test_lost_for_good_raises_server_unavailable(gearmand_factory, workers, fn):
    """Every server gone and none reachable: ServerUnavailable, as python-gearman."""
    server = gearmand_factory()
    started = threading.Event()
    workers.start([server.address], {fn: lambda worker, job: started.set() or time.sleep(0.5)})
    assert registered(server, fn)
    c = gearman.GearmanClient([server.address])
    threading.Thread(target=lambda: started.wait(10) and server.kill(), daemon=True).start()
    with pytest.raises(errors.ServerUnavailable):
        c.submit_job(fn, b"x", max_retries=3, poll_timeout=10)
    c.shutdown()


def test_worker_given_servers_with_add_connection_loops_like_python_gearman(gearmand, fn):
    """``GearmanWorker()`` + ``add_connection()`` is python-gearman code: ``work()``
    without arguments loops (PECL's ``work()`` handles one job and returns True)."""
    c = gearman.GearmanClient([gearmand.address])
    for i in (1, 2):
        c.submit_job(fn, b"%d" % i, background=True)
    seen = []

    class Two(gearman.GearmanWorker):
        def after_job(self):
            return len(seen) < 2

    w = Two()
    w.add_connection(gearmand.address)
    w.register_task(fn, lambda worker, job: seen.append(job.data) or b"")
    assert w.work() is None
    assert seen == [b"1", b"2"]
    w.shutdown()
    c.shutdown()


# --- data_encoder ----------------------------------------------------------------------

class TaggingEncoder(gearman.DataEncoder):
    """encode(obj) -> b'enc(' + obj + b')', decode(b) -> ('dec', b); records every call."""
    calls = []

    @classmethod
    def encode(cls, encodable_object):
        cls.calls.append(("encode", encodable_object))
        return b"enc(" + encodable_object + b")"

    @classmethod
    def decode(cls, decodable_string):
        cls.calls.append(("decode", decodable_string))
        return ("dec", decodable_string)


class TaggingClient(gearman.GearmanClient):
    data_encoder = TaggingEncoder


class TaggingWorker(gearman.GearmanWorker):
    data_encoder = TaggingEncoder


@pytest.fixture
def tagging():
    TaggingEncoder.calls = []
    yield TaggingEncoder
    TaggingEncoder.calls = []


def test_client_encodes_submitted_data_and_decodes_every_payload(gearmand, workers, tagging, fn):
    seen = []

    def plain(worker, job):          # a default-encoder worker sees the wire bytes
        seen.append((job.task, job.unique, job.data))
        worker.send_job_data(job, b"d1")
        worker.send_job_warning(job, b"w1")
        worker.send_job_status(job, 2, 5)
        if job.data == b"enc(boom)":
            worker.send_job_exception(job, b"e1")
        return b"r1"

    workers.start([gearmand.address], {fn: plain})
    assert registered(gearmand, fn)
    c = TaggingClient([gearmand.address])
    try:
        r = c.submit_job(fn, b"payload", unique="u-" + fn, poll_timeout=10)
        assert seen == [(fn, "u-" + fn, b"enc(payload)")]       # task, unique not encoded
        assert r.result == ("dec", b"r1")
        assert list(r.data_updates) == [("dec", b"d1")]
        assert list(r.warning_updates) == [("dec", b"w1")]
        assert (r.status["numerator"], r.status["denominator"]) == (2, 5)   # not decoded
        assert isinstance(r.job.handle, str) and r.job.data == b"payload"    # not encoded in place
        assert tagging.calls == [("encode", b"payload"), ("decode", b"d1"), ("decode", b"w1"),
                                 ("decode", b"r1")]
        tagging.calls.clear()
        r = c.submit_job(fn, b"boom", poll_timeout=10)
        assert (r.state, r.exception) == (JOB_FAILED, ("dec", b"e1"))
        assert ("decode", b"e1") in tagging.calls
        # a background submission encodes its data too; status requests use none
        tagging.calls.clear()
        bg = c.submit_job(fn + "-nobody", b"bg", background=True)
        c.get_job_status(bg)
        assert tagging.calls == [("encode", b"bg")]
    finally:
        c.shutdown()


def test_worker_decodes_job_data_and_encodes_every_payload(gearmand, workers, tagging, fn):
    got = []

    def work(worker, job):
        got.append((job.task, job.unique, job.handle, job.data))
        worker.send_job_data(job, b"d")
        worker.send_job_warning(job, b"w")
        worker.send_job_status(job, 1, 4)
        if job.data == ("dec", b"fail"):
            worker.send_job_failure(job)
        elif job.data == ("dec", b"exc"):
            worker.send_job_exception(job, b"x")
        return b"done"

    workers.start([gearmand.address], {fn: work}, cls=TaggingWorker)
    assert registered(gearmand, fn)
    c = gearman.GearmanClient([gearmand.address])          # a plain client sees the wire
    try:
        r = c.submit_job(fn, b"in", unique="uu-" + fn, poll_timeout=10)
        assert got == [(fn, "uu-" + fn, r.job.handle, ("dec", b"in"))]
        assert r.result == b"enc(done)"
        assert list(r.data_updates) == [b"enc(d)"] and list(r.warning_updates) == [b"enc(w)"]
        assert (r.status["numerator"], r.status["denominator"]) == (1, 4)
        assert tagging.calls == [("decode", b"in"), ("encode", b"d"), ("encode", b"w"),
                                 ("encode", b"done")]
        tagging.calls.clear()
        r = c.submit_job(fn, b"exc", poll_timeout=10)
        assert (r.state, r.exception) == (JOB_FAILED, b"enc(x)")
        tagging.calls.clear()
        r = c.submit_job(fn, b"fail", poll_timeout=10)
        assert (r.state, r.exception) == (JOB_FAILED, None)
        assert ("encode", b"done") not in tagging.calls     # nothing after the failure
    finally:
        c.shutdown()


def test_admin_client_applies_no_encoder(gearmand, fn):
    """python-gearman's admin client had ``data_encoder`` but sent and compared
    the echo string and all admin text raw; an encoder that breaks must not matter."""
    class Exploding(gearman.DataEncoder):
        @classmethod
        def encode(cls, o):
            raise AssertionError("admin client encoded something")

        @classmethod
        def decode(cls, s):
            raise AssertionError("admin client decoded something")

    class Admin(gearman.GearmanAdminClient):
        data_encoder = Exploding

    gearman.GearmanClient([gearmand.address]).submit_job(fn, b"x", background=True)
    admin = Admin([gearmand.address])
    assert admin.ping_server() > 0
    assert fn in {s["task"] for s in admin.get_status()}
    assert admin.get_version().startswith("OK")
    assert isinstance(admin.get_workers(), tuple)
    assert admin.send_maxqueue(fn, 100) == "OK"
    assert admin.get_pid().startswith("OK")
    assert isinstance(admin.get_jobs(), tuple)
    assert admin.send_maxqueue(fn, 0) == "OK"
    admin.shutdown()


# --- better than the forks ---------------------------------------------------------------

def test_register_task_with_a_str_name(gearmand, workers, fn):
    """pygearman: ``register_task('name')`` killed the worker on its first job."""
    tasks = []
    w, th, _ = workers.start([gearmand.address], {fn: lambda worker, job: tasks.append(job.task) or b"ok"})
    assert registered(gearmand, fn)
    c = gearman.GearmanClient([gearmand.address])
    assert c.submit_job(fn, b"", poll_timeout=10).result == b"ok"
    assert c.submit_job(fn.encode(), b"", poll_timeout=10).result == b"ok"   # bytes name in
    assert tasks == [fn, fn] and th.is_alive()
    c.shutdown()


def test_identifiers_are_str_and_payloads_are_bytes(gearmand, workers, fn):
    inside = []

    def work(worker, job):
        inside.append(job)
        worker.send_job_data(job, "d\u00e9")            # str in -> UTF-8 bytes out
        worker.send_job_warning(job, bytearray(b"w"))
        return memoryview(b"res")

    workers.start([gearmand.address], {fn: work})
    assert registered(gearmand, fn)
    c = gearman.GearmanClient([gearmand.address])
    try:
        # names and uniques given as bytes come back as str
        r = c.submit_job(fn.encode(), "h\u00e9", unique=b"u-" + fn.encode(), poll_timeout=10)
        (job,) = inside
        for value in (job.handle, job.task, job.unique, r.job.handle):
            assert isinstance(value, str)       # an Identifier: str that bytes code accepts too
        assert (job.task, job.unique, job.handle) == (fn, "u-" + fn, r.job.handle)
        assert type(job.data) is bytes and job.data == "h\u00e9".encode()
        for value in (r.result, *r.data_updates, *r.warning_updates):
            assert type(value) is bytes
        assert (r.result, list(r.data_updates), list(r.warning_updates)) == (
            b"res", ["d\u00e9".encode()], [b"w"])
        bg = c.submit_job(fn + "-q", b"", background=True)
        assert isinstance(c.get_job_status(bg).status["handle"], str)
        status = gearman.GearmanAdminClient([gearmand.address]).get_status()
        assert all(type(s["task"]) is str for s in status)
    finally:
        c.shutdown()


def test_callback_returning_none_completes_with_an_empty_result(gearmand, workers, fn):
    """python-gearman's default encoder raised TypeError out of work() (the worker died)."""
    w, th, _ = workers.start([gearmand.address], {fn: lambda worker, job: None})
    assert registered(gearmand, fn)
    c = gearman.GearmanClient([gearmand.address])
    for _ in range(2):
        r = c.submit_job(fn, b"x", poll_timeout=10)
        assert (r.state, r.result, r.timed_out) == (JOB_COMPLETE, b"", False)
    assert th.is_alive()
    c.shutdown()


def test_callback_exception_fails_the_job_is_logged_and_the_worker_survives(gearmand, workers, fn,
                                                                              caplog):
    """python-gearman sent WORK_FAIL and logged nothing (issue #4); a result the
    encoder refused killed work()."""
    def work(worker, job):
        if job.data == b"raise":
            raise KeyError("missing-" + fn)
        if job.data == b"int":
            return 7
        return b"fine"

    caplog.set_level(logging.ERROR, logger="gearman")
    w, th, _ = workers.start([gearmand.address], {fn: work})
    assert registered(gearmand, fn)
    c = gearman.GearmanClient([gearmand.address])
    r = c.submit_job(fn, b"raise", poll_timeout=10)
    assert (r.state, r.exception, r.timed_out) == (JOB_FAILED, None, False)
    failures = [rec for rec in caplog.records if rec.exc_info and rec.exc_info[0] is KeyError]
    assert failures and "missing-" + fn in caplog.text and r.job.handle in caplog.text
    r = c.submit_job(fn, b"int", poll_timeout=10)
    assert r.state == JOB_FAILED
    assert any(rec.exc_info and rec.exc_info[0] is TypeError for rec in caplog.records)
    assert c.submit_job(fn, b"ok", poll_timeout=10).result == b"fine"
    assert th.is_alive()
    c.shutdown()


def test_work_exception_reaches_the_client(gearmand, workers, fn):
    """The legacy client asks for exceptions (OPTION_REQ): WORK_EXCEPTION's payload
    lands in ``exception`` and the request ends JOB_FAILED (2.x clients waited on)."""
    class Reporting(gearman.GearmanWorker):
        def on_job_exception(self, current_job, exc_info):
            self.send_job_exception(current_job, repr(exc_info[1]))
            return False

    def work(worker, job):
        raise ValueError("bad " + job.data.decode())

    workers.start([gearmand.address], {fn: work}, cls=Reporting)
    assert registered(gearmand, fn)
    c = gearman.GearmanClient([gearmand.address])
    r = c.submit_job(fn, b"input", poll_timeout=10)
    assert (r.state, r.exception, r.timed_out, r.complete) == (
        JOB_FAILED, b"ValueError('bad input')", False, True)
    c.shutdown()


def test_nul_terminated_work_fail_from_gearmand(gearmand, workers, fn):
    """A client that did not ask for exceptions gets WORK_FAIL with ``handle\\0``
    from gearmand (2.x clients died with KeyError).  First the premise, on a raw
    socket; then a client set up without the exception option."""
    workers.start([gearmand.address], {fn: lambda worker, job: worker.send_job_exception(job, b"oops")})
    assert registered(gearmand, fn)
    with socket.create_connection(("127.0.0.1", gearmand.port), timeout=10) as raw:
        raw.sendall(raw_request(gearman.protocol.GEARMAN_COMMAND_SUBMIT_JOB, fn.encode(), b"", b"x"))
        (created, (handle,)), (fail, fail_args) = raw_packets(raw, 2)
    assert (created, fail) == (gearman.protocol.GEARMAN_COMMAND_JOB_CREATED,
                               gearman.protocol.GEARMAN_COMMAND_WORK_FAIL)
    assert fail_args == [handle, b""]                   # i.e. the payload is handle + NUL

    c = gearman.GearmanClient()
    c.addServer("127.0.0.1", gearmand.port, False)       # no OPTION_REQ "exceptions"
    r = c.submit_job(fn, b"x", poll_timeout=10)
    assert (r.state, r.timed_out, r.exception, r.complete) == (JOB_FAILED, False, None, True)
    c.shutdown()


def test_send_maxqueue_accepts_gearmands_ok_cr(gearmand, fn):
    """gearmand 1.1 answers ``OK\\r\\n``; python-gearman compared with 'OK' and raised."""
    gearman.GearmanClient([gearmand.address]).submit_job(fn, b"0", background=True)
    with socket.create_connection(("127.0.0.1", gearmand.port), timeout=10) as raw:
        raw.sendall(f"maxqueue {fn} 5\n".encode())
        raw.settimeout(10)
        answer = b""
        while not answer.endswith(b"\n"):
            answer += raw.recv(100)
    assert answer == b"OK\r\n"                           # the premise
    admin = gearman.GearmanAdminClient([gearmand.address])
    assert admin.send_maxqueue(fn, 1) == "OK"
    c = gearman.GearmanClient([gearmand.address])
    assert c.submit_job(fn, b"1", background=True).state == JOB_FAILED   # the limit holds
    assert admin.send_maxqueue(fn, 0) == "OK"
    assert c.submit_job(fn, b"2", background=True).state == JOB_CREATED
    c.shutdown()


def test_queue_full_fails_the_request_instead_of_hanging(gearmand, fn):
    """``poll_timeout=None`` (the default): python-gearman waited forever (issue #44)."""
    c = gearman.GearmanClient([gearmand.address])
    c.submit_job(fn, b"0", background=True)
    assert gearman.GearmanAdminClient([gearmand.address]).send_maxqueue(fn, 2) == "OK"
    out = []
    jobs = [{"task": fn, "data": b"%d" % i} for i in range(1, 4)]
    th = threading.Thread(target=lambda: out.append(c.submit_multiple_jobs(jobs, background=True)),
                          daemon=True)
    th.start()
    th.join(10)
    assert not th.is_alive(), "submit_multiple_jobs hung on QUEUE_ERROR"
    (reqs,) = out
    assert [r.state for r in reqs] == [JOB_CREATED, JOB_FAILED, JOB_FAILED]
    # refused background jobs were not queued: not ``complete`` (python-gearman's meaning)
    assert all(isinstance(r.error, errors.QueueFullError) and not r.complete and not r.timed_out
               for r in reqs[1:])
    out.clear()
    th = threading.Thread(target=lambda: out.append(c.submit_job(fn, b"fg")), daemon=True)
    th.start()
    th.join(10)
    assert not th.is_alive(), "submit_job hung on QUEUE_ERROR"
    assert out[0].state == JOB_FAILED
    c.shutdown()


def test_first_submit_after_a_server_restart_succeeds(gearmand_factory, workers, fn):
    """The forks dropped the reconnected connection: the first submit raised."""
    server = gearmand_factory()
    w, th, _ = workers.start([server.address], {fn: lambda worker, job: b"r:" + job.data})
    assert registered(server, fn)
    c = gearman.GearmanClient([server.address])
    assert c.submit_job(fn, b"1", poll_timeout=10).result == b"r:1"
    server.restart()
    bg = c.submit_job(fn + "-bg", b"2", background=True, poll_timeout=10)
    assert (bg.state, bg.connection_attempts) == (JOB_CREATED, 1)
    server.restart()
    assert registered(server, fn)                       # the work() loop re-registered
    r = c.submit_job(fn, b"3", poll_timeout=20)
    assert (r.state, r.result, r.connection_attempts) == (JOB_COMPLETE, b"r:3", 1)
    assert th.is_alive()
    c.shutdown()


class _Rounds(gearman.GearmanWorker):
    """Leaves work() after ``self.rounds`` calls of after_poll."""
    rounds = 2

    def after_poll(self, any_activity):
        self.rounds -= 1
        return self.rounds > 0


def test_idle_work_uses_no_cpu(gearmand, fn):
    """One idle round of work(poll_timeout=1.0): the process sleeps in poll()
    (gearman3/Yelp master spun at 100 % CPU)."""
    w = _Rounds([gearmand.address])
    w.register_task(fn, lambda worker, job: b"")
    cpu, wall = time.process_time(), time.monotonic()
    w.work(poll_timeout=1.0)
    cpu, wall = time.process_time() - cpu, time.monotonic() - wall
    assert wall >= 0.9                                   # it really waited a round
    assert cpu < 0.2, f"idle work() used {cpu:.3f} s of CPU in {wall:.2f} s"
    w.shutdown()


def test_work_without_tasks_or_with_a_dead_server_uses_no_cpu(gearmand_factory, fn):
    idle = _Rounds([gearmand_factory().address])          # nothing registered
    cpu = time.process_time()
    idle.work(poll_timeout=1.0)
    assert time.process_time() - cpu < 0.2
    idle.shutdown()

    server = gearmand_factory()
    w = gearman.GearmanWorker([server.address])
    w.register_task(fn, lambda worker, job: b"")
    assert_dead = threading.Timer(0.3, server.kill)
    assert_dead.start()
    cpu, wall = time.process_time(), time.monotonic()
    with pytest.raises(errors.ServerUnavailable):         # the next round finds no server
        w.work(poll_timeout=1.0)
    cpu, wall = time.process_time() - cpu, time.monotonic() - wall
    assert wall >= 0.9
    assert cpu < 0.2, f"work() used {cpu:.3f} s of CPU retrying a dead server for {wall:.2f} s"
    w.shutdown()


def test_no_memory_growth_in_a_long_running_client(gearmand, workers, fn):
    """Repeated submit_multiple_jobs batches (foreground, background, and
    background without waiting: python-gearman issue #10) keep nothing: finished
    requests are freed, and traced memory stays flat.  The client remembers
    recent handles (for get_job_status) in a bounded map; the bound is lowered
    so that it fills during the warm-up."""
    workers.start([gearmand.address], {fn: lambda worker, job: job.data})
    assert registered(gearmand, fn)
    c = gearman.GearmanClient([gearmand.address])
    c._engine.handle_memory = 500
    jobs = [{"task": fn, "data": b"x" * 64} for _ in range(500)]
    refs = []

    def rounds(n):
        for _ in range(n):
            reqs = c.submit_multiple_jobs(jobs, poll_timeout=60)
            assert all(r.state == JOB_COMPLETE for r in reqs)
            reqs += c.submit_multiple_jobs(jobs, background=True, poll_timeout=60)
            reqs += c.submit_multiple_jobs(jobs, background=True, wait_until_complete=False)
            assert all(r.complete for r in reqs)
            refs.append(weakref.ref(reqs[0]))
            refs.append(weakref.ref(reqs[-1]))
            del reqs

    try:
        rounds(2)                                        # warm-up: buffers, handle map
        gc.collect()
        tracemalloc.start()
        try:
            rounds(1)
            gc.collect()
            first, _ = tracemalloc.get_traced_memory()
            rounds(6)                                    # 9,000 more jobs
            gc.collect()
            last, _ = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert all(ref() is None for ref in refs), "the client kept finished requests"
        assert last - first < 200_000, (first, last)     # < ~22 bytes per job
    finally:
        c.shutdown()


# --- TLS host dicts ------------------------------------------------------------------------

@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    """A throw-away CA, a server certificate and a client certificate (openssl CLI)."""
    import shutil
    import subprocess
    if not shutil.which("openssl") or not shutil.which("socat"):
        pytest.fail("the TLS tests need socat and openssl (apt-get install socat openssl)")
    d = tmp_path_factory.mktemp("tls")
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]

    def run(*args):
        subprocess.run(["openssl", *args], cwd=d, check=True, capture_output=True, timeout=30)

    run("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=test-ca")
    for name in ("server", "client", "stranger"):
        run("req", *ec, "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={name}")
        if name == "stranger":       # signed by nobody the server trusts
            run("x509", "-req", "-in", f"{name}.csr", "-signkey", f"{name}.key",
                "-out", f"{name}.crt", "-days", "2")
        else:
            run("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
                "-CAcreateserial", "-out", f"{name}.crt", "-days", "2")
    return d


@pytest.fixture
def tls_front(gearmand, certs, free_port):
    """socat: TLS (client certificate required) on ``free_port`` -> plain gearmand."""
    import subprocess
    d = certs
    proc = subprocess.Popen(
        ["socat", f"OPENSSL-LISTEN:{free_port},bind=127.0.0.1,reuseaddr,fork,"
                  f"cert={d}/server.crt,key={d}/server.key,cafile={d}/ca.pem,verify=1",
         f"TCP:127.0.0.1:{gearmand.port}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def listening():
        try:
            socket.create_connection(("127.0.0.1", free_port), timeout=0.2).close()
            return True
        except OSError:
            return False

    try:
        assert wait_until(listening), "socat did not start"
        yield free_port
    finally:
        proc.kill()
        proc.wait(10)


def tls_host(port, d, who="client", ca="ca.pem"):
    return {"host": "127.0.0.1", "port": port, "keyfile": str(d / f"{who}.key"),
            "certfile": str(d / f"{who}.crt"), "ca_certs": str(d / ca)}


def test_tls_host_dicts_for_client_worker_and_admin(tls_front, certs, fn):
    """python-gearman (master) host dicts: all of keyfile/certfile/ca_certs set -> TLS,
    the server's certificate verified against ca_certs, ours presented."""
    host = tls_host(tls_front, certs)
    w = gearman.GearmanWorker()
    w.add_connection(host)
    w.register_task(fn, lambda worker, job: b"tls:" + job.data)
    stop = threading.Event()
    w.after_poll = lambda any_activity: not stop.is_set()
    th = threading.Thread(target=w.work, kwargs={"poll_timeout": 0.5}, daemon=True)
    th.start()
    c = gearman.GearmanClient()
    c.add_connection(host)
    try:
        r = c.submit_job(fn, b"x", poll_timeout=10)
        assert (r.state, r.result) == (JOB_COMPLETE, b"tls:x")
        admin = gearman.GearmanAdminClient(host, poll_timeout=5)
        assert admin.get_version().startswith("OK")
        assert admin.ping_server() > 0
        assert any(wk["tasks"] == (fn,) for wk in admin.get_workers())
        admin.shutdown()
    finally:
        stop.set()
        w.stop()
        th.join(10)
        w.shutdown()
        c.shutdown()
    assert not th.is_alive()


def test_tls_host_dicts_really_verify(tls_front, certs, fn):
    """TLS is not optional once asked for: a CA that did not sign the server's
    certificate, or a client certificate the server does not trust, fails the
    connection (ServerUnavailable); plain TCP to the TLS port gets nowhere."""
    wrong_ca = tls_host(tls_front, certs, ca="client.crt")
    stranger = tls_host(tls_front, certs, who="stranger")
    for host in (wrong_ca, stranger):
        with pytest.raises(errors.ServerUnavailable):
            gearman.GearmanAdminClient(host, poll_timeout=5).get_version()
    c = gearman.GearmanClient()
    c.add_connection(wrong_ca)
    with pytest.raises(errors.ServerUnavailable):
        c.submit_job(fn, b"x", background=True, poll_timeout=5)
    c.shutdown()
    plain = gearman.GearmanClient([f"127.0.0.1:{tls_front}"])
    with pytest.raises(errors.GearmanError):
        plain.submit_job(fn, b"x", background=True, poll_timeout=5)
    plain.shutdown()
    # a dict without all three files is plain TCP, as in python-gearman
    assert gearman.util.host_tls_context({"host": "h", "port": 1, "keyfile": "k",
                                          "certfile": "c", "ca_certs": None}) is None


def test_tls_host_dicts_in_the_constructors(tls_front, certs, fn):
    host = tls_host(tls_front, certs)
    c = gearman.GearmanClient([host])
    w = gearman.GearmanWorker([host])
    # the constructors honour the dict (docs/tls.md): connection_list says so
    for conn in (c.connection_list[0], w.connection_list[0]):
        assert conn.use_ssl is True
        assert (conn.keyfile, conn.certfile, conn.ca_certs) == (
            host["keyfile"], host["certfile"], host["ca_certs"])
    assert gearman.GearmanAdminClient(host).current_connection.use_ssl is True
    plain = gearman.GearmanClient([f"127.0.0.1:{tls_front}", ("127.0.0.1", 1)])
    assert [x.use_ssl for x in plain.connection_list] == [False, False]
    failures = []

    def loop():
        try:
            w.work(poll_timeout=0.5)
        except errors.GearmanError as exc:
            failures.append(exc)

    w.register_task(fn, lambda worker, job: b"ok")
    th = threading.Thread(target=loop, daemon=True)
    th.start()
    try:
        r = c.submit_job(fn, b"x", poll_timeout=5)
        assert r.result == b"ok" and not failures
    finally:
        deadline = time.monotonic() + 10
        while th.is_alive() and time.monotonic() < deadline:
            w.stop()
            th.join(0.2)
        w.shutdown()
        c.shutdown()
