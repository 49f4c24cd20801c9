"""The PECL GearmanClient do-family, jobStatus, ping and options against a real gearmand."""
import os
import threading
import time
import uuid

import pytest

import gearman
from gearman import errors
from gearman.testing import wait_until


# --- the do-family ----------------------------------------------------------------

def test_do_normal_returns_result_bytes(client, run_worker, fn):
    run_worker({fn: lambda job, ctx: job.workload()[::-1]})
    assert client.doNormal(fn, b"hello") == b"olleh"
    assert client.doNormal(fn, "h\u00e9") == "h\u00e9".encode()[::-1]
    assert client.returnCode() == gearman.GEARMAN_SUCCESS


def test_do_normal_concatenates_data_chunks(client, run_worker, fn):
    def work(job, ctx):
        job.sendData(b"d1")
        job.sendWarning(b"w1")
        job.sendStatus(1, 2)
        job.sendData(b"d2")
        return b"done"

    run_worker({fn: work})
    assert client.doNormal(fn, b"x") == b"d1d2done"


def test_binary_payloads_round_trip(client, run_worker, fn):
    payload = bytes(range(256)) * 1000 + b"\0\0"
    run_worker({fn: lambda job, ctx: job.workload()})
    assert client.doNormal(fn, payload) == payload
    assert client.doNormal(fn, memoryview(payload)) == payload
    assert client.doNormal(fn, bytearray(b"\0a\0")) == b"\0a\0"


def test_empty_workload_and_result(client, run_worker, fn):
    run_worker({fn: lambda job, ctx: None})
    assert client.doNormal(fn, b"") == b""


def test_priorities_order_jobs(client, gearmand, run_worker, fn):
    client.doLowBackground(fn, b"l1")
    client.doBackground(fn, b"n1")
    client.doHighBackground(fn, b"h1")
    client.doLowBackground(fn, b"l2")
    client.doHighBackground(fn, b"h2")
    seen = []
    run_worker({fn: lambda job, ctx: seen.append(job.workload())})
    assert wait_until(lambda: len(seen) == 5)
    assert seen == [b"h1", b"h2", b"n1", b"l1", b"l2"]


def test_do_high_and_low_foreground(client, run_worker, fn):
    run_worker({fn: lambda job, ctx: b"ok:" + job.workload()})
    assert client.doHigh(fn, b"a") == b"ok:a"
    assert client.doLow(fn, b"b") == b"ok:b"
    assert client.do(fn, b"c") == b"ok:c"


# --- background and jobStatus -------------------------------------------------------

def test_do_background_and_job_status_lifecycle(client, run_worker, fn):
    handle = client.doBackground(fn, b"payload")
    assert isinstance(handle, str) and handle.startswith("H:")
    assert client.doJobHandle() == handle
    assert client.jobStatus(handle) == [True, False, 0, 0]      # queued

    release = threading.Event()

    def work(job, ctx):
        job.sendStatus(3, 14)
        release.wait(10)
        return b""

    run_worker({fn: work})
    assert wait_until(lambda: client.jobStatus(handle) == [True, True, 3, 14])
    release.set()
    assert wait_until(lambda: client.jobStatus(handle) == [False, False, 0, 0])


def test_job_status_of_unknown_handle(client):
    assert client.jobStatus("H:nowhere:12345") == [False, False, 0, 0]
    assert client.returnCode() == gearman.GEARMAN_SUCCESS


def test_job_status_from_another_client(client, gearmand, fn):
    handle = client.doBackground(fn, b"x")
    other = gearman.GearmanClient()
    other.addServer("127.0.0.1", gearmand.port)
    assert other.jobStatus(handle) == [True, False, 0, 0]
    assert other.jobStatus(handle.encode()) == [True, False, 0, 0]


def test_job_status_after_the_handle_map_forgot_the_handle(gearmand_factory, fn):
    """The client remembers which server gave each recent handle (a bounded map,
    oldest forgotten first).  Over the bound, every handle still answers: the
    remembered ones from their server, the forgotten ones by asking the pool."""
    a, b = gearmand_factory(), gearmand_factory()
    c = gearman.GearmanClient()
    c.addServers(f"127.0.0.1:{a.port}")
    c._engine.handle_memory = 3
    handles = [c.doBackground(fn, b"x", f"u{i}") for i in range(12)]
    assert len(set(handles)) == 12
    for h in handles:
        assert c.jobStatus(h) == [True, False, 0, 0], h
    assert c.jobStatus("H:nowhere:1") == [False, False, 0, 0]
    # a second server (same host name, so the same handle strings) joins:
    # forgotten handles are asked of both, and the one that knows it answers
    c.addServer("127.0.0.1", b.port)
    for h in handles:
        assert c.jobStatus(h) == [True, False, 0, 0], h
    c.close()


def test_the_handle_map_keeps_the_newest_handles_in_order(gearmand, fn):
    """The handle -> server map is bounded by handle_memory and forgets the
    oldest first, also when the bound changes after the ring wrapped."""
    c = gearman.GearmanClient()
    c.addServer("127.0.0.1", gearmand.port)
    engine = c._engine
    engine.handle_memory = 3
    handles = [c.doBackground(fn, b"x", f"ring{i}") for i in range(7)]
    assert engine.remembered_handles() == handles[-3:]
    # a coalesced submission (same unique) does not count as a new handle
    assert c.doBackground(fn, b"x", "ring5") == handles[5]
    assert engine.remembered_handles() == handles[-3:]
    engine.handle_memory = 5                    # grows after wrapping
    handles += [c.doBackground(fn, b"x", f"ring{i}") for i in range(7, 10)]
    assert engine.remembered_handles() == handles[-5:]
    engine.handle_memory = 2                    # shrinks: the oldest go
    handles.append(c.doBackground(fn, b"x", "ring10"))
    assert engine.remembered_handles() == handles[-2:]
    assert all(engine.server_of(h) is not None for h in handles[-2:])
    assert all(engine.server_of(h) is None for h in handles[:-2])
    engine.handle_memory = 0                    # remembers none
    h = c.doBackground(fn, b"x", "ring11")
    assert engine.server_of(h) is None
    assert engine.remembered_handles() == []
    assert c.jobStatus(h) == [True, False, 0, 0]
    c.close()


def test_do_status_is_zero_zero_as_libgearman(client):
    assert client.doStatus() == [0, 0]


# --- unique IDs, as the seed documents them -------------------------------------------

def test_seed_coalescing_sequence(client, run_worker, fn):
    """Replays the user note of the seed, with a worker that starts after the submissions."""
    h1 = client.doBackground(fn, "3", "123")
    h2 = client.doBackground(fn, "5", "456")
    assert h2 != h1
    assert client.doBackground(fn, "3", "123") == h1          # same unique: does nothing
    assert client.doBackground(fn, "1", "123") == h1          # different args: still nothing
    seen = []
    run_worker({fn: lambda job, ctx: seen.append((job.unique(), job.workload()))})
    assert wait_until(lambda: len(seen) == 2)
    assert sorted(seen) == [("123", b"3"), ("456", b"5")]      # the first workload won
    assert wait_until(lambda: client.jobStatus(h1)[0] is False)
    h3 = client.doBackground(fn, "3", "123")                   # finished: a new job
    assert h3 not in (h1, h2)


def test_foreground_jobs_with_same_unique_share_one_run(gearmand, run_worker, fn):
    calls = []
    gate = threading.Event()

    def work(job, ctx):
        calls.append(job.workload())
        gate.wait(10)
        return b"shared"

    run_worker({fn: work})
    results = []

    def submit(data):
        c = gearman.GearmanClient()
        c.addServer("127.0.0.1", gearmand.port)
        c.setTimeout(20000)
        results.append(c.doNormal(fn, data, "same-unique"))

    threads = [threading.Thread(target=submit, args=(d,)) for d in (b"a", b"b")]
    threads[0].start()
    assert wait_until(lambda: len(calls) == 1)
    threads[1].start()
    time.sleep(0.3)      # let the second submission attach to the running job
    gate.set()
    for t in threads:
        t.join(20)
    assert results == [b"shared", b"shared"]
    assert calls == [b"a"]


def test_default_unique_is_generated_and_distinct(client, run_worker, fn):
    h1 = client.doBackground(fn, b"same")
    h2 = client.doBackground(fn, b"same")
    assert h1 != h2                       # identical submissions never coalesce
    seen = []
    run_worker({fn: lambda job, ctx: seen.append(job.unique())})
    assert wait_until(lambda: len(seen) == 2)
    for u in seen:
        assert len(u) == 36 and u.count("-") == 4
        uuid.UUID(u)
    assert seen[0] != seen[1]


def test_generation_off_sends_empty_unique(client, run_worker, fn):
    client.generate_unique = False
    client.doBackground(fn, b"x")
    seen = []
    run_worker({fn: lambda job, ctx: seen.append(job.unique())})
    assert wait_until(lambda: len(seen) == 1)
    assert seen == [""]


def test_unique_of_exactly_64_bytes_is_accepted(client, run_worker, fn):
    # We send all 64 bytes (libgearman truncates to 63 before sending).
    # gearmand 1.1.20 accepts them but stores only the first 63 (checked with
    # a raw socket: JOB_ASSIGN_UNIQ and "show unique jobs" carry 63 bytes, and
    # two 64-byte submissions do not coalesce), which is what the worker sees.
    unique = "u" * 63 + "v"
    seen = []
    run_worker({fn: lambda job, ctx: seen.append(job.unique())})
    assert client.doNormal(fn, b"x", unique) is not None
    assert seen == [unique[:63]]


def test_unique_over_64_bytes_fails_before_sending(fn, gearmand):
    # Pointed at a port where nothing listens: the error must be the
    # argument's, proving nothing was sent.
    c = gearman.GearmanClient()
    c.addServer("127.0.0.1", 1)
    with pytest.raises(errors.InvalidArgumentError) as ei:
        c.doBackground(fn, b"x", "u" * 65)
    assert isinstance(ei.value, ValueError)
    assert c.returnCode() == gearman.GEARMAN_INVALID_ARGUMENT
    # 64 bytes counted in UTF-8: 33 two-byte characters are 66 bytes.
    with pytest.raises(errors.InvalidArgumentError):
        c.doBackground(fn, b"x", "\u00e9" * 33)


def test_dash_unique_coalesces_on_workload(client, fn):
    h1 = client.doBackground(fn, b"same-bytes", "-")
    h2 = client.doBackground(fn, b"same-bytes", "-")
    h3 = client.doBackground(fn, b"other-bytes", "-")
    assert h1 == h2 != h3


# --- errors -------------------------------------------------------------------------

def test_no_server_listening(fn, free_port):
    c = gearman.GearmanClient()
    c.addServer("127.0.0.1", free_port)
    with pytest.raises(errors.ServerUnavailable) as ei:
        c.doBackground(fn, b"x")
    assert isinstance(ei.value, ConnectionError)
    assert c.returnCode() == gearman.GEARMAN_COULD_NOT_CONNECT
    assert "127.0.0.1" in c.error()


def test_no_server_added_and_no_env(monkeypatch, fn):
    monkeypatch.setenv("GEARMAN_SERVERS", "")
    c = gearman.GearmanClient()
    with pytest.raises(errors.NoServersError):
        c.doBackground(fn, b"x")
    assert c.returnCode() == gearman.GEARMAN_NO_SERVERS


def test_gearman_servers_environment_variable(monkeypatch, gearmand, fn):
    monkeypatch.setenv("GEARMAN_SERVERS", f"127.0.0.1:{gearmand.port}")
    c = gearman.GearmanClient()
    assert c.doBackground(fn, b"x").startswith("H:")
    assert c.servers == [f"127.0.0.1:{gearmand.port}"]


def test_timeout_raises_and_client_stays_usable(client, run_worker, fn):
    client.setTimeout(300)
    assert client.timeout() == 300
    with pytest.raises(errors.GearmanTimeoutError) as ei:
        client.doNormal(fn + "-nobody", b"x")
    assert isinstance(ei.value, TimeoutError)
    assert client.returnCode() == gearman.GEARMAN_TIMEOUT
    # a slow job that finishes after its caller gave up must not be taken for
    # the answer to the next call
    gate = threading.Event()
    run_worker({fn: lambda job, ctx: (gate.wait(5), b"late:" + job.workload())[1]})
    with pytest.raises(errors.GearmanTimeoutError):
        client.doNormal(fn, b"first")
    gate.set()
    client.setTimeout(20000)
    assert client.doNormal(fn, b"second") == b"late:second"


def test_zero_timeout_times_out_at_once(client, fn):
    client.setTimeout(0)
    with pytest.raises(errors.GearmanTimeoutError):
        client.doNormal(fn, b"x")


def test_server_killed_mid_call(gearmand_factory, fn):
    server = gearmand_factory()
    c = gearman.GearmanClient()
    c.addServer("127.0.0.1", server.port)
    c.setTimeout(20000)
    assert c.doBackground(fn + "-warmup", b"x")
    outcome = []

    def call():
        try:
            c.doNormal(fn, b"x")          # no worker: it waits
        except Exception as e:            # noqa: BLE001 - the test inspects it
            outcome.append(e)

    th = threading.Thread(target=call)
    th.start()
    time.sleep(0.3)
    server.kill()
    th.join(15)
    assert not th.is_alive()
    assert len(outcome) == 1
    assert isinstance(outcome[0], errors.LostConnectionError)
    assert c.returnCode() == gearman.GEARMAN_LOST_CONNECTION


def test_wrong_argument_types(client):
    with pytest.raises(errors.InvalidTypeError) as ei:
        client.doNormal(123, b"x")
    assert isinstance(ei.value, TypeError)
    with pytest.raises(errors.InvalidTypeError):
        client.doBackground("f", 12.5)
    with pytest.raises(errors.InvalidTypeError):
        client.doBackground("f", b"x", 42)
    with pytest.raises(errors.InvalidTypeError):
        client.jobStatus(None)
    with pytest.raises(errors.InvalidTypeError):
        client.addServer("127.0.0.1", "4730")
    with pytest.raises(errors.InvalidTypeError):
        client.setTimeout("100")


def test_bad_function_names(client):
    with pytest.raises(errors.InvalidArgumentError):
        client.doBackground("", b"x")
    with pytest.raises(errors.InvalidArgumentError):
        client.doBackground("a\0b", b"x")
    with pytest.raises(errors.InvalidArgumentError):
        client.doBackground("f" * 513, b"x")
    with pytest.raises(errors.InvalidArgumentError):
        client.doBackground("f", b"x", "a\0b")
    assert client.returnCode() == gearman.GEARMAN_INVALID_ARGUMENT


def test_oversized_workload_is_refused(gearmand, fn):
    c = gearman.GearmanClient(max_packet_size=1024)
    c.addServer("127.0.0.1", gearmand.port)
    with pytest.raises(errors.InvalidArgumentError) as ei:
        c.doBackground(fn, b"x" * 1025)
    assert ei.value.code == gearman.GEARMAN_DATA_TOO_LARGE
    assert c.doBackground(fn, b"x" * 1024).startswith("H:")


def test_job_fail(client, run_worker, fn):
    run_worker({fn: lambda job, ctx: job.sendFail()})
    with pytest.raises(errors.JobFailedError) as ei:
        client.doNormal(fn, b"x")
    assert ei.value.handle.startswith("H:")
    assert client.returnCode() == gearman.GEARMAN_WORK_FAIL


def test_job_exception_carries_payload(client, run_worker, fn):
    def boom(job, ctx):
        raise RuntimeError("it broke")

    run_worker({fn: boom})
    with pytest.raises(errors.JobExceptionError) as ei:
        client.doNormal(fn, b"x")
    assert b"it broke" in ei.value.payload
    assert isinstance(ei.value, errors.JobFailedError)
    assert client.returnCode() == gearman.GEARMAN_WORK_EXCEPTION


def test_exception_without_the_option_is_a_failure_not_a_hang(gearmand, run_worker, fn):
    # gearmand turns WORK_EXCEPTION into a WORK_FAIL whose handle ends in NUL
    # for clients that did not ask for exceptions; libgearman hangs on it.
    c = gearman.GearmanClient()
    c.addServer("127.0.0.1", gearmand.port, False)
    c.setTimeout(10000)
    run_worker({fn: lambda job, ctx: job.sendException(b"oops")})
    with pytest.raises(errors.JobFailedError) as ei:
        c.doNormal(fn, b"x")
    assert not isinstance(ei.value, errors.JobExceptionError)


def test_queue_full_is_a_specific_error(client, gearmand, fn):
    client.doBackground(fn, b"1")       # maxqueue ignores functions it does not know yet
    assert gearmand.admin(f"maxqueue {fn} 1").startswith("OK")
    with pytest.raises(errors.QueueFullError) as ei:
        client.doBackground(fn, b"2")
    assert ei.value.server_code == "QUEUE_ERROR"
    assert client.returnCode() == gearman.GEARMAN_QUEUE_ERROR
    assert client.doBackground(fn + "-other", b"3").startswith("H:")


# --- servers and the pool --------------------------------------------------------------

def test_failover_to_a_live_server(gearmand, free_port, fn):
    c = gearman.GearmanClient()
    c.addServers(f"127.0.0.1:{free_port},127.0.0.1:{gearmand.port}")
    for i in range(5):
        assert c.doBackground(fn, str(i)).startswith("H:")
    assert f"{fn}\t5\t0\t0" in gearmand.admin("status")


def test_unique_routing_coalesces_across_the_pool(gearmand_factory, fn):
    a, b = gearmand_factory(), gearmand_factory()
    c1 = gearman.GearmanClient()
    c1.addServers(f"127.0.0.1:{a.port},127.0.0.1:{b.port}")
    c2 = gearman.GearmanClient()
    c2.addServers(f"127.0.0.1:{b.port},127.0.0.1:{a.port}")
    for i in range(20):
        unique = f"job-{i}"
        assert c1.doBackground(fn, b"x", unique) == c2.doBackground(fn, b"y", unique)
    counts = []
    for s in (a, b):
        line = [l for l in s.admin("status").splitlines() if l.startswith(fn + "\t")]
        counts.append(int(line[0].split("\t")[1]) if line else 0)
    assert sum(counts) == 20
    assert all(counts)          # 20 uniques spread over both servers


def test_jobs_without_unique_spread_over_servers(gearmand_factory, fn):
    a, b = gearmand_factory(), gearmand_factory()
    c = gearman.GearmanClient()
    c.addServers(f"127.0.0.1:{a.port},127.0.0.1:{b.port}")
    handles = [c.doBackground(fn, b"x") for _ in range(10)]
    for s in (a, b):
        assert f"{fn}\t5\t0\t0" in s.admin("status")
    # jobStatus asks the server that issued each handle, even though both
    # servers hand out the same handle strings
    for h in handles:
        assert c.jobStatus(h)[0] is True


def test_ping_and_echo(client):
    assert client.ping(b"hello") is True
    assert client.echo(b"") is True
    assert client.returnCode() == gearman.GEARMAN_SUCCESS


def test_ping_dead_server_raises(free_port):
    c = gearman.GearmanClient()
    c.addServer("127.0.0.1", free_port)
    with pytest.raises(errors.ServerUnavailable):
        c.ping(b"x")


# --- options, context, aliases, lifetime -----------------------------------------------

def test_options_follow_libgearman(client):
    assert client.options() == gearman.GEARMAN_CLIENT_FREE_TASKS
    client.setOptions(gearman.GEARMAN_CLIENT_UNBUFFERED_RESULT)
    assert client.options() == gearman.GEARMAN_CLIENT_UNBUFFERED_RESULT
    client.addOptions(gearman.GEARMAN_CLIENT_NON_BLOCKING)
    assert client.options() & gearman.GEARMAN_CLIENT_NON_BLOCKING
    client.removeOptions(gearman.GEARMAN_CLIENT_NON_BLOCKING)
    assert not client.options() & gearman.GEARMAN_CLIENT_NON_BLOCKING


def test_context_and_error_state():
    c = gearman.GearmanClient()
    assert c.error() is False and c.getErrno() == 0
    assert c.context() == ""
    c.setContext("ctx")
    assert c.context() == "ctx"


def test_pep8_aliases_are_the_same_methods():
    C = gearman.GearmanClient
    for pecl, pep8 in [("doBackground", "do_background"), ("jobStatus", "job_status"),
                       ("addServers", "add_servers"), ("doHighBackground", "do_high_background"),
                       ("returnCode", "return_code"), ("setTimeout", "set_timeout"),
                       ("doJobHandle", "do_job_handle"), ("getErrno", "get_errno")]:
        assert getattr(C, pep8) is getattr(C, pecl)
    assert gearman.GearmanJob.send_status is gearman.GearmanJob.sendStatus
    assert gearman.GearmanWorker.add_function is gearman.GearmanWorker.addFunction


def test_clone_and_context_manager(gearmand, fn):
    with gearman.GearmanClient() as c:
        c.addServer("127.0.0.1", gearmand.port)
        c.setTimeout(5000)
        c.setContext("x")
        d = c.clone()
        assert d.servers == c.servers and d.timeout() == 5000 and d.context() == "x"
        assert d.doBackground(fn, b"x").startswith("H:")
    # closed clients reconnect on use
    assert c.doBackground(fn, b"y").startswith("H:")


def test_return_code_constants_match_libgearman():
    assert (gearman.GEARMAN_SUCCESS, gearman.GEARMAN_IO_WAIT, gearman.GEARMAN_LOST_CONNECTION,
            gearman.GEARMAN_WORK_EXCEPTION, gearman.GEARMAN_WORK_FAIL,
            gearman.GEARMAN_COULD_NOT_CONNECT, gearman.GEARMAN_PAUSE,
            gearman.GEARMAN_QUEUE_ERROR, gearman.GEARMAN_TIMEOUT,
            gearman.GEARMAN_INVALID_ARGUMENT, gearman.GEARMAN_MAX_RETURN) == \
        (0, 1, 14, 23, 24, 26, 38, 42, 47, 49, 53)
    assert gearman.GEARMAN_COMMAND_SUBMIT_JOB_EPOCH == 36
    assert gearman.GEARMAN_CLIENT_GENERATE_UNIQUE == 64
    assert gearman.GearmanException is gearman.GearmanError


def test_client_survives_fork(client, run_worker, fn):
    run_worker({fn: lambda job, ctx: b"pid:" + job.workload()})
    assert client.doNormal(fn, b"parent") == b"pid:parent"
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            ok = client.doNormal(fn, b"child") == b"pid:child"
            os.write(w, b"1" if ok else b"0")
        except BaseException:
            os.write(w, b"E")
        finally:
            os._exit(0)
    os.close(w)
    got = os.read(r, 1)
    os.waitpid(pid, 0)
    assert got == b"1"
    assert client.doNormal(fn, b"parent-again") == b"pid:parent-again"


def test_fork_child_never_reads_the_parents_replies(gearmand_factory, fn):
    # Two servers: the child uses one; the parent has a job waiting on the
    # other.  The child must not poll (and steal answers from) that socket.
    import threading as _t
    a, b = gearmand_factory(), gearmand_factory()
    c = gearman.GearmanClient()
    c.addServers(f"{a.address},{b.address}")
    c.setTimeout(20000)
    w = gearman.GearmanWorker()
    w.addServers(f"{a.address},{b.address}")
    w.setTimeout(200)
    gate = _t.Event()
    w.addFunction(fn, lambda job, ctx: (gate.wait(10), b"parent-result")[1])
    stop = _t.Event()
    wt = _t.Thread(target=lambda: [w.work() for _ in iter(stop.is_set, True)])
    wt.start()
    result = []
    pt = _t.Thread(target=lambda: result.append(c.doNormal(fn, b"x", "route-me")))
    pt.start()
    try:
        assert wait_until(lambda: c._engine.outstanding == 1)
        r, wfd = os.pipe()
        pid = os.fork()
        if pid == 0:
            try:
                gate.set()        # the job finishes while the child runs its own calls
                ok = all(c.doBackground(fn + "-child", b"y").startswith("H:") for _ in range(20))
                os.write(wfd, b"1" if ok else b"0")
            except BaseException:
                os.write(wfd, b"E")
            finally:
                os._exit(0)
        os.close(wfd)
        assert os.read(r, 1) == b"1"
        os.waitpid(pid, 0)
        gate.set()
        pt.join(20)
        assert result == [b"parent-result"]
    finally:
        gate.set()
        stop.set()
        w.stop()
        wt.join(10)


def test_engine_task_type_must_be_a_task_class():
    """New tasks are made by the class's tp_new directly, so the engine only
    accepts Task or a subclass of it as task_type."""
    from gearman import _core
    engine = _core.ClientEngine()
    assert engine.task_type is _core.Task
    for bad in (int, object, "Task", None):
        with pytest.raises(gearman.errors.InvalidTypeError):
            engine.task_type = bad
    engine.task_type = gearman.GearmanTask
    t = engine.new_request(_core.KIND_STATUS, "H:x:1")
    assert type(t) is gearman.GearmanTask and t.jobHandle() == "H:x:1"


def test_a_subclass_that_skips_init_gets_an_error_not_a_crash():
    class Careless(gearman.GearmanClient):
        def __init__(self):
            pass            # no super().__init__()

    c = Careless()
    for call in (lambda: c.doBackground("f", b"x"), lambda: c.doNormal("f", b"x"),
                 lambda: c.jobStatus("H:x:1"), lambda: c.addTaskBackground("f", b"x")):
        with pytest.raises(gearman.GearmanError, match="__init__ was not called"):
            call()
