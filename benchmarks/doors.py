"""Every door against a silent server: the figures of docs/reliability.md §11 (not a test).

For each door, with T = 1 s:

1. pool [silent, healthy] (one of two gearmand stopped with SIGSTOP): 50 sequential calls,
   how many succeed and the total time;
2. the only server silent: the time to the error, and, for the door's bulk form, how many of
   10,000 abandoned requests (a timed-out batch) gearmand receives after SIGCONT, and how many
   of those the door had reported ``submitted=False`` (never left this machine: must be 0).

    python benchmarks/doors.py [--calls 50] [--bulk 10000] [--timeout 1]
"""
from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import time
from typing import Any, Callable, Dict, List, Optional, Tuple

import gearman
from gearman import errors
from gearman.aio import AsyncGearmanClient
from gearman.testing import GearmandServer, wait_until


def _env() -> Dict[str, str]:
    env = dict(os.environ)
    env.pop("GEARMAN_SERVERS", None)
    return env


def _pecl(servers: List[GearmandServer], T: float) -> Any:
    c = gearman.GearmanClient()
    for s in servers:
        c.addServer(s.host, s.port)
    c.setTimeout(int(T * 1000))
    return c


def seq_pecl(servers: List[GearmandServer], fn: str, n: int, T: float) -> int:
    c = _pecl(servers, T)
    ok = 0
    for i in range(n):
        try:
            c.doBackground(fn, b"%d" % i)
            ok += 1
        except errors.GearmanError:
            pass
    c.close()
    return ok


def seq_pg(servers: List[GearmandServer], fn: str, n: int, T: float) -> int:
    c = gearman.GearmanClient([s.address for s in servers])
    ok = 0
    for i in range(n):
        r = c.submit_job(fn, b"%d" % i, background=True, poll_timeout=T)
        ok += not r.timed_out
    c.shutdown()
    return ok


def seq_aio(servers: List[GearmandServer], fn: str, n: int, T: float) -> int:
    async def main() -> int:
        c = AsyncGearmanClient(",".join(s.address for s in servers), timeout=T)
        ok = 0
        for i in range(n):
            try:
                await c.do_background(fn, b"%d" % i)
                ok += 1
            except errors.GearmanError:
                pass
        await c.close()
        return ok
    return asyncio.run(main())


def seq_cli(servers: List[GearmandServer], fn: str, n: int, T: float) -> int:
    ok = 0
    for i in range(n):
        p = subprocess.run([sys.executable, "-m", "gearman", "-s", ",".join(s.address for s in servers),
                            "submit", "-q", "-b", "-t", str(T), fn, str(i)],
                           capture_output=True, env=_env(), timeout=120)
        ok += p.returncode == 0
    return ok


# -- bulk: (handles-or-None per job, submitted per job or None when the door does not say) -------

Bulk = Tuple[List[Optional[str]], Optional[List[Optional[bool]]]]


def _submitted(errs: Dict[int, BaseException], n: int) -> List[Optional[bool]]:
    return [getattr(errs.get(i), "submitted", None) if i in errs else True for i in range(n)]


def bulk_pecl(server: GearmandServer, fn: str, uniques: List[str], T: float) -> Bulk:
    c = _pecl([server], T)
    try:
        h = c.submit_batch(fn, [b"x"] * len(uniques), uniques=uniques)
        return h, [True] * len(h)
    except errors.GearmanTimeoutError as e:
        return e.handles, _submitted(e.errors, len(uniques))
    finally:
        c.close()


def bulk_pg(server: GearmandServer, fn: str, uniques: List[str], T: float) -> Bulk:
    c = gearman.GearmanClient([server.address])
    reqs = c.submit_multiple_jobs([{"task": fn, "data": b"x", "unique": u} for u in uniques],
                                  background=True, poll_timeout=T)
    c.shutdown()
    # python-gearman's requests say timed_out, not whether they left this machine
    return [None if r.timed_out else "h" for r in reqs], None


def bulk_aio(server: GearmandServer, fn: str, uniques: List[str], T: float) -> Bulk:
    async def main() -> Bulk:
        c = AsyncGearmanClient(server.address, timeout=T)
        try:
            h = await c.submit_many(fn, [b"x"] * len(uniques), uniques=uniques)
            return h, [True] * len(h)
        except errors.GearmanTimeoutError as e:
            return e.handles, _submitted(e.errors, len(uniques))
        finally:
            await c.close()
    return asyncio.run(main())


def bulk_cli(server: GearmandServer, fn: str, uniques: List[str], T: float) -> Bulk:
    # one unique for all would coalesce: the command gets no per-job uniques, so its jobs
    # are counted, not matched
    p = subprocess.run([sys.executable, "-m", "gearman", "-s", server.address, "submit", "-q", "-b",
                        "-n", "-t", str(T), fn], input=b"x\n" * len(uniques), capture_output=True,
                       env=_env(), timeout=600)
    return [None] * len(uniques) if p.returncode else ["h"] * len(uniques), None


def single_pecl(server: GearmandServer, fn: str, T: float) -> str:
    c = _pecl([server], T)
    try:
        c.doBackground(fn, b"x")
        return "ok"
    except errors.GearmanError as e:
        return type(e).__name__
    finally:
        c.close()


def single_pg(server: GearmandServer, fn: str, T: float) -> str:
    c = gearman.GearmanClient([server.address])
    r = c.submit_job(fn, b"x", background=True, poll_timeout=T)
    c.shutdown()
    return "timed_out" if r.timed_out else "ok"


def single_aio(server: GearmandServer, fn: str, T: float) -> str:
    async def main() -> str:
        c = AsyncGearmanClient(server.address, timeout=T)
        try:
            await c.do_background(fn, b"x")
            return "ok"
        except errors.GearmanError as e:
            return type(e).__name__
        finally:
            await c.close()
    return asyncio.run(main())


def single_cli(server: GearmandServer, fn: str, T: float) -> str:
    p = subprocess.run([sys.executable, "-m", "gearman", "-s", server.address, "submit", "-q", "-b",
                        "-t", str(T), fn, "x"], capture_output=True, env=_env(), timeout=120)
    return f"exit {p.returncode}"


DOORS: List[Tuple[str, Callable[..., int], Callable[..., str], Callable[..., Bulk]]] = [
    ("PECL doBackground / submit_batch", seq_pecl, single_pecl, bulk_pecl),
    ("python-gearman submit_job / submit_multiple_jobs", seq_pg, single_pg, bulk_pg),
    ("asyncio do_background / submit_many", seq_aio, single_aio, bulk_aio),
    ("cygearman submit -b / -b -n", seq_cli, single_cli, bulk_cli),
]


def _uniques(server: GearmandServer) -> set:
    return {line.strip() for line in server.admin("show unique jobs").splitlines()
            if line.strip() and line.strip() != "."}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calls", type=int, default=50)
    ap.add_argument("--bulk", type=int, default=10_000)
    ap.add_argument("--timeout", type=float, default=1.0)
    args = ap.parse_args()
    T = args.timeout
    rows = []
    for k, (name, seq, single, bulk) in enumerate(DOORS):
        healthy, silent = GearmandServer(), GearmandServer()
        try:
            fn = f"doors-{k}"
            silent.pause()
            t0 = time.monotonic()
            ok = seq([silent, healthy], fn, args.calls, T)
            pool_time = time.monotonic() - t0
            t0 = time.monotonic()
            err = single(silent, fn + "-one", T)
            err_time = time.monotonic() - t0
            uniques = [f"u{k}-{i}" for i in range(args.bulk)]
            t0 = time.monotonic()
            handles, submitted = bulk(silent, fn + "-bulk", uniques, T)
            bulk_time = time.monotonic() - t0
            silent.resume()
            # gearmand works through what its kernel held: wait until the count settles
            last = [-1]

            def settled(silent: GearmandServer = silent, fn: str = fn, last: List[int] = last) -> bool:
                n = silent.queued(fn + "-bulk")
                done, last[0] = n == last[0], n
                return done
            wait_until(settled, timeout=60, interval=0.5)
            arrived = silent.queued(fn + "-bulk")
            if submitted is not None:
                got = _uniques(silent)
                false_arrived = sum(1 for u, s in zip(uniques, submitted) if s is False and u in got)
                n_false = sum(1 for s in submitted if s is False)
                n_none = sum(1 for s in submitted if s is None)
                sub = f"{false_arrived} of {n_false} (None: {n_none})"
            else:
                sub = "n/a (not reported)"
            rows.append((name, f"{ok}/{args.calls}", f"{pool_time:.1f} s", f"{err} after {err_time:.2f} s",
                         f"{bulk_time:.2f} s", f"{arrived}/{args.bulk}", sub))
        finally:
            silent.resume()
            healthy.cleanup()
            silent.cleanup()
    head = ("door", "pool ok", "pool time", "only server silent", "bulk timeout after",
            "bulk received after SIGCONT", "of them reported submitted=False")
    widths = [max(len(str(r[i])) for r in rows + [head]) for i in range(len(head))]
    for r in [head] + rows:
        print("  ".join(str(c).ljust(w) for c, w in zip(r, widths)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
