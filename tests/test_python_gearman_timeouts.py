"""python-gearman's timeout contract on a silent server (docs/migration.md; docs/design.md).

``submit_job``/``submit_multiple_requests``/``get_job_status`` never raise a timeout, a
silent server's included: the request comes back with ``timed_out`` set, and submitting it
again sends it again.  Real gearmand, frozen with SIGSTOP.
"""
from __future__ import annotations

import time

import pytest

from gearman import GearmanClient
from gearman.constants import JOB_CREATED, JOB_PENDING

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
