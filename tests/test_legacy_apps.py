"""Scenarios modelled on public applications written for python-gearman 2.x / pygearman.

Each test re-enacts one usage pattern of a named public project and file, with
the application's own logic cut down to what touches the library, against a
real gearmand.  The module imports nothing of cygearman's beyond the
python-gearman surface (``gearman``, ``gearman.constants``, ``gearman.errors``,
``gearman.job``), so ``benchmarks/pygearman_compat.py`` runs the very same
functions against pygearman 0.2.6 in its own venv; the fixtures used are
``gearmand`` (``.address``, ``.port``, ``.admin(line)``) and ``fn`` only.

Where pygearman behaves differently on purpose of ours, the docstring says so
(docs/migration.md, "Scenario corpus", lists them all).
"""
import functools
import json
import os
import pickle
import signal
import threading
import time
import uuid

import gearman
from gearman import errors
from gearman.constants import (
    JOB_COMPLETE,
    JOB_CREATED,
    JOB_FAILED,
    JOB_PENDING,
    JOB_UNKNOWN,
    PRIORITY_LOW,
)
from gearman.job import GearmanJob


# --- helpers shared with benchmarks/pygearman_compat.py (no cygearman-only API) ----------

def _until(predicate, timeout=15.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.02)
    return predicate()


def _registered(server, task, workers=1):
    def check():
        for line in server.admin("status").splitlines():
            parts = line.split("\t")
            if parts[0] == task and int(parts[3]) >= workers:
                return True
        return False
    assert _until(check), f"no worker registered {task!r}"


class _Running:
    """A python-gearman worker's ``work()`` in a thread, ended through ``after_poll``."""

    def __init__(self, worker, poll_timeout=0.2):
        self.worker = worker
        self.stop_event = threading.Event()
        self.failures = []
        own_after_poll = worker.after_poll

        def after_poll(any_activity):
            if self.stop_event.is_set():
                return False
            return own_after_poll(any_activity)

        worker.after_poll = after_poll

        def loop():
            try:
                worker.work(poll_timeout=poll_timeout)
            except BaseException as exc:       # reported by stop()
                self.failures.append(exc)

        self.thread = threading.Thread(target=loop, daemon=True)
        self.thread.start()

    def stop(self, check=True):
        self.stop_event.set()
        self.thread.join(20)
        alive = self.thread.is_alive()
        self.worker.shutdown()
        if check:
            assert not alive, "work() did not return"
            assert not self.failures, self.failures


def _submit_bg(gearmand, task, data, **kw):
    c = gearman.GearmanClient([gearmand.address])
    try:
        return c.submit_job(task, data, background=True, poll_timeout=10, **kw)
    finally:
        c.shutdown()


class JSONDataEncoder(gearman.DataEncoder):
    """rhettg/Gearmang gearmang/encoder.py and stackforge/libra libra/mgm/json_gearman.py."""

    @classmethod
    def encode(cls, encodable_object):
        return json.dumps(encodable_object)

    @classmethod
    def decode(cls, decodable_string):
        return json.loads(decodable_string)


class PickleDataEncoder(gearman.DataEncoder):
    """rranshous/gearmanlib gearman_helpers.py."""

    @classmethod
    def encode(cls, encodable_object):
        return pickle.dumps(encodable_object)

    @classmethod
    def decode(cls, decodable_string):
        return pickle.loads(decodable_string)


# --- Archivematica ---------------------------------------------------------------------------

class _MCPGearmanWorker(gearman.GearmanWorker):
    """artefactual/archivematica src/MCPClient/lib/client/gearman.py, MCPGearmanWorker."""

    data_encoder = JSONDataEncoder

    def __init__(self, hosts, client_scripts, shutdown_event=None, max_jobs_to_process=None):
        super().__init__(hosts)
        self.client_id = f"MCPClient-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.jobs_processed_count = 0
        self.max_jobs_to_process = max_jobs_to_process
        self.shutdown_event = shutdown_event
        self.seen = []
        self.set_client_id(self.client_id.encode("ascii"))
        for client_script in client_scripts:
            task_handler = functools.partial(self.handle_job, client_script)
            self.register_task(client_script.encode(), task_handler)

    def handle_job(self, task_name, gearman_worker, gearman_job):
        # the line that broke every job on cygearman <= 0.1: unique was a plain str
        self.seen.append(("unique", gearman_job.unique.decode(), task_name))
        tasks = gearman_job.data["tasks"]
        self.jobs_processed_count += 1
        return {"task_results": {uuid_: {"exitCode": 0, "stdout": task["arguments"]}
                                 for uuid_, task in tasks.items()}}

    def on_job_exception(self, current_job, exc_info):
        self.seen.append(("exception", repr(exc_info[1])))
        return bool(super().on_job_exception(current_job, exc_info))

    def after_poll(self, any_activity):
        if self.shutdown_event and self.shutdown_event.is_set():
            return False
        if (self.max_jobs_to_process is not None
                and self.jobs_processed_count >= self.max_jobs_to_process):
            return False
        return True


class _MCPGearmanClient(gearman.GearmanClient):
    """artefactual/archivematica src/MCPServer/lib/server/tasks/backends/gearman_backend.py."""

    def wait_until_any_job_completed(self, job_requests, poll_timeout=None):
        def continue_while_no_job_completed(any_activity):
            for current_request in job_requests:
                if current_request.complete and current_request.state != JOB_UNKNOWN:
                    return False
            return True

        self.poll_connections_until_stopped(
            self.connection_list, continue_while_no_job_completed, timeout=poll_timeout)
        for current_request in job_requests:
            if current_request.complete:
                self.request_to_rotating_connection_queue.pop(current_request, None)
        return job_requests


def test_archivematica_worker_decodes_unique_bytes_style(gearmand, fn):
    """Archivematica src/MCPClient/lib/client/gearman.py: ``gearman_job.unique.decode()``
    inside the task callback, tasks registered as ``client_script.encode()`` through
    ``functools.partial``, JSON payloads both ways."""
    w = _MCPGearmanWorker([gearmand.address], [fn])
    run = _Running(w)
    try:
        _registered(gearmand, fn)
        c = gearman.GearmanClient([gearmand.address])
        c.data_encoder = JSONDataEncoder
        unique = str(uuid.uuid4())
        r = c.submit_job(fn, {"tasks": {"t1": {"arguments": "a b"}}}, unique=unique,
                         poll_timeout=10)
        c.shutdown()
        assert r.state == JOB_COMPLETE, (r.state, w.seen)
        assert r.result == {"task_results": {"t1": {"exitCode": 0, "stdout": "a b"}}}
        assert w.seen == [("unique", unique, fn)]
    finally:
        run.stop()


def test_archivematica_worker_client_id_bytes_and_max_jobs(gearmand, fn):
    """Archivematica src/MCPClient/lib/client/gearman.py: ``set_client_id(bytes)`` shows in
    the admin listing; ``after_poll`` leaves ``work()`` after ``max_jobs_to_process``."""
    c = gearman.GearmanClient([gearmand.address])
    c.data_encoder = JSONDataEncoder
    for i in range(3):
        c.submit_job(fn, {"tasks": {str(i): {"arguments": str(i)}}}, background=True,
                     poll_timeout=10)
    c.shutdown()
    w = _MCPGearmanWorker([gearmand.address], [fn], max_jobs_to_process=2)
    done = []
    th = threading.Thread(target=lambda: done.append(w.work(poll_timeout=0.5)), daemon=True)
    th.start()
    th.join(20)
    assert not th.is_alive() and done == [None]
    assert w.jobs_processed_count == 2
    w.shutdown()
    w2 = _MCPGearmanWorker([gearmand.address], [fn], shutdown_event=threading.Event())
    run = _Running(w2)
    try:
        admin = gearman.GearmanAdminClient([gearmand.address])
        assert _until(lambda: any(x["client_id"] == w2.client_id for x in admin.get_workers()))
        assert _until(lambda: w2.jobs_processed_count == 1)       # the third job
    finally:
        w2.shutdown_event.set()
        run.stop()


def test_archivematica_worker_exception_hook_keeps_the_worker(gearmand, fn):
    """Archivematica src/MCPClient/lib/client/gearman.py: ``on_job_exception`` logs and
    returns ``bool(super().on_job_exception(...))``; the job fails, the worker goes on."""
    w = _MCPGearmanWorker([gearmand.address], [fn])
    run = _Running(w)
    try:
        _registered(gearmand, fn)
        c = gearman.GearmanClient([gearmand.address])
        c.data_encoder = JSONDataEncoder
        bad = c.submit_job(fn, {"no-tasks": 1}, poll_timeout=10)         # KeyError inside
        good = c.submit_job(fn, {"tasks": {}}, poll_timeout=10)
        c.shutdown()
        assert bad.state == JOB_FAILED and bad.complete
        assert good.state == JOB_COMPLETE and good.result == {"task_results": {}}
        assert [entry for entry in w.seen if entry[0] == "exception"] == [
            ("exception", "KeyError('tasks')")]
    finally:
        run.stop()


def test_archivematica_server_waits_for_any_job_completed(gearmand, fn):
    """Archivematica src/MCPServer/lib/server/tasks/backends/gearman_backend.py:
    ``poll_connections_until_stopped(self.connection_list, callback, timeout)`` returns
    as soon as one of several submitted batches completed."""
    release = threading.Event()

    def work(worker, job):
        if job.data == b"slow":
            release.wait(20)
        return b"done:" + job.data

    w1 = gearman.GearmanWorker([gearmand.address])
    w1.register_task(fn.encode(), work)
    w2 = gearman.GearmanWorker([gearmand.address])
    w2.register_task(fn.encode(), work)
    runs = [_Running(w1), _Running(w2)]
    try:
        _registered(gearmand, fn, workers=2)
        c = _MCPGearmanClient([gearmand.address])
        slow = c.submit_job(fn.encode(), b"slow", unique=b"s-" + fn.encode(),
                            wait_until_complete=False, background=False, max_retries=0)
        fast = c.submit_job(fn.encode(), b"fast", unique=b"f-" + fn.encode(),
                            wait_until_complete=False, background=False, max_retries=0)
        c.wait_until_jobs_accepted([slow, fast])
        assert slow.state == JOB_CREATED
        assert fast.state in (JOB_CREATED, JOB_COMPLETE)       # it may be done already
        requests = c.wait_until_any_job_completed([slow, fast], poll_timeout=15)
        assert requests == [slow, fast]
        assert fast.state == JOB_COMPLETE and fast.result == b"done:fast"
        assert slow.state == JOB_CREATED and not slow.complete      # still running
        release.set()
        c.wait_until_any_job_completed([slow], poll_timeout=15)
        assert slow.state == JOB_COMPLETE and slow.result == b"done:slow"
        c.shutdown()
    finally:
        release.set()
        for run in runs:
            run.stop()


def test_archivematica_server_pickled_batches_and_state_filter(gearmand, fn):
    """Archivematica gearman_backend.py: ``submit_job(task=bytes, data=pickle protocol 0,
    unique=bytes, wait_until_complete=False)``, then loop until no request is left whose
    state is not in ``(JOB_COMPLETE, JOB_FAILED)``; results unpickled."""
    def work(worker, job):
        data = pickle.loads(job.data)
        if "fail" in data["tasks"]:
            raise ValueError("batch failed")
        return pickle.dumps({"task_results": {k: {"exitCode": 0} for k in data["tasks"]}},
                            protocol=0)

    w = gearman.GearmanWorker([gearmand.address])
    w.register_task(fn.encode(), work)
    run = _Running(w)
    try:
        _registered(gearmand, fn)
        c = _MCPGearmanClient([gearmand.address])
        pending = [c.submit_job(task=fn.encode(), data=pickle.dumps({"tasks": {k: {}}}, protocol=0),
                                unique=str(uuid.uuid4()).encode(), wait_until_complete=False,
                                background=False, max_retries=0)
                   for k in ("a", "b", "fail")]
        c.wait_until_jobs_accepted(pending)
        requests = list(pending)
        rounds = 0
        while requests and rounds < 50:
            requests = c.wait_until_any_job_completed(requests, poll_timeout=10)
            requests = [r for r in requests if r.state not in (JOB_COMPLETE, JOB_FAILED)]
            rounds += 1
        assert not requests
        a, b, failed = pending
        assert pickle.loads(a.result) == {"task_results": {"a": {"exitCode": 0}}}
        assert pickle.loads(b.result) == {"task_results": {"b": {"exitCode": 0}}}
        assert failed.state == JOB_FAILED and failed.result is None
        c.shutdown()
    finally:
        run.stop()


# --- Gearmang ---------------------------------------------------------------------------------

class _GearmangClient(gearman.GearmanClient):
    """rhettg/Gearmang gearmang/client.py: raise when a request did not get created."""

    data_encoder = JSONDataEncoder

    class JobNotRequestedError(Exception):
        pass

    def submit_multiple_requests(self, *args, **kwargs):
        processed_requests = super().submit_multiple_requests(*args, **kwargs)
        for req in processed_requests:
            if req.state in (JOB_PENDING, JOB_UNKNOWN):
                raise self.JobNotRequestedError(
                    "Job %s for queue %s didn't get created: %s"
                    % (req.job.unique, req.job.task, req.state))
        return processed_requests


class _GearmangWorker(gearman.GearmanWorker):
    """rhettg/Gearmang gearmang/worker.py: JSON worker with retry and a fail queue."""

    data_encoder = JSONDataEncoder
    MAX_REPORT_ERRORS = 3

    def __init__(self, host_list=None):
        super().__init__(host_list=host_list)
        self.stop_on_error = False
        self.lock_seen_in_after_poll = []
        self._client = _GearmangClient(host_list)

    def after_poll(self, any_activity):
        self.lock_seen_in_after_poll.append(self.command_handler_holding_job_lock)
        if not self.has_job_locks():
            if self.stop_on_error:
                return False
        return True

    def has_job_locks(self):
        "Returns true if the worker is currently processing a job (sic: inverted)"
        return bool(self.command_handler_holding_job_lock is None)

    def on_job_exception(self, current_job, exc_info):
        current_job.data.setdefault("_job_errors", 0)
        current_job.data["_job_errors"] += 1
        if current_job.data["_job_errors"] < self.MAX_REPORT_ERRORS:
            self._client.submit_job(current_job.task, current_job.data, background=True,
                                    priority=PRIORITY_LOW, poll_timeout=10)
        else:
            self.failqueue_job(current_job, exc_info)
        return super().on_job_exception(current_job, exc_info)

    def failqueue_job(self, current_job, exc_info):
        fail_data = {
            "unique_key": current_job.unique,
            "task": current_job.task,
            "data": json.dumps(current_job.data),
            "exception": repr(exc_info[1]),
        }
        self._client.submit_job(current_job.task + "_fail", fail_data, background=True,
                                priority=PRIORITY_LOW, poll_timeout=10)


def test_gearmang_requeue_then_fail_queue_with_json_identifiers(gearmand, fn):
    """Gearmang gearmang/worker.py: ``on_job_exception`` re-submits ``current_job.task`` with
    the mutated ``current_job.data`` (low priority, background) and, after three errors,
    puts ``json``-serialised ``unique``/``task`` on a fail queue: identifiers must be
    JSON-serialisable (str) -- pygearman's bytes are not."""
    attempts = []
    fail_queue = []

    def always_fails(worker, job):
        attempts.append(job.data.get("_job_errors", 0))
        raise RuntimeError("transient")

    w = _GearmangWorker([gearmand.address])
    w.register_task(fn, always_fails)
    w.register_task(fn + "_fail", lambda worker, job: fail_queue.append(job.data) or "ok")
    run = _Running(w)
    try:
        _registered(gearmand, fn)
        c = _GearmangClient([gearmand.address])
        c.submit_job(fn, {"n": 1}, unique="u-" + fn, background=True, poll_timeout=10)
        c.shutdown()
        assert _until(lambda: fail_queue), attempts
        assert attempts == [0, 1, 2]
        (entry,) = fail_queue
        assert entry["task"] == fn and json.loads(entry["data"])["_job_errors"] == 3
        assert "RuntimeError" in entry["exception"]
    finally:
        run.stop()


def test_gearmang_after_poll_reads_the_job_lock(gearmand, fn):
    """Gearmang gearmang/worker.py: ``after_poll`` reads ``command_handler_holding_job_lock``
    through ``has_job_locks()`` (whose test is inverted: True when *no* lock is held) and
    leaves ``work()`` once ``stop_on_error`` is set -- which, with python-gearman's job
    cycle, happens when the lock is held for the next job assigned: that job is not run
    and goes back to the queue when the worker closes its connections."""
    def work(worker, job):
        inside.append(worker.command_handler_holding_job_lock)
        worker.stop_on_error = True
        return {"ok": job.data}

    inside = []
    w = _GearmangWorker([gearmand.address])
    w.register_task(fn, work)
    _submit_bg(gearmand, fn, '"first"')
    _submit_bg(gearmand, fn, '"second"')
    done = []
    th = threading.Thread(target=lambda: done.append(w.work(poll_timeout=0.5)), daemon=True)
    th.start()
    th.join(20)
    assert not th.is_alive() and done == [None]
    w.shutdown()
    # during the job the lock names this connection's handler
    assert len(inside) == 1 and inside[0] is not None
    # after_poll saw the lock held (awaiting a job) and free (between jobs)
    assert any(x is None for x in w.lock_seen_in_after_poll)
    assert w.lock_seen_in_after_poll[-1] is not None
    assert w.has_job_lock() is False
    # the second job was handed back, not lost
    assert _until(lambda: any(line.split("\t")[:2] == [fn, "1"]
                              for line in gearmand.admin("status").splitlines()))


def test_gearmang_client_raises_for_requests_never_created(free_port, gearmand, fn):
    """Gearmang gearmang/client.py: ``submit_multiple_requests`` override raising when a
    request stayed PENDING/UNKNOWN, with ``req.job.unique`` and ``req.job.task`` in the text."""
    c = _GearmangClient([gearmand.address])
    ok = c.submit_job(fn, {"a": 1}, background=True, poll_timeout=10)
    assert ok.state == JOB_CREATED and ok.complete
    c.shutdown()
    dead = _GearmangClient([f"127.0.0.1:{free_port}"])
    try:
        dead.submit_job(fn, {"a": 1}, background=True, poll_timeout=2)
    except _GearmangClient.JobNotRequestedError as exc:
        assert fn in str(exc)
    except errors.ServerUnavailable:
        pass                                   # what python-gearman raised first
    else:
        raise AssertionError("a job to a dead server was reported as created")
    finally:
        dead.shutdown()


# --- OpenVDM ----------------------------------------------------------------------------------

class _OVDMGearmanWorker(gearman.GearmanWorker):
    """OceanDataTools/openvdm server/workers/test_cruise_data_transfer.py, OVDMGearmanWorker."""

    def __init__(self, host):
        self.stop = False                       # (sic) shadows PECL's stop(): real code does this
        self.cruise_data_transfer = {}
        self.log = []
        super().__init__(host_list=[host])

    def on_job_execute(self, current_job):
        payload_obj = json.loads(current_job.data)
        self.cruise_data_transfer = payload_obj["cruiseDataTransfer"]
        self.log.append("Job: %s, %s transfer test started" % (current_job.handle,
                                                               self.cruise_data_transfer["name"]))
        return super().on_job_execute(current_job)

    def on_job_exception(self, current_job, exc_info):
        self.send_job_data(current_job, json.dumps([{"partName": "Worker crashed",
                                                     "result": "Fail"}]))
        return super().on_job_exception(current_job, exc_info)

    def on_job_complete(self, current_job, job_results):
        results_obj = json.loads(job_results)
        self.log.append("verdict %s" % results_obj["parts"][-1]["result"])
        return super().send_job_complete(current_job, job_results)

    def stop_task(self):
        self.stop = True

    def quit_worker(self):
        self.stop = True
        self.shutdown()


def _task_test_cruise_data_transfer(gearman_worker, current_job):
    if gearman_worker.cruise_data_transfer.get("crash"):
        raise OSError("mount failed")
    job_results = {"parts": []}
    for step in range(1, 5):
        gearman_worker.send_job_status(current_job, step, 4)
        job_results["parts"].append({"partName": "step %d" % step, "result": "Pass"})
    job_results["parts"].append({"partName": "Final Verdict", "result": "Pass"})
    return json.dumps(job_results)


def test_openvdm_hooks_status_and_crash_data(gearmand, fn):
    """OpenVDM server/workers/test_cruise_data_transfer.py: ``on_job_execute`` parses
    ``current_job.data`` and logs ``current_job.handle``; the task sends
    ``send_job_status(job, i, 4)``; ``on_job_complete`` calls
    ``super().send_job_complete``; ``on_job_exception`` sends WORK_DATA first."""
    w = _OVDMGearmanWorker(gearmand.address)
    w.set_client_id(__file__)
    w.register_task(fn, _task_test_cruise_data_transfer)
    run = _Running(w)
    try:
        _registered(gearmand, fn)
        c = gearman.GearmanClient([gearmand.address])
        good = c.submit_job(fn, json.dumps({"cruiseDataTransfer": {"name": "ssh"}}), poll_timeout=10)
        crash = c.submit_job(fn, json.dumps({"cruiseDataTransfer": {"name": "smb", "crash": 1}}),
                             poll_timeout=10)
        c.shutdown()
        assert good.state == JOB_COMPLETE
        assert json.loads(good.result)["parts"][-1] == {"partName": "Final Verdict", "result": "Pass"}
        assert (good.status["numerator"], good.status["denominator"]) == (4, 4)
        assert crash.state == JOB_FAILED
        assert [json.loads(d) for d in crash.data_updates] == [
            [{"partName": "Worker crashed", "result": "Fail"}]]
        assert any(line.startswith("Job: H:") and line.endswith("ssh transfer test started")
                   for line in w.log), w.log
        assert "verdict Pass" in w.log
    finally:
        run.stop()


def test_openvdm_sigint_handler_shutdown_ends_work(gearmand, fn):
    """OpenVDM server/workers/*.py: SIGINT's handler calls ``quit_worker()`` ->
    ``shutdown()`` while ``new_worker.work()`` runs in the main thread; the process must
    end.  (pygearman kept polling until poll_timeout, 60 s by default, then raised
    ServerUnavailable; cygearman ends ``work()`` after the running job and returns.)"""
    w = _OVDMGearmanWorker(gearmand.address)
    w.register_task(fn, _task_test_cruise_data_transfer)
    seen = []

    def sigint_handler(_signo, _stack_frame):
        seen.append("INT Signal Received")
        w.quit_worker()

    previous = signal.signal(signal.SIGINT, sigint_handler)
    killer = threading.Thread(target=lambda: (_registered(gearmand, fn),
                                              os.kill(os.getpid(), signal.SIGINT)), daemon=True)
    killer.start()
    outcome = []
    try:
        try:
            outcome.append(w.work())
        except errors.ServerUnavailable as exc:        # pygearman's ending
            outcome.append(exc)
    finally:
        signal.signal(signal.SIGINT, previous)
        killer.join(10)
    assert seen == ["INT Signal Received"] and w.stop is True
    assert outcome == [None], outcome
    # the worker left the server: nobody is registered for the task any more
    assert _until(lambda: all(line.split("\t")[3] == "0" for line in gearmand.admin("status").splitlines()
                              if line.split("\t")[0] == fn))


# --- shanghaiyangming/trouter -------------------------------------------------------------------

class _CustomGearmanWorker(gearman.GearmanWorker):
    """shanghaiyangming/trouter test/gw.py: every hook overridden, calling super()."""

    calls = None

    def on_job_execute(self, current_job):
        self.calls.append("started")
        return super().on_job_execute(current_job)

    def on_job_exception(self, current_job, exc_info):
        self.calls.append("failed")
        return super().on_job_exception(current_job, exc_info)

    def on_job_complete(self, current_job, job_result):
        self.calls.append("complete")
        return super().send_job_complete(current_job, job_result)

    def after_poll(self, any_activity):
        return True


def test_trouter_hook_overrides_echo_worker(gearmand, fn):
    """trouter test/gw.py: ``CustomGearmanWorker`` overriding ``on_job_execute``,
    ``on_job_exception`` and ``on_job_complete`` (the latter calling
    ``super().send_job_complete`` and returning None) around ``return job.data``."""
    w = _CustomGearmanWorker([gearmand.address])
    w.calls = []

    def task_callback(gearman_worker, job):
        if job.data == b"boom":
            raise ValueError(job.data)
        return job.data

    w.register_task(fn.encode(), task_callback)
    run = _Running(w)
    try:
        _registered(gearmand, fn)
        c = gearman.GearmanClient([gearmand.address])
        r = c.submit_job(fn, b"arbitrary binary data \x00\xff", poll_timeout=10)
        f = c.submit_job(fn, b"boom", poll_timeout=10)
        c.shutdown()
        assert (r.state, r.result) == (JOB_COMPLETE, b"arbitrary binary data \x00\xff")
        assert f.state == JOB_FAILED
        assert w.calls == ["started", "complete", "started", "failed"]
    finally:
        run.stop()


def _check_request_status(job_request, out):
    """trouter test/g.py (python-gearman docs' check_request_status)."""
    if job_request.complete:
        out.append("Job %s finished!  Result: %s - %s" % (job_request.job.unique, job_request.state,
                                                         job_request.result))
    elif job_request.timed_out:
        out.append("Job %s timed out!" % job_request.job.unique)
    elif job_request.state == JOB_UNKNOWN:
        out.append("Job %s connection failed!" % job_request.job.unique)
    else:
        out.append("Job %s: %s" % (job_request.job.unique, job_request.state))


def test_trouter_background_submit_is_complete_when_queued(gearmand, fn):
    """trouter test/g.py: ``submit_job(..., background=True, poll_timeout=3)`` then
    ``check_request_status``: a queued background job is ``complete``."""
    c = gearman.GearmanClient([gearmand.address])
    r = c.submit_job(fn, b"arbitrary binary data", background=True, poll_timeout=3)
    c.shutdown()
    out = []
    _check_request_status(r, out)
    assert r.state == JOB_CREATED and r.complete and not r.timed_out
    assert out[0].startswith("Job ") and out[0].endswith("finished!  Result: CREATED - None")


def test_trouter_rejected_background_job_is_not_complete(gearmand, fn):
    """trouter test/g.py against a full queue (``maxqueue``): the application decides
    with ``request.complete`` whether its background job was queued.  A job the server
    refused must not look queued (issue: ``complete`` was True on cygearman).  pygearman
    leaves it PENDING until ``poll_timeout`` (timed out); cygearman fails it at once
    (``JOB_FAILED``, ``error`` set): ``complete`` is False either way."""
    c = gearman.GearmanClient([gearmand.address])
    first = c.submit_job(fn, b"1", background=True, poll_timeout=3)
    admin = gearman.GearmanAdminClient([gearmand.address])
    try:
        admin.send_maxqueue(fn, 1)
    except errors.ProtocolError:
        pass                                # python-gearman could not read gearmand's "OK\r"
    try:
        r = c.submit_job(fn, b"2", background=True, poll_timeout=3)
        out = []
        _check_request_status(r, out)
        assert first.complete
        assert not r.complete, (r.state, out)
        assert not out[0].endswith("finished!  Result: CREATED - None")
    finally:
        try:
            admin.send_maxqueue(fn, 0)
        except errors.ProtocolError:
            pass
        c.shutdown()


# --- matiasmm/data-puller, dbaltas/gearman-python-worker, gearman.github.io ------------------

def test_data_puller_polls_get_job_status(gearmand, fn):
    """matiasmm/data-puller test/client.py: ``check_request_status`` after
    ``gm_client.get_job_status(request)`` in a loop, for a background job a worker runs."""
    release = threading.Event()

    def slow(worker, job):
        worker.send_job_status(job, 1, 2)
        release.wait(10)
        return b""

    w = gearman.GearmanWorker([gearmand.address])
    w.register_task(fn.encode(), slow)
    run = _Running(w)
    try:
        _registered(gearmand, fn)
        c = gearman.GearmanClient([gearmand.address])
        r = c.submit_job(fn, b"x", background=True, poll_timeout=10)
        assert _until(lambda: c.get_job_status(r).status.get("numerator") == 1)
        assert r.status["known"] and r.status["running"] and r.status["denominator"] == 2
        assert r.status["handle"] == r.job.handle
        release.set()
        assert _until(lambda: not c.get_job_status(r).status["known"])
        out = []
        _check_request_status(r, out)
        assert "finished!" in out[0]
        c.shutdown()
    finally:
        release.set()
        run.stop()


def test_simplejson_worker_returns_text(gearmand, fn):
    """dbaltas/gearman-python-worker worker.py: ``simplejson.loads(gearman_job.data)``
    (bytes in) and a ``str`` result ``'hi {0} from python worker'.format(...)``."""
    def task_listener_reverse(gearman_worker, gearman_job):
        data = json.loads(gearman_job.data)
        return "hi {0} from python worker".format(data["name"])

    w = gearman.GearmanWorker([gearmand.address])
    w.set_client_id("your_worker_client_id_name")
    w.register_task(fn.encode(), task_listener_reverse)
    run = _Running(w)
    try:
        _registered(gearmand, fn)
        c = gearman.GearmanClient([gearmand.address])
        r = c.submit_job(fn, json.dumps({"name": "gearman"}), poll_timeout=10)
        c.shutdown()
        assert r.result == b"hi gearman from python worker"
    finally:
        run.stop()


def test_gearman_org_reverse_example(gearmand, fn):
    """gearman/gearman.github.io _includes/examples/reverse/python/worker.py:
    ``gearman_job.data[::-1]`` with ``set_client_id('python-worker')``."""
    def task_listener_reverse(gearman_worker, gearman_job):
        return gearman_job.data[::-1]

    w = gearman.GearmanWorker([gearmand.address])
    w.set_client_id("python-worker")
    w.register_task(fn.encode(), task_listener_reverse)
    run = _Running(w)
    try:
        _registered(gearmand, fn)
        c = gearman.GearmanClient([gearmand.address])
        r = c.submit_job(fn, b"Hello World!", poll_timeout=10)
        c.shutdown()
        assert r.result == b"!dlroW olleH"
        admin = gearman.GearmanAdminClient([gearmand.address])
        assert any(x["client_id"] == "python-worker" for x in admin.get_workers())
    finally:
        run.stop()


# --- libra, gearmanlib, crmsync: encoders and partial-bound callbacks ------------------------

def test_libra_json_worker_task_returns_dict(gearmand, fn):
    """stackforge/libra libra/mgm/json_gearman.py ``JSONGearmanWorker`` and the lbaas
    task (``json.loads``-style dict in, dict or fault dict out), JSON client."""
    class JSONGearmanWorker(gearman.GearmanWorker):
        data_encoder = JSONDataEncoder

    class JSONGearmanClient(gearman.GearmanClient):
        data_encoder = JSONDataEncoder

    def lbaas_task(worker, job):
        data = job.data
        if "nodes" not in data:
            return {"badRequest": {"message": "Missing 'nodes' element"}}
        return {"name": data["name"], "nodes": [dict(n, status="ONLINE") for n in data["nodes"]]}

    w = JSONGearmanWorker([gearmand.address])
    w.register_task(fn.encode(), lbaas_task)
    run = _Running(w)
    try:
        _registered(gearmand, fn)
        c = JSONGearmanClient([gearmand.address])
        ok = c.submit_job(fn, {"name": "lb1", "nodes": [{"port": 80}]}, poll_timeout=10)
        bad = c.submit_job(fn, {"name": "lb2"}, poll_timeout=10)
        c.shutdown()
        assert ok.result == {"name": "lb1", "nodes": [{"port": 80, "status": "ONLINE"}]}
        assert bad.result == {"badRequest": {"message": "Missing 'nodes' element"}}
    finally:
        run.stop()


def test_gearmanlib_pickle_helpers(gearmand, fn):
    """rranshous/gearmanlib gearman_helpers.py: ``PickleGearmanClient`` /
    ``PickleGearmanWorker`` and ``call_gearman(func_name, *args)`` returning ``r.result``."""
    class PickleGearmanClient(gearman.GearmanClient):
        data_encoder = PickleDataEncoder

    class PickleGearmanWorker(gearman.GearmanWorker):
        data_encoder = PickleDataEncoder

    def call_gearman(func_name, *args, **kwargs):
        client = PickleGearmanClient(kwargs.get("host", []))
        r = client.submit_job(func_name, args, poll_timeout=10)
        client.shutdown()
        return r.result

    w = PickleGearmanWorker([gearmand.address])
    w.register_task(fn.encode(), lambda worker, job: {"sum": sum(job.data), "args": job.data})
    run = _Running(w)
    try:
        _registered(gearmand, fn)
        assert call_gearman(fn, 1, 2, 3, host=[gearmand.address]) == {"sum": 6, "args": (1, 2, 3)}
    finally:
        run.stop()


def test_crmsync_partial_bound_method_callback(gearmand, fn):
    """au-easyshare/crmsync crm_worker.py: ``register_task(name,
    functools.partial(CRMWorker.gm_task, self))``, ``json.loads(gearman_job.data)`` and a
    ``json.dumps`` error answer for a bad payload."""
    class CRMWorker:
        def __init__(self, gm_worker):
            gm_worker.register_task(fn.encode(), functools.partial(CRMWorker.gm_task, self))
            self.jobs = []

        def gm_task(self, gearman_worker, gearman_job):
            self.jobs.append(gearman_job)
            try:
                jsd = json.loads(gearman_job.data)
                if "object" not in jsd:
                    raise Exception("no 'object'")
            except Exception as ee:
                return json.dumps(dict(status="error", message=str(ee)))
            return json.dumps(dict(status="OK"))

    w = gearman.GearmanWorker([gearmand.address])
    crm = CRMWorker(w)
    run = _Running(w)
    try:
        _registered(gearmand, fn)
        c = gearman.GearmanClient([gearmand.address])
        ok = c.submit_job(fn, json.dumps({"object": "user"}), poll_timeout=10)
        bad = c.submit_job(fn, b"{}", poll_timeout=10)
        c.shutdown()
        assert json.loads(ok.result) == {"status": "OK"}
        assert json.loads(bad.result) == {"status": "error", "message": "no 'object'"}
        assert len(crm.jobs) == 2
    finally:
        run.stop()


# --- django-gearman-commands ------------------------------------------------------------------

def test_django_gearman_commands_hooked_worker_exit_after_job(gearmand, fn):
    """ebottabi/django-gearman-commands django_gearman_commands/__init__.py:
    ``HookedGearmanWorker(exit_after_job, host_list=...)`` whose ``after_job`` returns
    ``not exit_after_job``; ``_invoke_job`` maps ``''`` to None and returns ``'OK'``."""
    class HookedGearmanWorker(gearman.GearmanWorker):
        def __init__(self, exit_after_job, host_list=None):
            super().__init__(host_list=host_list)
            self.exit_after_job = exit_after_job

        def after_job(self):
            return not self.exit_after_job

    received = []

    def _invoke_job(worker, job):
        job_data = job.data if job.data else None
        received.append(job_data)
        return "OK"

    _submit_bg(gearmand, fn, b"")
    _submit_bg(gearmand, fn, b"second")
    worker = HookedGearmanWorker(exit_after_job=True, host_list=[gearmand.address])
    worker.register_task(fn.encode(), _invoke_job)
    done = []
    th = threading.Thread(target=lambda: done.append(worker.work(poll_timeout=1)), daemon=True)
    th.start()
    th.join(20)
    assert not th.is_alive() and done == [None]
    assert received == [None]                   # one job, then after_job said stop
    worker.shutdown()


def test_django_gearman_commands_server_info(gearmand, fn):
    """django-gearman-commands ``GearmanServerInfo.get_server_info``: ``get_version``,
    ``get_status`` rows (``r['task'], r['workers'], r['running'], r['queued']``) and
    ``','.join(r['tasks'])`` for workers that registered tasks."""
    w = gearman.GearmanWorker([gearmand.address])
    w.register_task(fn.encode(), lambda worker, job: b"")
    w.register_task((fn + "-2").encode(), lambda worker, job: b"")
    run = _Running(w)
    try:
        _registered(gearmand, fn)
        _submit_bg(gearmand, fn + "-queued", b"x")
        client = gearman.GearmanAdminClient([gearmand.address])
        server_version = client.get_version()
        tasks = client.get_status()
        workers = client.get_workers()
        assert server_version.startswith("OK ")
        rows = {r["task"]: (r["workers"], r["running"], r["queued"]) for r in tasks}
        assert rows[fn + "-queued"] == (0, 0, 1)
        assert rows[fn][0] >= 1
        joined = [",".join(r["tasks"]) for r in workers if r["tasks"]]
        assert any(sorted(j.split(",")) == sorted([fn, fn + "-2"]) for j in joined), joined
    finally:
        run.stop()


# --- admin scripts ----------------------------------------------------------------------------

def test_admin_script_send_maxqueue_and_ping(gearmand, fn):
    """LIMr1209/PythonGearmanWithDocker src/gearman_admin_client_test.py:
    ``admin_client.send_maxqueue("reverse", 100)`` (here 1), ``get_version()``,
    ``ping_server()``.  python-gearman raised ProtocolError on gearmand 1.1's ``OK\\r``
    although the limit was set (issue #31); either way the limit must hold."""
    _submit_bg(gearmand, fn, b"first")
    admin_client = gearman.GearmanAdminClient([gearmand.address])
    try:
        assert admin_client.send_maxqueue(fn, 1) == "OK"
        c = gearman.GearmanClient([gearmand.address])
        over = c.submit_job(fn, b"over", background=True, poll_timeout=2)
        c.shutdown()
        assert over.state != JOB_CREATED and not over.complete
        assert admin_client.get_version().startswith("OK")
        assert isinstance(admin_client.ping_server(), float)
    finally:
        try:
            admin_client.send_maxqueue(fn, 0)
        except errors.ProtocolError:
            pass


def test_admin_dashboard_status_json_and_unavailable_server(gearmand, free_port, fn):
    """A monitoring page's pattern (e.g. freesound's monitor view and the crawler
    ``Status``/``AgentCollection`` handlers): ``json.dumps(gm_admin_client.get_status())``
    and ``get_workers()``, ``except gearman.errors.ServerUnavailable: status = list()``."""
    _submit_bg(gearmand, fn, b"x")
    gm_admin_client = gearman.GearmanAdminClient([gearmand.address])
    status = json.loads(json.dumps(gm_admin_client.get_status()))
    assert {"task": fn, "queued": 1, "running": 0, "workers": 0} in status
    json.dumps(gm_admin_client.get_workers())
    try:
        gearman_status = gearman.GearmanAdminClient([f"127.0.0.1:{free_port}"]).get_status()
    except gearman.errors.ServerUnavailable:
        gearman_status = list()
    assert gearman_status == []


# --- identifiers in application code: bytes-style and str-style ------------------------------

def test_pygearman_port_compares_task_and_handle_as_bytes(gearmand, fn):
    """Code ported to pygearman (bytes identifiers), as Archivematica's MCPClient: a
    dispatch table keyed by the registered bytes names, ``job.task == b'...'``,
    ``job.handle.decode()``, ``b'%s' % job.unique``."""
    name = fn.encode()
    seen = {}

    def dispatch(worker, job):
        handlers = {name: lambda j: b"bytes-key"}
        seen["by_key"] = handlers[job.task](job)
        seen["eq"] = job.task == name
        seen["handle"] = job.handle.decode()
        seen["unique"] = b"u=%s" % job.unique
        return seen["by_key"]

    w = gearman.GearmanWorker([gearmand.address])
    w.register_task(name, dispatch)
    run = _Running(w)
    try:
        _registered(gearmand, fn)
        c = gearman.GearmanClient([gearmand.address])
        r = c.submit_job(name, b"x", unique=b"abc-" + name, poll_timeout=10)
        c.shutdown()
        assert r.result == b"bytes-key"
        assert seen["eq"] is True and seen["handle"].startswith("H:")
        assert seen["unique"] == b"u=abc-" + name
        assert r.job.handle == seen["handle"].encode()
    finally:
        run.stop()


def test_py2_port_formats_identifiers_as_text(gearmand, fn):
    """Code ported from python-gearman 2.0.2 on Python 2 (str identifiers), as Gearmang's
    fail queue and the docs' ``check_request_status``: ``'%s' % job.handle``,
    ``job.handle + ','``, ``json.dumps(job.to_dict()-like)`` and ``str.startswith``."""
    seen = {}

    def work(worker, job):
        seen["line"] = "job %s of %s" % (job.handle, job.task)
        seen["csv"] = job.handle + "," + job.unique
        seen["json"] = json.dumps({"task": job.task, "unique": job.unique, "handle": job.handle})
        return b""

    w = gearman.GearmanWorker([gearmand.address])
    w.register_task(fn.encode(), work)
    run = _Running(w)
    try:
        _registered(gearmand, fn)
        c = gearman.GearmanClient([gearmand.address])
        r = c.submit_job(fn, b"x", unique="py2-" + fn, poll_timeout=10)
        c.shutdown()
        handle = seen["json"] and json.loads(seen["json"])["handle"]
        assert handle.startswith("H:") and seen["line"] == "job %s of %s" % (handle, fn)
        assert seen["csv"] == handle + ",py2-" + fn
        assert json.loads(seen["json"]) == {"task": fn, "unique": "py2-" + fn, "handle": handle}
        assert r.state == JOB_COMPLETE
    finally:
        run.stop()


# --- subclasses of the connection-manager internals -------------------------------------------

def test_custom_work_loop_over_establish_and_poll(gearmand, fn):
    """A benchmark script's ``CustomGearmanWorker.work`` override (python-gearman 2.0.2's own
    loop re-typed: ``establish_worker_connections()`` then
    ``poll_connections_until_stopped(worker_connections, continue_while_connections_alive,
    timeout=poll_timeout)``, stopping after ``max_jobs`` via ``on_job_execute``)."""
    class CustomGearmanWorker(gearman.GearmanWorker):
        def __init__(self, host_list, max_jobs):
            super().__init__(host_list)
            self.max_jobs, self.counter, self.cont = max_jobs, 0, True

        def on_job_execute(self, current_job):
            self.counter += 1
            if self.counter >= self.max_jobs:
                self.cont = False
            return super().on_job_execute(current_job)

        def work(self, poll_timeout=60):
            continue_working = True
            worker_connections = []

            def continue_while_connections_alive(any_activity):
                return self.after_poll(any_activity)

            while continue_working and self.cont:
                worker_connections = self.establish_worker_connections()
                continue_working = self.poll_connections_until_stopped(
                    worker_connections, continue_while_connections_alive, timeout=poll_timeout)
            for current_connection in worker_connections:
                current_connection.close()

        def after_poll(self, any_activity):
            return self.cont

    for i in range(3):
        _submit_bg(gearmand, fn, b"%d" % i)
    seen = []
    w = CustomGearmanWorker([gearmand.address], max_jobs=3)
    w.register_task(fn.encode(), lambda worker, job: seen.append(job.data) or b"")
    th = threading.Thread(target=w.work, kwargs={"poll_timeout": 1}, daemon=True)
    th.start()
    th.join(20)
    assert not th.is_alive()
    assert sorted(seen) == [b"0", b"1", b"2"] and w.counter == 3
    assert all(c.gearman_port == gearmand.port for c in w.randomized_connections)
    w.shutdown()


def test_handler_maps_and_job_lock_from_a_callback(gearmand, fn):
    """python-gearman 2.0.2 ``GearmanWorker`` internals read by subclasses:
    ``connection_to_handler_map`` / ``handler_to_connection_map`` link the job's
    connection to the handler holding the job lock; ``set_job_lock`` refuses a second
    holder; ``check_job_lock`` names the holder (as the worker-lock loop of the
    ``while gm_worker.command_handler_holding_job_lock == None`` scripts expects)."""
    facts = {}

    def work(worker, job):
        handler = worker.connection_to_handler_map[job.connection]
        facts["holder_is_handler"] = worker.command_handler_holding_job_lock is handler
        facts["back"] = worker.handler_to_connection_map[handler] == job.connection
        facts["has"] = worker.has_job_lock()
        facts["check"] = worker.check_job_lock(handler)
        facts["second"] = worker.set_job_lock(handler, lock=True)
        return b"ok"

    w = gearman.GearmanWorker([gearmand.address])
    w.register_task(fn.encode(), work)
    run = _Running(w)
    try:
        _registered(gearmand, fn)
        c = gearman.GearmanClient([gearmand.address])
        r = c.submit_job(fn, b"x", poll_timeout=10)
        c.shutdown()
        assert r.result == b"ok"
        assert facts == {"holder_is_handler": True, "back": True, "has": True, "check": True,
                         "second": False}
        assert _until(lambda: w.command_handler_holding_job_lock is None)
    finally:
        run.stop()


def test_connection_activity_hook_sees_each_poll(gearmand, fn):
    """python-gearman 2.0.2 ``GearmanConnectionManager.handle_connection_activity``
    overridden to count reads (a metrics subclass), calling super and returning its
    sets; the client's ``poll_connections_until_stopped`` drives it."""
    class CountingClient(gearman.GearmanClient):
        reads = 0

        def handle_connection_activity(self, rd, wr, ex):
            self.reads += len(rd)
            return super().handle_connection_activity(rd, wr, ex)

    release = threading.Event()
    w = gearman.GearmanWorker([gearmand.address])
    w.register_task(fn.encode(), lambda worker, job: release.wait(10) and b"r")
    run = _Running(w)
    try:
        _registered(gearmand, fn)
        c = CountingClient([gearmand.address])
        r = c.submit_job(fn, b"x", wait_until_complete=False, poll_timeout=10)
        assert r.state == JOB_CREATED and not r.complete
        threading.Timer(0.3, release.set).start()
        ok = c.poll_connections_until_stopped(c.connection_list, lambda any_activity: not r.complete,
                                              timeout=10)
        assert ok is False and r.state == JOB_COMPLETE and r.result == b"r"
        assert c.reads >= 1
        c.shutdown()
    finally:
        release.set()
        run.stop()


def test_hand_built_job_status_request(gearmand, fn):
    """python-gearman docs/types_of_jobs.rst, used by status pollers: a
    ``GearmanJobRequest`` rebuilt from a stored handle with
    ``GearmanJob(client.connection_list[0], handle, None, None, None)``."""
    c = gearman.GearmanClient([gearmand.address])
    bg = c.submit_job(fn, b"x", background=True, poll_timeout=10)
    stored_handle = bg.job.handle if isinstance(bg.job.handle, str) else bg.job.handle.decode()
    c.shutdown()
    c2 = gearman.GearmanClient([gearmand.address])
    job = GearmanJob(c2.connection_list[0], stored_handle, None, None, None)
    request = gearman.job.GearmanJobRequest(job)
    request.state = JOB_CREATED
    c2.get_job_status(request, poll_timeout=10)
    assert request.status["known"] is True and request.status["running"] is False
    assert request.status["handle"] == stored_handle
    c2.shutdown()
