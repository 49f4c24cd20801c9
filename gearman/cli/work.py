"""``cygearman work``: a worker that runs a shell command per job."""
from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import threading
from typing import Any, Optional

from gearman import constants as C
from gearman._pecl_worker import GearmanJob, PeclWorker
from gearman._tooling import (
    EXIT_OK,
    UsageError,
    build_ssl_context,
)
from gearman.cli._common import err, make_admin, report_failures


__all__ = ["cmd_work"]


def cmd_work(args: argparse.Namespace) -> int:

    command = list(args.command)
    if command[:1] == ["--"]:
        command = command[1:]
    if args.shell:
        if len(command) != 1:
            raise UsageError("--shell takes the command as one argument: --shell 'cmd | cmd2'")
        command = ["/bin/sh", "-c", command[0]]
    elif command and shutil.which(command[0]) is None:
        raise UsageError(f"command not found: {command[0]}")
    if args.count is not None and args.count < 1:
        raise UsageError("--count must be at least 1")

    # Fail fast, as gearman -w does, when no server answers at all.
    admin = make_admin(args)
    try:
        reach = admin.version(per_server=True)
    finally:
        admin.close()
    down = {a: v for a, v in reach.items() if isinstance(v, BaseException)}
    if len(down) == len(reach):
        return report_failures(down)
    for _address, exc in down.items():
        err(f"warning: {exc} (will keep trying)")

    worker = PeclWorker(ssl_context=build_ssl_context(args))
    worker.addServers(args.servers)
    if args.id:
        worker.setId(args.id)
    handled = [0]

    def run(job: GearmanJob, context: Any) -> Optional[bytes]:
        handled[0] += 1
        if not command:                       # no command: echo, like gearman -w
            return job.workload()
        env = dict(os.environ, GEARMAN_FUNCTION=job.functionName(), GEARMAN_HANDLE=job.handle(),
                   GEARMAN_UNIQUE=job.unique())
        try:
            proc = subprocess.run(command, input=job.workload(), stdout=subprocess.PIPE,
                                  env=env, timeout=args.job_timeout)
        except subprocess.TimeoutExpired:
            err(f"job {job.handle()}: command ran longer than {args.job_timeout:g} s; killed")
            job.sendFail()
            return None
        except OSError as exc:
            err(f"job {job.handle()}: cannot run {command[0]}: {exc}")
            job.sendFail()
            return None
        if proc.returncode != 0:
            err(f"job {job.handle()}: command exited with status {proc.returncode}")
            job.sendFail()
            return None
        out: bytes = proc.stdout
        return out

    for name in args.function:
        worker.addFunction(name, run)
    # Wake up now and then so a signal's stop() is seen even while idle.
    worker.setTimeout(1000)
    stops = [0]

    def on_signal(signum: int, frame: Any) -> None:
        stops[0] += 1
        if stops[0] == 1:
            worker.stop()          # the running job finishes and its result is sent
            return
        raise KeyboardInterrupt

    previous = {}
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT):
            previous[sig] = signal.signal(sig, on_signal)
    if sys.stderr.isatty():
        err(f"working on {', '.join(args.function)} at {args.servers} (Ctrl-C stops)")
    try:
        while args.count is None or handled[0] < args.count:
            worker.work()
            if worker.returnCode() == C.GEARMAN_SHUTDOWN or stops[0]:
                break
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        worker.close()
    return EXIT_OK


# -- admin commands -------------------------------------------------------------------------
