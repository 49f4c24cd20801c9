"""Run the scenario corpus of tests/test_legacy_apps.py against pygearman 0.2.6 and cygearman.

The scenarios re-enact public applications written for python-gearman 2.x /
pygearman (each names its project and file).  The same functions run here
under each interpreter given, one scenario per subprocess (so a hang or a
crash of one library is that scenario's result), against one real gearmand.
A scenario that passes on pygearman and fails on cygearman is a cygearman bug;
the deliberate differences are listed in docs/migration.md ("Scenario corpus").

Not part of CI: pygearman lives in its own venv, never next to cygearman::

    python3 -m venv /tmp/venv-pygearman && /tmp/venv-pygearman/bin/pip install pygearman==0.2.6
    python benchmarks/pygearman_compat.py --python pygearman=/tmp/venv-pygearman/bin/python \\
        --python cygearman=.venv/bin/python          # an interpreter with cygearman installed

Options: ``-k SUBSTRING`` runs the matching scenarios only, ``--timeout`` (seconds per
scenario, default 90), ``--gearmand`` (the binary; default: from PATH or /usr/sbin).
Exit status 1 when a scenario passes on the first interpreter and fails on another.
"""
from __future__ import annotations

import argparse
import importlib.util
import inspect
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from typing import Dict, List, Tuple

HERE = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.path.join(os.path.dirname(HERE), "tests", "test_legacy_apps.py")


# -- the child: one scenario under the current interpreter --------------------------------

class Server:
    """What the scenarios use of the ``gearmand`` fixture: address, port, admin(line)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.address = f"127.0.0.1:{port}"

    def admin(self, line: str) -> str:
        """Send one admin command; return its answer without the final ``.`` line."""
        listing = line.split()[0] in ("status", "workers", "show", "prioritystatus")
        with socket.create_connection(("127.0.0.1", self.port), timeout=10) as s:
            s.sendall(line.encode() + b"\r\n")
            buf = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                buf += chunk
                if not buf.endswith(b"\n"):
                    continue
                if not listing or buf == b".\n" or buf.endswith(b"\n.\n") or buf.startswith(b"ERR"):
                    break
        text = buf.decode("utf-8", "replace")
        if listing and (text == ".\n" or text.endswith("\n.\n")):
            text = text[:-2]
        return text.rstrip("\r\n")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_child(name: str, port: int) -> int:
    spec = importlib.util.spec_from_file_location("legacy_apps_corpus", CORPUS)
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(module)
    func = getattr(module, name)
    import gearman
    print(f"library: {getattr(gearman, '__file__', '?')} {getattr(gearman, '__version__', '?')}",
          file=sys.stderr)
    args = {"gearmand": Server(port), "fn": "cmp-" + uuid.uuid4().hex[:12],
            "free_port": _free_port()}
    params = inspect.signature(func).parameters
    func(**{p: args[p] for p in params})
    return 0


# -- the parent ------------------------------------------------------------------------------

def _scenarios() -> List[Tuple[str, str]]:
    """``(name, first docstring line)`` of every test in the corpus, in file order."""
    spec = importlib.util.spec_from_file_location("legacy_apps_names", CORPUS)
    source = open(CORPUS, encoding="utf-8").read()
    out = []
    import ast
    for node in ast.parse(source).body:
        if isinstance(node, ast.FunctionDef) and node.name.startswith("test_"):
            doc = (ast.get_docstring(node) or "").split("\n")[0]
            out.append((node.name, doc))
    del spec
    return out


def _start_gearmand(binary: str) -> Tuple[subprocess.Popen, int, str]:
    port = _free_port()
    tmp = tempfile.mkdtemp(prefix="pgcompat-")
    proc = subprocess.Popen([binary, "--listen", "127.0.0.1", "--port", str(port),
                             "--log-file", os.path.join(tmp, "gearmand.log"), "--verbose", "ERROR"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc, port, tmp
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise SystemExit("gearmand did not start")


def main() -> int:
    if len(sys.argv) >= 2 and sys.argv[1] == "--child":
        return run_child(sys.argv[2], int(sys.argv[3]))
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--python", action="append", default=[], metavar="LABEL=INTERPRETER",
                    help="an interpreter to run the corpus under (repeatable; the first is the reference)")
    ap.add_argument("-k", default="", help="run the scenarios whose name contains this")
    ap.add_argument("--timeout", type=float, default=90.0)
    ap.add_argument("--gearmand", default=shutil.which("gearmand") or "/usr/sbin/gearmand")
    opts = ap.parse_args()
    pythons: Dict[str, str] = {}
    for item in opts.python or ["pygearman=/work/venv-pygearman/bin/python",
                                f"cygearman={sys.executable}"]:
        label, _, exe = item.partition("=")
        pythons[label] = exe
    scenarios = [s for s in _scenarios() if opts.k in s[0]]
    proc, port, tmp = _start_gearmand(opts.gearmand)
    results: Dict[str, Dict[str, str]] = {}
    try:
        for name, _doc in scenarios:
            results[name] = {}
            for label, exe in pythons.items():
                t0 = time.monotonic()
                try:
                    done = subprocess.run([exe, os.path.abspath(__file__), "--child", name, str(port)],
                                          capture_output=True, text=True, timeout=opts.timeout,
                                          cwd=tmp)
                    if done.returncode == 0:
                        outcome = "pass"
                    else:
                        last = [ln for ln in done.stderr.strip().splitlines() if ln.strip()]
                        outcome = "FAIL: " + (last[-1][:150] if last else f"exit {done.returncode}")
                except subprocess.TimeoutExpired:
                    outcome = f"HANG (>{opts.timeout:g} s)"
                results[name][label] = f"{outcome} ({time.monotonic() - t0:.1f} s)"
                print(f"{name:62} {label:10} {results[name][label]}", flush=True)
    finally:
        proc.terminate()
        proc.wait(10)
        shutil.rmtree(tmp, ignore_errors=True)
    labels = list(pythons)
    ref = labels[0]
    regressions = [n for n, r in results.items()
                   if r[ref].startswith("pass") and any(not r[x].startswith("pass") for x in labels[1:])]
    print()
    print("| scenario | " + " | ".join(labels) + " |")
    print("|---|" + "---|" * len(labels))
    for name, r in results.items():
        print(f"| {name} | " + " | ".join(r[x].split(" (")[0] for x in labels) + " |")
    print()
    for label in labels:
        n = sum(1 for r in results.values() if r[label].startswith("pass"))
        print(f"{label}: {n} of {len(results)} scenarios pass")
    if regressions:
        print(f"passing on {ref} but not on the others: {', '.join(regressions)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
