"""Hot-path microbenchmark used to decide between a per-version wheel and an abi3 one.

Run it once per build of ``gearman._core`` (the import decides which build is
measured) and compare the numbers; see docs/benchmarks.md for the figures and
the decision.  Each case reports the best of ``--repeat`` runs, in nanoseconds
per packet:

  decode   PacketReader.feed() in 64 KiB chunks + gets() until None, over a
           stream of JOB_CREATED / WORK_STATUS / WORK_COMPLETE packets
  encode   WriteBuffer.request(SUBMIT_JOB_BG, function, unique, payload)
  batch    ClientEngine.submit_batch() of background jobs to a real gearmand
           (client CPU time per job, gearmand started on a free port)

    python scripts/bench_abi3.py [--packets 1000000] [--repeat 5] [--batch 200000]
    python scripts/bench_abi3.py --case decode --packets 100000 --repeat 1   # under callgrind
"""
from __future__ import annotations

import argparse
import resource
import struct
import sys
import time
from typing import Callable, List

from gearman import _core

JOB_CREATED, WORK_STATUS, WORK_COMPLETE, SUBMIT_JOB_BG = 8, 12, 13, 18


def _packet(cmd: int, *args: bytes) -> bytes:
    body = b"\0".join(args)
    return struct.pack(">4sII", b"\0RES", cmd, len(body)) + body


def make_stream(n: int) -> bytes:
    """``n`` response packets, a third of each kind, handles of realistic length."""
    out: List[bytes] = []
    for i in range(n):
        handle = b"H:worker-host.example:%d" % i
        k = i % 3
        if k == 0:
            out.append(_packet(JOB_CREATED, handle))
        elif k == 1:
            out.append(_packet(WORK_STATUS, handle, b"%d" % (i % 100), b"100"))
        else:
            out.append(_packet(WORK_COMPLETE, handle, b"r" * 32))
    return b"".join(out)


def bench_decode(stream: bytes, n: int) -> float:
    reader = _core.PacketReader()
    mv = memoryview(stream)
    got = 0
    t0 = time.perf_counter()
    for off in range(0, len(stream), 65536):
        reader.feed(mv[off:off + 65536])
        while reader.gets() is not None:
            got += 1
    dt = time.perf_counter() - t0
    assert got == n, (got, n)
    return dt


def bench_encode(n: int) -> float:
    buf = _core.WriteBuffer(1 << 20)
    request = buf.request
    fn, uniq, payload = b"resize_image", b"0b8f6a1c-4d2e-8f00-9a1b-2c3d4e5f6a7b", b"x" * 64
    t0 = time.perf_counter()
    for i in range(n):
        request(SUBMIT_JOB_BG, fn, uniq, payload)
        if not i & 4095:
            buf.clear()
    return time.perf_counter() - t0


def bench_batch(n: int) -> float:
    from gearman.testing import GearmandServer

    server = GearmandServer()
    server.start()
    try:
        eng = _core.ClientEngine()
        eng.add_server("127.0.0.1", server.port)
        payloads = [b"payload-%d" % i for i in range(n)]
        cpu0 = resource.getrusage(resource.RUSAGE_SELF)
        batch = eng.submit_batch(SUBMIT_JOB_BG, "bench_abi3", payloads)
        eng.run(None, -1.0)              # drive I/O until every job is answered
        cpu1 = resource.getrusage(resource.RUSAGE_SELF)
        assert batch.done == n and not batch.errors, (batch.done, len(batch.errors))
        eng.close()
        return (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
    finally:
        server.stop()


def best(fn: Callable[[], float], repeat: int) -> float:
    return min(fn() for _ in range(repeat))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--packets", type=int, default=1_000_000)
    ap.add_argument("--batch", type=int, default=200_000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--case", choices=("decode", "encode", "batch", "all", "stream"),
                    default="all", help="stream: only build the decode input (a callgrind baseline)")
    a = ap.parse_args()
    print(f"# {_core.__file__}  (Python {sys.version.split()[0]})")
    if a.case == "stream":
        make_stream(a.packets)
        return 0
    if a.case in ("decode", "all"):
        stream = make_stream(a.packets)
        dt = best(lambda: bench_decode(stream, a.packets), a.repeat)
        print(f"decode  {dt / a.packets * 1e9:8.1f} ns/packet  ({a.packets} packets, best of {a.repeat})")
    if a.case in ("encode", "all"):
        dt = best(lambda: bench_encode(a.packets), a.repeat)
        print(f"encode  {dt / a.packets * 1e9:8.1f} ns/packet  ({a.packets} packets, best of {a.repeat})")
    if a.case in ("batch", "all") and a.batch:
        dt = best(lambda: bench_batch(a.batch), max(1, a.repeat // 2))
        print(f"batch   {dt / a.batch * 1e9:8.1f} ns CPU/job ({a.batch} jobs, best of {max(1, a.repeat // 2)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
