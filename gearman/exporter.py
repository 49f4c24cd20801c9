"""A Prometheus exporter for a whole pool of gearmand servers, over the admin protocol.

::

    cygearman exporter --listen 127.0.0.1:9469 --servers h1,h2

serves ``/metrics``: each scrape asks every server, in parallel, for
``version``, ``getpid``, ``verbose``, ``status`` and ``workers``
(:meth:`gearman.admin.Admin.snapshot`) and reports per function and server
the queued, running and registered-worker counts, per server whether it
answered and its version, and how long the scrape took and how often each
server failed.  A server that did not answer is ``gearman_up 0`` and has no
function series at all: a down server is never mistaken for an empty one.

Needs the optional extra ``cygearman[prometheus]`` (``prometheus_client``).
From Python::

    from gearman.exporter import PoolCollector, serve_exporter

    server = serve_exporter("h1,h2", port=9469)        # a MetricsServer; .close() stops it

or register :class:`PoolCollector` with your own registry.  The metric names
are in :data:`METRICS` and docs/monitoring.md.  The jobs of this process's own
workers are counted by :mod:`gearman.metrics` instead.
"""
from __future__ import annotations

import argparse
import signal
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, Callable, Dict, Iterator, List, Optional, Sequence, \
    Tuple, Union

from gearman._tooling import EXIT_ERROR, EXIT_OK, PROG, UsageError, build_ssl_context
from gearman.admin import Admin, Snapshot
from gearman.metrics import MetricsServer, require_prometheus

if TYPE_CHECKING:
    import ssl

    from prometheus_client import CollectorRegistry

__all__ = [
    "PoolCollector",
    "ExporterServer",
    "serve_exporter",
    "parse_listen",
    "add_cli_command",
    "cmd_exporter",
    "METRICS",
    "DEFAULT_LISTEN",
    "DEFAULT_TIMEOUT",
]

#: Where ``cygearman exporter`` listens unless told (9469: free in Prometheus's port list
#: at the time of writing; loopback so that nothing is exposed by surprise).
DEFAULT_LISTEN = "127.0.0.1:9469"

#: Seconds each server may take to answer one scrape (below Prometheus's 10 s default
#: scrape_timeout, so a frozen server costs its own ``gearman_up 0``, not the whole scrape).
DEFAULT_TIMEOUT = 5.0

#: name -> (type, labels, help) of every metric the exporter serves.
METRICS: Dict[str, Tuple[str, Tuple[str, ...], str]] = {
    "gearman_up": (
        "gauge", ("server",), "1 if the server answered this scrape's admin commands, else 0."),
    "gearman_server_info": (
        "gauge", ("server", "version"), "Always 1 for a server that answered; its version."),
    "gearman_server_process_id": (
        "gauge", ("server",), "The server's process id (a change means a restart)."),
    "gearman_server_connections": (
        "gauge", ("server",), "Connections the server holds: workers, clients and admin."),
    "gearman_server_workers": (
        "gauge", ("server",), "Connections that registered at least one function."),
    "gearman_function_queued": (
        "gauge", ("server", "function"), "Jobs queued and not yet taken by a worker."),
    "gearman_function_running": (
        "gauge", ("server", "function"), "Jobs a worker has taken and not yet finished."),
    "gearman_function_workers": (
        "gauge", ("server", "function"),
        "Workers registered for the function (able to take its jobs, busy or idle)."),
    "gearman_exporter_scrape_duration_seconds": (
        "gauge", (), "How long this scrape of the whole pool took."),
    "gearman_exporter_server_scrape_duration_seconds": (
        "gauge", ("server",), "How long this scrape of one server took (answer or failure)."),
    "gearman_exporter_scrape_errors_total": (
        "counter", ("server", "error"),
        "Scrapes of a server that failed since the exporter started, by error class "
        "(ServerUnavailable, GearmanTimeoutError, LostConnectionError, ProtocolError...)."),
}


class PoolCollector:
    """A ``prometheus_client`` collector: every scrape asks each server of the pool afresh.

    Args:
        servers: ``"h1:4730,h2"`` or a list, as :class:`gearman.admin.Admin` takes.
        timeout: seconds each server may take per scrape (connect included).
        ssl_context: speak TLS to every server.

    Register it with ``registry.register(collector)``; :meth:`close` closes
    the admin connections (kept open between scrapes).
    """

    def __init__(self, servers: Union[str, Sequence[Any]], timeout: float = DEFAULT_TIMEOUT,
                 ssl_context: "Optional[ssl.SSLContext]" = None) -> None:
        require_prometheus()
        pool = Admin(servers, timeout=timeout, ssl_context=ssl_context)
        # One Admin per server: each server's scrape is timed on its own.
        self._admins: List[Tuple[str, Admin]] = [
            (address, Admin(address, timeout=timeout, ssl_context=ssl_context))
            for address in pool.servers]
        pool.close()
        self._executor = ThreadPoolExecutor(max_workers=min(len(self._admins), 32),
                                            thread_name_prefix="gearman-exporter")
        self._lock = threading.Lock()
        self._errors: Dict[Tuple[str, str], int] = {}

    @property
    def servers(self) -> List[str]:
        """``host:port`` of every server, in pool order."""
        return [address for address, _ in self._admins]

    def describe(self) -> List[Any]:
        """Nothing: registering the collector must not scrape the pool."""
        return []

    def _scrape_one(self, address: str, admin: Admin) -> Tuple[Any, float]:
        start = time.monotonic()
        try:
            answer: Any = admin.snapshot()[address]
        except Exception as exc:    # a bug must cost one server's series, not the scrape
            answer = exc
        return answer, time.monotonic() - start

    def scrape(self) -> Dict[str, Tuple[Any, float]]:
        """Ask every server: ``{address: (Snapshot or exception, seconds)}``, in pool order."""
        futures = [(address, self._executor.submit(self._scrape_one, address, admin))
                   for address, admin in self._admins]
        return {address: f.result() for address, f in futures}

    def collect(self) -> Iterator[Any]:
        """Scrape the pool and yield the metric families of :data:`METRICS`."""
        require_prometheus()
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        start = time.monotonic()
        results = self.scrape()
        elapsed = time.monotonic() - start

        fams: Dict[str, Any] = {}
        for name, (kind, labels, doc) in METRICS.items():
            if kind == "counter":
                fams[name] = CounterMetricFamily(name[:-len("_total")], doc, labels=labels)
            else:
                fams[name] = GaugeMetricFamily(name, doc, labels=labels)

        with self._lock:
            for address, (answer, seconds) in results.items():
                fams["gearman_exporter_server_scrape_duration_seconds"].add_metric(
                    [address], seconds)
                if isinstance(answer, Snapshot):
                    fams["gearman_up"].add_metric([address], 1)
                    self._add_snapshot(fams, address, answer)
                else:
                    fams["gearman_up"].add_metric([address], 0)
                    key = (address, type(answer).__name__)
                    self._errors[key] = self._errors.get(key, 0) + 1
            for (address, error), count in sorted(self._errors.items()):
                fams["gearman_exporter_scrape_errors_total"].add_metric([address, error], count)
        fams["gearman_exporter_scrape_duration_seconds"].add_metric([], elapsed)
        yield from fams.values()

    @staticmethod
    def _add_snapshot(fams: Dict[str, Any], address: str, snap: Snapshot) -> None:
        fams["gearman_server_info"].add_metric([address, snap.info.version], 1)
        fams["gearman_server_process_id"].add_metric([address], snap.info.pid)
        fams["gearman_server_connections"].add_metric([address], len(snap.workers))
        fams["gearman_server_workers"].add_metric(
            [address], sum(1 for w in snap.workers if w.functions))
        for fn in snap.status:
            fams["gearman_function_queued"].add_metric([address, fn.name], fn.waiting)
            fams["gearman_function_running"].add_metric([address, fn.name], fn.running)
            fams["gearman_function_workers"].add_metric([address, fn.name], fn.workers)

    def close(self) -> None:
        """Close every admin connection and the scrape threads."""
        for _, admin in self._admins:
            admin.close()
        self._executor.shutdown(wait=False)


class ExporterServer(MetricsServer):
    """The running exporter (:func:`serve_exporter`): a MetricsServer that owns its collector."""

    def __init__(self, app: Any, host: str, port: int, collector: PoolCollector) -> None:
        self.collector = collector
        super().__init__(app, host, port)

    def close(self) -> None:
        """Stop serving, then close the collector's admin connections."""
        super().close()
        self.collector.close()


def serve_exporter(servers: Union[str, Sequence[Any]], port: int = 9469,
                   addr: str = "127.0.0.1", timeout: float = DEFAULT_TIMEOUT,
                   ssl_context: "Optional[ssl.SSLContext]" = None,
                   registry: "Optional[CollectorRegistry]" = None) -> ExporterServer:
    """Serve the pool's metrics on ``http://addr:port/metrics`` from a daemon thread.

    ``port`` 0 picks a free port (the returned server's ``port``).  The
    collector is registered with ``registry`` (default: a new one that holds
    only it and the exporter's process metrics).  ``close()`` the returned
    server to stop.
    """
    pc = require_prometheus()
    collector = PoolCollector(servers, timeout=timeout, ssl_context=ssl_context)
    if registry is None:
        registry = pc.CollectorRegistry()
        pc.ProcessCollector(registry=registry)
    registry.register(collector)
    try:
        return ExporterServer(pc.make_wsgi_app(registry), addr, port, collector)
    except BaseException:
        registry.unregister(collector)
        collector.close()
        raise


def parse_listen(text: str) -> Tuple[str, int]:
    """``"host:port"``, ``"[v6]:port"`` or ``":port"`` (every IPv4 interface) -> (host, port)."""
    host, sep, port_text = text.strip().rpartition(":")
    if not sep or not port_text.isdigit() or int(port_text) > 65535:
        raise ValueError(f"--listen wants HOST:PORT, not {text!r}")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif ":" in host:
        raise ValueError(f"an IPv6 address goes in brackets: [{host}]:{port_text}")
    return host or "0.0.0.0", int(port_text)


# -- the command line: ``cygearman exporter`` ----------------------------------------------

def cmd_exporter(args: argparse.Namespace) -> int:
    """``cygearman exporter``: serve /metrics until SIGTERM (exit 0) or Ctrl-C (exit 130)."""
    try:
        host, port = parse_listen(args.listen)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    try:
        require_prometheus()
    except ImportError as exc:
        sys.stderr.write(f"{PROG}: {exc}\n")
        return EXIT_ERROR
    server = serve_exporter(args.servers, port=port, addr=host, timeout=args.timeout,
                            ssl_context=build_ssl_context(args))
    stop = threading.Event()

    def on_term(signum: int, frame: Any) -> None:
        stop.set()

    previous = signal.signal(signal.SIGTERM, on_term)
    try:
        sys.stderr.write(f"{PROG} exporter: serving {server.url} for "
                         f"{','.join(server.collector.servers)}\n")
        sys.stderr.flush()
        while not stop.wait(3600):
            pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        server.close()
    return EXIT_OK


def add_cli_command(command: Callable[..., argparse.ArgumentParser]) -> None:
    """Add ``exporter`` to ``cygearman``'s parser; ``command`` is gearman.cli's registration helper."""
    p = command("exporter", cmd_exporter,
                "serve Prometheus metrics of every server's queues and workers on /metrics "
                "(needs cygearman[prometheus])", admin_timeout=False, json_opt=False)
    p.add_argument("--listen", default=DEFAULT_LISTEN, metavar="HOST:PORT",
                   help=f"address to serve on (default {DEFAULT_LISTEN}; ':9469' for every "
                        f"IPv4 interface, '[::]:9469' for IPv6)")
    p.add_argument("-t", "--timeout", type=float, default=DEFAULT_TIMEOUT, metavar="SECONDS",
                   help=f"how long each server may take to answer a scrape "
                        f"(default {DEFAULT_TIMEOUT:g})")
