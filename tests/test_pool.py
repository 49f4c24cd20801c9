"""The server pool: unique-hash routing, spreading, failover, and a server killed mid-batch."""
import gc
import tracemalloc

import pytest

import gearman
from gearman import errors


def test_coalescing_across_three_servers_in_any_order(gearmand_factory, fn):
    servers = [gearmand_factory() for _ in range(3)]
    a, b, c = (s.address for s in servers)
    orders = [f"{a},{b},{c}", f"{c},{b},{a}", f"{b},{a},{c}"]
    clients = []
    for order in orders:
        cl = gearman.GearmanClient()
        cl.addServers(order)
        clients.append(cl)
    uniques = [f"u{i}" for i in range(60)]
    for u in uniques:
        handles = {cl.doBackground(fn, b"x", u) for cl in clients}
        assert len(handles) == 1          # one job, whoever submitted it
    per_server = [s.queued(fn) for s in servers]
    assert sum(per_server) == 60 and all(per_server)
    # each unique lives on exactly one server
    seen = []
    for s in servers:
        seen += [l for l in s.admin("show unique jobs").splitlines() if l.startswith("u")]
    assert sorted(seen) == sorted(uniques)


def test_pipelined_batch_with_uniques_coalesces_with_single_calls(gearmand_factory, fn):
    servers = [gearmand_factory() for _ in range(3)]
    batch = gearman.GearmanClient()
    batch.addServers(",".join(s.address for s in servers))
    single = gearman.GearmanClient()
    single.addServers(",".join(s.address for s in reversed(servers)))
    tasks = [batch.addTaskBackground(fn, b"x", None, f"k{i}") for i in range(300)]
    batch.runTasks()
    for i in (0, 17, 299):
        assert single.doBackground(fn, b"y", f"k{i}") == tasks[i].jobHandle()
    assert sum(s.queued(fn) for s in servers) == 300


def test_server_killed_in_the_middle_of_a_batch(gearmand_factory, fn):
    servers = [gearmand_factory(extra_args=["--hashtable-buckets=100003"]) for _ in range(3)]
    victim = servers[1]
    client = gearman.GearmanClient()
    client.addServers(",".join(s.address for s in servers))
    client.setTimeout(60000)
    created = []
    on_victim_before_kill = [0]

    def on_created(task, ctx):
        created.append(task.server)
        if task.server == victim.address:
            on_victim_before_kill[0] += 1
        # killed mid-batch once it has accepted some jobs (under load its
        # answers may come after 3,000 of the others')
        if len(created) >= 3000 and on_victim_before_kill[0] >= 100 and victim.is_running():
            victim.kill()

    client.setCreatedCallback(on_created)
    n = 10000
    tasks = [client.addTaskBackground(fn, b"w", i) for i in range(n)]
    try:
        client.runTasks()
    except errors.LostConnectionError:
        pass                                # the report of what was in flight on the victim
    assert not victim.is_running()
    accepted = [t for t in tasks if t.jobHandle()]
    failed = [t for t in tasks if t.exception is not None]
    assert len(accepted) + len(failed) == n, "a task ended neither accepted nor failed"
    assert not any(t.jobHandle() and t.exception for t in tasks)
    for t in failed:
        assert isinstance(t.exception, (errors.LostConnectionError, errors.ServerUnavailable))
    on_victim = sum(1 for t in accepted if t.server == victim.address)
    on_survivors = sum(s.queued(fn) for s in servers if s is not victim)
    # every job the survivors acknowledged is really queued there
    assert on_survivors == len(accepted) - on_victim
    assert on_victim > 0 and on_survivors > 0
    lost = n - on_survivors - on_victim - len(failed)
    assert lost == 0


def test_down_server_is_skipped_without_losing_jobs(gearmand_factory, free_port, fn):
    live = gearmand_factory()
    client = gearman.GearmanClient()
    client.addServers(f"127.0.0.1:{free_port},{live.address}")
    tasks = [client.addTaskBackground(fn, b"x", None, f"u{i}") for i in range(200)]
    client.runTasks()
    assert all(t.jobHandle() for t in tasks)
    assert live.queued(fn) == 200


def test_all_servers_down_reports_every_task(free_port, fn):
    client = gearman.GearmanClient()
    client.addServers(f"127.0.0.1:{free_port}")
    tasks = [client.addTaskBackground(fn, b"x") for _ in range(50)]
    with pytest.raises(errors.ServerUnavailable):
        client.runTasks()
    assert all(isinstance(t.exception, errors.ServerUnavailable) for t in tasks)


def test_memory_stays_flat_across_batches(client, fn):
    def batch():
        for _ in range(5000):
            client.addTaskBackground(fn, b"payload")
        client.runTasks()

    # the client remembers recent handles (for jobStatus) in a bounded map:
    # bound it low, so that it fills during the warm-up
    client._engine.handle_memory = 1000
    batch()                                  # warm up buffers, caches, the handle map
    gc.collect()
    tracemalloc.start()
    try:
        batch()
        gc.collect()
        first, _ = tracemalloc.get_traced_memory()
        for _ in range(4):
            batch()
        gc.collect()
        last, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # beyond the bounded handle map nothing of a finished task is kept:
    # 20,000 more tasks, less than 10 bytes each
    assert last - first < 200_000, (first, last)


# --- the batch call ------------------------------------------------------------------

def test_submit_batch_returns_handles_in_order(client, gearmand, run_worker, fn):
    progress = []
    handles = client.submit_batch(fn, [str(i) for i in range(5000)],
                                  progress=lambda done, total: progress.append((done, total)),
                                  progress_every=1000)
    assert len(handles) == 5000 and len(set(handles)) == 5000
    nums = [int(h.rsplit(":", 1)[1]) for h in handles]
    assert nums == sorted(nums)                      # submitted in order
    assert progress[-1] == (5000, 5000) and len(progress) == 5
    assert gearmand.queued(fn) == 5000
    assert client.jobStatus(handles[10]) == [True, False, 0, 0]
    seen = []
    run_worker({fn: lambda job, ctx: seen.append(job.workload())})
    from gearman.testing import wait_until
    assert wait_until(lambda: len(seen) == 5000, timeout=30)
    assert seen[:3] == [b"0", b"1", b"2"]


def test_submit_batch_with_uniques_coalesces_across_the_pool(gearmand_factory, fn):
    servers = [gearmand_factory() for _ in range(3)]
    c1 = gearman.GearmanClient()
    c1.addServers(",".join(s.address for s in servers))
    c2 = gearman.GearmanClient()
    c2.addServers(",".join(s.address for s in reversed(servers)))
    uniques = [f"k{i}" for i in range(500)]
    h1 = c1.submit_batch(fn, [b"a"] * 500, uniques=uniques)
    h2 = c2.submit_batch(fn, [b"b"] * 500, uniques=uniques)
    assert h1 == h2
    assert c2.doBackground(fn, b"c", "k7") == h1[7]
    assert sum(s.queued(fn) for s in servers) == 500


def test_submit_batch_reports_refused_jobs(client, gearmand, fn):
    client.doBackground(fn, b"first")
    assert gearmand.admin(f"maxqueue {fn} 3").startswith("OK")
    with pytest.raises(errors.BatchError) as ei:
        client.submit_batch(fn, [b"x"] * 5)
    err = ei.value
    assert [h is not None for h in err.handles] == [True, True, False, False, False]
    assert sorted(err.errors) == [2, 3, 4]
    assert all(isinstance(e, errors.QueueFullError) for e in err.errors.values())
    assert client.returnCode() == gearman.GEARMAN_QUEUE_ERROR


def test_submit_batch_server_killed_midway(gearmand_factory, fn):
    servers = [gearmand_factory() for _ in range(3)]
    victim = servers[0]
    client = gearman.GearmanClient()
    client.addServers(",".join(s.address for s in servers))
    client.setTimeout(60000)

    def progress(done, total):
        if done >= 3000 and victim.is_running():
            victim.kill()

    n = 10000
    try:
        handles = client.submit_batch(fn, [b"w"] * n, progress=progress, progress_every=500)
        errs = {}
    except errors.BatchError as e:
        handles, errs = e.handles, e.errors
    assert not victim.is_running()
    accepted = sum(1 for h in handles if h is not None)
    assert accepted + len(errs) == n
    assert all(isinstance(e, (errors.LostConnectionError, errors.ServerUnavailable))
               for e in errs.values())
    on_survivors = sum(s.queued(fn) for s in servers[1:])
    assert 0 < on_survivors <= accepted


def test_submit_batch_bad_arguments_send_nothing(client, gearmand, fn):
    with pytest.raises(errors.InvalidTypeError):
        client.submit_batch(fn, [b"ok", 3])
    with pytest.raises(errors.InvalidArgumentError):
        client.submit_batch(fn, [b"a"], uniques=["u" * 65])
    with pytest.raises(errors.InvalidArgumentError):
        client.submit_batch(fn, [b"a", b"b"], uniques=["u"])
    with pytest.raises(errors.InvalidArgumentError):
        client.submit_batch(fn, [b"a"], priority="urgent")
    assert gearmand.queued(fn) == 0
    assert client.submit_batch(fn, []) == []
