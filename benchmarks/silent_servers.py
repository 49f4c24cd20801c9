"""Figures for docs/reliability.md §5a: a client against a silent (SIGSTOPped) server.

    python benchmarks/silent_servers.py            # about 30 s
    python benchmarks/silent_servers.py --batches 20 --size 5000

Prints, against real gearmand started on free loopback ports:

* sequential: one of two servers stopped, ``setTimeout(1000)``, 50 sequential
  ``doBackground`` calls with uniques (half hash to the stopped server): how many
  succeed, how many time out, the total time;
* shared lock: 8 threads sharing a client whose only server is stopped: how long
  each call took;
* memory: ``--batches`` batches of ``--size`` jobs timing out on a stopped server:
  the client's peak RSS growth, the jobs reported not submitted / outcome unknown,
  and how many gearmand queued after SIGCONT.

The behaviour behind each figure is tested in tests/test_silent_servers.py.
"""
import argparse
import resource
import threading
import time

import gearman
from gearman import errors
from gearman.testing import GearmandServer


def sequential():
    a, b = GearmandServer(), GearmandServer()
    a.start()
    b.start()
    try:
        c = gearman.GearmanClient()
        c.addServer("127.0.0.1", a.port)
        c.addServer("127.0.0.1", b.port)
        c.setTimeout(1000)
        c.doBackground("seq", b"warm", "warm")
        b.pause()
        ok = failed = 0
        t0 = time.monotonic()
        for i in range(50):
            try:
                c.doBackground("seq", b"x", f"u{i}")
                ok += 1
            except errors.GearmanTimeoutError:
                failed += 1
        took = time.monotonic() - t0
        print(f"sequential: {ok} of 50 doBackground calls succeeded, {failed} timed out, "
              f"{took:.2f} s in total (one of two servers stopped, setTimeout(1000))")
    finally:
        b.resume()
        a.stop()
        b.stop()


def shared_lock():
    b = GearmandServer()
    b.start()
    try:
        c = gearman.GearmanClient()
        c.addServer("127.0.0.1", b.port)
        c.setTimeout(1000)
        b.pause()
        took = []

        def call():
            t0 = time.monotonic()
            try:
                c.doBackground("lock", b"x")
            except errors.GearmanTimeoutError:
                pass
            took.append(time.monotonic() - t0)

        threads = [threading.Thread(target=call) for _ in range(8)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        print("shared lock: 8 threads, calls took " +
              ", ".join(f"{t:.2f}" for t in sorted(took)) + " s (setTimeout(1000))")
    finally:
        b.resume()
        b.stop()


def memory(batches, size):
    b = GearmandServer()
    b.start()
    try:
        c = gearman.GearmanClient()
        c.addServer("127.0.0.1", b.port)
        c.setTimeout(500)
        c.doBackground("mem", b"warm")
        b.pause()
        rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        not_sent = unknown = 0
        for _ in range(batches):
            try:
                c.submit_batch("mem", [b"payload-%d" % j for j in range(size)])
            except errors.GearmanTimeoutError as e:
                for err in e.errors.values():
                    if getattr(err, "submitted", None) is False:
                        not_sent += 1
                    else:
                        unknown += 1
        growth = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss0) / 1024
        kept = sum(conn.in_flight for conn in c._engine.servers)
        b.resume()
        c.doBackground("mem", b"after")
        time.sleep(2.0)
        delivered = b.queued("mem") - 2
        print(f"memory: {batches} timed-out batches of {size:,}: peak RSS +{growth:.1f} MB, "
              f"{kept} requests kept; reported not submitted {not_sent:,}, outcome unknown "
              f"{unknown:,}; after SIGCONT gearmand queued {delivered:,} of {batches * size:,}")
    finally:
        b.resume()
        b.stop()


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batches", type=int, default=100)
    p.add_argument("--size", type=int, default=10000)
    a = p.parse_args()
    sequential()
    shared_lock()
    memory(a.batches, a.size)


if __name__ == "__main__":
    main()
