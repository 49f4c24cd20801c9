"""Where a round of 100,000 runTasks() tasks costs more per job than ten rounds of 10,000.

    python benchmarks/rounds_gc.py [--repeat 5]     # starts its own gearmand per measurement

``addTaskBackground`` N times then ``runTasks()``, as 1 round of 100,000 and as 10 rounds
of 10,000, with CPython's cyclic garbage collector on (the default) and off
(``gc.disable()``), alternated ``--repeat`` times; prints the median client CPU per job
(user + sys, getrusage) of the whole run and of the adding alone.  The benchmark's
``rounds`` rows measure the same shapes in separate processes; this script repeats them
more often in one process, and shows whether the collector is what makes the difference.
"""
import argparse
import gc
import resource
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import gearman  # noqa: E402
from gearman.testing import GearmandServer  # noqa: E402

N = 100_000


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _measure(port: int, rounds: int) -> tuple:
    c = gearman.GearmanClient()
    c.addServer("127.0.0.1", port)
    c.addTaskBackground("rounds_gc_warm", b"x")
    c.runTasks()
    per = N // rounds
    adding = 0.0
    t0 = _cpu()
    for _ in range(rounds):
        s = _cpu()
        for _ in range(per):
            c.addTaskBackground("rounds_gc", b"x")
        adding += _cpu() - s
        c.runTasks()
    total = _cpu() - t0
    c.close()
    return total / N * 1e6, adding / N * 1e6


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5)
    a = ap.parse_args()
    results = {}
    for _ in range(a.repeat):
        for collector in (True, False):
            for rounds in (1, 10):
                if collector:
                    gc.enable()
                else:
                    gc.disable()
                with GearmandServer(extra_args=["--hashtable-buckets", "1000003"]) as server:
                    results.setdefault((collector, rounds), []).append(_measure(server.port, rounds))
                gc.enable()
                gc.collect()
    print(f"{'collector':<10} {'shape':<14} {'CPU us/job':>10} {'adding':>8}   (median of {a.repeat})")
    for collector in (True, False):
        for rounds in (1, 10):
            rows = results[(collector, rounds)]
            shape = f"{rounds} x {N // rounds:,}"
            print(f"{'on' if collector else 'off':<10} {shape:<14} "
                  f"{statistics.median(r[0] for r in rows):>10.2f} "
                  f"{statistics.median(r[1] for r in rows):>8.2f}")
        one = statistics.median(r[0] for r in results[(collector, 1)])
        ten = statistics.median(r[0] for r in results[(collector, 10)])
        print(f"{'':<10} 1 round ÷ 10 rounds: {one / ten:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
