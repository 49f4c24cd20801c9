"""python-gearman's own documentation examples, run against real gearmand.

Sources (Yelp/python-gearman, ``docs/``): ``client.rst``, ``worker.rst``,
``admin_client.rst``, ``job.rst``, ``types_of_jobs.rst`` and the 2.x halves of
``1to2.rst`` (``examples.rst`` repeats client/worker/admin).  Each example is
copied as it stands, inside a test function, with only these changes:

* server addresses (``'localhost:4730'``, ``'otherhost:4730'``) become the
  test's gearmand servers;
* Python 3 syntax: ``print(...)``, ``range`` for ``xrange``, ``pickle`` for
  ``cPickle``; payloads that the example *compares* are written ``b'...'``
  (a Python 2 ``'...'`` literal was a byte string);
* lines marked ``# harness`` are ours: they start the other side (the doc
  shows a client without its worker, or the reverse), stop ``work()`` loops
  (``gm_worker.stop()`` from the test thread), or add assertions.

Where the doc's code is broken in python-gearman itself (a missing colon, a
misspelt variable, ``len()`` of a ``reversed`` object), the test says so and
makes the smallest fix; the verbatim line is checked too when it runs at all.
Every wait is bounded: a doc call without ``poll_timeout`` is only made when
the other side is guaranteed to answer, and pytest-timeout bounds the rest.

Servers: each test gets its own gearmand(s) from ``gearmand_factory``, so the
doc's task names (``"task_name"``, ``"reverse"``...) are used unchanged.
"""
import collections
import importlib.util
import pathlib
import re
import threading
import time

import pytest

import gearman
from gearman.constants import JOB_UNKNOWN
from gearman.testing import wait_until

_spec = importlib.util.spec_from_file_location(
    "cygearman_tests_cut_proxy", pathlib.Path(__file__).with_name("_cut_proxy.py"))
cut_proxy = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(cut_proxy)


# "Function available to all examples" (client.rst).  Fix: the doc's ``def``
# line lacks its colon; ``print`` is a function.  ``job_request.unique`` was an
# AttributeError in python-gearman (requests had no ``unique``); ours has it.
def check_request_status(job_request):
    if job_request.complete:
        print("Job %s finished!  Result: %s - %s" % (job_request.job.unique, job_request.state, job_request.result))
    elif job_request.timed_out:
        print("Job %s timed out!" % job_request.unique)
    elif job_request.state == JOB_UNKNOWN:
        print("Job %s connection failed!" % job_request.unique)


# --- harness ---------------------------------------------------------------------------

@pytest.fixture
def threads():
    """``threads.start(fn)`` runs ``fn`` in a thread; ``threads.workers`` are stopped at
    the end (``stop()`` until their ``work()`` returns), every thread is joined and an
    exception raised in one fails the test."""
    class Threads:
        workers = []
        running = []

        def start(self, fn):
            errors = []

            def target():
                try:
                    fn()
                except BaseException as exc:       # surfaced at teardown
                    errors.append(exc)

            th = threading.Thread(target=target, daemon=True)
            th.start()
            self.running.append((th, errors))
            return th

    t = Threads()
    t.workers, t.running = [], []
    yield t
    deadline = time.monotonic() + 15
    for th, errors in t.running:
        while th.is_alive() and time.monotonic() < deadline:
            for w in t.workers:
                w.stop()
            th.join(0.2)
        assert not th.is_alive(), "a doc example's thread did not end"
        assert not errors, errors
    for w in t.workers:
        w.shutdown()


def serve(threads, host_list, tasks, cls=None):
    """A python-gearman worker for the side the doc example does not show."""
    w = (cls or gearman.GearmanWorker)(host_list)
    for name, callback in tasks.items():
        w.register_task(name, callback)
    threads.workers.append(w)
    threads.start(w.work)
    return w


def wait_for_workers(server, task, count=1):
    """Until gearmand lists ``count`` workers for ``task`` (so work() is running)."""
    def listed():
        for line in server.admin("status").splitlines():
            parts = line.split("\t")
            if parts[0] == task and int(parts[3]) >= count:
                return True
        return False
    assert wait_until(listed), f"no worker for {task} registered with {server.address}"


def printed(capsys):
    return capsys.readouterr().out.splitlines()


# --- client.rst ------------------------------------------------------------------------

def test_client_single_job_blocking_call(gearmand_factory, threads, capsys):
    """client.rst, submit_job: "Sending a simple job as a blocking call"."""
    a, b = gearmand_factory(), gearmand_factory()
    serve(threads, [a.address, b.address],
          {"task_name": lambda worker, job: job.data.upper()})                 # harness
    wait_for_workers(a, "task_name")                                           # harness
    wait_for_workers(b, "task_name")                                           # harness

    gm_client = gearman.GearmanClient([a.address, b.address])

    # See gearman/job.py to see attributes on the GearmanJobRequest
    # Defaults to PRIORITY_NONE, background=False (synchronous task), wait_until_complete=True
    completed_job_request = gm_client.submit_job("task_name", "arbitrary binary data")
    check_request_status(completed_job_request)

    r = completed_job_request                                                  # harness
    assert (r.state, r.complete, r.result) == ("COMPLETE", True, b"ARBITRARY BINARY DATA")
    assert printed(capsys) == [
        f"Job {r.job.unique} finished!  Result: COMPLETE - {b'ARBITRARY BINARY DATA'}"]


def test_client_high_priority_background_call(gearmand_factory, capsys):
    """client.rst, submit_job: "Sending a high priority, background, blocking call"."""
    a, b = gearmand_factory(), gearmand_factory()

    gm_client = gearman.GearmanClient([a.address, b.address])

    # See gearman/job.py to see attributes on the GearmanJobRequest
    submitted_job_request = gm_client.submit_job("task_name", "arbitrary binary data", priority=gearman.PRIORITY_HIGH, background=True)

    check_request_status(submitted_job_request)

    r = submitted_job_request                                                  # harness
    # a background request is complete once the server accepted it: no result
    assert (r.state, r.complete, r.result, r.timed_out) == ("CREATED", True, None, False)
    assert printed(capsys) == [f"Job {r.job.unique} finished!  Result: CREATED - None"]
    queued = [s for s in (a, b) if s.admin("status").startswith("task_name\t1\t0\t0")]
    assert len(queued) == 1                  # one job, queued on one of the two servers
    handle = r.job.handle
    assert handle in queued[0].admin("show jobs")


def test_client_multiple_jobs_non_blocking(gearmand_factory, threads, capsys):
    """client.rst, submit_multiple_jobs: "behave like a non-blocking call".

    Fix: the doc loops over ``completed_results``, a name it never defined
    (NameError in python-gearman too); the loop reads ``completed_requests``.
    """
    server = gearmand_factory()
    release = threading.Event()                                                # harness

    def slow(worker, job):                                                     # harness
        release.wait(10)
        return job.data[::-1]

    serve(threads, [server.address], {"task_name": slow, "other_task": slow})  # harness
    wait_for_workers(server, "task_name")                                      # harness

    import time
    gm_client = gearman.GearmanClient([server.address])

    list_of_jobs = [dict(task="task_name", data="binary data"), dict(task="other_task", data="other binary data")]
    submitted_requests = gm_client.submit_multiple_jobs(list_of_jobs, background=False, wait_until_complete=False)

    # harness: the call returned once both jobs were accepted, not done
    assert [r.state for r in submitted_requests] == ["CREATED", "CREATED"]
    assert not any(r.complete or r.timed_out for r in submitted_requests)
    release.set()                                                              # harness

    # Once we know our jobs are accepted, we can do other stuff and wait for results later in the function
    # Similar to multithreading and doing a join except this is all done in a single process
    time.sleep(1.0)

    # Wait at most 5 seconds before timing out incomplete requests
    completed_requests = gm_client.wait_until_jobs_completed(submitted_requests, poll_timeout=5.0)
    for completed_job_request in completed_requests:
        check_request_status(completed_job_request)

    assert completed_requests == submitted_requests                            # harness
    assert [r.result for r in completed_requests] == [b"atad yranib", b"atad yranib rehto"]
    assert printed(capsys) == [
        f"Job {r.job.unique} finished!  Result: COMPLETE - {r.result}" for r in completed_requests]


def _recovering_setup(gearmand_factory, threads):
    """gearmand behind a proxy whose connections the test cuts (the "failure"), and
    workers: both jobs block until the cut; ``other_task`` then runs 1.5 s more, so
    the re-sent request (gearmand coalesces it with the running job: same unique)
    times out at the doc's ``poll_timeout=1.0`` and finishes within its 4.0."""
    server = gearmand_factory()
    proxy = cut_proxy.CutProxy(server.port)
    started = {"task_name": threading.Event(), "other_task": threading.Event()}
    cut_done = threading.Event()

    def make(name, extra):
        def run(worker, job):
            started[name].set()
            cut_done.wait(10)
            time.sleep(extra)
            return name.encode() + b" done: " + job.data
        return run

    serve(threads, [server.address], {"task_name": make("task_name", 0.0)})
    serve(threads, [server.address], {"other_task": make("other_task", 1.5)})
    wait_for_workers(server, "task_name")
    wait_for_workers(server, "other_task")

    def cutter():
        for e in started.values():
            assert e.wait(10), "the jobs never started"
        assert proxy.cut() == 1            # the client's one connection
        cut_done.set()

    threads.start(cutter)
    return proxy


def test_client_recovering_from_failed_connections(gearmand_factory, threads):
    """client.rst, submit_multiple_requests: "Recovering from failed connections".

    The doc "pretends" the servers failed; here the connection really breaks
    (a proxy cuts it while both jobs run; gearmand stays up).  Changes:
    ``max_retries=1`` is passed -- with the default 0 every request may be sent
    only once, so the doc's re-submission raises ExceededConnectionAttempts, in
    python-gearman as here (next test) -- and ``retried_requests``, a name the
    doc never defined, reads ``retried_connection_failed_requests``.
    """
    proxy = _recovering_setup(gearmand_factory, threads)                      # harness
    try:
        gm_client = gearman.GearmanClient([proxy.address])

        list_of_jobs = [dict(task="task_name", data="task binary string"), dict(task="other_task", data="other binary string")]
        failed_requests = gm_client.submit_multiple_jobs(list_of_jobs, background=False, max_retries=1)

        # Let's pretend our assigned requests' Gearman servers all failed
        assert all(request.state == JOB_UNKNOWN for request in failed_requests), "All connections didn't fail!"
        # harness: lost is not timed out, and each request was sent once so far
        assert [(r.timed_out, r.connection_attempts) for r in failed_requests] == [(False, 1)] * 2

        # Let's pretend our assigned requests' don't fail but some simply timeout
        retried_connection_failed_requests = gm_client.submit_multiple_requests(failed_requests, wait_until_complete=True, poll_timeout=1.0)

        timed_out_requests = [job_request for job_request in retried_connection_failed_requests if job_request.timed_out]

        # harness: both were sent again; task_name finished, other_task timed out
        task_req, other_req = retried_connection_failed_requests
        assert [r.connection_attempts for r in failed_requests] == [2, 2]
        assert (task_req.state, task_req.result) == ("COMPLETE", b"task_name done: task binary string")
        assert timed_out_requests == [other_req] and other_req.state == "CREATED"

        # For our timed out requests, lets wait a little longer until they're complete
        retried_timed_out_requests = gm_client.submit_multiple_requests(timed_out_requests, wait_until_complete=True, poll_timeout=4.0)

        assert retried_timed_out_requests == [other_req]                       # harness
        assert (other_req.state, other_req.timed_out) == ("COMPLETE", False)
        assert other_req.result == b"other_task done: other binary string"
        assert other_req.connection_attempts == 2      # waiting again sent nothing
        assert proxy.accepted >= 2                     # a new connection was opened
        gm_client.shutdown()
    finally:
        proxy.close()


def test_client_recovering_verbatim_exceeds_connection_attempts(gearmand_factory, threads):
    """The same recipe exactly as documented (default ``max_retries=0``): the
    re-submission raises ExceededConnectionAttempts, as python-gearman's did."""
    proxy = _recovering_setup(gearmand_factory, threads)                      # harness
    try:
        gm_client = gearman.GearmanClient([proxy.address])

        list_of_jobs = [dict(task="task_name", data="task binary string"), dict(task="other_task", data="other binary string")]
        failed_requests = gm_client.submit_multiple_jobs(list_of_jobs, background=False)

        # Let's pretend our assigned requests' Gearman servers all failed
        assert all(request.state == JOB_UNKNOWN for request in failed_requests), "All connections didn't fail!"

        with pytest.raises(gearman.errors.ExceededConnectionAttempts):        # harness
            gm_client.submit_multiple_requests(failed_requests, wait_until_complete=True, poll_timeout=1.0)
        assert [r.connection_attempts for r in failed_requests] == [1, 1]     # harness
        gm_client.shutdown()
    finally:
        proxy.close()


def test_check_request_status_branches(gearmand_factory, threads, capsys):
    """The doc's helper on each kind of request it distinguishes: finished,
    timed out (it read ``job_request.unique``, an AttributeError in
    python-gearman) and connection failed (JOB_UNKNOWN, not timed out)."""
    server = gearmand_factory()
    proxy = cut_proxy.CutProxy(server.port)
    running = threading.Event()

    def stuck(worker, job):
        running.set()
        time.sleep(0.5)
        return b""

    serve(threads, [server.address], {"stuck": stuck})
    wait_for_workers(server, "stuck")
    try:
        gm_client = gearman.GearmanClient([proxy.address])
        timed_out = gm_client.submit_job("nobody_serves_this", b"x", poll_timeout=0.2)
        lost = gm_client.submit_job("stuck", b"y", wait_until_complete=False)
        assert running.wait(10)
        proxy.cut()
        gm_client.wait_until_jobs_completed([lost], poll_timeout=10)
        done = gm_client.submit_job("stuck", b"z", poll_timeout=10)
        for r in (done, timed_out, lost):
            check_request_status(r)
        assert printed(capsys) == [
            f"Job {done.job.unique} finished!  Result: COMPLETE - b''",
            f"Job {timed_out.job.unique} timed out!",
            f"Job {lost.job.unique} connection failed!",
        ]
        assert (lost.state, lost.timed_out) == (JOB_UNKNOWN, False)
        gm_client.shutdown()
    finally:
        proxy.close()


def test_client_pickle_data_encoder(gearmand_factory, threads):
    """client.rst, data_encoder: "Send/receive Python objects (not just byte strings)".

    ``import cPickle as pickle`` is ``import pickle`` on Python 3; the doc's
    ``class PickleDataEncoder(gearman.DataEncoder)`` line lacks its colon.
    The worker (harness) uses the same encoder: client and worker must agree.
    """
    import datetime
    server = gearmand_factory()

    # By default, GearmanClient's can only send off byte-strings
    # If we want to be able to send out Python objects, we can specify a data encoder
    # This will automatically convert byte strings <-> Python objects for ALL commands that have the 'data' field
    #
    # See http://gearman.org/index.php?id=protocol for client commands that send/receive 'opaque data'
    #
    import pickle

    class PickleDataEncoder(gearman.DataEncoder):
        @classmethod
        def encode(cls, encodable_object):
            return pickle.dumps(encodable_object)

        @classmethod
        def decode(cls, decodable_string):
            return pickle.loads(decodable_string)

    class PickleExampleClient(gearman.GearmanClient):
        data_encoder = PickleDataEncoder

    class PickleExampleWorker(gearman.GearmanWorker):                          # harness
        data_encoder = PickleDataEncoder

    seen = []

    def describe(worker, job):                                                 # harness
        seen.append(job.data)
        worker.send_job_data(job, ("progress", 0.5))
        return {"type": type(job.data).__name__, "keys": sorted(job.data)}

    serve(threads, [server.address], {"task_name": describe}, cls=PickleExampleWorker)
    wait_for_workers(server, "task_name")                                      # harness
    python_object = {"when": datetime.date(2011, 1, 11), "tags": {"a", "b"},   # harness
                     "pair": (1, b"\x00\xff"), "n": None}

    gm_client = PickleExampleClient([server.address])
    request = gm_client.submit_job("task_name", python_object)

    assert seen == [python_object]                                             # harness
    assert request.state == "COMPLETE"
    assert request.result == {"type": "dict", "keys": ["n", "pair", "tags", "when"]}
    assert list(request.data_updates) == [("progress", 0.5)]
    assert request.job.data is python_object            # the request keeps the object


# --- worker.rst ------------------------------------------------------------------------

def test_worker_reverse(gearmand_factory, threads):
    """worker.rst: "Setting up a basic worker that reverses a given byte-string".

    Verbatim: the callback returns ``reversed(gearman_job.data)``, which killed
    python-gearman's ``work()`` with TypeError; our default encoder joins it.
    """
    server = gearmand_factory()

    def doc_worker():
        gm_worker = gearman.GearmanWorker([server.address])
        threads.workers.append(gm_worker)                                      # harness

        # See gearman/job.py to see attributes on the GearmanJob
        # Send back a reversed version of the 'data' string
        def task_listener_reverse(gearman_worker, gearman_job):
            return reversed(gearman_job.data)

        # gm_worker.set_client_id is optional
        gm_worker.set_client_id('your_worker_client_id_name')
        gm_worker.register_task('reverse', task_listener_reverse)

        # Enter our work loop and call gm_worker.after_poll() after each time we timeout/see socket activity
        gm_worker.work()

    threads.start(doc_worker)                                                  # harness
    wait_for_workers(server, "reverse")
    client = gearman.GearmanClient([server.address])
    assert client.submit_job("reverse", b"hello world", poll_timeout=10).result == b"dlrow olleh"
    assert client.submit_job("reverse", b"\x00\x01\xff", poll_timeout=10).result == b"\xff\x01\x00"
    workers = gearman.GearmanAdminClient([server.address]).get_workers()
    assert [w["tasks"] for w in workers if w["client_id"] == "your_worker_client_id_name"] == [("reverse",)]


def _inflight_worker(server, threads, listener):
    def doc_worker():
        gm_worker = gearman.GearmanWorker([server.address])
        threads.workers.append(gm_worker)                                      # harness
        # gm_worker.set_client_id is optional
        gm_worker.register_task('reverse', listener)

        # Enter our work loop and call gm_worker.after_poll() after each time we timeout/see socket activity
        gm_worker.work()

    threads.start(doc_worker)
    wait_for_workers(server, "reverse")


def test_worker_inflight_updates_verbatim_fails_the_job_cleanly(gearmand_factory, threads, caplog):
    """worker.rst: "Callback function sending back inflight job updates", verbatim.

    ``len(reversed(...))`` raises TypeError in every Python; python-gearman sent
    WORK_FAIL silently.  Here the job fails too, the error is logged, and the
    worker goes on serving (the next job completes).
    """
    server = gearmand_factory()

    # See gearman/job.py to see attributes on the GearmanJob
    # Send back a reversed version of the 'data' string through WORK_DATA instead of WORK_COMPLETE
    def task_listener_reverse_inflight(gearman_worker, gearman_job):
        reversed_data = reversed(gearman_job.data)
        total_chars = len(reversed_data)

        for idx, character in enumerate(reversed_data):
            gearman_worker.send_job_data(gearman_job, str(character))
            gearman_worker.send_job_status(gearman_job, idx + 1, total_chars)

        return None

    _inflight_worker(server, threads, task_listener_reverse_inflight)          # harness
    client = gearman.GearmanClient([server.address])
    r = client.submit_job("reverse", b"abc", poll_timeout=10)
    assert (r.state, r.result, list(r.data_updates)) == ("FAILED", None, [])
    assert "has no len()" in caplog.text
    assert client.submit_job("reverse", b"", poll_timeout=10).state == "FAILED"  # still serving


def test_worker_inflight_updates_python3_port(gearmand_factory, threads):
    """The same example ported to Python 3 bytes (two lines: slice instead of
    ``reversed`` so ``len`` works, ``bytes([character])`` since iterating bytes
    gives ints): every character arrives as WORK_DATA with a status update,
    and ``return None`` completes the job with an empty result."""
    server = gearmand_factory()
    statuses = []

    def task_listener_reverse_inflight(gearman_worker, gearman_job):
        reversed_data = gearman_job.data[::-1]                                 # port
        total_chars = len(reversed_data)

        for idx, character in enumerate(reversed_data):
            gearman_worker.send_job_data(gearman_job, bytes([character]))      # port
            gearman_worker.send_job_status(gearman_job, idx + 1, total_chars)
            statuses.append((idx + 1, total_chars))                            # harness

        return None

    _inflight_worker(server, threads, task_listener_reverse_inflight)          # harness
    client = gearman.GearmanClient([server.address])
    r = client.submit_job("reverse", b"abc", poll_timeout=10)
    assert (r.state, r.result) == ("COMPLETE", b"")
    assert list(r.data_updates) == [b"c", b"b", b"a"]
    assert statuses == [(1, 3), (2, 3), (3, 3)]
    assert (r.status["numerator"], r.status["denominator"]) == (3, 3)   # the last WORK_STATUS


def test_worker_json_encoder_and_after_poll(gearmand_factory, threads):
    """worker.rst: "Send/receive Python objects and do work between polls".

    The doc defines the encoder and worker class; the harness gives the worker
    its ``db_connections`` (the doc assumes one), a task, and a client with the
    same encoder.  ``after_poll`` must run after every job.
    """
    server = gearmand_factory()

    # By default, GearmanWorker's can only send off byte-strings
    # If we want to be able to send out Python objects, we can specify a data encoder
    # This will automatically convert byte strings <-> Python objects for ALL commands that have the 'data' field
    #
    # See http://gearman.org/index.php?id=protocol for Worker commands that send/receive 'opaque data'
    #
    import json # Or similarly styled library
    class JSONDataEncoder(gearman.DataEncoder):
        @classmethod
        def encode(cls, encodable_object):
            return json.dumps(encodable_object)

        @classmethod
        def decode(cls, decodable_string):
            return json.loads(decodable_string)

    class DBRollbackJSONWorker(gearman.GearmanWorker):
        data_encoder = JSONDataEncoder

        def after_poll(self, any_activity):
            # After every select loop, let's rollback our DB connections just to be safe
            continue_working = True
            self.db_connections.rollback()
            return continue_working

    # --- harness ---
    class FakeDB:
        rollbacks = 0

        def rollback(self):
            FakeDB.rollbacks += 1

    class JSONClient(gearman.GearmanClient):
        data_encoder = JSONDataEncoder

    def add(worker, job):
        worker.send_job_warning(job, {"note": "adding"})
        return {"sum": sum(job.data["numbers"]), "echo": job.data["name"]}

    w = DBRollbackJSONWorker([server.address])
    w.db_connections = FakeDB()
    w.register_task("add", add)
    threads.workers.append(w)
    threads.start(lambda: w.work(poll_timeout=0.5))
    wait_for_workers(server, "add")
    client = JSONClient([server.address])
    for i in range(3):
        before = FakeDB.rollbacks
        r = client.submit_job("add", {"numbers": [1, 2, i], "name": "\u00e9t\u00e9"}, poll_timeout=10)
        assert (r.state, r.result) == ("COMPLETE", {"sum": 3 + i, "echo": "\u00e9t\u00e9"})
        assert list(r.warning_updates) == [{"note": "adding"}]
        assert wait_until(lambda before=before: FakeDB.rollbacks > before)   # after_poll ran after the job


# --- admin_client.rst ----------------------------------------------------------------

def test_admin_client_checking_server_state(gearmand_factory, threads):
    """admin_client.rst: "Checking server state"."""
    server = gearmand_factory()
    serve(threads, [server.address], {"task_name": lambda worker, job: b""})  # harness
    wait_for_workers(server, "task_name")
    gearman.GearmanClient([server.address]).submit_job("queued_only", b"x", background=True)

    gm_admin_client = gearman.GearmanAdminClient([server.address])

    # Inspect server state
    status_response = gm_admin_client.get_status()
    version_response = gm_admin_client.get_version()
    workers_response = gm_admin_client.get_workers()

    by_task = {s["task"]: s for s in status_response}                          # harness
    assert isinstance(status_response, tuple)
    assert by_task["task_name"] == {"task": "task_name", "queued": 0, "running": 0, "workers": 1}
    assert by_task["queued_only"] == {"task": "queued_only", "queued": 1, "running": 0, "workers": 0}
    assert re.fullmatch(r"OK \d+\.\d+\S*", version_response), version_response
    assert isinstance(workers_response, tuple)
    for w in workers_response:
        assert set(w) == {"file_descriptor", "ip", "client_id", "tasks"}
        assert isinstance(w["tasks"], tuple) and w["ip"] == "127.0.0.1"
    assert ("task_name",) in [w["tasks"] for w in workers_response]


def test_admin_client_checking_response_time(gearmand_factory):
    """admin_client.rst: "Checking server response time"."""
    server = gearmand_factory()

    gm_admin_client = gearman.GearmanAdminClient([server.address])
    response_time = gm_admin_client.ping_server()

    assert isinstance(response_time, float) and response_time > 0             # harness
    server.kill()
    with pytest.raises(gearman.errors.ServerUnavailable):
        gearman.GearmanAdminClient([server.address]).ping_server()


# --- job.rst ---------------------------------------------------------------------------

def test_job_attributes_as_documented(gearmand_factory, threads):
    """job.rst: every documented attribute of GearmanJob and GearmanJobRequest,
    with the documented meaning (strings are ``str``, payloads ``bytes``)."""
    server = gearmand_factory()
    worker_jobs = []
    go = threading.Event()

    def work(worker, job):
        worker_jobs.append(job)
        worker.send_job_warning(job, b"w")
        worker.send_job_data(job, b"d")
        worker.send_job_status(job, 1, 2)
        go.wait(10)
        return b"result"

    serve(threads, [server.address], {"job_doc": work})
    wait_for_workers(server, "job_doc")
    client = gearman.GearmanClient([server.address])
    request = client.submit_job("job_doc", b"payload", unique="u-1", priority=gearman.PRIORITY_LOW,
                                wait_until_complete=False)
    job = request.gearman_job

    # GearmanJob: connection (None before submission), handle, task, unique, data
    assert gearman.job.GearmanJob(None, None, "t", "u", b"d").connection is None
    assert isinstance(job.connection, gearman.connection.GearmanConnection)
    assert job.connection in client.connection_list
    assert isinstance(job.handle, str) and job.handle.startswith("H:")
    assert (job.task, job.unique, job.data) == ("job_doc", "u-1", b"payload")
    # GearmanJobRequest: gearman_job, priority, background, connection attempts
    assert request.job is job
    assert (request.priority, request.background) == (gearman.PRIORITY_LOW, False)
    assert (request.connection_attempts, request.max_connection_attempts) == (1, 1)
    assert (request.state, request.timed_out, request.complete) == ("CREATED", False, False)
    go.set()
    client.wait_until_jobs_completed([request], poll_timeout=10)
    # progress: result only if JOB_COMPLETE, exception, updates as deques, status dict
    assert (request.state, request.result, request.exception) == ("COMPLETE", b"result", None)
    assert request.complete and not request.timed_out
    assert request.warning_updates == collections.deque([b"w"])
    assert request.data_updates == collections.deque([b"d"])
    status = request.status
    assert set(status) == {"handle", "known", "running", "numerator", "denominator", "time_received"}
    assert status["handle"] == job.handle
    assert (status["known"], status["running"]) == (True, True)
    assert (status["numerator"], status["denominator"]) == (1, 2)
    assert isinstance(status["time_received"], float)
    # deprecated since 2.0.1, still readable
    assert request.server_status is request.status
    assert list(request.status_updates) == [(1, 2)]
    # the worker's job: same handle, task and unique, the payload as bytes
    (wjob,) = worker_jobs
    assert (wjob.handle, wjob.task, wjob.unique, wjob.data) == (job.handle, "job_doc", "u-1", b"payload")
    assert wjob.to_dict() == {"task": "job_doc", "job_handle": job.handle, "unique": "u-1",
                              "data": b"payload"}


# --- types_of_jobs.rst -----------------------------------------------------------------

_STATUS_LINE = re.compile(r"Time elpased = (\d+\.\d\d), Known = (True|False), Running = (True|False), "
                          r"Status = (\d+)/(\d+), data = deque\(\[(.*)\]\)")


def test_types_of_jobs_online_job_status_sample(gearmand_factory, threads, capsys):
    """types_of_jobs.rst "Sample Code": the worker runs 6 s sending status and data;
    the client checks the status once a second for 8 s (as documented: ~8 s).

    What the doc's sample output shows and we assert: known while queued and
    running, status 1/3 then 2/3, never 3/3 ("the client never receives the
    3/3 status update"), then unknown with 0/0 once the job is done.  The
    online job also returns its value to the original request.  One
    difference: the doc's output shows 'half way data' on one of the status
    requests (python-gearman re-pointed its handle map to the status request);
    here WORK_DATA goes to the request that submitted the job, so ``data`` in
    the status lines stays empty and ``initial_request.data_updates`` has it.
    """
    server = gearmand_factory()

    # Worker:
    def doc_worker():
        import gearman
        import time

        def delayed_reverse(worker, job):
            start_time = time.time()
            et = lambda: time.time() - start_time

            print('Received job `%s`, will run for 6 seconds' % job.data)

            time.sleep(2)
            print('Time elapsed = %.2f, updating status to 1/3' % et())
            worker.send_job_status(job, 1, 3)

            time.sleep(1)
            print('Time elapsed = %.2f, sent half-way data' % et())
            worker.send_job_data(job, 'half way data')

            time.sleep(1)
            print('Time elapsed = %.2f, updating status to 2/3' % et())
            worker.send_job_status(job, 2, 3)

            time.sleep(2)
            print('Time elapsed = %.2f, updating status to 3/3 and returning' % et())

            return job.data[::-1]

        gearman_worker = gearman.GearmanWorker([server.address])
        threads.workers.append(gearman_worker)                                 # harness
        gearman_worker.register_task('delayed_reverse', delayed_reverse)
        gearman_worker.work()

    threads.start(doc_worker)                                                  # harness
    wait_for_workers(server, "delayed_reverse")                                # harness

    # Client:
    import gearman
    import time

    gm_client = gearman.GearmanClient([server.address])

    initial_request = gm_client.submit_job(
        "delayed_reverse",         # queue name
        "Hello World!",            # data
        background=False,          # False --> online job, True --> offline job
        wait_until_complete=False  # False --> don't block, True --> block
    )

    start_time = time.time()

    def check_job_status(initial_request):
        # Create a request for the gearman server to update the original job's status
        update_job = gearman.job.GearmanJob(gm_client.connection_list[0],
            initial_request.job.handle,
            None,
            None,
            None
        )
        update_request = gearman.job.GearmanJobRequest(update_job)
        update_request.state = 'CREATED'

        result = gm_client.get_job_status(update_request)

        print(('Time elpased = %.2f, Known = %s, Running = %s, ' +
                'Status = %d/%d, data = %r'
            ) % (
                time.time() - start_time,
                result.status['known'],
                result.status['running'],
                result.status['numerator'],
                result.status['denominator'],
                result.data_updates
        ))

    for _i in range(8):
        check_job_status(initial_request)
        time.sleep(1)

    # --- harness: the doc's sample output, as properties ---
    lines = printed(capsys)
    client_lines = [m.groups() for m in map(_STATUS_LINE.fullmatch, lines) if m]
    worker_lines = [line for line in lines if not _STATUS_LINE.fullmatch(line)]
    assert len(client_lines) == 8, lines
    seen = [(known == "True", running == "True", int(num), int(den))
            for _, known, running, num, den, data in client_lines]
    assert all(data == "" for *_, data in client_lines)
    allowed = [(True, False, 0, 0), (True, True, 0, 0), (True, True, 1, 3), (True, True, 2, 3),
               (False, False, 0, 0)]
    assert all(s in allowed for s in seen), seen
    assert [allowed.index(s) for s in seen] == sorted(allowed.index(s) for s in seen), seen
    assert (True, True, 2, 3) in seen and (True, True, 3, 3) not in seen
    assert seen[0][0] is True
    assert worker_lines[0] == "Received job `b'Hello World!'`, will run for 6 seconds"
    assert [re.sub(r"\d+\.\d\d", "T", line) for line in worker_lines[1:]] == [
        "Time elapsed = T, updating status to 1/3",
        "Time elapsed = T, sent half-way data",
        "Time elapsed = T, updating status to 2/3",
        "Time elapsed = T, updating status to 3/3 and returning",
    ]
    # the online job returned its value to the request that submitted it
    assert wait_until(lambda: gm_client.get_job_status(initial_request) and
                      initial_request.state == "COMPLETE", timeout=10)
    assert initial_request.result == b"!dlroW olleH"
    assert list(initial_request.data_updates) == [b"half way data"]
    assert (initial_request.status["known"], initial_request.status["numerator"]) == (False, 0)


def test_types_of_jobs_feature_table(gearmand_factory, threads):
    """types_of_jobs.rst, the table: an offline (background) job has no return
    value and no data updates and submit_job never blocks on it; its status can
    still be queried while it runs."""
    server = gearmand_factory()
    running, release = threading.Event(), threading.Event()

    def job(worker, job):
        worker.send_job_status(job, 1, 2)
        worker.send_job_data(job, b"not for anyone")
        running.set()
        release.wait(10)
        return b"nobody gets this"

    serve(threads, [server.address], {"offline": job})
    wait_for_workers(server, "offline")
    gm_client = gearman.GearmanClient([server.address])
    offline = gm_client.submit_job("offline", b"x", background=True)   # wait_until_complete=True
    assert (offline.state, offline.complete, offline.result) == ("CREATED", True, None)
    assert running.wait(10)
    assert wait_until(lambda: gm_client.get_job_status(offline).status["numerator"] == 1)
    assert (offline.status["known"], offline.status["running"], offline.status["denominator"]) \
        == (True, True, 2)
    release.set()
    assert wait_until(lambda: not gm_client.get_job_status(offline).status["known"])
    assert offline.result is None and list(offline.data_updates) == []


# --- 1to2.rst (the python-gearman 2.x halves) --------------------------------------------

def test_1to2_worker_hooks_and_clients(gearmand_factory, threads, capsys):
    """1to2.rst: the 2.x worker with ``on_job_*`` hooks and ``after_poll``, and the
    2.x single and multiple task clients.  The doc's ``on_job_complete`` calls
    ``send_job_complete`` through ``super()``, which works as written.  The
    multiple-task client compares ``result`` with ``job.data``: payloads come
    back as bytes, so the data is written ``b'foo'`` (Python 2's ``'foo'``)."""
    server = gearmand_factory()

    # python-gearman 2.x
    class CustomGearmanWorker(gearman.GearmanWorker):
        def on_job_execute(self, current_job):
            print("Job started")
            return super(CustomGearmanWorker, self).on_job_execute(current_job)

        def on_job_exception(self, current_job, exc_info):
            print("Job failed, CAN stop last gasp GEARMAN_COMMAND_WORK_FAIL")
            return super(CustomGearmanWorker, self).on_job_exception(current_job, exc_info)

        def on_job_complete(self, current_job, job_result):
            print("Job failed, CAN stop last gasp GEARMAN_COMMAND_WORK_FAIL")
            return super(CustomGearmanWorker, self).send_job_complete(current_job, job_result)

        def after_poll(self, any_activity):
            # Return True if you want to continue polling, replaces callback_fxn
            return True

    def task_callback(gearman_worker, job):
        return job.data

    def doc_worker():
        new_worker = CustomGearmanWorker([server.address])
        threads.workers.append(new_worker)                                     # harness
        new_worker.register_task("echo", task_callback)
        new_worker.work()

    threads.start(doc_worker)                                                  # harness
    wait_for_workers(server, "echo")                                           # harness

    # python-gearman 2.x
    new_client = gearman.GearmanClient([server.address])
    current_request = new_client.submit_job('echo', 'foo')
    new_result = current_request.result

    assert new_result == b"foo"                                                # harness

    # python-gearman 2.x
    new_client = gearman.GearmanClient([server.address])
    new_jobs = [
        dict(task='echo', data=b'foo'),
        dict(task='echo', data=b'bar'),
    ]

    completed_requests = new_client.submit_multiple_jobs(new_jobs)
    for current_request in completed_requests:
        assert current_request.result == current_request.job.data

    assert [r.result for r in completed_requests] == [b"foo", b"bar"]          # harness
    lines = printed(capsys)
    assert lines.count("Job started") == 3
    assert lines.count("Job failed, CAN stop last gasp GEARMAN_COMMAND_WORK_FAIL") == 3
