"""Run Python callables as Gearman workers, in N processes, until told to stop.

    python -m gearman.runner -s 127.0.0.1:4730 -f resize=myapp.jobs:resize -p 4
    cygearman-worker -s h1,h2:4731 -f myapp.jobs:resize        # name = the callable's name

Each ``-f [NAME=]module:callable`` registers ``callable(job, context)`` (a PECL
``GearmanJob``; its return value is the result).  The module is imported as
``python -m`` would: the working directory comes first on ``sys.path`` (as
gunicorn and celery do), so ``-f mymodule:func`` works from the directory that
holds ``mymodule.py``.  Servers come from ``-s`` or ``GEARMAN_SERVERS``.  Each
process reconnects to servers that go away (jittered backoff) and stops
gracefully: SIGTERM or SIGINT lets running jobs finish and their results go
out; a second signal stops at once.  Logs go to stderr at INFO (``-v`` adds
DEBUG, ``-q`` leaves warnings, ``-qq`` errors; or ``--log-level``), a callback
that raised with its traceback.  ``--metrics-port N`` serves each process's
own job counters and duration histogram for Prometheus (process i of ``-p``
on port N + i).  docs/runner.md has the whole story.
"""
from __future__ import annotations

import argparse
import importlib
import logging
import multiprocessing
import os
import signal
import sys
import time
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, cast

from gearman._pecl_worker import MAX_PREFETCH, PeclWorker
from gearman._tooling import UsageError, log_level, tool_servers
from gearman.errors import GearmanError

__all__ = ["main", "load_callable", "run_worker_process", "working_directory_on_path"]

log = logging.getLogger("gearman.runner")

#: The exit status of a worker process (and of the runner) whose configuration cannot
#: work: not restarted, since another process would fail the same way.
EXIT_CONFIG = 2
_WINDOWS = sys.platform == "win32"


LOG_FORMAT = "%(asctime)s %(process)d %(name)s %(levelname)s %(message)s"


def working_directory_on_path() -> None:
    """Put the working directory first on ``sys.path``, unless it is there already.

    A console script's ``sys.path[0]`` is the directory of the script (the
    environment's ``bin/``), not the working directory as with ``python -m``:
    without this, ``-f mymodule:func`` fails with "No module named 'mymodule'"
    from the very directory that holds ``mymodule.py``.
    """
    cwd = os.getcwd()
    here = [os.path.abspath(p or os.curdir) for p in sys.path]
    if cwd not in here:
        sys.path.insert(0, cwd)


def load_callable(spec: str) -> Tuple[str, Callable[..., Any]]:
    """``[NAME=]module:attr`` -> ``(function name, callable)``; raises ValueError."""
    name, _, target = spec.rpartition("=")
    module_name, sep, attr = target.partition(":")
    if not sep or not module_name or not attr:
        raise ValueError(f"bad function {spec!r}: expected [NAME=]module:callable")
    module = importlib.import_module(module_name)
    obj: Any = module
    for part in attr.split("."):
        obj = getattr(obj, part)
    if not callable(obj):
        raise ValueError(f"{target} is not callable")
    return (name or attr.split(".")[-1]), obj


def run_worker_process(servers: Optional[str], functions: Sequence[str], worker_id: Optional[str],
                       timeout: int, max_jobs: Optional[int], prefetch: int = 1,
                       metrics_port: Optional[int] = None,
                       metrics_addr: str = "127.0.0.1") -> int:
    """Body of one worker process: register, serve until stopped; returns jobs handled.

    ``metrics_port``: serve this worker's job metrics (gearman.metrics) on
    ``http://metrics_addr:metrics_port/metrics`` while it runs (0: a free port).
    """
    worker = PeclWorker(prefetch=prefetch)
    metrics: Any = None
    if metrics_port is not None:
        from gearman.metrics import start_metrics

        _, metrics = start_metrics(metrics_port, metrics_addr, source=worker)
        log.info("pid %d serves its job metrics on %s", os.getpid(), metrics.url)
    if servers:
        worker.addServers(servers)
    if worker_id:
        worker.setId(f"{worker_id}-{os.getpid()}")
    for spec in functions:
        name, fn = load_callable(spec)
        worker.addFunction(name, fn, None, timeout)
        log.info("pid %d serves %r with %s", os.getpid(), name, spec)
    try:
        return worker.serve(handle_signals=True, max_jobs=max_jobs)
    finally:
        worker.close()
        if metrics is not None:
            metrics.close()


def _child(args: argparse.Namespace, own_group: bool = False, index: int = 0) -> None:
    if own_group and hasattr(os, "setpgrp"):
        # A terminal's Ctrl-C reaches the whole process group; children get
        # their signal from the parent instead, once per press.  (Windows has
        # no process groups to leave: there the console's Ctrl-C reaches every
        # child directly, see on_signal in main.)
        os.setpgrp()
    logging.basicConfig(level=args.level, format=LOG_FORMAT)
    port = args.metrics_port
    if port:
        port += index                   # process i of -p listens on N + i
    try:
        handled = run_worker_process(args.servers, args.function, args.id, args.timeout,
                                     args.max_jobs, args.prefetch, port, args.metrics_addr)
    except (GearmanError, ImportError, AttributeError, ValueError, OSError) as exc:
        # what it was given cannot work (no server, a metrics port taken...): another
        # process started the same way would fail the same way, so none is
        log.error("pid %d cannot serve: %s", os.getpid(), exc)
        sys.exit(EXIT_CONFIG)
    log.info("pid %d stopping after %d jobs", os.getpid(), handled)


def main(argv: Optional[List[str]] = None) -> int:
    """Command-line entry point; returns the exit status."""
    ap = argparse.ArgumentParser(prog="cygearman-worker", description=__doc__.split("\n\n")[0])
    ap.add_argument("-s", "--servers", default=None,
                    help="h1:4730,h2 (default: GEARMAN_SERVERS, else localhost:4730)")
    ap.add_argument("-f", "--function", action="append", required=True,
                    help="[NAME=]module:callable (repeatable)")
    ap.add_argument("-p", "--processes", type=int, default=1)
    ap.add_argument("--id", help="worker id prefix (SET_CLIENT_ID, shown by gearadmin --workers)")
    ap.add_argument("--timeout", type=int, default=0,
                    help="per-job limit in seconds (CAN_DO_TIMEOUT; gearmand re-queues late jobs)")
    ap.add_argument("--max-jobs", type=int, default=None, help="each process exits after N jobs")
    ap.add_argument("--prefetch", type=int, default=1,
                    help="jobs each process holds per server: the running one plus those assigned "
                         "ahead of it (default 1; see docs/api.md, Prefetch)")
    ap.add_argument("--metrics-port", type=int, default=None, metavar="N",
                    help="serve each process's job metrics for Prometheus on port N (process i "
                         "of -p on N + i; 0: a free port, logged); needs cygearman[prometheus]")
    ap.add_argument("--metrics-addr", default="127.0.0.1",
                    help="address the metrics listen on (default 127.0.0.1; 0.0.0.0 for every "
                         "interface)")
    ap.add_argument("-v", "--verbose", action="count", default=0,
                    help="log more: DEBUG (default: INFO, or --log-level)")
    ap.add_argument("-q", "--quiet", action="count", default=0,
                    help="log less: -q warnings and errors, -qq errors only")
    ap.add_argument("--log-level", default="info",
                    help="the level -v and -q start from (default: info)")
    args = ap.parse_args(argv)
    base = logging.getLevelName(args.log_level.upper())
    if not isinstance(base, int):
        ap.error(f"--log-level: unknown level {args.log_level!r} "
                 "(debug, info, warning, error, critical)")
    args.level = log_level(args.verbose, args.quiet, default=base)
    # Log records go to stderr (the library itself only has a NullHandler).
    logging.basicConfig(level=args.level, format=LOG_FORMAT)
    try:
        args.servers = tool_servers(args.servers, log)
    except UsageError as exc:
        ap.error(str(exc))
    working_directory_on_path()
    for spec in args.function:        # fail fast, in the parent, on a bad spec
        try:
            load_callable(spec)
        except (ImportError, AttributeError, ValueError) as exc:
            ap.error(f"cannot load {spec!r}: {exc}")
    if args.processes < 1:
        ap.error("--processes must be at least 1")
    if not 1 <= args.prefetch <= MAX_PREFETCH:
        ap.error(f"--prefetch must be between 1 and {MAX_PREFETCH}")
    if args.metrics_port is not None:
        if not 0 <= args.metrics_port or args.metrics_port + args.processes - 1 > 65535:
            ap.error("--metrics-port: a TCP port (each process of -p takes the next one)")
        try:
            from gearman.metrics import require_prometheus
            require_prometheus()
        except ImportError as exc:
            ap.error(f"--metrics-port: {exc}")
    if args.processes == 1:
        _child(args)
        return 0

    if sys.platform == "win32":     # (spelled out so that mypy --platform win32 follows it)
        ctx = multiprocessing.get_context("spawn")
    else:
        ctx = multiprocessing.get_context("fork")
    children: Dict[int, Any] = {}
    index_of: Dict[int, int] = {}       # pid -> the process's index (its metrics port offset)
    stopping = [0]

    def spawn(index: int) -> None:
        p = ctx.Process(target=_child, args=(args, True, index), daemon=False)
        p.start()
        children[cast(int, p.pid)] = p     # set once started
        index_of[cast(int, p.pid)] = index

    def on_signal(signum: int, frame: Any) -> None:
        stopping[0] += 1
        for p in children.values():
            if not p.is_alive():
                continue
            if stopping[0] > 1:
                p.kill()            # SIGKILL on POSIX, TerminateProcess on Windows
            elif not _WINDOWS:
                p.terminate()       # SIGTERM: the child finishes its job, then stops
            # On Windows terminate() would be TerminateProcess, no graceful stop;
            # the children share the parent's console and got its Ctrl-C themselves.

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    status = 0
    try:
        for i in range(args.processes):
            spawn(i)
        while children:
            for pid, p in list(children.items()):
                if not p.is_alive():
                    p.join()
                    del children[pid]
                    index = index_of.pop(pid)
                    if p.exitcode == EXIT_CONFIG:
                        log.error("worker process %d could not serve (see above); not "
                                  "starting another", pid)
                        status = EXIT_CONFIG
                    elif not stopping[0] and args.max_jobs is None:
                        log.warning("worker process %d exited (%s); starting another",
                                    pid, p.exitcode)
                        time.sleep(0.5)       # no tight restart loop
                        spawn(index)
            time.sleep(0.1)
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
    return status


if __name__ == "__main__":
    sys.exit(main())
