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
import datetime
import decimal
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


def test_freesound_monitor_status_or_empty_list(gearmand, free_port, fn):
    """MTG/freesound monitor/views.py ``monitor_home``: ``gearman.GearmanAdminClient(
    settings.GEARMAN_JOB_SERVERS).get_status()`` for the template, and
    ``except gearman.errors.ServerUnavailable: gearman_status = list()`` when the job
    server is down (the constructor must not raise: the ``try`` covers both lines)."""
    _submit_bg(gearmand, fn, b"x")

    def monitor_home(job_servers):
        try:
            gm_admin_client = gearman.GearmanAdminClient(job_servers)
            gearman_status = gm_admin_client.get_status()
        except gearman.errors.ServerUnavailable:
            gearman_status = list()
        return {"gearman_status": gearman_status}

    tvars = monitor_home([gearmand.address])
    rows = [row for row in tvars["gearman_status"] if row["task"] == fn]
    assert rows == [{"task": fn, "queued": 1, "running": 0, "workers": 0}]
    assert all(isinstance(row["task"], str) for row in tvars["gearman_status"])
    assert monitor_home([f"127.0.0.1:{free_port}"]) == {"gearman_status": []}


def test_archivematica_rpccli_info_filters_admin_listings(gearmand, fn):
    """artefactual/archivematica src/MCPrpcCLI/lib/info.py:
    ``gearman.admin_client.GearmanAdminClient(host_list=[...])``, workers whose
    ``client["client_id"] != "-"`` (the server's own task connections) printed with
    ``client["ip"]``, and the ``get_status()`` rows with ``running`` or ``queued``."""
    import gearman.admin_client

    w = gearman.GearmanWorker([gearmand.address])
    w.set_client_id("MCPClient-" + fn)
    w.register_task(fn + "-idle", lambda worker, job: b"")
    run = _Running(w)
    try:
        _registered(gearmand, fn + "-idle")
        _submit_bg(gearmand, fn + "-busy", b"x")
        admin = gearman.admin_client.GearmanAdminClient(host_list=[gearmand.address])
        listed = [(client["client_id"], client["ip"]) for client in admin.get_workers()
                  if client["client_id"] != "-"]
        unnamed = [client for client in admin.get_workers() if client["client_id"] == "-"]
        active = [stat["task"] for stat in admin.get_status()
                  if stat["running"] != 0 or stat["queued"] != 0]
        assert ("MCPClient-" + fn, "127.0.0.1") in listed
        assert unnamed, "the admin connection itself is listed with client_id '-'"
        assert fn + "-busy" in active and fn + "-idle" not in active
    finally:
        run.stop()


# --- identifiers in application code: bytes-style and str-style ------------------------------

class _ArchivematicaJSONEncoder(json.JSONEncoder):
    def default(self, obj):
        if isinstance(obj, uuid.UUID):
            return {"__type__": "UUID", "value": obj.hex}
        return super().default(obj)


def _archivematica_json_hook(obj):
    if obj.get("__type__") == "UUID":
        return uuid.UUID(obj["value"])
    return obj


class _ArchivematicaGearmanEncoder(gearman.DataEncoder):
    """artefactual/archivematica src/archivematicaCommon/lib/gearman_encoder.py."""

    @classmethod
    def encode(cls, encodable_object):
        # "Object of type bytes is not JSON serializable."
        if isinstance(encodable_object, bytes):
            encodable_object = encodable_object.decode("utf-8")
        return json.dumps(encodable_object, cls=_ArchivematicaJSONEncoder, separators=(",", ":"))

    @classmethod
    def decode(cls, decodable_string):
        return json.loads(decodable_string, object_hook=_archivematica_json_hook)


def test_archivematica_encoder_and_bytes_identifiers(gearmand, fn):
    """artefactual/archivematica src/archivematicaCommon/lib/gearman_encoder.py (JSON with
    UUIDs, bytes decoded before ``json.dumps``) as used by
    src/MCPServer/lib/server/tasks/backends/gearman_backend.py ``GearmanTaskBatch.submit``:
    ``submit_job(task=job.name.encode(), data=..., unique=str(self.uuid).encode(),
    wait_until_complete=False)``; the worker answers with bytes, the client finds the
    results by ``str(task.uuid)``."""
    batch_uuid = uuid.uuid4()
    task_uuid = uuid.uuid4()
    seen = []

    class Worker(gearman.GearmanWorker):
        data_encoder = _ArchivematicaGearmanEncoder

    class Client(gearman.GearmanClient):
        data_encoder = _ArchivematicaGearmanEncoder

    def handle_job(worker, job):
        seen.append((job.unique.decode(), type(job.data["uuid"])))
        return json.dumps({"task_results": {str(job.data["uuid"]): {"exitCode": 0}}}).encode()

    w = Worker([gearmand.address])
    w.register_task(fn.encode(), handle_job)
    run = _Running(w)
    try:
        _registered(gearmand, fn)
        c = Client([gearmand.address])
        pending = c.submit_job(task=fn.encode(), data={"uuid": task_uuid},
                               unique=str(batch_uuid).encode(), wait_until_complete=False,
                               background=False, max_retries=0)
        c.wait_until_jobs_completed([pending], poll_timeout=10)
        c.shutdown()
        assert pending.state == JOB_COMPLETE
        assert seen == [(str(batch_uuid), uuid.UUID)]
        # the bytes answer went through encode() as text: the client gets a JSON string
        assert json.loads(pending.result)["task_results"][str(task_uuid)] == {"exitCode": 0}
    finally:
        run.stop()


def test_gearmang_fail_worker_formats_identifiers_as_text(gearmand, fn):
    """rhettg/Gearmang bin/gearmang_fail_worker ``handle_gearman_fail``: logs
    ``"Handling %s task for task queue %s queued at %s" % (job.task, job.data['task'], ...)``
    and stores ``unique_key``/``task``/``data``/``exception`` from the fail record that
    gearmang/worker.py ``failqueue_job`` builds from ``current_job.unique``/``.task``.
    Identifiers written for python-gearman 2.0.2 (Python 2 ``str``) must format as text;
    pygearman's bytes give ``"b'...'"``."""
    fail_task = fn + "_gearman_fail"
    log, stored = [], []

    def failing(worker, job):
        raise RuntimeError("boom")

    class Worker(_GearmangWorker):
        MAX_REPORT_ERRORS = 1

        def failqueue_job(self, current_job, exc_info):
            fail_data = {"unique_key": current_job.unique, "task": current_job.task,
                         "data": json.dumps(current_job.data), "time": time.time(),
                         "exception": repr(exc_info[1])}
            self._client.submit_job(fail_task, fail_data, background=True,
                                    priority=PRIORITY_LOW, poll_timeout=10)

    def handle_gearman_fail(worker, job):
        queue_time = datetime.datetime.fromtimestamp(job.data["time"])
        log.append("Handling %s task for task queue %s queued at %s"
                   % (job.task, job.data["task"], queue_time))
        stored.append({key: job.data[key] for key in ("unique_key", "task", "data", "exception")})
        return None

    w = Worker([gearmand.address])
    w.register_task(fn, failing)
    w.register_task(fail_task, handle_gearman_fail)
    run = _Running(w)
    try:
        _registered(gearmand, fail_task)
        c = _GearmangClient([gearmand.address])
        c.submit_job(fn, {"n": 1}, unique="u-" + fn, background=True, poll_timeout=10)
        c.shutdown()
        assert _until(lambda: stored), log
        assert log[0].startswith("Handling %s task for task queue %s queued at " % (fail_task, fn))
        assert stored == [{"unique_key": "u-" + fn, "task": fn, "data": json.dumps({"n": 1, "_job_errors": 1}),
                           "exception": "RuntimeError('boom')"}]
    finally:
        run.stop()


# --- custom work loops and the job lock -------------------------------------------------------

def test_smetj_gevent_speed_test_custom_work_loop(gearmand, fn):
    """smetj/experiments python/testlap/gearman_gevent.py ``CustomGearmanWorker``: ``max_jobs``
    taken out of ``**kwargs`` before ``gearman.GearmanWorker.__init__(self, *args, **kwargs)``,
    ``on_job_execute`` counting jobs, and ``work()`` overridden with python-gearman 2.0.2's
    own loop re-typed (``establish_worker_connections()`` then
    ``poll_connections_until_stopped(worker_connections, continue_while_connections_alive,
    timeout=poll_timeout)``, ``current_connection.close()`` at the end)."""
    class CustomGearmanWorker(gearman.GearmanWorker):
        def __init__(self, *args, **kwargs):
            self.max_jobs = kwargs.get("max_jobs", 100)
            del kwargs["max_jobs"]
            self.counter = 1
            self.cont = True
            gearman.GearmanWorker.__init__(self, *args, **kwargs)

        def on_job_execute(self, current_job):
            if self.counter >= self.max_jobs:
                self.cont = False
            self.counter += 1
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

    gm_client = gearman.GearmanClient([gearmand.address])
    for i in range(3):
        gm_client.submit_job(fn, b"This is a test %d" % i, background=True, poll_timeout=10)
    gm_client.shutdown()
    seen = []

    def do(worker, job):
        seen.append(job.data)
        return job.data

    worker = CustomGearmanWorker([gearmand.address], max_jobs=3)
    worker.register_task(fn.encode(), do)
    th = threading.Thread(target=worker.work, kwargs={"poll_timeout": 1}, daemon=True)
    th.start()
    th.join(20)
    assert not th.is_alive()
    assert sorted(seen) == [b"This is a test 0", b"This is a test 1", b"This is a test 2"]
    assert worker.counter == 4 and worker.cont is False
    worker.shutdown()


def test_ganapatih_worker_loops_while_no_job_lock(gearmand, fn):
    """ganapatih/processor ganapatih_worker.py (an earlier revision): ``set_client_id`` called
    once per task (the last one wins), JSON callbacks answering ``json.dumps(...)``, and
    ``while gm_worker.command_handler_holding_job_lock == None: runner(gm_worker)`` with
    ``runner`` = ``try: obj.work() except: pass`` -- so ``work()`` must leave the job lock
    free when it returns, or the loop ends.  (Here each ``work()`` ends after its job
    through ``after_poll``; the real script waited for an exception.)"""
    inserted = {"register": [], "korban": [], "relawan": []}
    gm_worker = gearman.GearmanWorker([gearmand.address])
    stop_after_job = []

    def make_insert(table):
        def insert(gearman_worker, gearman_job):
            gearman_data = json.loads(gearman_job.data)
            gearman_data.update({"timestamp": gearman_data["timestamp"][:10]})
            inserted[table].append(gearman_data)
            stop_after_job.append(table)
            return json.dumps(gearman_data)
        return insert

    gm_worker.after_poll = lambda any_activity: not stop_after_job
    for client_id, table in (("register_new_user", "register"), ("insert_korban", "korban"),
                             ("insert_relawan", "relawan")):
        gm_worker.set_client_id(client_id + "-" + fn)
        gm_worker.register_task((fn + "-" + table).encode(), make_insert(table))
    for table in inserted:
        _submit_bg(gearmand, fn + "-" + table,
                   json.dumps({"nama": "roland", "timestamp": "2013-01-02T03:04:05"}))

    def runner(obj):
        try:
            obj.work(poll_timeout=0.5)
        except Exception:
            pass

    rounds = 0
    while gm_worker.command_handler_holding_job_lock == None and rounds < 5:  # noqa: E711
        runner(gm_worker)
        del stop_after_job[:]
        rounds += 1
        if all(inserted.values()):
            break
    assert all(inserted.values()), (rounds, inserted)
    assert rounds == 3 and gm_worker.command_handler_holding_job_lock is None
    assert inserted["korban"] == [{"nama": "roland", "timestamp": "2013-01-02"}]
    admin = gearman.GearmanAdminClient([gearmand.address])
    runner_thread = threading.Thread(target=runner, args=(gm_worker,), daemon=True)
    gm_worker.after_poll = lambda any_activity: not stop_after_job
    runner_thread.start()
    try:
        ids = _until(lambda: [x["client_id"] for x in admin.get_workers()
                              if x["client_id"].endswith(fn)])
        assert ids == ["insert_relawan-" + fn]
    finally:
        stop_after_job.append("stop")
        runner_thread.join(10)
        gm_worker.shutdown()
    assert not runner_thread.is_alive()


# --- chenchiyuan/django-gearman ----------------------------------------------------------------

WILL_SHUT_DOWN = 2
SHUT_DOWN = 1


class _FishWorker(gearman.GearmanWorker):
    """chenchiyuan/django-gearman manager/distribute/workers.py ``Worker``."""

    def __init__(self, host_list=None):
        self.continue_work = 10
        self.completed = []
        super().__init__(host_list=host_list)

    def on_job_complete(self, current_job, job_result):
        self.completed.append(current_job.data)
        json_data = json.loads(job_result)
        if isinstance(json_data, dict) and "SHUTDOWN" in json_data:
            self.continue_work = WILL_SHUT_DOWN
        return super().on_job_complete(current_job, job_result)

    def safely_work(self):
        self.continue_work = 10
        try:
            self.work()
        except Exception as err:
            self.completed.append(err)

    def after_poll(self, any_activity):
        return True

    def poll_connections_until_stopped(self, submitted_connections, callback_fxn, timeout=None):
        def smart_callback(any_activity):
            if self.continue_work == WILL_SHUT_DOWN:
                self.continue_work -= 1
                return callback_fxn(any_activity)
            elif self.continue_work == SHUT_DOWN:
                self.continue_work -= 1
                return callback_fxn(any_activity) and self.continue_work
            else:
                return callback_fxn(any_activity) and self.continue_work

        # (sic) the result is not returned: work() sees None and ends after this poll loop
        super().poll_connections_until_stopped(submitted_connections, smart_callback,
                                               timeout=timeout)


def test_django_gearman_fish_worker_overrides_the_poll_loop(gearmand, fn):
    """chenchiyuan/django-gearman manager/distribute/workers.py: a worker subclass overriding
    ``poll_connections_until_stopped`` to wrap ``work()``'s callback (a job answering
    ``{"SHUTDOWN": ...}`` stops the loop two polls later) and returning None,
    ``on_job_complete`` calling ``super().on_job_complete``, run by a
    ``threading.Thread`` subclass (``ThreadWorker``) through ``safely_work``."""
    class ThreadWorker(threading.Thread):
        def __init__(self, task, callback, daemon=False, host_list=None):
            threading.Thread.__init__(self)
            self.task = task
            self.callback = callback
            self.daemon = daemon
            self.worker = _FishWorker(host_list=host_list)

        def run(self):
            self.worker.register_task(self.task, self.callback)
            self.worker.safely_work()

    def crawl(worker, job):
        if job.data == b"stop":
            return json.dumps({"SHUTDOWN": True})
        return json.dumps({"crawled": job.data.decode()})

    tw = ThreadWorker(fn.encode(), crawl, daemon=True, host_list=[gearmand.address])
    tw.start()
    try:
        _registered(gearmand, fn)
        c = gearman.GearmanClient([gearmand.address])
        r = c.submit_job(fn, b"page-1", poll_timeout=10)
        assert json.loads(r.result) == {"crawled": "page-1"}
        time.sleep(1)
        assert tw.is_alive()
        stop = c.submit_job(fn, b"stop", poll_timeout=10)
        c.shutdown()
        assert json.loads(stop.result) == {"SHUTDOWN": True}
        tw.join(15)
        assert not tw.is_alive(), "work() did not end after the SHUTDOWN job"
        assert tw.worker.completed == [b"page-1", b"stop"]
        assert tw.worker.continue_work == 0
    finally:
        tw.worker.continue_work = 0
        tw.join(15)
        tw.worker.shutdown()


def test_django_gearman_fish_client_send_jobs(gearmand, fn):
    """chenchiyuan/django-gearman manager/distribute/clients.py ``Client``: ``send_job(name,
    data, unique=False)`` -> ``submit_job(task=name, data=data, unique=unique)`` (a false
    unique means "make one up", so equal payloads are not coalesced) and
    ``send_jobs(jobs, wait_until_complete=False, background=False)`` ->
    ``submit_multiple_jobs`` with job dicts, then ``wait_until_jobs_completed``."""
    class Client(gearman.GearmanClient):
        def __init__(self, host_list=None, *args, **kwargs):
            super().__init__(host_list, *args, **kwargs)

        def send_job(self, name, data, unique=False, **kwargs):
            return self.submit_job(task=name, data=data, unique=unique, **kwargs)

        def send_jobs(self, jobs, wait_until_complete=False, background=False):
            return self.submit_multiple_jobs(jobs, wait_until_complete=wait_until_complete,
                                             background=background)

    runs = []

    def work(worker, job):
        runs.append(job.unique)
        return job.data.upper()

    w = gearman.GearmanWorker([gearmand.address])
    w.register_task(fn.encode(), work)
    run = _Running(w)
    try:
        _registered(gearmand, fn)
        client = Client([gearmand.address])
        one = client.send_job(fn, b"same", poll_timeout=10)
        two = client.send_job(fn, b"same", poll_timeout=10)
        assert (one.result, two.result) == (b"SAME", b"SAME")
        assert one.job.unique and two.job.unique and one.job.unique != two.job.unique
        requests = client.send_jobs([{"task": fn, "data": b"a"}, {"task": fn, "data": b"b"},
                                     {"task": fn, "data": b"c", "unique": "c-" + fn}])
        assert all(r.state in (JOB_CREATED, JOB_COMPLETE) for r in requests)     # accepted
        client.wait_until_jobs_completed(requests, poll_timeout=10)
        assert [r.result for r in requests] == [b"A", b"B", b"C"]
        assert all(r.state == JOB_COMPLETE for r in requests)
        assert len(runs) == 5 and len(set(runs)) == 5
        client.shutdown()
    finally:
        run.stop()


# --- gmtasks, aidanlister/django-gearman, gearoscope ---------------------------------------------

class _DecimalJSONEncoder(json.JSONEncoder):
    def default(self, obj):
        if isinstance(obj, decimal.Decimal):
            return str(obj)
        return super().default(obj)


class _GmtasksJSONDataEncoder(gearman.DataEncoder):
    """ex-nerd/gmtasks gmtasks/jsonclass.py ``_JSONDataEncoder``."""

    @classmethod
    def encode(cls, encodable_object):
        return json.dumps(encodable_object, cls=_DecimalJSONEncoder)

    @classmethod
    def decode(cls, decodable_string):
        return json.loads(decodable_string)


class _GmtasksTask:
    """ex-nerd/gmtasks gmtasks/__init__.py ``Task``: on an exception, disconnect (so the job
    goes back to the queue) and re-raise."""

    def __init__(self, task, callback):
        self.task = task
        self.callback = callback

    def __call__(self, worker, job):
        try:
            return self.callback(worker, job)
        except Exception:
            worker.shutdown()
            raise


def _gmtasks_worker_process(tasks, doneq, host_list, worker_class, client_id):
    """ex-nerd/gmtasks gmtasks/__init__.py ``_worker_process`` (a thread here)."""
    try:
        gm_worker = worker_class(host_list=host_list)
        doneq.append(gm_worker)
        if client_id:
            gm_worker.set_client_id(client_id)
        for task in tasks:
            if isinstance(task, dict):
                taskname, callback = task["task"], task["callback"]
            elif isinstance(task, (list, tuple)):
                taskname, callback = task
            else:
                taskname, callback = task.task, task
            gm_worker.register_task(taskname, callback)
        gm_worker.work(poll_timeout=1)
    except gearman.errors.ServerUnavailable as e:
        doneq.append(e)
        return
    doneq.append(True)


def test_gmtasks_json_worker_task_forms_and_decimals(gearmand, fn):
    """ex-nerd/gmtasks gmtasks/jsonclass.py (JSON encoder that writes ``Decimal`` as text,
    ``GearmanWorker`` whose ``after_poll`` returns True) and gmtasks/__init__.py
    ``_worker_process``: tasks given as ``Task(...)``, ``{'task':..., 'callback':...}`` and
    ``[name, callback]``, ``set_client_id(id_prefix + counter)``; README's
    ``job.data['string1']`` callbacks."""
    class GearmanWorker(gearman.GearmanWorker):
        data_encoder = _GmtasksJSONDataEncoder

        def after_poll(self, any_activity):
            return not stopping

    class GearmanClient(gearman.GearmanClient):
        data_encoder = _GmtasksJSONDataEncoder

    stopping = False
    tasks = [_GmtasksTask((fn + "-job1").encode(), lambda worker, job: job.data["string1"]),
             {"task": (fn + "-job2").encode(), "callback": lambda worker, job: job.data["string2"]},
             [(fn + "-job3").encode(), lambda worker, job: {"total": job.data["amount"]}]]
    doneq = []
    th = threading.Thread(target=_gmtasks_worker_process,
                          args=(tasks, doneq, [gearmand.address], GearmanWorker, "myworker." + fn + ".1"),
                          daemon=True)
    th.start()
    try:
        _registered(gearmand, fn + "-job3")
        c = GearmanClient([gearmand.address])
        data = {"string1": "one", "string2": "two", "amount": decimal.Decimal("10.50")}
        results = [c.submit_job(fn + "-job%d" % i, data, poll_timeout=10).result for i in (1, 2, 3)]
        c.shutdown()
        assert results == ["one", "two", {"total": "10.50"}]
        admin = gearman.GearmanAdminClient([gearmand.address])
        assert any(x["client_id"] == "myworker." + fn + ".1" for x in admin.get_workers())
    finally:
        stopping = True
        th.join(15)
        if doneq:
            doneq[0].shutdown()
    assert not th.is_alive() and doneq[-1] is True


def test_gmtasks_task_wrapper_disconnects_so_the_job_is_retried(gearmand, fn):
    """ex-nerd/gmtasks gmtasks/__init__.py: ``Task.__call__`` calls ``worker.shutdown()``
    when the callback raises ("Disconnect so this job goes back into the queue") and
    re-raises; ``GearmanTaskServer.serve_forever`` starts a new worker process when one
    ends.  The client must not see the failed attempt: the job is run again and completes."""
    attempts = []

    def flaky(worker, job):
        attempts.append(job.data)
        if len(attempts) == 1:
            raise OSError("transient")
        return job.data[::-1]

    tasks = [_GmtasksTask(fn.encode(), flaky)]
    doneq, threads = [], []

    def serve(max_workers=1, rounds=3):
        for _ in range(rounds):
            th = threading.Thread(target=_gmtasks_worker_process,
                                  args=(tasks, doneq, [gearmand.address], gearman.GearmanWorker, None),
                                  daemon=True)
            th.start()
            threads.append(th)
            th.join()
            if len(attempts) >= 2:
                return

    supervisor = threading.Thread(target=serve, daemon=True)
    supervisor.start()
    try:
        _registered(gearmand, fn)
        c = gearman.GearmanClient([gearmand.address])
        r = c.submit_job(fn, b"abc", poll_timeout=20)
        c.shutdown()
        assert (r.state, r.result) == (JOB_COMPLETE, b"cba"), (r.state, attempts, doneq)
        assert attempts == [b"abc", b"abc"]
    finally:
        for item in doneq:
            if isinstance(item, gearman.GearmanWorker):
                item.after_poll = lambda any_activity: False
                item.shutdown()
        supervisor.join(15)


def test_django_gearman_decorated_job_object(gearmand, fn):
    """aidanlister/django-gearman django_gearman/decorators.py (``gearman_job``: a callable
    object ``__call__(self, gearman_worker, gearman_job, *args, **kwargs)`` calling the
    job function with ``gearman_job.data``), django_gearman/models.py
    (``DjangoGearmanWorker.__init__(self, **kwargs): return super().__init__(
    settings.GEARMAN_SERVERS, **kwargs)``), management/commands/gearman_worker.py
    (registered as ``'%s.%s' % (app, jobname)``) and the example client
    (``client.submit_job("gearman_example.reverse", sentence).result``)."""
    GEARMAN_SERVERS = [gearmand.address]

    class gearman_job:
        def __init__(self, f):
            self.f = f
            self.__name__ = f.__name__
            self.app = fn

        def __call__(self, gearman_worker, gearman_job, *args, **kwargs):
            try:
                arg = gearman_job.data
            except IndexError:
                arg = None
            return self.f(arg)

    class DjangoGearmanWorker(gearman.GearmanWorker):
        def __init__(self, **kwargs):
            return super().__init__(GEARMAN_SERVERS, **kwargs)

    class DjangoGearmanClient(gearman.GearmanClient):
        def __init__(self, **kwargs):
            return super().__init__(GEARMAN_SERVERS, **kwargs)

    @gearman_job
    def reverse(sentence):
        return sentence[::-1]

    jobs = [reverse]
    worker = DjangoGearmanWorker()
    for job in jobs:
        job.register_as = "%s.%s" % (job.app, job.__name__)
        worker.register_task(job.register_as.encode(), job)
    run = _Running(worker)
    try:
        _registered(gearmand, fn + ".reverse")
        client = DjangoGearmanClient()
        sentence = "The quick brown fox jumps over the lazy dog."
        res = client.submit_job(fn + ".reverse", sentence)
        client.shutdown()
        assert res.result == sentence[::-1].encode(), (res.state, res.result)
    finally:
        run.stop()


def test_gearoscope_sleeping_worker_after_poll(gearmand, fn):
    """kachayev/gearoscope tests/env_stub/workers/sleeping.py (``after_poll(self, activity)``
    -- note the parameter name -- sleeping and returning True) and reverse.py
    (``worker.set_client_id(STUB_WORKERS_ID_FORMAT % {'task': 'reverse'})``,
    ``gearman_job.data[::-1]``)."""
    STUB_WORKERS_ID_FORMAT = "gearoscope-" + fn + "-%(task)s"
    polls = []

    class SleepingGearmanWorker(gearman.GearmanWorker):
        def after_poll(self, activity):
            polls.append(activity)
            time.sleep(0.05)
            return True

    def task_listener(gearman_worker, gearman_job):
        return gearman_job.data[::-1]

    worker = SleepingGearmanWorker([gearmand.address])
    worker.set_client_id(STUB_WORKERS_ID_FORMAT % {"task": "reverse"})
    worker.register_task(fn.encode(), task_listener)
    run = _Running(worker)
    try:
        _registered(gearmand, fn)
        c = gearman.GearmanClient([gearmand.address])
        r = c.submit_job(fn, b"stressed", poll_timeout=10)
        c.shutdown()
        assert r.result == b"desserts"
        assert polls and all(isinstance(p, bool) for p in polls) and True in polls
        admin = gearman.GearmanAdminClient([gearmand.address])
        assert any(x["client_id"] == "gearoscope-" + fn + "-reverse" for x in admin.get_workers())
    finally:
        run.stop()


# --- monitoring agents and example clients -----------------------------------------------------

def test_datadog_agent_check_sums_status(gearmand, fn):
    """DataDog/dd-agent checks.d/gearmand.py: ``get_library_versions`` reads
    ``gearman.__version__``; ``_get_client`` builds
    ``gearman.GearmanAdminClient(["%s:%s" % (host, port)])``; ``_get_metrics`` sums
    ``running``/``queued``/``workers`` over ``get_status()`` and counts ``len(data)``."""
    assert isinstance(gearman.__version__, str) and gearman.__version__
    _submit_bg(gearmand, fn, b"1")
    _submit_bg(gearmand, fn, b"2")
    host, port = gearmand.address.rsplit(":", 1)
    client = gearman.GearmanAdminClient(["%s:%s" % (host, port)])

    def metrics():
        data = client.get_status()
        running = queued = workers = 0
        for stat in data:
            running += stat["running"]
            queued += stat["queued"]
            workers += stat["workers"]
        return {"unique_tasks": len(data), "running": running, "queued": queued,
                "workers": workers}

    def from_the_wire():
        rows = [line.split("\t") for line in gearmand.admin("status").splitlines()
                if line.count("\t") == 3]
        return {"unique_tasks": len(rows), "queued": sum(int(r[1]) for r in rows),
                "running": sum(int(r[2]) for r in rows), "workers": sum(int(r[3]) for r in rows)}

    assert _until(lambda: metrics() == from_the_wire()), (metrics(), from_the_wire())
    assert metrics()["queued"] >= 2
    assert {"task": fn, "queued": 2, "running": 0, "workers": 0} in client.get_status()


def test_gearman_go_python_example_client_with_an_unreachable_host(gearmand, free_port, fn):
    """mikespook/gearman-go example/py/client.py: ``gearman.GearmanClient(['localhost:4730',
    'otherhost:4730'])`` -- the second server unreachable -- then ``submit_job("ToUpper",
    "arbitrary binary data")`` inside ``try/except Exception as e: print(type(e))``, twice
    (``for i in range(2): main()``): every job must reach the live server."""
    w = gearman.GearmanWorker([gearmand.address])
    w.register_task(fn.encode(), lambda worker, job: job.data.upper())
    run = _Running(w)
    outcomes = []
    try:
        _registered(gearmand, fn)

        def main(hosts):
            client = gearman.GearmanClient(hosts)
            try:
                completed_job_request = client.submit_job(fn, "arbitrary binary data",
                                                          poll_timeout=10)
                out = []
                _check_request_status(completed_job_request, out)
                outcomes.append((completed_job_request.result, out[0].split(":")[0]))
            except Exception as e:
                outcomes.append(type(e))
            finally:
                client.shutdown()

        for _ in range(2):
            main([gearmand.address, f"127.0.0.1:{free_port}"])
            main([f"127.0.0.1:{free_port}", gearmand.address])
        assert [o[0] if isinstance(o, tuple) else o for o in outcomes] == [b"ARBITRARY BINARY DATA"] * 4
    finally:
        run.stop()
