"""addTask* + runTasks with callbacks, against a real gearmand."""
import time

import pytest

import gearman
from gearman import errors
from gearman.testing import wait_until


def test_run_tasks_fifo_order_and_created_callbacks(client, run_worker, fn):
    created = []
    client.setCreatedCallback(lambda task, ctx: created.append((ctx, task.jobHandle())))
    tasks = [client.addTaskBackground(fn, str(i), i) for i in range(50)]
    assert all(t.jobHandle() == "" for t in tasks)
    assert client.runTasks() is True
    assert client.returnCode() == gearman.GEARMAN_SUCCESS
    assert [c for c, _ in created] == list(range(50))
    # handles were given in submission order: the server counts up
    nums = [int(h.rsplit(":", 1)[1]) for _, h in created]
    assert nums == sorted(nums)
    seen = []
    run_worker({fn: lambda job, ctx: seen.append(job.workload())})
    assert wait_until(lambda: len(seen) == 50)
    assert seen == [str(i).encode() for i in range(50)]


def test_every_callback_fires_in_order(client, run_worker, fn):
    events = []

    def work(job, ctx):
        job.sendData(b"d1")
        job.sendWarning(b"w1")
        job.sendStatus(1, 2)
        return b"result"

    run_worker({fn: work})
    client.setCreatedCallback(lambda t, c: events.append(("created", c)))
    client.setDataCallback(lambda t, c: events.append(("data", t.data())))
    client.setWarningCallback(lambda t, c: events.append(("warning", t.data())))
    client.setStatusCallback(lambda t, c: events.append(("status", t.taskNumerator(), t.taskDenominator())))
    client.setCompleteCallback(lambda t, c: events.append(("complete", t.data(), t.isKnown())))
    client.addTask(fn, b"x", "ctx")
    client.runTasks()
    assert events == [("created", "ctx"), ("data", b"d1"), ("warning", b"w1"),
                      ("status", 1, 2), ("complete", b"result", False)]


def test_one_argument_callbacks(client, run_worker, fn):
    run_worker({fn: lambda job, ctx: b"ok"})
    got = []
    client.setCompleteCallback(lambda task: got.append(task.data()))
    client.addTask(fn, b"x")
    client.runTasks()
    assert got == [b"ok"]


def test_fail_and_exception_callbacks(client, run_worker, fn):
    def work(job, ctx):
        if job.workload() == b"fail":
            job.sendFail()
        else:
            raise ValueError("bad input")

    run_worker({fn: work})
    failed, raised = [], []
    client.setFailCallback(lambda t, c: failed.append(c))
    client.setExceptionCallback(lambda t, c: raised.append((c, t.data())))
    t1 = client.addTask(fn, b"fail", "a")
    t2 = client.addTask(fn, b"raise", "b")
    client.runTasks()
    assert failed == ["a"]
    assert raised[0][0] == "b" and b"bad input" in raised[0][1]
    assert t1.returnCode() == gearman.GEARMAN_WORK_FAIL
    assert t2.returnCode() == gearman.GEARMAN_WORK_EXCEPTION


def test_pause_redelivers_the_same_event(client, run_worker, fn):
    run_worker({fn: lambda job, ctx: (job.sendData(b"d1"), b"end")[1]})
    calls = []

    def on_data(task, ctx):
        calls.append(task.data())
        return gearman.GEARMAN_PAUSE if len(calls) < 3 else None

    client.setDataCallback(on_data)
    done = []
    client.setCompleteCallback(lambda t, c: done.append(t.data()))
    client.addTask(fn, b"x")
    assert client.runTasks() is True
    assert client.returnCode() == gearman.GEARMAN_PAUSE
    assert calls == [b"d1"] and done == []
    client.runTasks()
    assert client.returnCode() == gearman.GEARMAN_PAUSE
    assert calls == [b"d1", b"d1"]
    client.runTasks()
    assert client.returnCode() == gearman.GEARMAN_SUCCESS
    assert calls == [b"d1", b"d1", b"d1"] and done == [b"end"]


def test_callback_exception_propagates_and_client_stays_usable(client, run_worker, fn):
    run_worker({fn: lambda job, ctx: b"r"})

    def bad(task, ctx):
        raise KeyError("from callback")

    client.setCompleteCallback(bad)
    client.addTask(fn, b"1")
    with pytest.raises(KeyError):
        client.runTasks()
    client.clearCallbacks()
    assert client.doNormal(fn, b"2") == b"r"


def test_status_task(client, fn):
    handle = client.doBackground(fn, b"x")
    seen = []
    client.setStatusCallback(lambda t, c: seen.append((c, t.isKnown(), t.isRunning(),
                                                       t.taskNumerator(), t.taskDenominator())))
    client.addTaskStatus(handle, "s")
    client.addTaskStatus("H:none:1", "u")
    client.runTasks()
    assert seen == [("s", True, False, 0, 0), ("u", False, False, 0, 0)]


def test_many_tasks_pipelined(client, fn):
    tasks = [client.addTaskBackground(fn, b"w") for _ in range(20000)]
    client.runTasks()
    assert all(t.jobHandle().startswith("H:") for t in tasks)
    assert len({t.jobHandle() for t in tasks}) == 20000


def test_queue_full_reaches_the_fail_callback(client, gearmand, fn):
    client.doBackground(fn, b"first")     # maxqueue ignores unknown functions
    assert gearmand.admin(f"maxqueue {fn} 3").startswith("OK")
    failed = []
    client.setFailCallback(lambda t, c: failed.append(c))
    tasks = [client.addTaskBackground(fn, b"x", i) for i in range(4)]
    assert client.runTasks() is True
    assert failed == [2, 3]
    assert isinstance(tasks[3].exception, errors.QueueFullError)
    assert tasks[0].jobHandle() and tasks[1].jobHandle()
    assert tasks[2].jobHandle() == ""


def test_run_tasks_with_dead_server_raises(free_port, fn):
    c = gearman.GearmanClient()
    c.addServer("127.0.0.1", free_port)
    t = c.addTaskBackground(fn, b"x")
    with pytest.raises(errors.ServerUnavailable):
        c.runTasks()
    assert isinstance(t.exception, errors.ServerUnavailable)
    assert c.returnCode() == gearman.GEARMAN_COULD_NOT_CONNECT


def test_callbacks_apply_to_tasks_added_after_them(client, run_worker, fn):
    # PECL/libgearman copy the callback table into a task when it is added.
    run_worker({fn: lambda job, ctx: b"r"})
    got = []
    early = client.addTask(fn, b"1", "early")
    client.setCompleteCallback(lambda t, ctx: got.append(ctx))
    client.addTask(fn, b"2", "late")
    client.runTasks()
    assert got == ["late"]
    assert early.finished and early.data() == b"r"


def test_non_blocking_run_tasks_with_wait(client, run_worker, fn):
    # each job takes 50 ms, so the first non-blocking runTasks() cannot see them
    # all finished (a fast worker could answer within that one call: flaky)
    run_worker({fn: lambda job, ctx: time.sleep(0.05) or b"nb:" + job.workload()})
    client.addOptions(gearman.GEARMAN_CLIENT_NON_BLOCKING)
    done = []
    client.setCompleteCallback(lambda t, c: done.append(t.data()))
    for i in range(5):
        client.addTask(fn, str(i))
    rounds = 0
    while True:
        assert client.runTasks() is True
        if client.returnCode() == gearman.GEARMAN_SUCCESS:
            break
        assert client.returnCode() == gearman.GEARMAN_IO_WAIT
        assert client.wait() is True
        rounds += 1
        assert rounds < 1000
    assert rounds >= 1                          # it did return before the work was done
    assert sorted(done) == [b"nb:%d" % i for i in range(5)]


def test_recv_data_reads_the_payload_in_pieces(client, run_worker, fn):
    run_worker({fn: lambda job, ctx: b"0123456789"})
    pieces = []

    def on_complete(task, ctx):
        while True:
            n, chunk = task.recvData(4)
            if not n:
                break
            pieces.append(chunk)

    client.setCompleteCallback(on_complete)
    client.addTask(fn, b"x")
    client.runTasks()
    assert pieces == [b"0123", b"4567", b"89"]


def test_send_workload_before_submission(client, run_worker, fn):
    run_worker({fn: lambda job, ctx: job.workload()})
    t = client.addTask(fn, b"ab")
    assert t.sendWorkload(b"cd") == 2
    got = []
    client.setCompleteCallback(lambda task, ctx: got.append(task.data()))
    t2 = client.addTask(fn, b"x")
    client.runTasks()
    assert t.data() == b"abcd" and got == [b"x"]
    with pytest.raises(errors.InvalidArgumentError):
        t.sendWorkload(b"late")
    assert t2.send_workload is not None     # the PEP 8 alias exists
