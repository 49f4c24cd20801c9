"""The facade's side of "every door keeps the same promises" (docs/reliability.md).

python-gearman's timeout contract on a silent server (docs/migration.md): ``submit_job``,
``submit_multiple_requests`` and ``get_job_status`` never raise a timeout, a silent
server's included: the request comes back with ``timed_out`` set, and submitting it again
sends it again.  Every door's timeout covers waiting for another thread's call on the same
object.  Bad priorities and subclasses that skip the base ``__init__`` get clear errors.
Real gearmand, frozen with SIGSTOP.
"""
from __future__ import annotations

import time

import pytest

from gearman import GearmanClient
from gearman.constants import JOB_CREATED, JOB_PENDING
from gearman.testing import hold_lock

T = 0.5      # the poll_timeout of every call here, in seconds


@pytest.fixture
def silent(gearmand_factory):
    server = gearmand_factory()
    yield server
    server.resume()


def test_submit_job_on_a_silent_server_returns_timed_out(silent, fn):
    client = GearmanClient([silent.address])
    client.submit_job(fn, b"warm", background=True, poll_timeout=5)    # connected
    silent.pause()
    started = time.monotonic()
    request = client.submit_job(fn, b"x", background=True, poll_timeout=T)
    elapsed = time.monotonic() - started
    assert request.timed_out is True and request.state == JOB_PENDING
    assert not request.complete
    assert elapsed < 3 * T
    # submitted again once the server answers: it is sent again and accepted
    silent.resume()
    client.submit_multiple_requests([request], poll_timeout=10)
    assert request.timed_out is False and request.complete and request.state == JOB_CREATED
    # the unique was kept: if the first send reached gearmand too, it coalesced
    assert silent.queued(fn) == 2


def test_submit_multiple_jobs_times_out_every_request_on_a_silent_server(silent, fn):
    client = GearmanClient([silent.address])
    client.submit_job(fn, b"warm", background=True, poll_timeout=5)
    silent.pause()
    started = time.monotonic()
    requests = client.submit_multiple_jobs([{"task": fn, "data": b"%d" % i} for i in range(5)],
                                           background=True, poll_timeout=T)
    assert time.monotonic() - started < 3 * T
    assert [r.timed_out for r in requests] == [True] * 5


def test_get_job_status_on_a_silent_server_sets_timed_out(silent, fn):
    client = GearmanClient([silent.address])
    request = client.submit_job(fn, b"x", background=True, poll_timeout=5)
    before = dict(request.status)
    silent.pause()
    started = time.monotonic()
    out = client.get_job_status(request, poll_timeout=T)
    assert time.monotonic() - started < 3 * T
    assert out is request and request.timed_out is True
    assert request.status.get("known") == before.get("known")   # the old status is kept
    silent.resume()
    client.get_job_status(request, poll_timeout=10)
    assert request.timed_out is False and request.status["known"] is True


@pytest.mark.parametrize("door", ["submit_job", "submit_multiple_jobs", "get_job_status",
                                  "wait_until_jobs_completed"])
def test_poll_timeout_covers_waiting_for_another_threads_call(gearmand, fn, door):
    """python-gearman's calls while another thread's call holds the client for 6 T:
    back after about T with timed_out set and nothing sent (they waited for ever)."""
    client = GearmanClient([gearmand.address])
    done = client.submit_job(fn, b"warm", background=True, poll_timeout=5)
    queued = gearmand.queued(fn)
    th = hold_lock(client, 6 * T)
    started = time.monotonic()
    if door == "submit_job":
        requests = [client.submit_job(fn, b"x", background=True, poll_timeout=T)]
    elif door == "submit_multiple_jobs":
        requests = client.submit_multiple_jobs([{"task": fn, "data": b"a"}], background=True,
                                               poll_timeout=T)
    elif door == "get_job_status":
        requests = [client.get_job_status(done, poll_timeout=T)]
    else:
        requests = client.wait_until_jobs_completed([done], poll_timeout=T)
    elapsed = time.monotonic() - started
    th.join(30)
    assert elapsed < 3 * T, elapsed
    assert all(r.timed_out for r in requests)
    assert gearmand.queued(fn) == queued                # nothing was sent meanwhile
    if door.startswith("submit"):
        client.submit_multiple_requests(requests, poll_timeout=10)   # and it can go now
        assert all(r.complete and not r.timed_out for r in requests)


@pytest.mark.parametrize("door", ["ping", "grabJob", "work"])
def test_pecl_worker_timeout_covers_waiting_for_another_threads_call(gearmand, fn, door):
    """The PECL worker's calls count the wait for another thread's call in their
    setTimeout: ping raises GearmanTimeoutError, grabJob/work return no job, each
    with GEARMAN_TIMEOUT, after about T (they waited for ever)."""
    from gearman import GEARMAN_TIMEOUT, GearmanWorker
    from gearman.errors import GearmanTimeoutError
    w = GearmanWorker()
    w.addServer("127.0.0.1", gearmand.port)
    w.addFunction(fn, lambda job, ctx: b"")
    w.setTimeout(int(T * 1000))
    w.ping(b"warm")
    th = hold_lock(w, 6 * T)
    started = time.monotonic()
    if door == "ping":
        with pytest.raises(GearmanTimeoutError):
            w.ping(b"x")
    elif door == "grabJob":
        assert w.grabJob() is None
    else:
        assert w.work() is False
    elapsed = time.monotonic() - started
    th.join(30)
    assert elapsed < 3 * T, elapsed
    assert w.returnCode() == GEARMAN_TIMEOUT
    w.close()


def test_an_unknown_priority_is_a_clear_error_and_still_a_key_error(gearmand, fn):
    from gearman.errors import InvalidArgumentError, InvalidPriorityError
    client = GearmanClient([gearmand.address])
    for bad in ("bogus", "high", 1):
        with pytest.raises(InvalidPriorityError, match="PRIORITY_HIGH") as raised:
            client.submit_job(fn, b"x", priority=bad, background=True, poll_timeout=5)
        assert isinstance(raised.value, KeyError) and isinstance(raised.value, InvalidArgumentError)
    assert gearmand.queued(fn) == 0


@pytest.mark.parametrize("cls_name", ["GearmanClient", "GearmanWorker"])
def test_a_subclass_that_skips_the_base_init_gets_a_clear_error(cls_name):
    import gearman
    from gearman.errors import InvalidArgumentError
    base = getattr(gearman, cls_name)

    class Mine(base):           # a common mistake: no super().__init__()
        def __init__(self):
            pass

    obj = Mine()
    for add in (lambda: obj.addServer("127.0.0.1", 4730), lambda: obj.addServers("h1,h2"),
                lambda: obj.add_connection("127.0.0.1:4730")):
        with pytest.raises(InvalidArgumentError, match=r"__init__ was not called"):
            add()
