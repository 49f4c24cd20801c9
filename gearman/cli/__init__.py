"""``cygearman`` / ``python -m gearman``: submit jobs, run shell workers, look after servers.

::

    cygearman submit resize photo.jpg                 # run a job, print its result
    cygearman submit -b resize --file paths.txt       # one background job per line, with progress
    cygearman work -f upper -- tr a-z A-Z             # a worker that runs a command per job
    cygearman status -s h1,h2:4731                    # queues summed over the pool
    cygearman top                                     # live view of queues and workers

Servers come from ``--servers`` (``h1:4730,h2``), else ``GEARMAN_SERVERS``,
else ``localhost:4730``.  See docs/cli.md for every command.

Log records of the library (a worker that lost its server, a callback that
raised) go to stderr at WARNING and above; ``-v`` adds INFO, ``-vv`` DEBUG,
``-q`` leaves errors only.

Exit codes: 0 success; 1 the server refused (``ERR`` answer) or another
error; 2 usage error; 3 a server could not be reached (or the connection was
lost); 4 a job failed (WORK_FAIL, WORK_EXCEPTION, or the server refused the
job, e.g. a full queue); 5 timeout; 130 interrupted (Ctrl-C).
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import Any, Callable, List, Optional

from gearman._tooling import (
    EXIT_ERROR,
    EXIT_INTERRUPTED,
    EXIT_JOB_FAILED,
    EXIT_OK,
    EXIT_TIMEOUT,
    EXIT_UNREACHABLE,
    EXIT_USAGE,
    PROG,
    UsageError,
    configure_logging,
    exit_code_for,
    log_level,
    tool_servers,
)
from gearman._version import __version__
from gearman.cli._common import err
from gearman.cli.admin import (
    cmd_cancel,
    cmd_create_function,
    cmd_drop_function,
    cmd_jobs,
    cmd_maxqueue,
    cmd_status,
    cmd_version,
    cmd_workers,
)
from gearman.cli.submit import cmd_submit
from gearman.cli.top import cmd_top
from gearman.cli.work import cmd_work
from gearman.errors import GearmanError

log = logging.getLogger("gearman.cli")

__all__ = [
    "main",
    "exit_code_for",
    "EXIT_OK",
    "EXIT_ERROR",
    "EXIT_USAGE",
    "EXIT_UNREACHABLE",
    "EXIT_JOB_FAILED",
    "EXIT_TIMEOUT",
    "EXIT_INTERRUPTED",
    "UsageError",
    "configure_logging",
    "log_level",
    "build_parser",
]


def _common(parser: argparse.ArgumentParser, suppress: bool) -> None:
    """Options every command takes, before or after the command name."""
    def d(value: Any) -> Any:
        return argparse.SUPPRESS if suppress else value

    g = parser.add_argument_group("servers")
    g.add_argument("-s", "--servers", default=d(None), metavar="H:P,...",
                   help="job servers, e.g. h1:4730,h2 (default: $GEARMAN_SERVERS, "
                        "else localhost:4730)")
    g.add_argument("--ssl", action="store_true", default=d(False),
                   help="speak TLS (system CA store unless --ssl-ca)")
    g.add_argument("--ssl-ca", default=d(None), metavar="FILE", help="CA certificates (PEM); implies --ssl")
    g.add_argument("--ssl-cert", default=d(None), metavar="FILE",
                   help="client certificate (PEM); implies --ssl")
    g.add_argument("--ssl-key", default=d(None), metavar="FILE",
                   help="client private key (PEM), if not in --ssl-cert")
    g = parser.add_argument_group("output")
    g.add_argument("-v", "--verbose", action="count", default=d(0),
                   help="log more to stderr: -v INFO, -vv DEBUG (default: warnings and errors)")
    g.add_argument("-q", "--quiet", action="count", default=d(0),
                   help="errors only: no progress, summaries or notices, no warnings logged")


def build_parser() -> argparse.ArgumentParser:
    """The argparse parser of the ``cygearman`` command."""
    ap = argparse.ArgumentParser(
        prog=PROG, description="Submit Gearman jobs, run shell workers, and administer job servers.",
        epilog="exit codes: 0 ok, 1 server refused / other error, 2 usage, 3 server unreachable, "
               "4 job failed, 5 timeout, 130 interrupted.  See docs/cli.md.")
    ap.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    _common(ap, suppress=False)
    sub = ap.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    def command(name: str, func: Callable[[argparse.Namespace], int], help: str,
                admin_timeout: bool = True, json_opt: bool = True) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help, description=help)
        _common(p, suppress=True)
        if json_opt:
            p.add_argument("--json", action="store_true",
                           help="print JSON (one object per line for bulk submits)")
        if admin_timeout:
            p.add_argument("-t", "--timeout", type=float, default=10.0, metavar="SECONDS",
                           help="how long each server may take to answer (default 10)")
        p.set_defaults(func=func)
        return p

    p = command("submit", cmd_submit, "submit jobs: data from DATA, stdin, or --file",
                admin_timeout=False)
    p.add_argument("function", help="function name")
    p.add_argument("data", nargs="?", default=None,
                   help="the workload ('-' or absent: read stdin)")
    prio = p.add_mutually_exclusive_group()
    prio.add_argument("-I", "--high", action="store_true", help="high priority")
    prio.add_argument("-L", "--low", action="store_true", help="low priority")
    p.add_argument("-b", "--background", action="store_true",
                   help="queue the job(s) and print the handle(s) instead of waiting")
    p.add_argument("-u", "--unique", default=None,
                   help="unique id (jobs with the same function and unique coalesce; '-' "
                        "coalesces on the workload)")
    p.add_argument("-t", "--timeout", type=float, default=None, metavar="SECONDS",
                   help="give up after this long in all (default: wait as long as the jobs "
                        "take; if no worker serves FUNCTION, a notice says so after 2 s)")
    p.add_argument("-n", "--lines", action="store_true",
                   help="one job per input line (empty lines skipped)")
    p.add_argument("--file", metavar="PATH", help="one job per line of PATH ('-': stdin)")
    p.add_argument("--handles", action="store_true",
                   help="bulk background: print the handles even on a terminal")
    p.add_argument("--no-progress", action="store_true", help="no progress display for bulk submits")

    p = command("work", cmd_work, "run COMMAND for each job: workload on its stdin, its stdout "
                                  "is the result, a nonzero exit fails the job",
                admin_timeout=False, json_opt=False)
    p.add_argument("-f", "--function", action="append", required=True,
                   help="function name to serve (repeatable)")
    p.add_argument("-c", "--count", type=int, default=None, help="exit after N jobs")
    p.add_argument("--id", help="worker id shown by 'workers'")
    p.add_argument("--shell", action="store_true", help="run COMMAND (one string) with /bin/sh -c")
    p.add_argument("--job-timeout", type=float, default=None, metavar="SECONDS",
                   help="kill the command and fail the job after this long")
    p.add_argument("command", nargs=argparse.REMAINDER,
                   help="command and arguments (after --); none: echo the workload back")
    p.set_defaults(timeout=5.0)

    p = command("status", cmd_status, "jobs and workers per function, summed over the servers")
    p.add_argument("--per-server", action="store_true", help="one row per server and function")
    p.add_argument("-p", "--priority", action="store_true",
                   help="add waiting jobs per priority (HIGH NORMAL LOW)")

    p = command("workers", cmd_workers, "connections that registered functions, on every server")
    p.add_argument("-a", "--all", action="store_true",
                   help="list every connection, clients and admin connections too")

    p = command("jobs", cmd_jobs, "jobs held by the servers (show jobs)")
    p.add_argument("-u", "--unique", action="store_true", help="list unique ids (show unique jobs)")

    p = command("cancel", cmd_cancel, "cancel a job by handle")
    p.add_argument("handle")
    p.add_argument("--server", metavar="H:P", help="the server that holds the job, if several do")

    command("version", cmd_version, "version, pid and log level of every server")

    p = command("maxqueue", cmd_maxqueue,
                "limit a function's queue: N for all priorities, or HIGH NORMAL [LOW]; 0 = unlimited")
    p.add_argument("function")
    p.add_argument("limits", nargs="+", type=int, metavar="N")

    p = command("create-function", cmd_create_function, "create an empty function on every server")
    p.add_argument("function")

    p = command("drop-function", cmd_drop_function, "remove a function from every server")
    p.add_argument("function")

    p = command("top", cmd_top, "live view of queues and workers across the servers",
                json_opt=False)
    p.add_argument("-i", "--interval", type=float, default=2.0, metavar="SECONDS",
                   help="refresh every SECONDS (default 2)")
    p.add_argument("--once", action="store_true", help="print one frame and exit")
    p.add_argument("-n", "--iterations", type=int, default=None,
                   help="exit after N frames")

    from gearman.exporter import add_cli_command as add_exporter_command
    add_exporter_command(command)   # "exporter": Prometheus /metrics for the pool (gearman/exporter.py)
    return ap


def main(argv: Optional[List[str]] = None) -> int:
    """Run the command line ``argv`` (default ``sys.argv[1:]``); return the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    configure_logging(log_level(args.verbose, args.quiet))
    try:
        args.servers = tool_servers(args.servers, log)
        return int(args.func(args))
    except UsageError as exc:
        parser.print_usage(sys.stderr)
        err(str(exc))
        return EXIT_USAGE
    except KeyboardInterrupt:
        err("interrupted")
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader went away (e.g. "| head"): not our error.
        try:
            sys.stdout = open(os.devnull, "w")
        except OSError:
            pass
        return EXIT_OK
    except GearmanError as exc:
        err(str(exc))
        return exit_code_for(exc)
    except OSError as exc:
        err(str(exc))
        return exit_code_for(exc)


if __name__ == "__main__":
    sys.exit(main())
