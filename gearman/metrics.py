"""Prometheus metrics of this process's own jobs, from the event hooks (:mod:`gearman.events`).

Needs the optional extra ``cygearman[prometheus]`` (``prometheus_client``)::

    from gearman import events, metrics

    listener = metrics.PrometheusListener()        # a fresh registry with process metrics
    events.add_listener(listener)                   # every client and worker of the process
    server = metrics.serve_metrics(9100, "0.0.0.0", listener.registry)
    ...
    server.close()

or in one call, :func:`start_metrics`.  The metric names are listed in
:data:`METRICS` and in docs/monitoring.md.  The pool's queues (what gearmand
knows) are a different exporter: :mod:`gearman.exporter`.
"""
from __future__ import annotations

import ipaddress
import socket
import socketserver
import threading
from typing import TYPE_CHECKING, Any, Dict, Optional, Tuple
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from gearman.events import Listener

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

__all__ = [
    "PrometheusListener",
    "MetricsServer",
    "serve_metrics",
    "start_metrics",
    "require_prometheus",
    "METRICS",
    "DURATION_BUCKETS",
]

#: The metrics :class:`PrometheusListener` keeps: name -> (type, labels, help).
METRICS: Dict[str, Tuple[str, Tuple[str, ...], str]] = {
    "gearman_worker_jobs_grabbed_total": (
        "counter", ("function",), "Jobs assigned to this process's workers (JOB_ASSIGN)."),
    "gearman_worker_jobs_started_total": (
        "counter", ("function",), "Jobs whose function was called."),
    "gearman_worker_jobs_finished_total": (
        "counter", ("function", "outcome"),
        "Jobs that ended, by outcome: completed, failed (WORK_FAIL), raised (the function raised)."),
    "gearman_worker_jobs_in_progress": (
        "gauge", ("function",), "Jobs started and not yet ended."),
    "gearman_worker_job_duration_seconds": (
        "histogram", ("function", "outcome"), "Time from a job's start to its end."),
    "gearman_client_requests_submitted_total": (
        "counter", ("function",), "Requests this process's clients submitted."),
    "gearman_client_requests_accepted_total": (
        "counter", ("function",), "Requests a server accepted (JOB_CREATED)."),
    "gearman_client_requests_finished_total": (
        "counter", ("function", "outcome"),
        "Requests that ended without a result or with one, by outcome: completed, failed, "
        "exception, timed_out, lost_connection, abandoned (a background request ends when "
        "accepted and is not counted here)."),
    "gearman_server_demotions_total": (
        "counter", ("server",), "Times a silent server was demoted (skipped for a backoff)."),
    "gearman_server_demoted": (
        "gauge", ("server",), "1 while the server is demoted, 0 once restored."),
}

#: Histogram buckets of job durations, seconds: 1 ms to 10 minutes.
DURATION_BUCKETS: Tuple[float, ...] = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
    60.0, 120.0, 300.0, 600.0)


def require_prometheus() -> Any:
    """Import ``prometheus_client``, or raise ImportError saying which extra to install."""
    try:
        import prometheus_client
    except ImportError as exc:
        raise ImportError("Prometheus metrics need prometheus_client: "
                          "pip install 'cygearman[prometheus]'") from exc
    return prometheus_client


class PrometheusListener(Listener):
    """An event listener that counts jobs and requests into Prometheus metrics (:data:`METRICS`).

    Args:
        registry: where the metrics are registered.  None: a new
            ``CollectorRegistry`` that also holds the process and platform
            collectors (``process_cpu_seconds_total``...), which
            :attr:`registry` gives to :func:`serve_metrics`.  Pass
            ``prometheus_client.REGISTRY`` to add them to the default registry.
        buckets: the duration histogram's buckets (seconds).
    """

    def __init__(self, registry: "Optional[CollectorRegistry]" = None,
                 buckets: Tuple[float, ...] = DURATION_BUCKETS) -> None:
        pc = require_prometheus()
        if registry is None:
            registry = pc.CollectorRegistry()
            pc.ProcessCollector(registry=registry)
            pc.PlatformCollector(registry=registry)
        self.registry = registry
        made: Dict[str, Any] = {}
        for name, (kind, labels, doc) in METRICS.items():
            if kind == "counter":
                made[name] = pc.Counter(name[:-len("_total")], doc, labels, registry=registry)
            elif kind == "gauge":
                made[name] = pc.Gauge(name, doc, labels, registry=registry)
            else:
                made[name] = pc.Histogram(name, doc, labels, registry=registry, buckets=buckets)
        self._grabbed = made["gearman_worker_jobs_grabbed_total"]
        self._started = made["gearman_worker_jobs_started_total"]
        self._finished = made["gearman_worker_jobs_finished_total"]
        self._in_progress = made["gearman_worker_jobs_in_progress"]
        self._duration = made["gearman_worker_job_duration_seconds"]
        self._submitted = made["gearman_client_requests_submitted_total"]
        self._accepted = made["gearman_client_requests_accepted_total"]
        self._req_finished = made["gearman_client_requests_finished_total"]
        self._demotions = made["gearman_server_demotions_total"]
        self._demoted = made["gearman_server_demoted"]

    # -- worker jobs -----------------------------------------------------------------------

    def job_grabbed(self, job: object, function: str, server: str, handle: str,
                    unique: Optional[str]) -> None:
        self._grabbed.labels(function).inc()

    def job_started(self, job: object, function: str, server: str, handle: str) -> None:
        self._started.labels(function).inc()
        self._in_progress.labels(function).inc()

    def _ended(self, function: str, outcome: str, duration: float) -> None:
        self._finished.labels(function, outcome).inc()
        self._in_progress.labels(function).dec()
        self._duration.labels(function, outcome).observe(max(duration, 0.0))

    def job_completed(self, job: object, function: str, server: str, handle: str,
                      duration: float) -> None:
        self._ended(function, "completed", duration)

    def job_failed(self, job: object, function: str, server: str, handle: str,
                   duration: float) -> None:
        self._ended(function, "failed", duration)

    def job_raised(self, job: object, function: str, server: str, handle: str,
                   duration: float, exc: BaseException) -> None:
        self._ended(function, "raised", duration)

    # -- client requests -------------------------------------------------------------------

    def request_submitted(self, request: object, function: str, unique: Optional[str],
                          background: bool, priority: str) -> None:
        self._submitted.labels(function).inc()

    def request_accepted(self, request: object, function: str, server: str,
                         handle: str) -> None:
        self._accepted.labels(function).inc()

    def request_completed(self, request: object, function: str, server: str,
                          handle: str) -> None:
        self._req_finished.labels(function, "completed").inc()

    def request_failed(self, request: object, function: str, server: Optional[str],
                       handle: Optional[str]) -> None:
        self._req_finished.labels(function, "failed").inc()

    def request_exception(self, request: object, function: str, server: str, handle: str,
                          message: Optional[bytes]) -> None:
        self._req_finished.labels(function, "exception").inc()

    def request_timed_out(self, request: object, function: str, server: Optional[str],
                          handle: Optional[str]) -> None:
        self._req_finished.labels(function, "timed_out").inc()

    def request_lost_connection(self, request: object, function: str, server: Optional[str],
                                handle: Optional[str]) -> None:
        self._req_finished.labels(function, "lost_connection").inc()

    def request_abandoned(self, request: object, function: str, server: Optional[str],
                          handle: Optional[str], reason: Optional[BaseException]) -> None:
        self._req_finished.labels(function, "abandoned").inc()

    # -- servers -----------------------------------------------------------------------------

    def server_demoted(self, server: str, reason: str, backoff: float) -> None:
        self._demotions.labels(server).inc()
        self._demoted.labels(server).set(1)

    def server_restored(self, server: str) -> None:
        self._demoted.labels(server).set(0)


# -- serving /metrics ----------------------------------------------------------------------

class _Handler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base's name
        """Log nothing: a scrape every few seconds is not news."""


class _ThreadingServer(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = True
    allow_reuse_address = True


def _family(host: str) -> socket.AddressFamily:
    try:
        return socket.AF_INET6 if ipaddress.ip_address(host).version == 6 else socket.AF_INET
    except ValueError:
        infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
        return infos[0][0] if infos else socket.AF_INET


class MetricsServer:
    """An HTTP server answering ``/metrics`` from a registry, on a daemon thread.

    Made by :func:`serve_metrics`; :attr:`host`, :attr:`port` (the real port
    when 0 was asked) and :attr:`url`; :meth:`close` stops it.
    """

    def __init__(self, app: Any, host: str, port: int) -> None:
        server_class = type("_Server", (_ThreadingServer,), {"address_family": _family(host)})
        self._httpd: WSGIServer = make_server(host, port, app, server_class,
                                              handler_class=_Handler)
        self.host = host
        self.port: int = self._httpd.server_address[1]
        self._thread = threading.Thread(target=self._httpd.serve_forever,
                                        name=f"gearman-metrics-{self.port}", daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        """``http://host:port/metrics``."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/metrics"

    def close(self) -> None:
        """Stop serving and close the listening socket (waits for the serving thread)."""
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join()

    def __enter__(self) -> "MetricsServer":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<{type(self).__module__}.{type(self).__qualname__} {self.url}>"


def serve_metrics(port: int, addr: str = "127.0.0.1",
                  registry: "Optional[CollectorRegistry]" = None) -> MetricsServer:
    """Serve ``registry`` (default: prometheus_client's default registry) over HTTP.

    Args:
        port: TCP port; 0 picks a free one (see :attr:`MetricsServer.port`).
        addr: address to listen on; ``"0.0.0.0"`` or ``"::"`` for every interface.
    Returns the running :class:`MetricsServer`.
    """
    pc = require_prometheus()
    app = pc.make_wsgi_app(pc.REGISTRY if registry is None else registry)
    return MetricsServer(app, addr, port)


def start_metrics(port: int, addr: str = "127.0.0.1",
                  source: Any = None) -> Tuple[PrometheusListener, MetricsServer]:
    """Count the jobs of every client and worker (or of ``source`` only) and serve them.

    What ``cygearman-worker --metrics-port N`` does.  Returns the listener
    (registered with :func:`gearman.events.add_listener`) and the server;
    undo with ``events.remove_listener(listener, source)`` and ``server.close()``.
    """
    from gearman import events

    listener = PrometheusListener()
    server = serve_metrics(port, addr, listener.registry)
    events.add_listener(listener, source)
    return listener, server
