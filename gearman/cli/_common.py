"""What the ``cygearman`` commands share: output (tables, JSON, progress) and their connections."""
from __future__ import annotations

import argparse
import base64
import json
import logging
import shutil
import sys
import time
from typing import IO, Any, Callable, Dict, Optional, Sequence

from gearman._pecl_client import PeclClient
from gearman._tooling import (
    EXIT_OK,
    PROG,
    build_ssl_context,
    exit_code_for,
)
from gearman.admin import Admin

__all__ = ["WINDOW", "BATCH_STEP", "WAITING_NOTICE_AFTER", "SILENT_CHECK", "PROBE_WAIT", "PLAIN_PROGRESS_EVERY", "err",
           "format_table", "print_json", "payload_json", "error_json", "Progress", "make_client",
           "make_admin", "report_failures", "answered", "servers_json"]

log = logging.getLogger("gearman.cli")

#: Foreground jobs kept in flight at once by a bulk submit.
WINDOW = 1000

#: A bulk background submit goes out in steps of this many jobs at least (about a
#: hundredth of the jobs for big submits), so that its progress can count the jobs
#: the servers accepted; each step is pipelined over all servers.
BATCH_STEP = 1000

#: Seconds a foreground submit waits before checking whether any worker serves
#: the function (and saying so if none does).
WAITING_NOTICE_AFTER = 2.0

#: Over a pool of several servers, ``submit`` first gives each this many seconds at most
#: to answer an ECHO, and sends its jobs around those that do not.
PROBE_WAIT = 1.0

#: Without -t, a foreground submit waits for its jobs in rounds of this many seconds; at
#: the end of a round the requests of a server that answered nothing are failed.
SILENT_CHECK = 5.0

#: Seconds between two progress lines when stderr is not a terminal.
PLAIN_PROGRESS_EVERY = 5.0


def err(message: str) -> None:
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


def print_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, indent=None, sort_keys=False) + "\n")
    sys.stdout.flush()


def payload_json(data: Optional[bytes], key: str = "result") -> Dict[str, Any]:
    """JSON has no bytes: UTF-8 text as is, anything else in base64."""
    if data is None:
        return {key: None}
    try:
        return {key: data.decode("utf-8")}
    except UnicodeDecodeError:
        return {f"{key}_base64": base64.b64encode(data).decode("ascii")}


def error_json(exc: BaseException) -> Dict[str, Any]:
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

def make_client(args: argparse.Namespace) -> Any:
    client = PeclClient(ssl_context=build_ssl_context(args))
    client.addServers(args.servers)
    return client


def make_admin(args: argparse.Namespace) -> Admin:
    return Admin(args.servers, timeout=args.timeout if args.timeout else 10.0,
                 ssl_context=build_ssl_context(args))


def report_failures(results: Dict[str, Any]) -> int:
    """Print each failed server to stderr; return the exit code (0 if none failed)."""
    code = EXIT_OK
    for address, value in results.items():
        if isinstance(value, BaseException):
            text = str(value)
            err(text if address in text else f"{address}: {text}")
            if code == EXIT_OK:
                code = exit_code_for(value)
    return code


def answered(results: Dict[str, Any]) -> bool:
    """Whether any server answered (else a table would be an empty header)."""
    return any(not isinstance(v, BaseException) for v in results.values())


def servers_json(results: Dict[str, Any]) -> Dict[str, Any]:
    return {address: (error_json(v) if isinstance(v, BaseException) else {"ok": True})
            for address, v in results.items()}


# -- submit ---------------------------------------------------------------------------------
