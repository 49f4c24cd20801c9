"""Instructions per call on the hot paths, counted by callgrind (stable on a noisy machine).

    python benchmarks/callgrind.py                      # every path, N=5000
    python benchmarks/callgrind.py --paths drain -n 10000

For each path it runs a small client or worker process twice under
``valgrind --tool=callgrind`` against its own gearmand (gearman.testing), once
with 1 call and once with N, and prints (I(N) - I(1)) / (N - 1): the
instructions of one call with the interpreter's start-up, imports and
connection set-up subtracted.  Paths:

* ``background``: ``GearmanClient.doBackground`` (one round trip each);
* ``status``: ``GearmanClient.jobStatus`` of one queued handle;
* ``tasks``: ``addTaskBackground`` x 1000 + ``runTasks()``, per job;
* ``batch``: ``submit_batch`` of 1000 jobs, per job;
* ``drain``: ``GearmanWorker.serve()`` taking queued jobs (empty results), per job;
* ``drain8``: the same with ``prefetch=8``;
* ``aio8``: ``gearman.aio.AsyncGearmanWorker(concurrency=8)`` with a plain function;
* ``aio8async``: the same with an ``async def`` function.

The worker paths' counts depend a little on how many jobs each wake-up finds
(under valgrind the worker is slow, so gearmand has them ready: the most a
round can batch); read them next to each other, from one run.

It needs valgrind (Debian package ``valgrind``) and the in-place build
(``python setup.py build_ext --inplace``).  ``--keep DIR`` keeps the
callgrind.out files for ``callgrind_annotate``.
"""
import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

PATHS = ("background", "status", "tasks", "batch", "drain", "drain8", "aio8", "aio8async")
WORKER_PATHS = ("drain", "drain8", "aio8", "aio8async")

CHILD = r"""
import sys
import gearman
path, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
if path in ("drain", "drain8"):
    w = gearman.GearmanWorker(prefetch=8 if path == "drain8" else 1)
    w.addServer("127.0.0.1", port)
    w.addFunction("cg_drain", lambda job, ctx: b"")
    assert w.serve(handle_signals=False, max_jobs=n) == n
    sys.exit(0)
if path in ("aio8", "aio8async"):
    import asyncio
    from gearman.aio import AsyncGearmanWorker

    async def main():
        w = AsyncGearmanWorker(f"127.0.0.1:{port}", concurrency=8)

        def job(j):
            if w.jobs_done + 1 >= n:
                w.stop()
            return b""

        async def async_job(j):
            return job(j)

        w.register("cg_drain", job if path == "aio8" else async_job)
        return await w.run()

    assert asyncio.run(main()) >= n
    sys.exit(0)
c = gearman.GearmanClient()
c.addServer("127.0.0.1", port)
h = c.doBackground("cg_fn", b"x")
if path == "background":
    for _ in range(n):
        c.doBackground("cg_fn", b"x")
elif path == "status":
    for _ in range(n):
        c.jobStatus(h)
elif path == "tasks":
    for _ in range(n // 1000):
        for _ in range(1000):
            c.addTaskBackground("cg_fn", b"x")
        c.runTasks()
elif path == "batch":
    for _ in range(n // 1000):
        c.submit_batch("cg_fn", [b"x"] * 1000)
"""


def instructions(out: str) -> int:
    m = re.search(r"I\s+refs:\s+([\d,]+)", out)
    if not m:
        raise RuntimeError("no instruction count in valgrind's output:\n" + out[-2000:])
    return int(m.group(1).replace(",", ""))


def run_once(path: str, port: int, n: int, workdir: Path, keep: bool) -> int:
    script = workdir / "child.py"
    script.write_text(CHILD)
    out_file = workdir / f"callgrind.out.{path}.{n}"
    # a fixed hash seed: the same dict probing in every run, so counts repeat
    env = dict(os.environ, PYTHONPATH=str(REPO), PYTHONHASHSEED="0")
    argv = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out_file}",
            sys.executable, str(script), path, str(port), str(n)]
    r = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=1800)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed:\n{r.stderr[-2000:]}")
    if not keep:
        out_file.unlink(missing_ok=True)
    return instructions(r.stderr)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--paths", default=",".join(PATHS), help="comma-separated subset of " + ",".join(PATHS))
    ap.add_argument("-n", type=int, default=5000, help="calls (jobs) in the long run (5000)")
    ap.add_argument("--keep", metavar="DIR", help="keep the callgrind.out files in DIR")
    args = ap.parse_args()
    paths = [p for p in args.paths.split(",") if p]
    bad = [p for p in paths if p not in PATHS]
    if bad:
        ap.error(f"unknown path(s) {bad}; choose from {PATHS}")
    if not shutil.which("valgrind"):
        print("valgrind is not installed (Debian: apt-get install valgrind)", file=sys.stderr)
        return 2
    n = max(1000, args.n - args.n % 1000)
    from gearman.testing import GearmandServer
    workdir = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="cg-"))
    workdir.mkdir(parents=True, exist_ok=True)
    print(f"{'path':<12} {'instructions per call':>22}   (N={n}, python {sys.version.split()[0]})")
    with GearmandServer() as server:
        import gearman
        for path in paths:
            if path in WORKER_PATHS:
                # jobs for both runs, queued beforehand: 1 for the short run, n for the long
                # one, and a few more: the asyncio worker's tasks started in the round that
                # stops it still run (up to concurrency - 1 more jobs), and a worker that
                # stops hands its prefetched jobs back (counted here as already queued)
                c = gearman.GearmanClient()
                c.addServer("127.0.0.1", server.port)
                c.submit_batch("cg_drain", [b"x"] * (n + 1 + 16 - server.queued("cg_drain")))
                c.close()
            short = 1000 if path in ("tasks", "batch") else 1
            i1 = run_once(path, server.port, short, workdir, bool(args.keep))
            i2 = run_once(path, server.port, n, workdir, bool(args.keep))
            print(f"{path:<12} {(i2 - i1) / (n - short):>22,.0f}", flush=True)
    if not args.keep:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
