"""A fault-injecting loopback TCP proxy, and a black-holed listener, for the fault tests.

Not a test module (the leading underscore keeps pytest away); the tests load it
by path, since ``--import-mode=importlib`` puts no test folder on ``sys.path``.

``FaultProxy(target_port)`` listens on 127.0.0.1 and relays every connection to
the target.  Each direction of each connection (``"up"``: client to server,
``"down"``: server to client) follows a :class:`Fault`:

``pass``     relay as is;
``stall``    relay ``after`` bytes, then stop reading (the peer's writes back up,
             nothing is dropped; :meth:`FaultProxy.clear` lets it flow again);
``cut``      relay ``after`` bytes, then close both sides (``reset=True``: RST);
``split``    relay in 1-byte writes (with ``delay`` seconds between) up to
             ``limit`` bytes, then as is;
``corrupt``  relay, XOR-ing ``mask`` into the bytes at stream offsets
             ``positions`` and, with probability ``rate``, into any other byte
             (a seeded RNG: the damage is reproducible).

Everything is bounded: at most ``max_connections`` connections are relayed
(later ones are closed at once), each socket is polled with a short timeout so
:meth:`FaultProxy.close` stops every thread promptly, a stall holds no data
(it stops reading instead), and the proxy shuts itself down after
``lifetime`` seconds whatever the test does.
"""
from __future__ import annotations

import random
import select
import socket
import struct
import threading
import time
from typing import Dict, List, Optional, Sequence

__all__ = ["Fault", "FaultProxy", "Blackhole"]

_KINDS = ("pass", "stall", "cut", "split", "corrupt")


class Fault:
    """What one direction of a relayed connection does (see the module docstring)."""

    def __init__(self, kind: str = "pass", after: int = 0, *, reset: bool = False,
                 positions: Sequence[int] = (), mask: int = 0xFF, rate: float = 0.0,
                 seed: int = 0, delay: float = 0.0005, limit: Optional[int] = None) -> None:
        if kind not in _KINDS:
            raise ValueError(f"unknown fault {kind!r}")
        self.kind = kind
        self.after = int(after)
        self.reset = reset
        self.positions = frozenset(int(p) for p in positions)
        self.mask = mask & 0xFF or 0xFF
        self.rate = float(rate)
        self.seed = seed
        self.delay = float(delay)
        self.limit = limit

    def __repr__(self) -> str:
        return f"Fault({self.kind!r}, after={self.after})"


PASS = Fault()


class _Conn:
    """One relayed connection: two sockets, two pumping threads, one fault per direction."""

    def __init__(self, proxy: "FaultProxy", client: socket.socket, server: socket.socket,
                 faults: Dict[str, Fault]) -> None:
        self.proxy = proxy
        self.socks = {"up": (client, server), "down": (server, client)}
        self.faults = dict(faults)
        self.closed = threading.Event()
        self.counts = {"up": 0, "down": 0}
        self.threads = [threading.Thread(target=self._pump, args=(d,), daemon=True,
                                         name=f"faultproxy-{d}") for d in ("up", "down")]
        self._lock = threading.Lock()
        self._eof = set()

    def start(self) -> None:
        for t in self.threads:
            t.start()

    def close(self, reset: bool = False) -> None:
        with self._lock:
            if self.closed.is_set():
                return
            self.closed.set()
        for s in self.socks["up"]:
            try:
                if reset:
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                else:
                    s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            try:
                s.close()
            except OSError:
                pass

    def _pump(self, direction: str) -> None:
        src, dst = self.socks[direction]
        rng: Optional[random.Random] = None
        try:
            while not self.closed.is_set() and not self.proxy._closed.is_set():
                f = self.faults[direction]
                count = self.counts[direction]
                want = 65536
                if f.kind in ("stall", "cut"):
                    if count >= f.after:
                        if f.kind == "cut":
                            self.proxy._note(f"cut {direction} at {count}")
                            self.close(f.reset)
                            return
                        time.sleep(0.01)            # stalled: read nothing
                        continue
                    want = min(want, f.after - count)
                r, _, _ = select.select([src], [], [], 0.05)
                if not r:
                    continue
                data = src.recv(want)
                f = self.faults[direction]      # the latest: inject() may have run meanwhile
                if not data:
                    # Half-close travels on; the connection ends when both did.
                    try:
                        dst.shutdown(socket.SHUT_WR)
                    except OSError:
                        pass
                    with self._lock:
                        self._eof.add(direction)
                        both = len(self._eof) == 2
                    if both:
                        self.close()
                    return
                if f.kind == "corrupt":
                    if rng is None:
                        rng = random.Random(f.seed)
                    buf = bytearray(data)
                    for i in range(len(buf)):
                        if (count + i) in f.positions or (f.rate and rng.random() < f.rate):
                            buf[i] ^= f.mask
                            self.proxy._note(f"corrupt {direction} byte {count + i}")
                    data = bytes(buf)
                if f.kind == "split" and (f.limit is None or count < f.limit):
                    n = len(data) if f.limit is None else min(len(data), f.limit - count)
                    for i in range(n):
                        dst.sendall(data[i:i + 1])
                        if f.delay:
                            time.sleep(f.delay)
                    if n:
                        self.proxy._note(f"split {direction} {n} bytes")
                    dst.sendall(data[n:])
                else:
                    dst.sendall(data)
                self.counts[direction] = count + len(data)
        except OSError:
            self.close()


class FaultProxy:
    """A bounded loopback proxy to ``127.0.0.1:target_port`` (see the module docstring).

    ``up`` / ``down`` are the faults new connections start with; :meth:`inject`
    changes them for the live connections too.  ``injected`` counts the
    faults that actually happened (cuts, corrupted bytes, split writes...).
    """

    def __init__(self, target_port: int, target_host: str = "127.0.0.1", *,
                 up: Fault = PASS, down: Fault = PASS, max_connections: int = 64,
                 lifetime: float = 120.0) -> None:
        self.target = (target_host, target_port)
        self.defaults = {"up": up, "down": down}
        self.max_connections = max_connections
        self.conns: List[_Conn] = []
        self.accepted = 0
        self.injected = 0
        self.events: List[str] = []
        self._closed = threading.Event()
        self._lock = threading.Lock()
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(64)
        self.port: int = self._listener.getsockname()[1]
        self._deadline = time.monotonic() + lifetime
        self._thread = threading.Thread(target=self._accept_loop, daemon=True,
                                        name="faultproxy-accept")
        self._thread.start()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _note(self, what: str) -> None:
        with self._lock:
            self.injected += 1
            if len(self.events) < 1000:
                self.events.append(what)

    def _accept_loop(self) -> None:
        while not self._closed.is_set():
            if time.monotonic() > self._deadline:
                self.close()
                return
            r, _, _ = select.select([self._listener], [], [], 0.05)
            if not r:
                continue
            try:
                client, _ = self._listener.accept()
            except OSError:
                continue
            if self.accepted >= self.max_connections:
                client.close()
                continue
            self.accepted += 1
            try:
                server = socket.create_connection(self.target, timeout=2.0)
            except OSError:
                client.close()
                continue
            for s in (client, server):
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                s.settimeout(5.0)
            conn = _Conn(self, client, server, self.defaults)
            with self._lock:
                self.conns.append(conn)
            conn.start()

    def inject(self, up: Optional[Fault] = None, down: Optional[Fault] = None) -> None:
        """Apply faults to the live connections and to the ones still to come.

        ``after`` counts from the start of each connection's stream, so a
        stall or cut with ``after=0`` acts at once on a live connection.
        """
        with self._lock:
            for direction, f in (("up", up), ("down", down)):
                if f is None:
                    continue
                self.defaults[direction] = f
                for c in self.conns:
                    c.faults[direction] = f

    def clear(self) -> None:
        """Back to relaying as is, for live and new connections (ends a stall)."""
        self.inject(PASS, PASS)

    def cut_all(self, reset: bool = False) -> None:
        """Close every live connection now (RST with ``reset``)."""
        with self._lock:
            conns = list(self.conns)
        for c in conns:
            if not c.closed.is_set():
                self._note("cut connection")
            c.close(reset)

    def live(self) -> int:
        """Number of relayed connections still open."""
        with self._lock:
            return sum(1 for c in self.conns if not c.closed.is_set())

    def close(self) -> None:
        """Stop accepting, close every connection and wait for the threads (bounded)."""
        self._closed.set()
        try:
            self._listener.close()
        except OSError:
            pass
        with self._lock:
            conns = list(self.conns)
        for c in conns:
            c.close()
        if threading.current_thread() is not self._thread:
            self._thread.join(2.0)
        for c in conns:
            for t in c.threads:
                if t is not threading.current_thread():
                    t.join(2.0)

    def __enter__(self) -> "FaultProxy":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Blackhole:
    """A listening socket on 127.0.0.1 that never accepts, its accept queue kept full.

    Further SYNs are dropped, so a ``connect()`` to :attr:`port` neither
    succeeds nor fails: it hangs until the caller's own timeout, as a
    firewalled or wedged server would.
    """

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(0)
        self.port: int = self.sock.getsockname()[1]
        self.fillers: List[socket.socket] = []
        for _ in range(64):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setblocking(False)
            s.connect_ex(("127.0.0.1", self.port))
            self.fillers.append(s)
            _, w, _ = select.select([], [s], [], 0.3)
            if not w:
                break           # this SYN went unanswered: the queue is full
        else:
            self.close()
            raise RuntimeError("could not fill the accept queue of a listen(0) socket")

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def is_black(self, wait: float = 0.3) -> bool:
        """True if a fresh connect attempt hangs for ``wait`` seconds."""
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.setblocking(False)
            s.connect_ex(("127.0.0.1", self.port))
            _, w, _ = select.select([], [s], [], wait)
            return not w

    def close(self) -> None:
        for s in self.fillers:
            s.close()
        self.fillers = []
        self.sock.close()

    def __enter__(self) -> "Blackhole":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
