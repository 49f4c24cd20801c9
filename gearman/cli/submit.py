"""``cygearman submit``: run jobs (foreground, background, bulk, with progress)."""
from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from typing import Any, Dict, List, Optional, Tuple

from gearman import _config
from gearman._pecl_client import task_outcome
from gearman._tooling import (
    EXIT_OK,
    UsageError,
    build_ssl_context,
    errors_exit_code,
    exit_code_for,
)
from gearman.admin import Admin, FunctionStatus
from gearman.cli._common import (
    BATCH_STEP,
    PROBE_WAIT,
    SILENT_CHECK,
    WAITING_NOTICE_AFTER,
    WINDOW,
    Progress,
    err,
    error_json,
    make_client,
    payload_json,
    print_json,
)
from gearman.errors import (
    BatchError,
    GearmanError,
    GearmanTimeoutError,
    NoServersError,
)
from gearman.errors import (
    ConnectionError as GearmanConnectionError,
)


__all__ = ["cmd_submit"]


def _read_lines(data: bytes) -> List[bytes]:
    """One workload per line: line ends (``\\n`` or ``\\r\\n``) removed, empty lines skipped."""
    out = []
    for line in data.split(b"\n"):
        if line.endswith(b"\r"):
            line = line[:-1]
        if line:
            out.append(line)
    return out


def _read_stdin(args: argparse.Namespace, bulk: bool) -> bytes:
    """All of stdin; on a terminal, first say that it is being read (or a bare
    ``cygearman submit FUNCTION`` would seem to hang)."""
    if sys.stdin.isatty() and not args.quiet:
        end = "Ctrl-Z then Enter" if sys.platform == "win32" else "Ctrl-D"
        what = "the workloads from stdin, one per line" if bulk else "the workload from stdin"
        err(f"reading {what}; end it with {end} (or give DATA or --file)")
    return sys.stdin.buffer.read()


def _workloads(args: argparse.Namespace) -> Tuple[List[bytes], bool]:
    """The workloads to submit, and whether this is a bulk submit (one job per line)."""
    bulk = bool(args.lines or args.file)
    if args.file and args.data is not None:
        raise UsageError("give DATA or --file, not both")
    if args.file:
        try:
            if args.file == "-":
                raw = _read_stdin(args, bulk)
            else:
                with open(args.file, "rb") as f:
                    raw = f.read()
        except OSError as exc:
            raise UsageError(f"cannot read {args.file}: {exc}") from exc
    elif args.data is not None and args.data != "-":
        raw = os.fsencode(args.data)
    else:
        raw = _read_stdin(args, bulk)
    if bulk:
        return _read_lines(raw), True
    return [raw], False


class WaitingNotice:
    """Says once on stderr that no worker serves the function, if a foreground
    submit is still waiting after ``after`` seconds.

    Gearman queues a job for a function nobody serves and the client waits as
    long as it takes (PECL and libgearman do the same); the notice makes that
    wait visible instead of silent.  It asks the servers' admin port from a
    thread of its own; ``cancel()`` once the jobs are answered.
    """

    def __init__(self, args: argparse.Namespace, after: float = WAITING_NOTICE_AFTER) -> None:
        self.args = args
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._run, args=(after,), daemon=True,
                                       name="cygearman-waiting-notice")
        self.thread.start()

    def _run(self, after: float) -> None:
        if self.done.wait(after):
            return
        try:
            with Admin(self.args.servers, timeout=5.0,
                       ssl_context=build_ssl_context(self.args)) as admin:
                listing = admin.status(per_server=True)
        except Exception as exc:    # noqa: BLE001 - a notice: say why, never fail the submit
            if not self.done.is_set():
                err(f"still waiting; cannot ask the servers whether a worker serves "
                    f"{self.args.function!r}: {exc}")
            return
        answers: Dict[str, List[FunctionStatus]] = {
            a: v for a, v in listing.items() if not isinstance(v, BaseException)}
        reached = list(answers)
        if not reached and not self.done.is_set():
            first = next(iter(listing.values()), None)
            err(f"still waiting; no server answered its admin port ({first}): if one stopped "
                f"answering, the submit ends within {SILENT_CHECK:g} s")
            return
        workers = sum(int(s.workers) for v in answers.values() for s in v
                      if s.name == self.args.function)
        if reached and workers == 0 and not self.done.is_set():
            err(f"waiting for a worker: none serves {self.args.function!r} on "
                 f"{', '.join(reached)}; the job waits until one does "
                 f"(Ctrl-C stops, -t SECONDS limits the wait)")

    def cancel(self) -> None:
        self.done.set()


def cmd_submit(args: argparse.Namespace) -> int:
    workloads, bulk = _workloads(args)
    priority = "high" if args.high else "low" if args.low else "normal"
    client = make_client(args)
    deadline = time.monotonic() + args.timeout if args.timeout else None
    try:
        _set_aside_the_unresponsive(client, deadline)
        if args.background:
            return _submit_background(args, client, workloads, bulk, priority, deadline)
        notice = WaitingNotice(args) if not args.quiet else None
        try:
            return _submit_foreground(args, client, workloads, bulk, priority, deadline)
        finally:
            if notice:
                notice.cancel()
    finally:
        client.close()


def _set_aside_the_unresponsive(client: Any, deadline: Optional[float]) -> None:
    """A pool of several servers: one ECHO to each first, so that the jobs go around a
    server that is down or silent.

    An in-process client learns that from its first call and routes around the server
    from then on (docs/reliability.md §5a); a command has only one call, so without this
    every run sent its job to the same silent server. The probe waits PROBE_WAIT seconds
    at most (half of what -t leaves, if less); a server that answered nothing by then is
    demoted, one that refused is backing off, and the jobs go to the others (to them all
    anyway if every server failed). One round trip when every server answers.
    """
    if len(client.servers) < 2:
        return
    wait = PROBE_WAIT if deadline is None else min(PROBE_WAIT, (deadline - time.monotonic()) / 2)
    if wait <= 0:
        return
    previous = client.timeout()
    client.setTimeout(_config.seconds_to_ms(wait))
    try:
        client.ping()
    except GearmanError:
        pass                # what did not answer is set aside by the client itself
    finally:
        client.setTimeout(previous)


def _run_until_answered(client: Any, tasks: List[Any], deadline: Optional[float]) -> None:
    """``runTasks()`` until every task ended, within ``deadline`` (-t) if given.

    Without -t a job may wait for a worker as long as it takes, but a server
    that stops answering must not hold the submit for ever: the tasks run in
    rounds of SILENT_CHECK seconds, and at the end of a round the client fails
    the requests of a server that answered nothing since they were written
    (ServerSilentError); those still waiting for a worker go on waiting.
    """
    while True:
        if deadline is None:
            client.setTimeout(_config.seconds_to_ms(SILENT_CHECK))
        else:
            _set_deadline(client, deadline)
        try:
            client.runTasks()
            return
        except GearmanTimeoutError:
            if all(t.finished for t in tasks):
                return              # each task's own outcome says why (a silent server)
            if deadline is not None:
                raise


def _set_deadline(client: Any, deadline: Optional[float]) -> None:
    if deadline is None:
        return
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise GearmanTimeoutError("the --timeout expired")
    client.setTimeout(_config.seconds_to_ms(remaining))


def _show_progress(args: argparse.Namespace, bulk: bool) -> bool:
    return bulk and not args.quiet and not args.no_progress


def _submit_background(args: argparse.Namespace, client: Any, workloads: List[bytes], bulk: bool,
                       priority: str, deadline: Optional[float]) -> int:
    if not bulk:
        _set_deadline(client, deadline)
        do = {"normal": client.doBackground, "high": client.doHighBackground,
              "low": client.doLowBackground}[priority]
        handle = do(args.function, workloads[0], args.unique)
        if args.json:
            print_json({"ok": True, "function": args.function, "handle": handle, "background": True})
        else:
            sys.stdout.write(handle + "\n")
        return EXIT_OK
    total = len(workloads)
    progress = Progress(total, "submitted", sys.stderr) if _show_progress(args, bulk) else None
    started = time.monotonic()
    handles: List[Optional[str]] = [None] * total
    errors: Dict[int, BaseException] = {}
    accepted = 0
    # In steps (pipelined each), so that the progress counts accepted jobs: a
    # refused or unroutable job is answered too, and must not move the bar.
    step = max(BATCH_STEP, total // 100)
    try:
        for start in range(0, total, step):
            chunk = workloads[start:start + step]
            failed: Dict[int, BaseException] = {}
            try:
                _set_deadline(client, deadline)
                got: List[Optional[str]] = list(client.submit_batch(
                    args.function, chunk, uniques=[args.unique] * len(chunk) if args.unique
                    else None, priority=priority))
            except BatchError as exc:
                got, failed = list(exc.handles), dict(exc.errors)
            except GearmanError as exc:
                # (the --timeout expired, ...): this step's outcome is unknown, the
                # rest was never sent
                for i in range(start, total):
                    errors[i] = exc
                break
            handles[start:start + len(got)] = got
            for i, e in failed.items():
                errors[start + i] = e
            accepted += len(chunk) - len(failed)
            if progress:
                progress.update(accepted)
            if len(failed) == len(chunk) and all(
                    isinstance(e, (GearmanConnectionError, NoServersError))
                    for e in failed.values()):
                # no server takes jobs: say so for the rest instead of trying each step
                first = failed[min(failed)]
                for i in range(start + len(chunk), total):
                    errors[i] = first
                break
    finally:
        if progress:
            progress.finish()
    elapsed = time.monotonic() - started
    code = errors_exit_code(list(errors.values())) if errors else EXIT_OK
    if args.json:
        for i, handle in enumerate(handles):
            if i in errors:
                print_json(dict(error_json(errors[i]), index=i))
            else:
                print_json({"ok": True, "index": i, "handle": handle})
    elif args.handles or not sys.stdout.isatty():
        sys.stdout.write("".join(f"{h}\n" for h in handles if h is not None))
        sys.stdout.flush()
    # One line per distinct reason (a dead pool refuses every job for the same one).
    reasons: Dict[str, List[int]] = {}
    for i in sorted(errors):
        reasons.setdefault(str(errors[i]), []).append(i)
    for n, (reason, indices) in enumerate(reasons.items()):
        if n == 10:
            err(f"... and {sum(len(x) for x in list(reasons.values())[10:])} more jobs "
                 f"were not accepted")
            break
        if len(indices) == 1:
            err(f"job {indices[0]} was not accepted: {reason}")
        else:
            err(f"{len(indices)} jobs were not accepted (the first: job {indices[0]}): {reason}")
    if not args.quiet:
        rate = accepted / elapsed if elapsed > 0 else 0.0
        err(f"submitted {accepted}/{total} background jobs in {elapsed:.2f} s ({rate:.0f} jobs/s)")
    return code


def _submit_foreground(args: argparse.Namespace, client: Any, workloads: List[bytes], bulk: bool,
                       priority: str, deadline: Optional[float]) -> int:

    add = {"normal": client.addTask, "high": client.addTaskHigh, "low": client.addTaskLow}[priority]
    total = len(workloads)
    progress = Progress(total, "done", sys.stderr) if _show_progress(args, bulk) else None
    done = [0]
    failed = 0
    started = time.monotonic()

    def finished(task: Any) -> None:
        done[0] += 1
        if progress:
            progress.update(done[0])

    for setter in (client.setCompleteCallback, client.setFailCallback, client.setExceptionCallback):
        setter(finished)
    code = EXIT_OK
    out = sys.stdout.buffer
    try:
        for start in range(0, total, WINDOW):
            tasks = [add(args.function, w, None, args.unique)
                     for w in workloads[start:start + WINDOW]]
            _run_until_answered(client, tasks, deadline)
            for i, task in enumerate(tasks, start):
                try:
                    result = task_outcome(task)
                except GearmanError as exc:
                    if isinstance(exc, (GearmanConnectionError, GearmanTimeoutError)):
                        raise
                    code = code or exit_code_for(exc)
                    failed += 1
                    if args.json:
                        print_json(dict(error_json(exc), index=i, handle=task.jobHandle() or None))
                    else:
                        err(f"job {i}: {exc}" if bulk else str(exc))
                    continue
                if args.json:
                    print_json(dict({"ok": True, "index": i, "handle": task.jobHandle()},
                                     **payload_json(result)))
                elif bulk:
                    out.write(result if result.endswith(b"\n") else result + b"\n")
                else:
                    out.write(result)
            out.flush()
    finally:
        if progress:
            progress.finish()
    if bulk and not args.quiet:
        elapsed = time.monotonic() - started
        rate = total / elapsed if elapsed > 0 else 0.0
        err(f"done {total}/{total} jobs in {elapsed:.2f} s ({rate:.0f} jobs/s)"
             + (f", {failed} failed" if failed else ""))
    return code


# -- work -----------------------------------------------------------------------------------
