"""Prometheus: the pool exporter (gearman.exporter, ``cygearman exporter``) and the
job-metrics listener (gearman.metrics), scraped over real HTTP and read with
prometheus_client's own parser, against real gearmand pools where a server is down.

Needs the optional extra ``cygearman[prometheus]``: without prometheus_client
these tests fail (they are not skipped).
"""
import os
import signal
import subprocess
import sys
import threading
import urllib.error
import urllib.request
import uuid

import pytest


try:
    from prometheus_client.parser import text_string_to_metric_families
except ImportError as exc:  # fail clearly, never skip: CI installs the extra
    raise ImportError("tests/test_exporter.py needs prometheus_client "
                      "(pip install 'cygearman[prometheus]')") from exc

import gearman
from gearman import events
from gearman.admin import Admin
from gearman.exporter import METRICS as POOL_METRICS
from gearman.exporter import PoolCollector, parse_listen, serve_exporter
from gearman.metrics import METRICS as JOB_METRICS
from gearman.metrics import PrometheusListener, serve_metrics, start_metrics


def _name(prefix="exp"):
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def scrape(url):
    """GET url; return {sample name: {frozenset(labels.items()): value}} and the families."""
    with urllib.request.urlopen(url, timeout=30) as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"].startswith("text/plain")
        text = resp.read().decode("utf-8")
    families = list(text_string_to_metric_families(text))
    out = {}
    for fam in families:
        for s in fam.samples:
            key = frozenset(s.labels.items())
            assert key not in out.setdefault(s.name, {}), f"duplicate sample {s}"
            out[s.name][key] = s.value
    return out, {f.name: f for f in families}


def value(samples, name, **labels):
    return samples.get(name, {}).get(frozenset(labels.items()))


def servers_in(samples, name):
    return {dict(k)["server"] for k in samples.get(name, {})}


@pytest.fixture
def pool(gearmand_factory, dead_port):
    """Two real gearmand and a dead port (connect refused): (a, b, dead_address)."""
    a = gearmand_factory()
    b = gearmand_factory()
    return a, b, f"127.0.0.1:{dead_port}"


@pytest.fixture
def exporter(pool):
    a, b, dead = pool
    server = serve_exporter(f"{a.address},{b.address},{dead}", port=0, addr="127.0.0.1",
                            timeout=5)
    yield server
    server.close()


# -- the pool exporter ---------------------------------------------------------------------

def test_exporter_reports_each_server_and_function(pool, exporter, run_worker):
    a, b, dead = pool
    queued_fn, running_fn = _name("queued"), _name("running")
    client = gearman.GearmanClient()
    client.addServer("127.0.0.1", a.port)
    client.setTimeout(20000)
    for i in range(3):
        client.doBackground(queued_fn, b"x%d" % i)

    started, release = threading.Event(), threading.Event()

    def slow(job, ctx):
        started.set()
        release.wait(30)
        return b"done"

    run_worker({running_fn: slow}, server=b)
    client_b = gearman.GearmanClient()
    client_b.addServer("127.0.0.1", b.port)
    client_b.setTimeout(20000)
    client_b.doBackground(running_fn, b"y")
    client_b.doBackground(running_fn, b"z")     # waits behind the one running
    try:
        assert started.wait(20)
        samples, families = scrape(exporter.url)

        # every server has gearman_up; the dead one is down
        assert value(samples, "gearman_up", server=a.address) == 1
        assert value(samples, "gearman_up", server=b.address) == 1
        assert value(samples, "gearman_up", server=dead) == 0

        # per function and server
        assert value(samples, "gearman_function_queued", server=a.address, function=queued_fn) == 3
        assert value(samples, "gearman_function_running", server=a.address, function=queued_fn) == 0
        assert value(samples, "gearman_function_workers", server=a.address, function=queued_fn) == 0
        assert value(samples, "gearman_function_queued", server=b.address, function=running_fn) == 1
        assert value(samples, "gearman_function_running", server=b.address, function=running_fn) == 1
        assert value(samples, "gearman_function_workers", server=b.address, function=running_fn) == 1
        # a function is reported only where the server knows it
        assert value(samples, "gearman_function_queued", server=b.address, function=queued_fn) is None
        assert value(samples, "gearman_server_workers", server=b.address) == 1
        assert value(samples, "gearman_server_workers", server=a.address) == 0

        # a down server is down, never "zero jobs": no series of it but up and the errors
        for name in ("gearman_function_queued", "gearman_function_running",
                     "gearman_function_workers", "gearman_server_info",
                     "gearman_server_connections", "gearman_server_workers",
                     "gearman_server_process_id"):
            assert dead not in servers_in(samples, name), name
            assert servers_in(samples, name) == {a.address, b.address}, name

        # versions and pids, as the admin protocol gives them
        with Admin(f"{a.address},{b.address}") as admin:
            info = admin.info()
        for srv in (a, b):
            assert value(samples, "gearman_server_info", server=srv.address,
                         version=info[srv.address].version) == 1
            assert value(samples, "gearman_server_process_id", server=srv.address) == srv.pid

        # scrape duration and errors
        assert samples["gearman_exporter_scrape_duration_seconds"][frozenset()] >= 0
        assert servers_in(samples, "gearman_exporter_server_scrape_duration_seconds") == \
            {a.address, b.address, dead}
        assert value(samples, "gearman_exporter_scrape_errors_total", server=dead,
                     error="ServerUnavailable") == 1
        assert servers_in(samples, "gearman_exporter_scrape_errors_total") == {dead}
        assert families["gearman_exporter_scrape_errors"].type == "counter"
        assert families["gearman_function_queued"].type == "gauge"
        assert families["gearman_function_queued"].documentation == \
            POOL_METRICS["gearman_function_queued"][2]
    finally:
        release.set()
        client.close()
        client_b.close()


def test_every_documented_metric_is_served(exporter, pool):
    samples, families = scrape(exporter.url)
    served = set(families)
    for name, (kind, labels, _) in POOL_METRICS.items():
        fam = name[:-len("_total")] if kind == "counter" else name
        assert fam in served, name
        assert families[fam].type == kind
        for s in families[fam].samples:
            assert set(s.labels) == set(labels), (name, s.labels)
    doc = open(os.path.join(os.path.dirname(__file__), "..", "docs", "monitoring.md")).read()
    for name in list(POOL_METRICS) + list(JOB_METRICS):
        assert f"`{name}`" in doc, f"docs/monitoring.md does not list {name}"


def test_errors_count_per_scrape_and_server_going_down(pool, exporter):
    a, b, dead = pool
    fn = _name()
    with gearman.GearmanClient() as c:
        c.addServer("127.0.0.1", b.port)
        c.setTimeout(20000)
        c.doBackground(fn, b"1")
    first, _ = scrape(exporter.url)
    assert value(first, "gearman_function_queued", server=b.address, function=fn) == 1
    second, _ = scrape(exporter.url)
    assert value(second, "gearman_exporter_scrape_errors_total", server=dead,
                 error="ServerUnavailable") == \
        value(first, "gearman_exporter_scrape_errors_total", server=dead,
              error="ServerUnavailable") + 1

    b.stop()        # b holds a queued job: once down, it must not say "0 queued"
    third, _ = scrape(exporter.url)
    assert value(third, "gearman_up", server=b.address) == 0
    assert value(third, "gearman_up", server=a.address) == 1
    assert b.address not in servers_in(third, "gearman_function_queued")
    assert value(third, "gearman_function_queued", server=b.address, function=fn) is None
    assert value(third, "gearman_exporter_scrape_errors_total", server=b.address,
                 error="ServerUnavailable") == 1

    b.start()       # same port, empty again (not persistent): up, and the job is gone
    fourth, _ = scrape(exporter.url)
    assert value(fourth, "gearman_up", server=b.address) == 1
    assert value(fourth, "gearman_function_queued", server=b.address, function=fn) is None
    # a counter never goes back
    assert value(fourth, "gearman_exporter_scrape_errors_total", server=b.address,
                 error="ServerUnavailable") == 1


def test_frozen_server_is_down_with_a_timeout_error(gearmand_factory):
    a, frozen = gearmand_factory(), gearmand_factory()
    server = serve_exporter(f"{a.address},{frozen.address}", port=0, timeout=0.5)
    try:
        frozen.pause()
        try:
            samples, _ = scrape(server.url)
        finally:
            frozen.resume()
        assert value(samples, "gearman_up", server=a.address) == 1
        assert value(samples, "gearman_up", server=frozen.address) == 0
        # a server that answered nothing: ServerSilentError (a GearmanTimeoutError), as
        # every door names it (docs/reliability.md §11)
        assert value(samples, "gearman_exporter_scrape_errors_total", server=frozen.address,
                     error="ServerSilentError") == 1
        # it answers again once resumed (the stale connection is replaced)
        samples, _ = scrape(server.url)
        assert value(samples, "gearman_up", server=frozen.address) == 1
    finally:
        server.close()


def test_collector_registers_without_scraping(pool):
    from prometheus_client import CollectorRegistry

    a, b, dead = pool
    collector = PoolCollector(f"{a.address},{dead}")
    try:
        registry = CollectorRegistry(auto_describe=True)
        registry.register(collector)           # describe(): no scrape, so no error counted
        samples = {s.name: s.value for m in registry.collect() for s in m.samples
                   if s.name == "gearman_exporter_scrape_errors_total"}
        assert samples == {"gearman_exporter_scrape_errors_total": 1}
        assert collector.servers == [a.address, dead]
    finally:
        collector.close()


def test_closed_exporter_stops_listening(pool):
    a, _, _ = pool
    server = serve_exporter(a.address, port=0)
    url = server.url
    scrape(url)
    server.close()
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(url, timeout=10)


@pytest.mark.parametrize("text,expected", [
    ("127.0.0.1:9469", ("127.0.0.1", 9469)),
    (":9469", ("0.0.0.0", 9469)),
    ("[::1]:80", ("::1", 80)),
    ("localhost:0", ("localhost", 0)),
])
def test_parse_listen(text, expected):
    assert parse_listen(text) == expected


@pytest.mark.parametrize("text", ["9469", "host:", "host:99999", "::1:80", "h:p"])
def test_parse_listen_rejects(text):
    with pytest.raises(ValueError):
        parse_listen(text)


# -- `cygearman exporter` ----------------------------------------------------------------------

def _cli(*args):
    return subprocess.Popen([sys.executable, "-m", "gearman", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_cli_exporter_serves_until_sigterm(pool):
    a, b, dead = pool
    fn = _name()
    with gearman.GearmanClient() as c:
        c.addServer("127.0.0.1", a.port)
        c.setTimeout(20000)
        c.doBackground(fn, b"1")
    proc = _cli("exporter", "--listen", "127.0.0.1:0", "--servers", f"{a.address},{dead}",
                "--timeout", "5")
    try:
        line = proc.stderr.readline()
        assert "serving http://127.0.0.1:" in line, line + proc.stderr.read()
        url = line.split("serving ", 1)[1].split(" ", 1)[0]
        assert url.endswith("/metrics")
        samples, _ = scrape(url)
        assert value(samples, "gearman_up", server=a.address) == 1
        assert value(samples, "gearman_up", server=dead) == 0
        assert value(samples, "gearman_function_queued", server=a.address, function=fn) == 1
        assert "process_cpu_seconds_total" in samples     # the exporter's own process
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
        proc.stderr.close()


def test_cli_exporter_port_in_use_is_an_error(pool):
    import socket

    a, _, _ = pool
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        proc = _cli("exporter", "--listen", f"127.0.0.1:{port}", "--servers", a.address)
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 1
    assert "in use" in err.lower()


def test_cli_exporter_rejects_a_bad_listen_address():
    proc = _cli("exporter", "--listen", "nowhere", "--servers", "127.0.0.1:1")
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 2
    assert "HOST:PORT" in err


# -- gearman.metrics: this process's own jobs, from the events -----------------------------------

@pytest.fixture
def job_metrics():
    listener = PrometheusListener()
    server = serve_metrics(0, "127.0.0.1", listener.registry)
    yield listener, server
    server.close()


def test_worker_job_metrics_from_events(job_metrics):
    listener, server = job_metrics
    fn, other = _name("w"), _name("w")
    job1, job2, job3 = object(), object(), object()
    srv = "127.0.0.1:4730"
    listener.job_grabbed(job1, fn, srv, "H:x:1", None)
    listener.job_grabbed(job2, fn, srv, "H:x:2", "u2")
    listener.job_grabbed(job3, other, srv, "H:x:3", None)
    listener.job_started(job1, fn, srv, "H:x:1")
    listener.job_started(job2, fn, srv, "H:x:2")
    listener.job_started(job3, other, srv, "H:x:3")

    during, _ = scrape(server.url)
    assert value(during, "gearman_worker_jobs_in_progress", function=fn) == 2
    assert value(during, "gearman_worker_jobs_grabbed_total", function=fn) == 2
    assert value(during, "gearman_worker_jobs_started_total", function=other) == 1

    listener.job_completed(job1, fn, srv, "H:x:1", 0.003)
    listener.job_raised(job2, fn, srv, "H:x:2", 2.0, ValueError("boom"))
    listener.job_failed(job3, other, srv, "H:x:3", 0.5)

    after, families = scrape(server.url)
    assert value(after, "gearman_worker_jobs_in_progress", function=fn) == 0
    assert value(after, "gearman_worker_jobs_in_progress", function=other) == 0
    assert value(after, "gearman_worker_jobs_finished_total", function=fn, outcome="completed") == 1
    assert value(after, "gearman_worker_jobs_finished_total", function=fn, outcome="raised") == 1
    assert value(after, "gearman_worker_jobs_finished_total", function=other, outcome="failed") == 1
    assert value(after, "gearman_worker_jobs_finished_total", function=fn, outcome="failed") is None
    # the duration histogram: count, sum and the buckets the observations fall in
    h = "gearman_worker_job_duration_seconds"
    assert families[h].type == "histogram"
    assert value(after, h + "_count", function=fn, outcome="completed") == 1
    assert value(after, h + "_sum", function=fn, outcome="completed") == pytest.approx(0.003)
    assert value(after, h + "_bucket", function=fn, outcome="completed", le="0.0025") == 0
    assert value(after, h + "_bucket", function=fn, outcome="completed", le="0.005") == 1
    assert value(after, h + "_bucket", function=fn, outcome="raised", le="1.0") == 0
    assert value(after, h + "_bucket", function=fn, outcome="raised", le="2.5") == 1
    assert value(after, h + "_bucket", function=other, outcome="failed", le="+Inf") == 1
    # a fresh registry carries the process's own metrics too
    assert "process_cpu_seconds_total" in after


def test_client_and_server_metrics_from_events(job_metrics):
    listener, server = job_metrics
    fn = _name("c")
    reqs = [object() for _ in range(6)]
    for r in reqs:
        listener.request_submitted(r, fn, None, False, "normal")
    for r in reqs[:4]:
        listener.request_accepted(r, fn, "h1:4730", "H:h1:9")
    listener.request_completed(reqs[0], fn, "h1:4730", "H:h1:9")
    listener.request_completed(reqs[1], fn, "h1:4730", "H:h1:9")
    listener.request_exception(reqs[2], fn, "h1:4730", "H:h1:9", b"trace")
    listener.request_failed(reqs[3], fn, "h1:4730", "H:h1:9")
    listener.request_timed_out(reqs[4], fn, None, None)
    listener.request_lost_connection(reqs[5], fn, "h1:4730", None)
    listener.server_demoted("h2:4730", "connect timed out", 1.5)
    listener.server_demoted("h2:4730", "connect timed out", 3.0)

    s, _ = scrape(server.url)
    assert value(s, "gearman_client_requests_submitted_total", function=fn) == 6
    assert value(s, "gearman_client_requests_accepted_total", function=fn) == 4
    fin = "gearman_client_requests_finished_total"
    assert value(s, fin, function=fn, outcome="completed") == 2
    for outcome in ("exception", "failed", "timed_out", "lost_connection"):
        assert value(s, fin, function=fn, outcome=outcome) == 1, outcome
    assert value(s, "gearman_server_demotions_total", server="h2:4730") == 2
    assert value(s, "gearman_server_demoted", server="h2:4730") == 1
    listener.server_restored("h2:4730")
    s, _ = scrape(server.url)
    assert value(s, "gearman_server_demoted", server="h2:4730") == 0


def test_every_job_metric_is_served(job_metrics):
    listener, server = job_metrics
    # one event of each kind, so that every labelled metric has a child
    listener.job_grabbed(1, "f", "s", "h", None)
    listener.job_started(1, "f", "s", "h")
    listener.job_completed(1, "f", "s", "h", 0.1)
    listener.request_submitted(2, "f", None, True, "low")
    listener.request_accepted(2, "f", "s", "h")
    listener.request_completed(3, "f", "s", "h")
    listener.server_demoted("s", "why", 1.0)
    _, families = scrape(server.url)
    for name, (kind, labels, _) in JOB_METRICS.items():
        fam = name[:-len("_total")] if kind == "counter" else name
        assert families[fam].type == kind, name
        assert families[fam].samples, name
        for sample in families[fam].samples:
            assert set(sample.labels) - {"le"} == set(labels), (name, sample.labels)


def test_start_metrics_counts_events_of_a_source():
    class Source:
        pass

    src, other = Source(), Source()
    events.attach(other)
    listener, server = start_metrics(0, "127.0.0.1", source=src)
    try:
        assert events.listeners(src) == [listener]
        events.emit_job_started(src, object(), "sm", "s:1", "H:1")
        events.emit_job_completed(src, object(), "sm", "s:1", "H:1", 0.2)
        events.emit_job_started(other, object(), "sm", "s:1", "H:2")   # not listened to
        s, _ = scrape(server.url)
        assert value(s, "gearman_worker_jobs_started_total", function="sm") == 1
        assert value(s, "gearman_worker_jobs_finished_total", function="sm",
                     outcome="completed") == 1
    finally:
        events.remove_listener(listener, src)
        events.detach(src)
        events.detach(other)
        server.close()
    assert src._events is None


def test_metrics_server_on_ipv6_loopback_or_ipv4():
    listener = PrometheusListener()
    listener.job_started(1, "v6", "s", "h")
    try:
        server = serve_metrics(0, "::1", listener.registry)
    except OSError:          # no IPv6 on this machine: the IPv4 path is tested above
        server = serve_metrics(0, "127.0.0.1", listener.registry)
    try:
        assert server.port > 0
        s, _ = scrape(server.url)
        assert value(s, "gearman_worker_jobs_in_progress", function="v6") == 1
    finally:
        server.close()
