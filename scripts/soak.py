#!/usr/bin/env python3
"""Bounded soak: clients and workers at full rate while job servers restart.

Usage (the documented soak command; CI runs a 10-second version of it through
``tests/test_faults.py::test_soak_script_short_run``)::

    python scripts/soak.py                       # 120 s, 3 clients, 3 workers
    python scripts/soak.py --seconds 600 --clients 6 --workers 4 --seed 7
    python scripts/soak.py --seconds 10 --json   # one JSON line on stdout

What runs, all on 127.0.0.1:

* two real gearmand: ``persistent`` (``-q libsqlite3``, write-through) and
  ``plain`` (in-memory queue);
* ``--workers`` worker processes connected to both, serving ``soak_fg`` (echo)
  and ``soak_bg`` (records the job id in its own log file);
* ``--clients`` client processes submitting as fast as they can: foreground
  jobs over the pool of both servers (``doNormal``), background jobs to the
  persistent server only (``doBackground``, and ``submit_batch`` of 20);
* the main process restarts a random server every 1.5-4 s (the persistent one
  always with SIGKILL, the plain one with SIGKILL or SIGTERM) and now and then
  SIGKILLs a worker process (a new one takes its place); the first two faults
  are always a restart of each server, so a short run restarts both;
* after ``--seconds`` the clients stop, the workers drain the persistent
  queue, and one 256 MiB payload (``--big-mib``) makes a round trip through the
  plain server and a fresh worker process, compared byte for byte.

The account printed at the end (JSON, last line of stdout):

* background (persistent queue): ``submitted``, ``accepted`` (the client got a
  handle), ``not_submitted`` (ServerUnavailable: the client knows it was not
  queued), ``unknown`` (LostConnectionError / timeout after the request was
  written: may or may not be queued), ``completed`` (distinct ids a worker
  ran), ``duplicates`` (extra runs: at-least-once), ``lost`` = accepted jobs
  that never ran.  **Must be 0.**
* foreground: ``submitted``, ``completed`` (right answer), ``failed`` by error
  class (each a typed GearmanError the caller saw), ``wrong`` (an answer that is
  not the job's), ``crashed`` (a non-Gearman exception), ``hung`` (a client
  that did not stop), ``lost`` = wrong + crashed + hung.  **Must be 0.**
* ``restarts``, ``worker_kills``, ``big_payload``.

Exit status: 0 if nothing was lost and the big payload came back intact, 1
otherwise, 2 on a setup failure.
"""
from __future__ import annotations

import argparse
import glob
import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import time
from typing import Any, Dict, List

FG, BG, BIG = "soak_fg", "soak_bg", "soak_big"
MIB = 1024 * 1024


# -- child roles -----------------------------------------------------------------------------

def role_worker(args: argparse.Namespace) -> int:
    import gearman

    fd = os.open(args.out, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)

    def bg(job: Any, ctx: Any) -> bytes:
        # Recorded before the result is sent: a job counts as run even if the
        # server dies before it hears of it (it then runs again: at-least-once).
        os.write(fd, job.workload() + b"\n")
        return b""

    w = gearman.GearmanWorker(connect_timeout=1.0)
    w.addServers(args.servers)
    w.addFunction(FG, lambda job, ctx: b"r:" + job.workload())
    w.addFunction(BG, bg)
    w.setTimeout(args.worker_timeout_ms)
    w.serve(handle_signals=True)
    os.close(fd)
    return 0


def role_bigworker(args: argparse.Namespace) -> int:
    import gearman

    w = gearman.GearmanWorker(connect_timeout=1.0, max_packet_size=args.limit)
    w.addServers(args.servers)
    w.addFunction(BIG, lambda job, ctx: job.workload())
    w.setTimeout(120000)
    ok = w.work()
    return 0 if ok else 1


def role_client(args: argparse.Namespace) -> int:
    import gearman
    from gearman import errors

    stopping = [False]
    signal.signal(signal.SIGTERM, lambda *a: stopping.__setitem__(0, True))
    servers = args.servers.split(",")
    fg = gearman.GearmanClient(connect_timeout=1.0)
    fg.addServers(",".join(servers))
    fg.setTimeout(args.call_timeout_ms)
    bg = gearman.GearmanClient(connect_timeout=1.0)
    bg.addServers(servers[0])                      # the persistent server only
    bg.setTimeout(args.call_timeout_ms)
    rng = random.Random(args.seed)
    rec: Dict[str, Any] = {
        "fg": {"submitted": 0, "completed": 0, "accepted": 0, "failed": {}, "wrong": 0,
               "crashed": [], "lost": 0},
        "bg": {"submitted": 0, "accepted": [], "not_submitted": 0, "unknown": [],
               "failed": {}, "crashed": []},
    }
    deadline = time.monotonic() + args.seconds
    n = 0

    def bg_outcome(ids: List[str], exc: BaseException) -> None:
        name = type(exc).__name__
        rec["bg"]["failed"][name] = rec["bg"]["failed"].get(name, 0) + len(ids)
        if isinstance(exc, errors.ServerUnavailable):
            rec["bg"]["not_submitted"] += len(ids)
        elif isinstance(exc, errors.GearmanError):
            rec["bg"]["unknown"].extend(ids)
        else:
            rec["bg"]["crashed"].append(f"{name}: {exc}")
            rec["bg"]["unknown"].extend(ids)

    while not stopping[0] and time.monotonic() < deadline:
        n += 1
        r = rng.random()
        if r < 0.6:
            size = rng.choice((0, 10, 100, 1000, 10000)) if rng.random() < 0.98 else 256 * 1024
            w = b"fg-%d-%d-" % (args.id, n) + os.urandom(size)
            rec["fg"]["submitted"] += 1
            try:
                result = fg.doNormal(FG, w)
            except errors.GearmanError as e:
                name = type(e).__name__
                rec["fg"]["failed"][name] = rec["fg"]["failed"].get(name, 0) + 1
                if getattr(e, "handle", None):
                    rec["fg"]["accepted"] += 1
                continue
            except Exception as e:                  # noqa: BLE001 - counted as lost
                rec["fg"]["crashed"].append(f"{type(e).__name__}: {e}")
                continue
            rec["fg"]["accepted"] += 1
            if result == b"r:" + w:
                rec["fg"]["completed"] += 1
            else:
                rec["fg"]["wrong"] += 1
        elif r < 0.97:
            u = f"bg-{args.id}-{n}"
            rec["bg"]["submitted"] += 1
            try:
                bg.doBackground(BG, u.encode(), u)
            except BaseException as e:             # noqa: BLE001 - classified
                if isinstance(e, KeyboardInterrupt):
                    raise
                bg_outcome([u], e)
                continue
            rec["bg"]["accepted"].append(u)
        else:
            ids = [f"bg-{args.id}-{n}-{k}" for k in range(20)]
            rec["bg"]["submitted"] += len(ids)
            try:
                bg.submit_batch(BG, [u.encode() for u in ids], uniques=ids)
                rec["bg"]["accepted"].extend(ids)
            except errors.BatchError as e:
                for i, u in enumerate(ids):
                    if e.handles[i]:
                        rec["bg"]["accepted"].append(u)
                    else:
                        bg_outcome([u], e.errors[i])
            except Exception as e:                  # noqa: BLE001 - classified
                bg_outcome(ids, e)
    with open(args.out, "w") as f:
        json.dump(rec, f)
    return 0


# -- the conductor ---------------------------------------------------------------------------

class Soak:
    def __init__(self, args: argparse.Namespace) -> None:
        from gearman.testing import GearmandServer

        self.args = args
        self.rng = random.Random(args.seed)
        self.dir = args.workdir or __import__("tempfile").mkdtemp(prefix="cygearman-soak-")
        os.makedirs(self.dir, exist_ok=True)
        self.persistent = GearmandServer(persistent=True)
        self.plain = GearmandServer()
        self.servers = f"{self.persistent.address},{self.plain.address}"
        self.workers: List[subprocess.Popen] = []
        self.clients: List[subprocess.Popen] = []
        self.worker_seq = 0
        self.restarts = {"persistent_sigkill": 0, "plain_sigkill": 0, "plain_sigterm": 0}
        self.worker_kills = 0

    def log(self, msg: str) -> None:
        if not self.args.json:
            print(f"[soak {time.strftime('%H:%M:%S')}] {msg}", flush=True)

    def child(self, *extra: str) -> subprocess.Popen:
        cmd = [sys.executable, os.path.abspath(__file__), "--servers", self.servers,
               "--seconds", str(self.args.seconds), "--call-timeout-ms",
               str(self.args.call_timeout_ms), "--worker-timeout-ms",
               str(self.args.worker_timeout_ms), *extra]
        # Children run from the work folder, never from a source tree whose
        # gearman/ might lack the compiled core.
        return subprocess.Popen(cmd, cwd=self.dir, stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL,
                                stderr=open(os.path.join(self.dir, "children.stderr"), "ab"))

    def start_worker(self) -> None:
        self.worker_seq += 1
        out = os.path.join(self.dir, f"worker-{self.worker_seq}.log")
        self.workers.append(self.child("--role", "worker", "--out", out))

    def run(self) -> Dict[str, Any]:
        args = self.args
        for _ in range(args.workers):
            self.start_worker()
        for i in range(args.clients):
            self.clients.append(self.child("--role", "client", "--id", str(i), "--seed",
                                           str(self.rng.randrange(1 << 30)), "--out",
                                           os.path.join(self.dir, f"client-{i}.json")))
        self.log(f"{args.clients} clients, {args.workers} workers, servers {self.servers}, "
                 f"files in {self.dir}")
        start = time.monotonic()
        deadline = start + args.seconds
        while True:
            pause = self.rng.uniform(args.restart_min, args.restart_max)
            if time.monotonic() + pause >= deadline:
                break
            time.sleep(pause)
            self.fault()
        time.sleep(max(0.0, deadline - time.monotonic()))
        hung = self.stop_clients()
        drained = self.drain()
        for p in self.workers:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in self.workers:
            try:
                p.wait(15)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(5)
        big = self.big_payload()
        return self.account(hung, drained, big, time.monotonic() - start)

    def fault(self) -> None:
        # The first two faults are always a SIGKILL of each server, so even a
        # short run restarts both (a random draw can pick worker kills only).
        done = sum(self.restarts.values())
        if done == 0:
            r = 0.5
        elif done == 1 and self.restarts["persistent_sigkill"] == 1:
            r = 0.99
        else:
            r = self.rng.random()
        if r < 0.15 and self.workers:
            victim = self.rng.choice([p for p in self.workers if p.poll() is None] or [None])
            if victim is not None:
                victim.kill()
                victim.wait(10)
                self.worker_kills += 1
                self.log("SIGKILL a worker; starting another")
                self.start_worker()
                return
        if r < 0.6:
            self.log("SIGKILL + restart the persistent gearmand")
            self.persistent.restart(kill=True)
            self.restarts["persistent_sigkill"] += 1
        else:
            kill = self.rng.random() < 0.5
            self.log(f"{'SIGKILL' if kill else 'SIGTERM'} + restart the plain gearmand")
            self.plain.restart(kill=kill)
            self.restarts["plain_sigkill" if kill else "plain_sigterm"] += 1

    def stop_clients(self) -> int:
        for p in self.clients:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        hung = 0
        for p in self.clients:
            try:
                p.wait(self.args.call_timeout_ms / 1000.0 + 20)
            except subprocess.TimeoutExpired:
                hung += 1
                p.kill()
                p.wait(5)
        return hung

    def _queued(self) -> int:
        for line in self.persistent.admin("status").splitlines():
            parts = line.split("\t")
            if parts[0] == BG:
                return int(parts[1])
        return 0

    def drain(self) -> bool:
        self.log("draining the persistent queue")
        end = time.monotonic() + self.args.drain_seconds
        while time.monotonic() < end:
            if all(p.poll() is None for p in self.workers) and self._queued() == 0:
                return True
            for i, p in enumerate(self.workers):
                if p.poll() is not None:          # a worker died on its own: a finding,
                    self.start_worker()            # but the queue must still drain
                    self.workers[i] = self.workers.pop()
            time.sleep(0.2)
        return self._queued() == 0

    def big_payload(self) -> Dict[str, Any]:
        size = self.args.big_mib * MIB
        out: Dict[str, Any] = {"mib": self.args.big_mib, "ok": size == 0, "seconds": None}
        if size == 0:
            return out
        import gearman

        self.log(f"{self.args.big_mib} MiB round trip")
        # max_packet_size bounds the payload; raised explicitly for this size.
        limit = size + MIB
        proc = subprocess.Popen(
            [sys.executable, os.path.abspath(__file__), "--role", "bigworker", "--servers",
             self.plain.address, "--limit", str(limit)], cwd=self.dir,
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=open(os.path.join(self.dir, "children.stderr"), "ab"))
        try:
            c = gearman.GearmanClient(max_packet_size=limit)
            c.addServer(self.plain.host, self.plain.port)
            c.setTimeout(300000)
            data = os.urandom(size)
            digest = hashlib.sha256(data).hexdigest()
            t0 = time.monotonic()
            try:
                result = c.doNormal(BIG, data)
                out["ok"] = len(result) == size and result == data
                out["sha256_equal"] = hashlib.sha256(result).hexdigest() == digest
            except gearman.GearmanError as e:
                out["error"] = f"{type(e).__name__}: {e}"
            out["seconds"] = round(time.monotonic() - t0, 2)
            del data
            c.close()
            proc.wait(60)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
        return out

    def account(self, hung: int, drained: bool, big: Dict[str, Any],
                elapsed: float) -> Dict[str, Any]:
        fg = {"submitted": 0, "accepted": 0, "completed": 0, "failed": {}, "wrong": 0,
              "crashed": [], "hung_clients": hung}
        bg_sub = bg_ns = 0
        accepted: set = set()
        unknown: set = set()
        bg_failed: Dict[str, int] = {}
        bg_crashed: List[str] = []
        missing_reports = 0
        for i in range(self.args.clients):
            path = os.path.join(self.dir, f"client-{i}.json")
            if not os.path.exists(path):
                missing_reports += 1
                continue
            with open(path) as f:
                rec = json.load(f)
            for k in ("submitted", "accepted", "completed", "wrong"):
                fg[k] += rec["fg"][k]
            for k, v in rec["fg"]["failed"].items():
                fg["failed"][k] = fg["failed"].get(k, 0) + v
            fg["crashed"] += rec["fg"]["crashed"]
            bg_sub += rec["bg"]["submitted"]
            bg_ns += rec["bg"]["not_submitted"]
            accepted.update(rec["bg"]["accepted"])
            unknown.update(rec["bg"]["unknown"])
            for k, v in rec["bg"]["failed"].items():
                bg_failed[k] = bg_failed.get(k, 0) + v
            bg_crashed += rec["bg"]["crashed"]
        runs: List[str] = []
        for path in glob.glob(os.path.join(self.dir, "worker-*.log")):
            with open(path, "rb") as f:
                runs += [line.decode() for line in f.read().splitlines() if line]
        done = set(runs)
        lost_bg = sorted(accepted - done)
        fg["lost"] = fg["wrong"] + len(fg["crashed"]) + hung + missing_reports
        bg = {"submitted": bg_sub, "accepted": len(accepted), "not_submitted": bg_ns,
              "unknown": len(unknown), "unknown_but_ran": len(unknown & done),
              "failed": bg_failed, "crashed": bg_crashed,
              "completed": len(done & accepted), "duplicates": len(runs) - len(done),
              "drained": drained, "lost": len(lost_bg), "lost_examples": lost_bg[:10]}
        summary = {
            "seconds": round(elapsed, 1),
            "clients": self.args.clients, "workers": self.args.workers,
            "submitted": fg["submitted"] + bg_sub,
            "accepted": fg["accepted"] + len(accepted),
            "completed": fg["completed"] + bg["completed"],
            "failed": sum(fg["failed"].values()) + sum(bg_failed.values()),
            "lost": fg["lost"] + bg["lost"] + len(bg_crashed),
            "foreground": fg, "background": bg,
            "restarts": sum(self.restarts.values()), "restart_kinds": self.restarts,
            "worker_kills": self.worker_kills, "big_payload": big,
        }
        return summary

    def cleanup(self) -> None:
        for p in self.clients + self.workers:
            if p.poll() is None:
                p.kill()
                p.wait(10)
        self.persistent.cleanup()
        self.plain.cleanup()


def main(argv: List[str] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=120.0, help="load phase length (120)")
    ap.add_argument("--clients", type=int, default=3)
    ap.add_argument("--workers", type=int, default=3)
    ap.add_argument("--seed", type=int, default=None, help="random seed (default: random)")
    ap.add_argument("--restart-min", type=float, default=1.5)
    ap.add_argument("--restart-max", type=float, default=4.0)
    ap.add_argument("--call-timeout-ms", type=int, default=10000,
                    help="setTimeout of every client call (10000)")
    ap.add_argument("--worker-timeout-ms", type=int, default=1000,
                    help="worker setTimeout; work() loops in serve() (1000)")
    ap.add_argument("--drain-seconds", type=float, default=90.0)
    ap.add_argument("--big-mib", type=int, default=256,
                    help="round-trip payload, MiB (256; 0: skip)")
    ap.add_argument("--workdir", default=None, help="keep the logs here (default: a temp folder)")
    ap.add_argument("--json", action="store_true", help="print only the JSON summary")
    # internal: child roles
    ap.add_argument("--role", choices=("worker", "client", "bigworker"), help=argparse.SUPPRESS)
    ap.add_argument("--servers", help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    ap.add_argument("--id", type=int, default=0, help=argparse.SUPPRESS)
    ap.add_argument("--limit", type=int, default=0, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.role == "worker":
        return role_worker(args)
    if args.role == "client":
        return role_client(args)
    if args.role == "bigworker":
        return role_bigworker(args)
    if args.seed is None:
        args.seed = random.randrange(1 << 30)
    try:
        soak = Soak(args)
    except Exception as e:  # noqa: BLE001 - setup failure
        print(f"soak: setup failed: {type(e).__name__}: {e}", file=sys.stderr)
        return 2
    try:
        summary = soak.run()
    finally:
        soak.cleanup()
    summary["seed"] = args.seed
    if not args.json:
        print(json.dumps(summary, indent=2))
    print(json.dumps(summary, separators=(",", ":")))
    ok = summary["lost"] == 0 and summary["big_payload"]["ok"] and summary["background"]["drained"]
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
