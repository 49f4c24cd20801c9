"""The server pool: unique-hash routing, spreading, failover, and a server killed mid-batch."""
import gc
import tracemalloc

import pytest

import gearman
from gearman import errors


def status_counts(server, fn):
    for line in server.admin("status").splitlines():
        parts = line.split("\t")
        if parts[0] == fn:
            return int(parts[1])
    return 0


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
    per_server = [status_counts(s, fn) for s in servers]
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
    assert sum(status_counts(s, fn) for s in servers) == 300


def test_server_killed_in_the_middle_of_a_batch(gearmand_factory, fn):
    servers = [gearmand_factory(extra_args=["--hashtable-buckets=100003"]) for _ in range(3)]
    victim = servers[1]
    client = gearman.GearmanClient()
    client.addServers(",".join(s.address for s in servers))
    client.setTimeout(60000)
    created = []

    def on_created(task, ctx):
        created.append(task.server)
        if len(created) == 3000 and victim.is_running():
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
    on_survivors = sum(status_counts(s, fn) for s in servers if s is not victim)
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
    assert status_counts(live, fn) == 200


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

    batch()                                  # warm up buffers and caches
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
    # the client remembers a bounded number of recent handles (for jobStatus);
    # beyond that nothing of a finished task is kept
    assert last - first < 2_000_000, (first, last)
