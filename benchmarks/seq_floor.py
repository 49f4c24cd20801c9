"""Where a sequential call's time goes: cygearman against the floor of a raw socket loop.

    python benchmarks/seq_floor.py            # starts its own gearmand (gearman.testing)

Times N sequential ``jobStatus`` and ``doBackground`` calls through cygearman, then N
GET_STATUS round trips written by hand on a plain blocking socket (``sendall`` +
``recv``: the least a Python client can do per round trip), and prints wall time and the
process's user and system CPU per call (getrusage).  If cygearman's wall time is at or
below the raw loop's, a sequential call is bound by the round trip (kernel and gearmand),
not by the client.
"""
import argparse
import resource
import socket
import struct
import time

import gearman
from gearman.testing import GearmandServer


def _cpu():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime, r.ru_stime


def _timed(name, call, n):
    for _ in range(min(n, 500)):
        call()
    u0, s0 = _cpu()
    t0 = time.perf_counter()
    for _ in range(n):
        call()
    t1 = time.perf_counter()
    u1, s1 = _cpu()
    print(f"{name:<28} {(t1 - t0) / n * 1e6:7.1f} us wall  {(u1 - u0) / n * 1e6:6.2f} us user"
          f"  {(s1 - s0) / n * 1e6:6.2f} us sys")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-n", type=int, default=20000, help="calls per measurement (20000)")
    n = ap.parse_args().n
    with GearmandServer() as server:
        c = gearman.GearmanClient()
        c.addServer("127.0.0.1", server.port)
        handle = c.doBackground("seq_floor", b"x")
        _timed("cygearman jobStatus", lambda: c.jobStatus(handle), n)
        _timed("cygearman doBackground", lambda: c.doBackground("seq_floor", b"x"), n)
        s = socket.create_connection(("127.0.0.1", server.port))
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        h = handle.encode()
        packet = b"\0REQ" + struct.pack(">II", gearman.GEARMAN_COMMAND_GET_STATUS, len(h)) + h

        def raw():
            s.sendall(packet)
            s.recv(4096)

        _timed("raw socket GET_STATUS", raw, n)
        s.close()
        c.close()


if __name__ == "__main__":
    main()
