"""The admin commands of ``cygearman``: status, workers, jobs, cancel, version, maxqueue,
create-function and drop-function."""
from __future__ import annotations

import argparse
import sys
from typing import Any, Dict, List, Optional, Tuple

from gearman._tooling import (
    EXIT_ERROR,
    EXIT_OK,
    UsageError,
)
from gearman._version import __version__
from gearman.admin import FunctionStatus, PriorityStatus, merge_priority_status, merge_status
from gearman.cli._common import (
    answered,
    err,
    format_table,
    make_admin,
    print_json,
    report_failures,
    servers_json,
)


__all__ = ["cmd_status", "cmd_workers", "cmd_jobs", "cmd_cancel", "cmd_version", "cmd_maxqueue",
           "cmd_create_function", "cmd_drop_function"]


def cmd_status(args: argparse.Namespace) -> int:
    admin = make_admin(args)
    try:
        results = admin.status(per_server=True)
        prio = admin.priority_status(per_server=True) if args.priority else {}
    finally:
        admin.close()
    code = report_failures(results)
    if code == EXIT_OK:
        code = report_failures(prio)
    ok = {a: v for a, v in results.items() if not isinstance(v, BaseException)}
    okp = {a: v for a, v in prio.items() if not isinstance(v, BaseException)}
    rows: List[Tuple[str, FunctionStatus, Optional[PriorityStatus]]] = []
    if args.per_server:
        for address, listing in ok.items():
            pmap = {p.name: p for p in okp.get(address, [])}
            for s in sorted(listing, key=lambda s: s.name):
                rows.append((address, s, pmap.get(s.name)))
    else:
        pmap = {p.name: p for p in merge_priority_status(okp.values())}
        rows = [("", s, pmap.get(s.name)) for s in merge_status(ok.values())]
    if args.json:
        functions = []
        for address, s, p in rows:
            item: Dict[str, Any] = {"name": s.name, "total": s.total, "running": s.running,
                                    "waiting": s.waiting, "workers": s.workers}
            if args.priority:
                item.update(high=p.high if p else 0, normal=p.normal if p else 0,
                            low=p.low if p else 0)
            if args.per_server:
                item = dict({"server": address}, **item)
            functions.append(item)
        print_json({"servers": servers_json(results), "functions": functions})
        return code
    if not ok:
        return code             # no server answered: the errors above, no empty table
    headers = (["SERVER"] if args.per_server else []) + ["FUNCTION", "TOTAL", "RUNNING", "WAITING",
                                                         "WORKERS"]
    if args.priority:
        headers += ["HIGH", "NORMAL", "LOW"]
    table = []
    for address, s, p in rows:
        row: List[Any] = ([address] if args.per_server else []) + [s.name, s.total, s.running,
                                                                   s.waiting, s.workers]
        if args.priority:
            row += [p.high if p else 0, p.normal if p else 0, p.low if p else 0]
        table.append(row)
    sys.stdout.write(format_table(headers, table))
    return code


def cmd_workers(args: argparse.Namespace) -> int:
    admin = make_admin(args)
    try:
        results = admin.workers(per_server=True)
    finally:
        admin.close()
    code = report_failures(results)
    entries = [w for v in results.values() if not isinstance(v, BaseException) for w in v
               if args.all or w.functions]
    if args.json:
        print_json({"servers": servers_json(results), "workers": [
            {"server": w.server, "fd": w.fd, "ip": w.ip, "client_id": w.client_id,
             "functions": list(w.functions)} for w in entries]})
        return code
    if not answered(results):
        return code
    sys.stdout.write(format_table(
        ["SERVER", "FD", "IP", "CLIENT-ID", "FUNCTIONS"],
        [[w.server, w.fd, w.ip, w.client_id or "-", " ".join(w.functions)] for w in entries]))
    return code


def cmd_jobs(args: argparse.Namespace) -> int:
    admin = make_admin(args)
    try:
        if args.unique:
            results: Dict[str, Any] = admin.show_unique_jobs(per_server=True)
        else:
            results = admin.show_jobs(per_server=True)
    finally:
        admin.close()
    code = report_failures(results)
    ok = {a: v for a, v in results.items() if not isinstance(v, BaseException)}
    if args.unique:
        if args.json:
            print_json({"servers": servers_json(results), "uniques": [
                {"server": a, "unique": u} for a, v in ok.items() for u in v]})
        elif ok:
            sys.stdout.write(format_table(["SERVER", "UNIQUE"],
                                          [[a, u] for a, v in ok.items() for u in v]))
        return code
    jobs = [j for v in ok.values() for j in v]
    if args.json:
        print_json({"servers": servers_json(results), "jobs": [
            {"server": j.server, "handle": j.handle, "retries": j.retries, "ignored": j.ignored,
             "queued": j.queued} for j in jobs]})
        return code
    if not ok:
        return code
    sys.stdout.write(format_table(
        ["SERVER", "HANDLE", "RETRIES", "IGNORED", "PERSISTED"],
        [[j.server, j.handle, j.retries, "yes" if j.ignored else "no",
          "yes" if j.queued else "no"] for j in jobs]))
    return code


def cmd_cancel(args: argparse.Namespace) -> int:
    admin = make_admin(args)
    try:
        address = admin.cancel_job(args.handle, server=args.server)
    finally:
        admin.close()
    if args.json:
        print_json({"ok": True, "handle": args.handle, "server": address})
    else:
        sys.stdout.write(f"cancelled {args.handle} on {address}\n")
    return EXIT_OK


def cmd_version(args: argparse.Namespace) -> int:
    admin = make_admin(args)
    try:
        results = admin.info(per_server=True)
    finally:
        admin.close()
    code = report_failures(results)
    ok = [v for v in results.values() if not isinstance(v, BaseException)]
    if args.json:
        servers = servers_json(results)
        for info in ok:
            servers[info.server].update(version=info.version, pid=info.pid, verbose=info.verbose)
        print_json({"client": __version__, "servers": servers})
        return code
    if not ok:
        return code
    sys.stdout.write(format_table(["SERVER", "VERSION", "PID", "VERBOSE"],
                                  [[i.server, i.version, i.pid, i.verbose] for i in ok]))
    return code


def _changed(args: argparse.Namespace, results: Dict[str, Any], what: str) -> int:
    code = report_failures(results)
    done = [a for a, v in results.items() if v is True]
    if args.json:
        print_json({"servers": servers_json(results)})
    elif done:
        sys.stdout.write(f"{what} on {', '.join(done)}\n")
    return code


def cmd_maxqueue(args: argparse.Namespace) -> int:
    limits = list(args.limits)
    if not 1 <= len(limits) <= 3:
        raise UsageError("maxqueue takes FUNCTION and 1 to 3 limits: N (all priorities) "
                         "or HIGH NORMAL [LOW]")
    high, normal, low = (limits * 3) if len(limits) == 1 else (limits + [0, 0])[:3]
    admin = make_admin(args)
    try:
        results = admin.maxqueue(args.function, high, normal, low, per_server=True)
    finally:
        admin.close()

    def show(n: int) -> str:
        return str(n) if n > 0 else "unlimited"

    return _changed(args, results, f"maxqueue {args.function}: high={show(high)} "
                                   f"normal={show(normal)} low={show(low)}")


def cmd_create_function(args: argparse.Namespace) -> int:
    admin = make_admin(args)
    try:
        results = admin.create_function(args.function, per_server=True)
    finally:
        admin.close()
    return _changed(args, results, f"created {args.function}")


def cmd_drop_function(args: argparse.Namespace) -> int:
    admin = make_admin(args)
    try:
        results = admin.drop_function(args.function, per_server=True)
    finally:
        admin.close()
    code = _changed(args, results, f"dropped {args.function}")
    if code == EXIT_OK and not any(v is True for v in results.values()):
        err(f"function {args.function!r} not found on any server")
        return EXIT_ERROR
    return code


# -- top ------------------------------------------------------------------------------------
