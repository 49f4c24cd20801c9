"""The PECL GearmanWorker and GearmanJob against a real gearmand."""
import os
import threading
import time

import pytest

import gearman
from gearman import errors
from gearman.testing import wait_until


@pytest.fixture
def worker(gearmand):
    w = gearman.GearmanWorker()
    w.addServer("127.0.0.1", gearmand.port)
    w.setTimeout(5000)       # a safety net: work() never waits longer
    yield w
    w.close()


def test_new_worker_options_match_libgearman():
    w = gearman.GearmanWorker()
    assert w.options() == 644
    w.setTimeout(10)
    assert w.options() == 900
    assert w.timeout() == 10


def test_work_runs_one_job(client, worker, fn):
    seen = []

    def cb(job, ctx):
        seen.append((job.functionName(), job.workload(), job.workloadSize(), ctx,
                     job.handle().startswith("H:"), len(job.unique())))
        return b"r:" + job.workload()

    worker.addFunction(fn, cb, "context")
    client.doBackground(fn, b"abc", "u-1")
    assert worker.work() is True
    assert worker.returnCode() == gearman.GEARMAN_SUCCESS
    assert seen == [(fn, b"abc", 3, "context", True, 3)]


def test_result_conversions(client, run_worker, fn):
    results = iter([None, 42, "str\u00e9", bytearray(b"ba")])
    run_worker({fn: lambda job, ctx: next(results)})
    assert client.doNormal(fn, b"1") == b""
    assert client.doNormal(fn, b"2") == b"42"
    assert client.doNormal(fn, b"3") == "str\u00e9".encode()
    assert client.doNormal(fn, b"4") == b"ba"


def test_explicit_complete_wins_over_return(client, run_worker, fn):
    def cb(job, ctx):
        job.sendComplete(b"explicit")
        job.sendData(b"ignored after the end")
        return b"afterwards"

    run_worker({fn: cb})
    assert client.doNormal(fn, b"x") == b"explicit"


def test_set_return_sends_fail(client, run_worker, fn):
    def cb(job, ctx):
        job.setReturn(gearman.GEARMAN_WORK_FAIL)
        return b"nope"

    run_worker({fn: cb})
    with pytest.raises(errors.JobFailedError):
        client.doNormal(fn, b"x")


def test_no_functions(worker):
    assert worker.work() is False
    assert worker.returnCode() == gearman.GEARMAN_NO_REGISTERED_FUNCTIONS


def test_timeout_returns_false(worker, fn):
    worker.addFunction(fn, lambda job, ctx: b"")
    worker.setTimeout(200)
    assert worker.work() is False
    assert worker.returnCode() == gearman.GEARMAN_TIMEOUT


def test_non_blocking_no_jobs(worker, fn):
    worker.addFunction(fn, lambda job, ctx: b"")
    worker.addOptions(gearman.GEARMAN_WORKER_NON_BLOCKING)
    results = [worker.work() for _ in range(3)]
    assert results[-1] is False
    assert worker.returnCode() == gearman.GEARMAN_NO_JOBS


def test_callback_exception_is_reported_and_worker_goes_on(client, worker, fn):
    calls = []

    def cb(job, ctx):
        calls.append(job.workload())
        if job.workload() == b"bad":
            raise ValueError("bad workload")
        return b"good"

    worker.addFunction(fn, cb)
    results = []
    th = threading.Thread(target=lambda: results.extend([worker.work(), worker.work()]))
    th.start()
    with pytest.raises(errors.JobExceptionError) as ei:
        client.doNormal(fn, b"bad")
    assert b"ValueError: bad workload" in ei.value.payload
    assert client.doNormal(fn, b"fine") == b"good"
    th.join(10)
    # a job answered is a job handled, whatever its callback did (docs/api.md):
    # the README's ``while worker.work(): pass`` goes on after a raising job
    assert results == [True, True]
    assert worker.returnCode() == gearman.GEARMAN_SUCCESS


def test_grab_job_without_callback(client, worker, fn):
    worker.register(fn)
    handle = client.doBackground(fn, b"grab me")
    job = worker.grabJob()
    assert job is not None and job.handle() == handle and job.workload() == b"grab me"
    job.sendStatus(1, 4)
    assert wait_until(lambda: client.jobStatus(handle) == [True, True, 1, 4])
    job.sendComplete(b"")
    assert wait_until(lambda: client.jobStatus(handle)[0] is False)


def test_unregister(client, gearmand, worker, fn):
    worker.addFunction(fn, lambda job, ctx: b"")
    worker.addFunction(fn + "-b", lambda job, ctx: b"")
    worker.setTimeout(200)
    worker.work()                       # connects and registers both
    assert wait_until(lambda: f"{fn}\t0\t0\t1" in gearmand.admin("status"))
    worker.unregister(fn)
    worker.work()
    assert wait_until(lambda: f"{fn}\t0\t0\t0" in gearmand.admin("status"))
    assert f"{fn}-b\t0\t0\t1" in gearmand.admin("status")


def test_set_id_is_shown_by_the_server(gearmand, worker, fn):
    worker.setId("worker-one")
    worker.addFunction(fn, lambda job, ctx: b"")
    worker.setTimeout(100)
    worker.work()
    assert wait_until(lambda: "worker-one : " + fn in gearmand.admin("workers"))
    with pytest.raises(errors.InvalidArgumentError):
        worker.setId("has space")


def test_stop_wakes_a_waiting_worker(worker, fn):
    worker.addFunction(fn, lambda job, ctx: b"")
    worker.setTimeout(-1)
    result = []
    th = threading.Thread(target=lambda: result.append(worker.work()))
    th.start()
    time.sleep(0.3)
    assert th.is_alive()
    worker.stop()
    th.join(5)
    assert not th.is_alive() and result == [False]


def test_worker_serves_several_servers(gearmand_factory, fn):
    a, b = gearmand_factory(), gearmand_factory()
    w = gearman.GearmanWorker()
    w.addServers(f"127.0.0.1:{a.port},127.0.0.1:{b.port}")
    w.setTimeout(2000)
    w.addFunction(fn, lambda job, ctx: b"")
    for s in (a, b):
        c = gearman.GearmanClient()
        c.addServer("127.0.0.1", s.port)
        for _ in range(3):
            c.doBackground(fn, b"x")
    assert [w.work() for _ in range(6)] == [True] * 6
    for s in (a, b):
        # the last WORK_COMPLETE may still be in flight to the server
        assert wait_until(lambda s=s: f"{fn}\t0\t0\t1" in s.admin("status"))


def test_bad_arguments(worker):
    with pytest.raises(errors.InvalidTypeError):
        worker.addFunction("f", "not callable")
    with pytest.raises(errors.InvalidArgumentError):
        worker.addFunction("", lambda j, c: None)
    with pytest.raises(errors.InvalidArgumentError):
        worker.addFunction("a\0b", lambda j, c: None)
    with pytest.raises(errors.InvalidTypeError):
        worker.addFunction(3, lambda j, c: None)


def test_worker_ping(worker, free_port):
    assert worker.ping(b"hello") is True
    assert worker.echo(b"") is True
    dead = gearman.GearmanWorker()
    dead.addServer("127.0.0.1", free_port)
    with pytest.raises(errors.ServerUnavailable):
        dead.ping(b"x")


def test_stop_lets_the_running_job_finish(client, worker, fn):
    started = threading.Event()

    def slow(job, ctx):
        started.set()
        time.sleep(0.5)
        return b"finished"

    worker.addFunction(fn, slow)
    handled = []
    th = threading.Thread(target=lambda: handled.append(worker.serve(handle_signals=False)))
    th.start()
    result = []
    ct = threading.Thread(target=lambda: result.append(client.doNormal(fn, b"x")))
    ct.start()
    assert started.wait(10)
    worker.stop()
    ct.join(10)
    th.join(10)
    assert result == [b"finished"]
    assert handled == [1]
    assert worker.returnCode() == gearman.GEARMAN_SHUTDOWN


SERVE_SCRIPT = r"""
import sys, time, gearman
w = gearman.GearmanWorker()
w.addServer("127.0.0.1", int(sys.argv[1]))
def slow(job, ctx):
    print("started", flush=True)
    time.sleep(float(job.workload()))
    return b"done:" + job.workload()
w.addFunction(sys.argv[2], slow)
print("ready", flush=True)
n = w.serve()
print("served", n, flush=True)
"""


@pytest.mark.parametrize("signame", ["SIGTERM", "SIGINT"])
def test_signal_stops_gracefully_after_the_job(client, gearmand, fn, tmp_path, signame):
    import signal
    import subprocess
    import sys

    script = tmp_path / "serve.py"
    script.write_text(SERVE_SCRIPT)
    proc = subprocess.Popen([sys.executable, str(script), str(gearmand.port), fn],
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "ready"
        result = []
        ct = threading.Thread(target=lambda: result.append(client.doNormal(fn, b"1.0")))
        ct.start()
        assert proc.stdout.readline().strip() == "started"
        proc.send_signal(getattr(signal, signame))
        ct.join(15)
        assert result == [b"done:1.0"]           # the job finished and was delivered
        out, _ = proc.communicate(timeout=15)
        assert proc.returncode == 0
        assert out.strip() == "served 1"         # nothing new was grabbed
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_second_signal_stops_at_once(gearmand, fn, tmp_path):
    import signal
    import subprocess
    import sys

    script = tmp_path / "serve.py"
    script.write_text(SERVE_SCRIPT)
    proc = subprocess.Popen([sys.executable, str(script), str(gearmand.port), fn],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "ready"
        c = gearman.GearmanClient()
        c.addServer("127.0.0.1", gearmand.port)
        c.doBackground(fn, b"30")
        assert proc.stdout.readline().strip() == "started"
        proc.send_signal(signal.SIGTERM)
        time.sleep(0.2)
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=10)                     # not the 30 s the job wanted
        assert proc.returncode == 128 + signal.SIGTERM
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_idle_worker_uses_no_cpu(worker, fn):
    import resource
    worker.addFunction(fn, lambda job, ctx: b"")
    worker.setTimeout(2000)
    before = resource.getrusage(resource.RUSAGE_THREAD)
    assert worker.work() is False                # two idle seconds in poll()
    after = resource.getrusage(resource.RUSAGE_THREAD)
    used = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    assert used < 0.1, f"idle worker used {used:.3f} s of CPU in 2 s"


def test_reconnects_after_gearmand_restart(gearmand_factory, fn):
    server = gearmand_factory()
    w = gearman.GearmanWorker()
    w.addServer("127.0.0.1", server.port)
    w.setId("reconnecting-worker")
    w.setTimeout(5000)
    w.addFunction(fn, lambda job, ctx: b"r:" + job.workload())
    c = gearman.GearmanClient()
    c.addServer("127.0.0.1", server.port)
    c.setTimeout(15000)
    results = []
    th = threading.Thread(target=lambda: results.append(c.doNormal(fn, b"1")))
    th.start()
    assert w.work() is True
    th.join(10)
    assert results == [b"r:1"]

    server.restart()                      # registrations and queues are gone
    handle = c.doBackground(fn, b"2")     # the client reconnects too
    assert w.work() is True               # the worker reconnected and re-registered
    assert wait_until(lambda: c.jobStatus(handle)[0] is False)
    assert "reconnecting-worker : " + fn in server.admin("workers")   # SET_CLIENT_ID again
    w.close()


def test_worker_backs_off_while_the_server_is_down(free_port, fn):
    import resource
    w = gearman.GearmanWorker()
    w.addServer("127.0.0.1", free_port)
    w.addFunction(fn, lambda job, ctx: b"")
    w.setTimeout(1500)
    before = resource.getrusage(resource.RUSAGE_THREAD)
    assert w.work() is False
    after = resource.getrusage(resource.RUSAGE_THREAD)
    used = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    assert w.returnCode() == gearman.GEARMAN_TIMEOUT
    assert used < 0.2, f"worker used {used:.3f} s of CPU retrying a dead server for 1.5 s"


def test_function_timeout_is_sent_in_milliseconds(client, gearmand, fn):
    # addFunction's timeout is seconds (PECL's manual); gearmand reads
    # CAN_DO_TIMEOUT as milliseconds: 1 s must expire a 1.5 s job, which
    # gearmand re-queues (retries column of "show jobs").
    w = gearman.GearmanWorker()
    w.addServer("127.0.0.1", gearmand.port)
    w.setTimeout(5000)
    w.addFunction(fn, lambda job, ctx: (time.sleep(1.5), b"late")[1], None, 1)
    handle = client.doBackground(fn, b"x")
    w.work()
    jobs = gearmand.admin("show jobs")
    line = [l for l in jobs.splitlines() if l.startswith(handle + "\t")]
    assert line, jobs
    assert int(line[0].split("\t")[1]) >= 1       # re-queued once: the limit fired
    w.close()


def test_side_by_side_with_the_c_worker(client, gearmand, fn):
    import shutil
    import subprocess
    tool = shutil.which("gearman")
    assert tool, "the gearman CLI is missing: apt-get install gearman-tools"
    proc = subprocess.Popen([tool, "-h", "127.0.0.1", "-p", str(gearmand.port), "-w", "-f", fn,
                             "--", "sed", "s/^/c:/"], stdout=subprocess.DEVNULL)
    w = gearman.GearmanWorker()
    w.addServer("127.0.0.1", gearmand.port)
    w.setTimeout(200)
    w.addFunction(fn, lambda job, ctx: b"py:" + job.workload())
    stop = threading.Event()
    th = threading.Thread(target=lambda: [w.work() for _ in iter(stop.is_set, True)])
    th.start()
    try:
        assert wait_until(lambda: f"{fn}\t0\t0\t2" in gearmand.admin("status"))
        results = {}
        client.setCompleteCallback(lambda t, ctx: results.__setitem__(ctx, t.data()))
        for i in range(20):
            client.addTask(fn, str(i).encode(), i)
        client.runTasks()
        assert len(results) == 20
        for i, r in results.items():
            assert r in (b"py:" + str(i).encode(), b"c:" + str(i).encode())
    finally:
        stop.set()
        w.stop()
        th.join(10)
        proc.kill()
        proc.wait()
        w.close()


def test_runner_serves_a_module_function_in_processes(client, gearmand, fn, tmp_path):
    import signal
    import subprocess
    import sys
    (tmp_path / "jobsmod.py").write_text(
        "import os\n"
        "def upper(job, ctx):\n"
        "    return job.workload().upper() + b':' + str(os.getpid()).encode()\n")
    env = dict(os.environ, PYTHONPATH=str(tmp_path))
    proc = subprocess.Popen([sys.executable, "-m", "gearman.runner", "-s",
                             f"127.0.0.1:{gearmand.port}", "-f", f"{fn}=jobsmod:upper",
                             "-p", "2", "--id", "runner"], env=env, stderr=subprocess.PIPE)
    try:
        assert wait_until(lambda: f"{fn}\t0\t0\t2" in gearmand.admin("status"), timeout=20)
        got = []
        client.setCompleteCallback(lambda t, ctx: got.append(t.data()))
        for i in range(10):
            client.addTask(fn, b"abc", i)
        client.runTasks()
        assert len(got) == 10 and all(g.startswith(b"ABC:") for g in got)
        proc.send_signal(signal.SIGTERM)
        # communicate() drains stderr (a full pipe would block the runner's
        # logging) and shows what the runner said if it does not stop
        try:
            _out, err = proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            _out, err = proc.communicate()
            raise AssertionError("runner did not stop on SIGTERM: " + err.decode()[-3000:]) from None
        assert proc.returncode == 0, err.decode()[-3000:]
        assert wait_until(lambda: f"{fn}\t0\t0\t0" in gearmand.admin("status"))
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_non_blocking_work_with_wait(client, worker, fn):
    worker.addFunction(fn, lambda job, ctx: b"done")
    worker.addOptions(gearman.GEARMAN_WORKER_NON_BLOCKING)
    worker.setTimeout(3000)
    assert worker.wait() is False and worker.returnCode() == gearman.GEARMAN_NO_ACTIVE_FDS
    assert worker.work() is False and worker.returnCode() == gearman.GEARMAN_NO_JOBS
    client.doBackground(fn, b"x")
    for _ in range(20):
        if worker.work():
            break
        assert worker.returnCode() == gearman.GEARMAN_NO_JOBS
        worker.wait()
    assert worker.returnCode() == gearman.GEARMAN_SUCCESS


def test_grab_options_choose_the_grab_packet(client, gearmand, fn):
    w = gearman.GearmanWorker()
    w.addServer("127.0.0.1", gearmand.port)
    w.setTimeout(5000)
    seen = []
    w.addFunction(fn, lambda job, ctx: seen.append(job.unique()))
    client.doBackground(fn, b"x", "the-unique")
    assert w.work() is True                       # default: GRAB_JOB_ALL -> unique known
    w.removeOptions(gearman.GEARMAN_WORKER_GRAB_UNIQ | gearman.GEARMAN_WORKER_GRAB_ALL)
    client.doBackground(fn, b"y", "other-unique")
    assert w.work() is True                       # plain GRAB_JOB: no unique
    assert seen == ["the-unique", ""]
    w.close()


def test_serve_max_jobs_leaves_the_rest_queued(client, gearmand, fn):
    """serve() sends the next GRAB with each result (one send per job), but not
    after its last job: the jobs it will not run stay queued for others."""
    for i in range(5):
        client.doBackground(fn, b"x", f"u{i}")
    w = gearman.GearmanWorker()
    w.addServer("127.0.0.1", gearmand.port)
    w.addFunction(fn, lambda job, ctx: b"done")
    w.setTimeout(5000)
    assert w.serve(handle_signals=False, max_jobs=2) == 2
    # 3 left, none of them assigned to this (still connected) worker (gearmand
    # may read the last WORK_COMPLETE after the admin command: wait for it)
    assert wait_until(lambda: f"{fn}\t3\t0\t1" in gearmand.admin("status"))
    w.close()


def test_serve_stopped_returns_a_job_grabbed_with_the_last_result(client, gearmand, fn):
    """A stop that lands after a result went out with its eager GRAB: the job the
    server assigns in answer goes back to the queue, and another worker runs it."""
    for i in range(3):
        client.doBackground(fn, str(i).encode(), f"u{i}")
    w = gearman.GearmanWorker()
    w.addServer("127.0.0.1", gearmand.port)
    ran = []

    def cb(job, ctx):
        ran.append(job.workload())
        job.sendComplete(b"done")       # the result (and the eager GRAB) go out now
        w.stop()                        # then the stop
        return None

    w.addFunction(fn, cb)
    w.setTimeout(5000)
    assert w.serve(handle_signals=False) == 1
    assert ran == [b"0"]
    assert wait_until(lambda: f"{fn}\t2\t0\t0" in gearmand.admin("status"))
    other = gearman.GearmanWorker()
    other.addServer("127.0.0.1", gearmand.port)
    got = []
    other.addFunction(fn, lambda job, ctx: got.append(job.workload()) or b"")
    other.setTimeout(5000)
    assert other.work() and other.work()
    assert sorted(got) == [b"1", b"2"]
    other.close()
    w.close()


def test_serve_makes_its_wake_socket_the_signal_wakeup_fd(client, gearmand, fn):
    """A SIGTERM landing just before grab() blocks in poll() must still end an
    idle serve(): while serve() handles signals, the signal module writes to the
    worker's wake-up socket (and the previous wake-up fd is restored after)."""
    import signal
    before = signal.set_wakeup_fd(-1)
    signal.set_wakeup_fd(before)
    w = gearman.GearmanWorker()
    w.addServer("127.0.0.1", gearmand.port)
    seen = []

    def cb(job, ctx):
        fd = signal.set_wakeup_fd(-1)          # runs in the main thread, inside serve()
        signal.set_wakeup_fd(fd)
        seen.append(fd)
        return b""

    w.addFunction(fn, cb)
    client.doBackground(fn, b"x")
    assert w.serve(handle_signals=True, max_jobs=1) == 1
    assert seen == [w._engine.wake_fd()]
    assert signal.set_wakeup_fd(before) == before   # restored
    w.close()


def test_serve_stops_on_sigterm_at_any_moment(gearmand, fn):
    """SIGTERM sent at varied moments to an idle serve() without a timeout: each
    run ends (pytest-timeout bounds the test) with no job lost or run."""
    import signal
    for i in range(20):
        w = gearman.GearmanWorker()
        w.addServer("127.0.0.1", gearmand.port)
        w.addFunction(fn, lambda job, ctx: b"")
        timer = threading.Timer(0.005 + (i % 5) * 0.003,
                                lambda: os.kill(os.getpid(), signal.SIGTERM))
        timer.start()
        assert w.serve(handle_signals=True) == 0
        timer.join()
        w.close()


def test_serve_reports_every_kind_of_callback_outcome(client, gearmand, fn):
    """serve() runs in the compiled loop (WorkerEngine.serve_jobs), which writes
    WORK_COMPLETE itself for a returned bytes / str / None and hands every other
    outcome back to Python: each must reach the client as work() would send it."""
    outcomes = {
        "bytes": lambda job, ctx: b"b:" + job.workload(),
        "str": lambda job, ctx: "s\u00e9",
        "none": lambda job, ctx: None,
        "int": lambda job, ctx: 42,                       # converted like PECL
        "sent": lambda job, ctx: job.sendComplete(b"own") and b"ignored",
        "setreturn": lambda job, ctx: job.setReturn(gearman.GEARMAN_WORK_FAIL) and b"x",
        "raise": lambda job, ctx: 1 / 0,
        "badtype": lambda job, ctx: object(),
    }
    w = gearman.GearmanWorker()
    w.addServer("127.0.0.1", gearmand.port)
    w.setTimeout(5000)
    for name, cb in outcomes.items():
        w.addFunction(f"{fn}-{name}", cb)
    w.register(f"{fn}-nocb")                              # an ability without a callback
    kinds = list(outcomes) + ["nocb"]
    client.setTimeout(10000)
    results = {}
    client.setCompleteCallback(lambda task, ctx=None: results.__setitem__(task.unique(), ("ok", task.data())))
    client.setFailCallback(lambda task, ctx=None: results.__setitem__(task.unique(), ("fail", None)))
    client.setExceptionCallback(lambda task, ctx=None: results.__setitem__(task.unique(), ("exc", task.data())))
    for name in kinds:
        client.addTask(f"{fn}-{name}", b"w", None, name)
    done = threading.Event()

    def run_client():
        client.runTasks()
        done.set()

    t = threading.Thread(target=run_client)
    t.start()
    assert w.serve(handle_signals=False, max_jobs=len(kinds)) == len(kinds)
    t.join(15)
    w.close()
    assert done.is_set(), f"unanswered: {sorted(set(kinds) - set(results))}"
    assert results["bytes"] == ("ok", b"b:w")
    assert results["str"] == ("ok", "s\u00e9".encode())
    assert results["none"] == ("ok", b"")
    assert results["int"] == ("ok", b"42")
    assert results["sent"] == ("ok", b"own")
    assert results["setreturn"][0] == "fail"
    assert results["raise"][0] == "exc" and b"ZeroDivisionError" in results["raise"][1]
    # a result that is not bytes-like fails the job like an exception would (it
    # stayed assigned to the worker, unanswered, before)
    assert results["badtype"][0] == "exc" and b"InvalidTypeError" in results["badtype"][1]
    assert results["nocb"][0] == "fail"


def test_readme_worker_loop_survives_a_raising_job(client, gearmand, fn):
    """The README's loop, ``while worker.work(): pass``: a job whose callback
    raises is answered (WORK_EXCEPTION) and the loop serves the next job."""
    w = gearman.GearmanWorker()
    w.addServer("127.0.0.1", gearmand.port)

    def cb(job, ctx):
        if job.workload() == b"raise":
            raise RuntimeError("this job fails")
        return job.workload()[::-1]

    w.addFunction(fn, cb)
    served = []

    def loop():
        while w.work():
            served.append(w.returnCode())

    th = threading.Thread(target=loop, daemon=True)
    th.start()
    try:
        with pytest.raises(errors.JobExceptionError):
            client.doNormal(fn, b"raise")
        assert client.doNormal(fn, b"abc") == b"cba"
        assert th.is_alive()        # the loop did not end on the raising job
        assert served[:2] == [gearman.GEARMAN_SUCCESS, gearman.GEARMAN_SUCCESS]
    finally:
        w.stop()
        th.join(10)
        w.close()
    assert not th.is_alive()


def test_unencodable_result_fails_the_job_and_work_goes_on(client, worker, fn):
    """A str result UTF-8 cannot encode (a lone surrogate) fails that job with
    WORK_EXCEPTION naming the cause; the worker goes on with the next job."""
    worker.addFunction(fn, lambda job, ctx: "bad \udc80" if job.workload() == b"poison" else "ok")
    results = []
    th = threading.Thread(target=lambda: results.extend([worker.work(), worker.work()]))
    th.start()
    with pytest.raises(errors.JobExceptionError) as ei:
        client.doNormal(fn, b"poison")
    assert b"UnicodeEncodeError" in ei.value.payload
    assert client.doNormal(fn, b"fine") == b"ok"
    th.join(10)
    assert results == [True, True]


def test_timeout_messages_name_the_cause(client, gearmand, fn, dead_port):
    """doNormal's timeout says it waited for a worker (the server answered); a
    worker's says its server could not be reached, not that no job came."""
    client.setTimeout(300)
    with pytest.raises(errors.GearmanTimeoutError) as ei:
        client.doNormal(fn, b"nobody serves this")
    assert "waiting for a worker to finish job H:" in str(ei.value)
    assert client.returnCode() == gearman.GEARMAN_TIMEOUT

    w = gearman.GearmanWorker()
    w.addServer("127.0.0.1", dead_port)
    w.addFunction(fn, lambda job, ctx: b"")
    w.setTimeout(300)
    assert w.work() is False
    assert w.returnCode() == gearman.GEARMAN_TIMEOUT
    assert "no job server could be reached" in w.error()
    assert f"127.0.0.1:{dead_port}" in w.error()
    w.close()


def test_a_worker_with_no_server_says_so_like_the_client(fn, monkeypatch):
    """No addServer and no GEARMAN_SERVERS: work() reports GEARMAN_NO_SERVERS
    (the client raises NoServersError) instead of trying localhost:4730."""
    monkeypatch.delenv("GEARMAN_SERVERS", raising=False)
    w = gearman.GearmanWorker()
    w.addFunction(fn, lambda job, ctx: b"")
    w.setTimeout(200)
    assert w.work() is False
    assert w.returnCode() == gearman.GEARMAN_NO_SERVERS
    w.close()
    c = gearman.GearmanClient()
    with pytest.raises(errors.NoServersError):
        c.doBackground(fn, b"x")


def test_worker_max_packet_size_applies_to_what_it_sends(client, gearmand, fn):
    """A result over the worker's max_packet_size fails its job (WORK_EXCEPTION
    naming the limit) instead of being sent; an explicit send over it raises
    InvalidArgumentError in the callback, which fails the job the same way."""
    w = gearman.GearmanWorker(max_packet_size=100)
    w.addServer("127.0.0.1", gearmand.port)

    def cb(job, ctx):
        if job.workload() == b"explicit":
            job.sendData(b"d" * 200)
        return b"r" * 200

    w.addFunction(fn, cb)
    w.setTimeout(5000)
    results = []
    th = threading.Thread(target=lambda: results.extend([w.work(), w.work()]))
    th.start()
    for workload in (b"returned", b"explicit"):
        with pytest.raises(errors.JobExceptionError) as ei:
            client.doNormal(fn, workload)
        assert b"max_packet_size" in ei.value.payload
    th.join(10)
    assert results == [True, True]
    w.close()
