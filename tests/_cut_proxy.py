"""A TCP proxy in front of a real gearmand whose connections a test can cut.

Used to make "the connection to the job server failed" happen on demand while
gearmand itself keeps running (and keeps accepting new connections), which is
what python-gearman's "Recovering from failed connections" recipe and its
``max_retries`` are about.  Not a test module: loaded by path from the tests
(the suite runs with ``--import-mode=importlib``).

``CutProxy(upstream_port, drop_first=0)``: ``.port`` / ``.address`` to give the
client; the first ``drop_first`` connections are closed by the proxy as soon
as the client has sent something (the request is lost in flight); ``cut()``
closes every connection open now; ``accepted`` counts connections; ``close()``
stops it.  One thread, bounded waits, no busy loop.
"""
import selectors
import socket
import threading


class CutProxy:
    def __init__(self, upstream_port, drop_first=0, upstream_host="127.0.0.1"):
        self.upstream = (upstream_host, upstream_port)
        self.drop_first = drop_first
        self.accepted = 0
        self.dropped = 0
        self._listener = socket.socket()
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(64)
        self._listener.setblocking(False)
        self.port = self._listener.getsockname()[1]
        self.address = f"127.0.0.1:{self.port}"
        self._sel = selectors.DefaultSelector()
        self._sel.register(self._listener, selectors.EVENT_READ, None)
        self._peer = {}              # socket -> (other socket or None, doomed: bool)
        self._lock = threading.Lock()
        self._cut_requested = False
        self._closing = False
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._sel.register(self._wake_r, selectors.EVENT_READ, "wake")
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    # -- control -------------------------------------------------------------------
    def cut(self, timeout=10.0):
        """Close every connection open now; return how many pairs were cut."""
        done = threading.Event()
        with self._lock:
            self._cut_requested = done
        self._wake_w.send(b"x")
        if not done.wait(timeout):
            raise RuntimeError("proxy did not cut in time")
        return self._last_cut

    def close(self):
        self._closing = True
        try:
            self._wake_w.send(b"x")
        except OSError:
            pass
        self._thread.join(10)
        for s in list(self._peer):
            s.close()
        self._listener.close()
        self._wake_r.close()
        self._wake_w.close()

    # -- loop ----------------------------------------------------------------------
    def _drop(self, s):
        other = self._peer.pop(s, (None, False))[0]
        for x in (s, other):
            if x is None:
                continue
            self._peer.pop(x, None)
            try:
                self._sel.unregister(x)
            except (KeyError, ValueError):
                pass
            x.close()

    def _loop(self):
        while not self._closing:
            for key, _ in self._sel.select(timeout=1.0):
                s = key.fileobj
                if key.data == "wake":
                    try:
                        s.recv(4096)
                    except OSError:
                        pass
                    with self._lock:
                        done, self._cut_requested = self._cut_requested, False
                    if done:
                        clients = [x for x, (_, client) in list(self._peer.items()) if client]
                        self._last_cut = len(clients)
                        for x in clients:
                            self._drop(x)
                        done.set()
                    continue
                if s is self._listener:
                    try:
                        conn, _ = s.accept()
                    except OSError:
                        continue
                    self.accepted += 1
                    conn.setblocking(False)
                    if self.dropped < self.drop_first:
                        self.dropped += 1
                        self._peer[conn] = (None, True)
                        self._sel.register(conn, selectors.EVENT_READ, "doomed")
                        continue
                    up = socket.create_connection(self.upstream, timeout=5)
                    up.setblocking(False)
                    self._peer[conn] = (up, True)
                    self._peer[up] = (conn, False)
                    self._sel.register(conn, selectors.EVENT_READ, "pipe")
                    self._sel.register(up, selectors.EVENT_READ, "pipe")
                    continue
                if s not in self._peer:
                    continue
                try:
                    data = s.recv(65536)
                except (BlockingIOError, InterruptedError):
                    continue
                except OSError:
                    data = b""
                if key.data == "doomed" or not data:
                    self._drop(s)        # the request is read and lost
                    continue
                other = self._peer[s][0]
                try:
                    other.setblocking(True)
                    other.settimeout(5)
                    other.sendall(data)
                    other.setblocking(False)
                except OSError:
                    self._drop(s)
