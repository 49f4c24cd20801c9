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
import base64
import json
import logging
import os
import select
import shutil
import signal
import subprocess
import sys
import threading
import time
from typing import IO, Any, Callable, Dict, List, Optional, Sequence, Tuple

from gearman import constants as C
from gearman._pecl_client import PeclClient, task_outcome
from gearman._pecl_worker import GearmanJob, PeclWorker
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
    build_ssl_context,
    configure_logging,
    errors_exit_code,
    exit_code_for,
    log_level,
    tool_servers,
)
from gearman._version import __version__
from gearman.admin import Admin, FunctionStatus, PriorityStatus, Snapshot, merge_priority_status, \
    merge_status
from gearman.errors import (
    BatchError,
    ConnectionError as GearmanConnectionError,
    GearmanError,
    GearmanTimeoutError,
    NoServersError,
)

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
    "configure_logging",
    "log_level",
]

#: Foreground jobs kept in flight at once by a bulk submit.
WINDOW = 1000

#: A bulk background submit goes out in steps of this many jobs at least (about a
#: hundredth of the jobs for big submits), so that its progress can count the jobs
#: the servers accepted; each step is pipelined over all servers.
BATCH_STEP = 1000

#: Seconds a foreground submit waits before checking whether any worker serves
#: the function (and saying so if none does).
WAITING_NOTICE_AFTER = 2.0

#: Seconds between two progress lines when stderr is not a terminal.
PLAIN_PROGRESS_EVERY = 5.0


def _err(message: str) -> None:
    sys.stderr.write(f"{PROG}: {message}\n")
    sys.stderr.flush()


# -- output helpers -------------------------------------------------------------------------

def format_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """Aligned columns: numbers right-aligned, text left-aligned; two spaces apart."""
    cells = [[str(h) for h in headers]] + [["" if v is None else str(v) for v in r] for r in rows]
    def is_num(v: Any) -> bool:
        return isinstance(v, (int, float)) and not isinstance(v, bool)

    # A column is numeric if it holds numbers and at most "-" placeholders.
    numeric = [any(is_num(r[i]) for r in rows) and all(is_num(r[i]) or r[i] in ("-", None)
                                                      for r in rows)
               for i in range(len(headers))]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    out = []
    for row in cells:
        parts = []
        for i, cell in enumerate(row):
            last = i == len(row) - 1
            if numeric[i]:
                parts.append(cell.rjust(widths[i]))
            else:
                parts.append(cell if last else cell.ljust(widths[i]))
        out.append("  ".join(parts).rstrip())
    return "\n".join(out) + "\n"


def _print_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, indent=None, sort_keys=False) + "\n")
    sys.stdout.flush()


def _payload_json(data: Optional[bytes], key: str = "result") -> Dict[str, Any]:
    """JSON has no bytes: UTF-8 text as is, anything else in base64."""
    if data is None:
        return {key: None}
    try:
        return {key: data.decode("utf-8")}
    except UnicodeDecodeError:
        return {f"{key}_base64": base64.b64encode(data).decode("ascii")}


def _error_json(exc: BaseException) -> Dict[str, Any]:
    return {"ok": False, "error": str(exc), "error_type": type(exc).__name__}


class Progress:
    """A progress display for bulk submits: a bar on a terminal, plain lines elsewhere.

    The bar redraws in place (``\\r``) at most 20 times a second; plain output
    (a pipe, a log file) gets a line every :data:`PLAIN_PROGRESS_EVERY` seconds,
    so a short submit logs nothing but its summary and a long one a line every
    few seconds.  Both show done/total and jobs per second.  ``clock`` is the
    time source (``time.monotonic``).
    """

    def __init__(self, total: int, label: str, stream: IO[str], tty: Optional[bool] = None,
                 clock: Callable[[], float] = time.monotonic,
                 every: Optional[float] = None) -> None:
        self.total = max(int(total), 0)
        self.label = label
        self.stream = stream
        self.tty = stream.isatty() if tty is None else tty
        self.clock = clock
        self.every = PLAIN_PROGRESS_EVERY if every is None else every
        self.start = clock()
        self.last_draw = self.start if not self.tty else 0.0
        self.done = 0
        self.drawn = False

    def rate(self) -> float:
        elapsed = self.clock() - self.start
        return self.done / elapsed if elapsed > 0 else 0.0

    def update(self, done: int, total: Optional[int] = None) -> None:
        """Record ``done`` jobs (answered, or accepted); draw if due."""
        self.done = done
        if total is not None:
            self.total = total
        now = self.clock()
        if self.tty:
            if done >= self.total or now - self.last_draw >= 0.05:
                self.last_draw = now
                self._bar()
        elif now - self.last_draw >= self.every and done < self.total:
            # (the last line is the caller's summary, never a "100%" line before it)
            self.last_draw = now
            self.stream.write(f"{self.label}: {done}/{self.total} jobs "
                              f"({self._pct():.0f}%), {self.rate():.0f} jobs/s\n")
            self.stream.flush()

    def _pct(self) -> float:
        return 100.0 * self.done / self.total if self.total else 100.0

    def _bar(self) -> None:
        cols = shutil.get_terminal_size((80, 24)).columns
        tail = f" {self.done}/{self.total} {self._pct():3.0f}% {self.rate():8.0f} jobs/s"
        width = max(10, min(40, cols - len(self.label) - len(tail) - 4))
        filled = int(width * self.done / self.total) if self.total else width
        bar = "#" * filled + "." * (width - filled)
        self.stream.write(f"\r{self.label} [{bar}]{tail}\x1b[K")
        self.stream.flush()
        self.drawn = True

    def finish(self) -> None:
        """Draw the bar's final state and end its line (terminal), so later output
        starts on a new line."""
        if self.tty:
            self._bar()
            self.stream.write("\n")
            self.stream.flush()


# -- connections ----------------------------------------------------------------------------

def _client(args: argparse.Namespace) -> Any:
    client = PeclClient(ssl_context=build_ssl_context(args))
    client.addServers(args.servers)
    return client


def _admin(args: argparse.Namespace) -> Admin:
    return Admin(args.servers, timeout=args.timeout if args.timeout else 10.0,
                 ssl_context=build_ssl_context(args))


def _report_failures(results: Dict[str, Any]) -> int:
    """Print each failed server to stderr; return the exit code (0 if none failed)."""
    code = EXIT_OK
    for address, value in results.items():
        if isinstance(value, BaseException):
            text = str(value)
            _err(text if address in text else f"{address}: {text}")
            if code == EXIT_OK:
                code = exit_code_for(value)
    return code


def _answered(results: Dict[str, Any]) -> bool:
    """Whether any server answered (else a table would be an empty header)."""
    return any(not isinstance(v, BaseException) for v in results.values())


def _servers_json(results: Dict[str, Any]) -> Dict[str, Any]:
    return {address: (_error_json(v) if isinstance(v, BaseException) else {"ok": True})
            for address, v in results.items()}


# -- submit ---------------------------------------------------------------------------------

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
        _err(f"reading {what}; end it with {end} (or give DATA or --file)")
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
        except Exception:           # noqa: BLE001 - a notice, never an error of its own
            return
        answers: Dict[str, List[FunctionStatus]] = {
            a: v for a, v in listing.items() if not isinstance(v, BaseException)}
        reached = list(answers)
        workers = sum(int(s.workers) for v in answers.values() for s in v
                      if s.name == self.args.function)
        if reached and workers == 0 and not self.done.is_set():
            _err(f"waiting for a worker: none serves {self.args.function!r} on "
                 f"{', '.join(reached)}; the job waits until one does "
                 f"(Ctrl-C stops, -t SECONDS limits the wait)")

    def cancel(self) -> None:
        self.done.set()


def cmd_submit(args: argparse.Namespace) -> int:
    workloads, bulk = _workloads(args)
    priority = "high" if args.high else "low" if args.low else "normal"
    client = _client(args)
    deadline = time.monotonic() + args.timeout if args.timeout else None
    try:
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


def _set_deadline(client: Any, deadline: Optional[float]) -> None:
    if deadline is None:
        return
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise GearmanTimeoutError("the --timeout expired")
    client.setTimeout(max(int(remaining * 1000), 1))


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
            _print_json({"ok": True, "function": args.function, "handle": handle, "background": True})
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
                _print_json(dict(_error_json(errors[i]), index=i))
            else:
                _print_json({"ok": True, "index": i, "handle": handle})
    elif args.handles or not sys.stdout.isatty():
        sys.stdout.write("".join(f"{h}\n" for h in handles if h is not None))
        sys.stdout.flush()
    # One line per distinct reason (a dead pool refuses every job for the same one).
    reasons: Dict[str, List[int]] = {}
    for i in sorted(errors):
        reasons.setdefault(str(errors[i]), []).append(i)
    for n, (reason, indices) in enumerate(reasons.items()):
        if n == 10:
            _err(f"... and {sum(len(x) for x in list(reasons.values())[10:])} more jobs "
                 f"were not accepted")
            break
        if len(indices) == 1:
            _err(f"job {indices[0]} was not accepted: {reason}")
        else:
            _err(f"{len(indices)} jobs were not accepted (the first: job {indices[0]}): {reason}")
    if not args.quiet:
        rate = accepted / elapsed if elapsed > 0 else 0.0
        _err(f"submitted {accepted}/{total} background jobs in {elapsed:.2f} s ({rate:.0f} jobs/s)")
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
            _set_deadline(client, deadline)
            client.runTasks()
            for i, task in enumerate(tasks, start):
                try:
                    result = task_outcome(task)
                except GearmanError as exc:
                    if isinstance(exc, (GearmanConnectionError, GearmanTimeoutError)):
                        raise
                    code = code or exit_code_for(exc)
                    failed += 1
                    if args.json:
                        _print_json(dict(_error_json(exc), index=i, handle=task.jobHandle() or None))
                    else:
                        _err(f"job {i}: {exc}" if bulk else str(exc))
                    continue
                if args.json:
                    _print_json(dict({"ok": True, "index": i, "handle": task.jobHandle()},
                                     **_payload_json(result)))
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
        _err(f"done {total}/{total} jobs in {elapsed:.2f} s ({rate:.0f} jobs/s)"
             + (f", {failed} failed" if failed else ""))
    return code


# -- work -----------------------------------------------------------------------------------

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
    admin = _admin(args)
    try:
        reach = admin.version(per_server=True)
    finally:
        admin.close()
    down = {a: v for a, v in reach.items() if isinstance(v, BaseException)}
    if len(down) == len(reach):
        return _report_failures(down)
    for _address, exc in down.items():
        _err(f"warning: {exc} (will keep trying)")

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
            _err(f"job {job.handle()}: command ran longer than {args.job_timeout:g} s; killed")
            job.sendFail()
            return None
        except OSError as exc:
            _err(f"job {job.handle()}: cannot run {command[0]}: {exc}")
            job.sendFail()
            return None
        if proc.returncode != 0:
            _err(f"job {job.handle()}: command exited with status {proc.returncode}")
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
        _err(f"working on {', '.join(args.function)} at {args.servers} (Ctrl-C stops)")
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

def cmd_status(args: argparse.Namespace) -> int:
    admin = _admin(args)
    try:
        results = admin.status(per_server=True)
        prio = admin.priority_status(per_server=True) if args.priority else {}
    finally:
        admin.close()
    code = _report_failures(results)
    if code == EXIT_OK:
        code = _report_failures(prio)
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
        _print_json({"servers": _servers_json(results), "functions": functions})
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
    admin = _admin(args)
    try:
        results = admin.workers(per_server=True)
    finally:
        admin.close()
    code = _report_failures(results)
    entries = [w for v in results.values() if not isinstance(v, BaseException) for w in v
               if args.all or w.functions]
    if args.json:
        _print_json({"servers": _servers_json(results), "workers": [
            {"server": w.server, "fd": w.fd, "ip": w.ip, "client_id": w.client_id,
             "functions": list(w.functions)} for w in entries]})
        return code
    if not _answered(results):
        return code
    sys.stdout.write(format_table(
        ["SERVER", "FD", "IP", "CLIENT-ID", "FUNCTIONS"],
        [[w.server, w.fd, w.ip, w.client_id or "-", " ".join(w.functions)] for w in entries]))
    return code


def cmd_jobs(args: argparse.Namespace) -> int:
    admin = _admin(args)
    try:
        if args.unique:
            results: Dict[str, Any] = admin.show_unique_jobs(per_server=True)
        else:
            results = admin.show_jobs(per_server=True)
    finally:
        admin.close()
    code = _report_failures(results)
    ok = {a: v for a, v in results.items() if not isinstance(v, BaseException)}
    if args.unique:
        if args.json:
            _print_json({"servers": _servers_json(results), "uniques": [
                {"server": a, "unique": u} for a, v in ok.items() for u in v]})
        elif ok:
            sys.stdout.write(format_table(["SERVER", "UNIQUE"],
                                          [[a, u] for a, v in ok.items() for u in v]))
        return code
    jobs = [j for v in ok.values() for j in v]
    if args.json:
        _print_json({"servers": _servers_json(results), "jobs": [
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
    admin = _admin(args)
    try:
        address = admin.cancel_job(args.handle, server=args.server)
    finally:
        admin.close()
    if args.json:
        _print_json({"ok": True, "handle": args.handle, "server": address})
    else:
        sys.stdout.write(f"cancelled {args.handle} on {address}\n")
    return EXIT_OK


def cmd_version(args: argparse.Namespace) -> int:
    admin = _admin(args)
    try:
        results = admin.info(per_server=True)
    finally:
        admin.close()
    code = _report_failures(results)
    ok = [v for v in results.values() if not isinstance(v, BaseException)]
    if args.json:
        servers = _servers_json(results)
        for info in ok:
            servers[info.server].update(version=info.version, pid=info.pid, verbose=info.verbose)
        _print_json({"client": __version__, "servers": servers})
        return code
    if not ok:
        return code
    sys.stdout.write(format_table(["SERVER", "VERSION", "PID", "VERBOSE"],
                                  [[i.server, i.version, i.pid, i.verbose] for i in ok]))
    return code


def _changed(args: argparse.Namespace, results: Dict[str, Any], what: str) -> int:
    code = _report_failures(results)
    done = [a for a, v in results.items() if v is True]
    if args.json:
        _print_json({"servers": _servers_json(results)})
    elif done:
        sys.stdout.write(f"{what} on {', '.join(done)}\n")
    return code


def cmd_maxqueue(args: argparse.Namespace) -> int:
    limits = list(args.limits)
    if not 1 <= len(limits) <= 3:
        raise UsageError("maxqueue takes FUNCTION and 1 to 3 limits: N (all priorities) "
                         "or HIGH NORMAL [LOW]")
    high, normal, low = (limits * 3) if len(limits) == 1 else (limits + [0, 0])[:3]
    admin = _admin(args)
    try:
        results = admin.maxqueue(args.function, high, normal, low, per_server=True)
    finally:
        admin.close()

    def show(n: int) -> str:
        return str(n) if n > 0 else "unlimited"

    return _changed(args, results, f"maxqueue {args.function}: high={show(high)} "
                                   f"normal={show(normal)} low={show(low)}")


def cmd_create_function(args: argparse.Namespace) -> int:
    admin = _admin(args)
    try:
        results = admin.create_function(args.function, per_server=True)
    finally:
        admin.close()
    return _changed(args, results, f"created {args.function}")


def cmd_drop_function(args: argparse.Namespace) -> int:
    admin = _admin(args)
    try:
        results = admin.drop_function(args.function, per_server=True)
    finally:
        admin.close()
    code = _changed(args, results, f"dropped {args.function}")
    if code == EXIT_OK and not any(v is True for v in results.values()):
        _err(f"function {args.function!r} not found on any server")
        return EXIT_ERROR
    return code


# -- top ------------------------------------------------------------------------------------

def render_top(snapshots: Dict[str, Any], width: int, height: Optional[int],
               interval: Optional[float], live: bool = True) -> List[str]:
    """One frame of ``top`` as lines (no escape codes), cut to ``width`` x ``height``.

    The header says how often the view refreshes (``interval``; None: a single
    frame) and, for the ``live`` view on a terminal, that ``q`` quits.
    """
    ok: Dict[str, Snapshot] = {a: s for a, s in snapshots.items() if not isinstance(s, BaseException)}
    down = len(snapshots) - len(ok)
    head = (f"{PROG} top - {time.strftime('%H:%M:%S')} - {len(snapshots)} server"
            f"{'s' if len(snapshots) != 1 else ''}, {down} unreachable"
            + (f" - every {interval:g} s" if interval is not None else "")
            + (" - q quits" if live else ""))
    server_rows: List[List[Any]] = []
    problems: List[str] = []
    for address, snap in snapshots.items():
        if isinstance(snap, BaseException):
            server_rows.append([address, "DOWN", "-", "-", "-", "-", "-"])
            text = str(snap)
            problems.append(text if address in text else f"{address}: {text}")
            continue
        workers = [w for w in snap.workers if w.functions]
        server_rows.append([address, "up", snap.info.version, snap.info.pid, len(snap.workers),
                            len(workers), sum(s.total for s in snap.status)])
    lines = [head, ""]
    lines += format_table(["SERVER", "STATE", "VERSION", "PID", "CONNS", "WORKERS", "JOBS"],
                          server_rows).splitlines()
    lines += problems
    functions = sorted(merge_status(s.status for s in ok.values()),
                       key=lambda s: (-s.total, s.name))
    lines.append("")
    lines += format_table(["FUNCTION", "TOTAL", "RUNNING", "WAITING", "WORKERS"],
                          [[s.name, s.total, s.running, s.waiting, s.workers]
                           for s in functions]).splitlines()
    if height is not None and len(lines) > height:
        hidden = len(lines) - height + 1
        lines = lines[:height - 1] + [f"... {hidden} more lines"]
    return [line[:width] for line in lines]


def cmd_top(args: argparse.Namespace) -> int:
    if args.interval <= 0:
        raise UsageError("--interval must be positive")
    admin = _admin(args)
    try:
        if args.once or not sys.stdout.isatty():
            return _top_batch(args, admin)
        return _top_live(args, admin)
    finally:
        admin.close()


def _top_batch(args: argparse.Namespace, admin: Admin) -> int:
    """Frames printed one after another (``--once``, or stdout not a terminal)."""
    frames = 1 if args.once else args.iterations
    n = 0
    code = EXIT_OK
    try:
        while True:
            snaps = admin.snapshot()
            code = EXIT_OK
            for value in snaps.values():
                if isinstance(value, BaseException):
                    code = exit_code_for(value)
                    break
            if n:
                sys.stdout.write("\n")
            sys.stdout.write("\n".join(render_top(snaps, 10_000, None,
                                                   None if frames == 1 else args.interval,
                                                   live=False)) + "\n")
            sys.stdout.flush()
            n += 1
            if frames is not None and n >= frames:
                return code
            time.sleep(args.interval)
    except KeyboardInterrupt:
        return code


def _top_live(args: argparse.Namespace, admin: Admin) -> int:
    """Redraw in place with ANSI codes on the alternate screen; ``q`` or Ctrl-C quits."""
    out = sys.stdout
    keys = sys.stdin if sys.stdin.isatty() else None
    saved = None
    if sys.platform == "win32":
        keys = None                 # no termios: refresh on the interval, Ctrl-C quits
    if keys is not None and sys.platform != "win32":
        import termios
        import tty
        fd = keys.fileno()
        saved = termios.tcgetattr(fd)
        tty.setcbreak(fd)
    out.write("\x1b[?1049h\x1b[?25l")       # alternate screen, hide the cursor
    n = 0
    try:
        while True:
            snaps = admin.snapshot()
            size = shutil.get_terminal_size((80, 24))
            lines = render_top(snaps, size.columns, size.lines, args.interval,
                               live=keys is not None)
            out.write("\x1b[H" + "".join(f"{line}\x1b[K\r\n" for line in lines[:-1])
                      + lines[-1] + "\x1b[K\x1b[J")
            out.flush()
            n += 1
            if args.iterations is not None and n >= args.iterations:
                return EXIT_OK
            deadline = time.monotonic() + args.interval
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                if keys is None:
                    time.sleep(left)
                    continue
                ready, _, _ = select.select([keys], [], [], left)
                if ready:
                    ch = os.read(keys.fileno(), 1)
                    if ch in (b"q", b"Q", b""):
                        return EXIT_OK
                    if ch == b" ":
                        break                      # space: refresh now
    except KeyboardInterrupt:
        return EXIT_OK
    finally:
        out.write("\x1b[?25h\x1b[?1049l")
        out.flush()
        if saved is not None and sys.platform != "win32":
            import termios
            termios.tcsetattr(keys.fileno(), termios.TCSADRAIN, saved)  # type: ignore[union-attr]


# -- the parser -----------------------------------------------------------------------------

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
            p.add_argument("--json", action="store_true", help="print JSON (one object per line for bulk submits)")
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
        _err(str(exc))
        return EXIT_USAGE
    except KeyboardInterrupt:
        _err("interrupted")
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader went away (e.g. "| head"): not our error.
        try:
            sys.stdout = open(os.devnull, "w")
        except OSError:
            pass
        return EXIT_OK
    except GearmanError as exc:
        _err(str(exc))
        return exit_code_for(exc)
    except OSError as exc:
        _err(str(exc))
        return exit_code_for(exc)


if __name__ == "__main__":
    sys.exit(main())
