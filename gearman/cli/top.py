"""``cygearman top``: a live view of queues and workers across the servers."""
from __future__ import annotations

import argparse
import os
import select
import shutil
import sys
import time
from typing import Any, Dict, List, Optional

from gearman._tooling import (
    EXIT_OK,
    PROG,
    UsageError,
    exit_code_for,
)
from gearman.admin import Admin, Snapshot, merge_status
from gearman.cli._common import format_table, make_admin


__all__ = ["cmd_top", "render_top"]


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
    admin = make_admin(args)
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
