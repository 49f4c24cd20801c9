"""A hostile job server: client and worker against a scripted peer that misbehaves.

The peer speaks just enough of the protocol (it answers OPTION_REQ, reads the
submission or the GRAB) and then sends what no gearmand would: negative and huge
lengths, bad magic, unknown command numbers, truncated packets, ERROR packets in
the middle of a job, answers for handles nobody asked about, floods.  CONTRIBUTING.md's
test rules allow a scripted peer for exactly this (malformed input); everything
else in the suite runs against real gearmand.

Every case checks the same four things:

* the call ends in a typed :class:`gearman.errors.GearmanError` (or, where the
  damage is harmless, in the right answer), never in another exception;
* it ends within its timeout (plus a wide margin: this is a hang check, not a
  speed check);
* the calling thread burns little CPU meanwhile (no spin);
* nothing close to a hostile length is allocated (tracemalloc peak).
"""
import select
import socket
import struct
import threading
import time
import tracemalloc

import pytest

import gearman
from gearman import errors

MIB = 1024 * 1024
REQ, RES = b"\x00REQ", b"\x00RES"

# Command numbers (docs/protocol.md §2); spelled out here so the peer does not depend on
# the library's own encoder.
CAN_DO, PRE_SLEEP, NOOP, SUBMIT_JOB, JOB_CREATED = 1, 4, 6, 7, 8
GRAB_JOB, NO_JOB, JOB_ASSIGN, WORK_STATUS, WORK_COMPLETE, WORK_FAIL = 9, 10, 11, 12, 13, 14
GET_STATUS, ECHO_REQ, ECHO_RES, SUBMIT_JOB_BG, ERROR, STATUS_RES = 15, 16, 17, 18, 19, 20
SET_CLIENT_ID, CAN_DO_TIMEOUT = 22, 23
WORK_EXCEPTION, OPTION_REQ, OPTION_RES, WORK_DATA, WORK_WARNING = 25, 26, 27, 28, 29
GRAB_JOB_UNIQ, JOB_ASSIGN_UNIQ, GRAB_JOB_ALL, JOB_ASSIGN_ALL = 30, 31, 39, 40
GRABS = (GRAB_JOB, GRAB_JOB_UNIQ, GRAB_JOB_ALL)

# A thread of the scripted peer that dies with an exception is a bug of this file
# (it once did: the listener closed under its accept thread's select(), EBADF), not
# a warning to print on a green run.
pytestmark = pytest.mark.filterwarnings("error::pytest.PytestUnhandledThreadExceptionWarning")

#: Figures for the report: how many hostile inputs the peer sent.
STATS = {"bad_inputs": 0}


def res(cmd, *args, length=None):
    """A response packet; ``length`` overrides the header's length field."""
    body = b"\x00".join(args)
    n = len(body) if length is None else length
    return RES + struct.pack(">II", cmd & 0xFFFFFFFF, n & 0xFFFFFFFF) + body


def header(cmd, length, magic=RES):
    return magic + struct.pack(">II", cmd & 0xFFFFFFFF, length & 0xFFFFFFFF)


class Peer:
    """One accepted connection of the hostile server, as the script sees it."""

    def __init__(self, sock, server):
        self.sock = sock
        self.server = server
        self.buf = b""
        self.received = []

    def read_packet(self, timeout=5.0):
        """The next request ``(cmd, args)``; None on EOF or timeout."""
        deadline = time.monotonic() + timeout
        while True:
            if len(self.buf) >= 12:
                cmd, n = struct.unpack(">II", self.buf[4:12])
                if len(self.buf) >= 12 + n:
                    body = self.buf[12:12 + n]
                    self.buf = self.buf[12 + n:]
                    self.received.append(cmd)
                    return cmd, body.split(b"\x00")
            left = deadline - time.monotonic()
            if left <= 0 or self.server.closed.is_set():
                return None
            r, _, _ = select.select([self.sock], [], [], min(left, 0.05))
            if not r:
                continue
            try:
                data = self.sock.recv(65536)
            except OSError:
                return None
            if not data:
                return None
            self.buf += data

    def expect(self, *cmds, timeout=5.0):
        """Read until a request in ``cmds``, answering the chatter a real server
        answers (OPTION_REQ, ECHO_REQ) and ignoring the rest; None on EOF."""
        while True:
            p = self.read_packet(timeout)
            if p is None:
                return None
            cmd, args = p
            if cmd in cmds:
                return p
            if cmd == OPTION_REQ:
                self.send(res(OPTION_RES, args[0]), hostile=False)
            elif cmd == ECHO_REQ:
                self.send(res(ECHO_RES, b"\x00".join(args)), hostile=False)

    def send(self, data, hostile=True):
        if hostile:
            STATS["bad_inputs"] += 1
        try:
            self.sock.sendall(data)
        except OSError:
            pass

    def trickle(self, data, delay=0.001):
        """Send one byte at a time (the receiver sees every possible split)."""
        for i in range(len(data)):
            self.send(data[i:i + 1], hostile=False)
            time.sleep(delay)

    def stall(self):
        """Keep the connection open and say nothing until the server closes."""
        self.server.closed.wait(30)

    def close(self, reset=False):
        if reset:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.sock.close()


class HostileServer:
    """Accepts on 127.0.0.1 and runs ``script(peer)`` per connection, in a thread.

    Bounded: at most ``max_connections`` connections get a script (more are
    closed at once), every read has a timeout, and :meth:`close` ends it all.
    """

    def __init__(self, script, max_connections=32):
        self.script = script
        self.max_connections = max_connections
        self.connections = 0
        self.closed = threading.Event()
        self.errors = []
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(16)
        self.port = self.listener.getsockname()[1]
        self.threads = []
        self.acceptor = threading.Thread(target=self._accept, daemon=True)
        self.acceptor.start()

    def _accept(self):
        while not self.closed.is_set():
            r, _, _ = select.select([self.listener], [], [], 0.05)
            if not r:
                continue
            try:
                sock, _ = self.listener.accept()
            except OSError:
                continue
            self.connections += 1
            if self.connections > self.max_connections:
                sock.close()
                continue
            th = threading.Thread(target=self._run, args=(sock,), daemon=True)
            self.threads.append(th)
            th.start()

    def _run(self, sock):
        peer = Peer(sock, self)
        try:
            self.script(peer)
        except OSError:
            pass
        except Exception as e:        # noqa: BLE001 - a broken script must fail the test
            self.errors.append(e)
        finally:
            try:
                sock.close()
            except OSError:
                pass

    def close(self):
        # The accept thread polls the listener: it must be gone before the
        # listener is closed, or its select() gets a closed (or, worse, reused)
        # descriptor and the thread dies with EBADF, which pytest reports as a
        # PytestUnhandledThreadExceptionWarning traceback on a green run.
        self.closed.set()
        self.acceptor.join(5)
        assert not self.acceptor.is_alive(), "the hostile server's accept thread did not stop"
        self.listener.close()
        for th in self.threads:
            th.join(5)
        assert not self.errors, self.errors


@pytest.fixture(scope="module", autouse=True)
def _figures():
    yield
    print(f"\ntest_hostile: hostile inputs sent {STATS['bad_inputs']}")


@pytest.fixture
def hostile():
    servers = []

    def make(script, **kw):
        s = HostileServer(script, **kw)
        servers.append(s)
        return s

    yield make
    for s in servers:
        s.close()


def test_the_hostile_server_stops_its_accept_thread_before_closing_the_listener():
    for _ in range(20):
        s = HostileServer(lambda peer: None)
        s.close()
        assert not s.acceptor.is_alive() and s.listener.fileno() == -1


class Measured:
    """Wall time, CPU time of this thread, and the tracemalloc peak of a block."""

    def __enter__(self):
        tracemalloc.start()
        self.t0 = time.monotonic()
        self.c0 = time.thread_time()
        return self

    def __exit__(self, *exc):
        self.wall = time.monotonic() - self.t0
        self.cpu = time.thread_time() - self.c0
        _cur, self.peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        return False


# -- the client against a hostile server -------------------------------------------------

TIMEOUT_MS = 1500
MARGIN = 2.0          # seconds beyond the timeout: a hang check, not a speed check
LIMIT = MIB           # the client's max_packet_size in these tests
# max_packet_size bounds the payload (docs/reliability.md §6): a packet body may be up to
# ARGS_SLACK bytes longer for the handle, names and unique around it, so the
# smallest length refused from the header alone is OVER_LIMIT.
OVER_LIMIT = LIMIT + gearman._core.ARGS_SLACK + 1


def answer_submit(*chunks, then="close", trickle=False):
    """A script: serve the OPTION_REQ, wait for the job, send ``chunks``, then
    ``close`` / ``reset`` / ``stall`` / ``serve`` (answer later jobs normally)."""

    def script(peer):
        p = peer.expect(SUBMIT_JOB, SUBMIT_JOB_BG)
        if p is None:
            return
        for chunk in chunks:
            if trickle:
                peer.trickle(chunk)
            else:
                peer.send(chunk)
        if then == "stall":
            peer.stall()
        elif then == "reset":
            peer.close(reset=True)
        elif then == "serve":
            n = 100
            while True:
                p = peer.expect(SUBMIT_JOB, SUBMIT_JOB_BG)
                if p is None:
                    return
                n += 1
                h = b"H:hostile:%d" % n
                peer.send(res(JOB_CREATED, h), hostile=False)
                if p[0] == SUBMIT_JOB:
                    peer.send(res(WORK_COMPLETE, h, b"ok:" + p[1][2]), hostile=False)

    return script


def call_client(server, *, background=False, limit=LIMIT, timeout_ms=TIMEOUT_MS):
    """Run one do* call against ``server``; returns (result, error, Measured)."""
    c = gearman.GearmanClient(max_packet_size=limit, connect_timeout=2.0)
    c.addServer("127.0.0.1", server.port)
    c.setTimeout(timeout_ms)
    result = err = None
    with Measured() as m:
        try:
            if background:
                result = c.doBackground("f", b"payload")
            else:
                result = c.doNormal("f", b"payload")
        except errors.GearmanError as e:
            err = e
    c.close()
    return result, err, m


def check_bounded(m, limit=LIMIT, timeout_ms=TIMEOUT_MS, slack=3 * LIMIT):
    """Within the timeout, little CPU, and nothing near a hostile length
    allocated (``slack``: the tight bound has its own test)."""
    assert m.wall < timeout_ms / 1000.0 + MARGIN, f"call took {m.wall:.2f} s"
    assert m.cpu < 0.5, f"call burnt {m.cpu:.2f} s of CPU (spin?)"
    assert m.peak < limit + slack, f"allocated {m.peak} bytes with max_packet_size={limit}"


H = b"H:hostile:1"

# name -> (bytes sent in answer to SUBMIT_JOB, what the server does then, expected errors)
DAMAGE = {
    "negative_length": (header(JOB_CREATED, -12), "stall", errors.ConnectionError),
    "length_minus_one": (header(JOB_CREATED, -1), "stall", errors.ConnectionError),
    "length_2GiB": (header(JOB_CREATED, 2 ** 31), "stall", errors.ConnectionError),
    "length_just_over_limit": (header(WORK_DATA, OVER_LIMIT), "stall", errors.ConnectionError),
    "length_huge_with_body": (header(JOB_CREATED, 0x7FFFFFFF) + b"x" * 70000, "stall",
                              errors.ConnectionError),
    "magic_REQ": (header(JOB_CREATED, len(H), REQ) + H, "stall", errors.ConnectionError),
    "magic_garbage": (b"\x00XYZ" + struct.pack(">II", JOB_CREATED, len(H)) + H, "stall",
                      errors.ConnectionError),
    "http_banner": (b"HTTP/1.1 400 Bad Request\r\n\r\n", "stall", errors.ConnectionError),
    "text_line": (b"OK 1.1.20\n", "stall", errors.ConnectionError),
    "all_zero_header": (b"\x00" * 12, "stall", errors.ConnectionError),
    "unknown_command_0": (header(0, 0), "stall", errors.ConnectionError),
    "unknown_command_43": (header(43, 0), "stall", errors.ConnectionError),
    "unknown_command_1000": (header(1000, 4) + b"abcd", "stall", errors.ConnectionError),
    "unknown_command_max": (header(0xFFFFFFFF, 0), "stall", errors.ConnectionError),
    "request_command_from_server": (res(SUBMIT_JOB, b"f", b"", b"x"), "stall",
                                    errors.ConnectionError),
    "worker_packet_to_client": (res(JOB_ASSIGN, H, b"f", b"x"), "stall", errors.ConnectionError),
    "status_instead_of_created": (res(STATUS_RES, H, b"1", b"0", b"0", b"0"), "stall",
                                  errors.ConnectionError),
    # harmless if ignored: then the call simply times out
    "noop_with_body": (res(NOOP, b"junk"), "stall",
                       (errors.ConnectionError, errors.GearmanTimeoutError)),
    "complete_without_nul": (res(JOB_CREATED, H) + res(WORK_COMPLETE, length=len(H)) + H,
                             "stall", errors.ConnectionError),
    "status_missing_args": (res(JOB_CREATED, H) + res(WORK_STATUS, H), "stall",
                            errors.ConnectionError),
    "second_job_created": (res(JOB_CREATED, H) + res(JOB_CREATED, b"H:hostile:2"), "stall",
                           errors.ConnectionError),
    "truncated_header_then_close": (res(JOB_CREATED, H)[:7], "close", errors.ConnectionError),
    "truncated_body_then_close": (res(JOB_CREATED, H)[:15], "close", errors.ConnectionError),
    "truncated_result_then_close": (res(JOB_CREATED, H) + res(WORK_COMPLETE, H, b"r" * 100)[:40],
                                    "close", errors.ConnectionError),
    "truncated_then_reset": (res(JOB_CREATED, H)[:15], "reset", errors.ConnectionError),
    "created_then_reset": (res(JOB_CREATED, H), "reset", errors.ConnectionError),
    "close_without_answer": ((), "close", errors.ConnectionError),
    "truncated_header_then_stall": (res(JOB_CREATED, H)[:7], "stall", errors.GearmanTimeoutError),
    "truncated_body_then_stall": (res(JOB_CREATED, H)[:15], "stall", errors.GearmanTimeoutError),
    "announce_limit_then_stall": (header(WORK_DATA, LIMIT) + b"x" * 1000, "stall",
                                  errors.GearmanTimeoutError),
    "no_answer": ((), "stall", errors.GearmanTimeoutError),
    "noops_then_stall": (res(NOOP) * 20000, "stall", errors.GearmanTimeoutError),
}


@pytest.mark.parametrize("background", [False, True], ids=["doNormal", "doBackground"])
@pytest.mark.parametrize("case", sorted(DAMAGE))
def test_client_ends_in_a_typed_error(hostile, case, background):
    data, then, expected = DAMAGE[case]
    if isinstance(data, bytes):
        data = (data,)
    server = hostile(answer_submit(*data, then=then))
    result, err, m = call_client(server, background=background)
    if background and case in ("complete_without_nul", "status_missing_args",
                               "second_job_created", "truncated_result_then_close",
                               "created_then_reset"):
        # JOB_CREATED came first: a background call is already answered.
        assert err is None and result == H.decode()
    else:
        assert result is None, f"{case}: accepted {result!r}"
        assert isinstance(err, expected), f"{case}: {type(err).__name__}: {err}"
        assert str(err)
    check_bounded(m)


@pytest.mark.parametrize("trickle", [False, True], ids=["whole", "byte_by_byte"])
def test_answers_for_unknown_handles_are_dropped(hostile, trickle):
    """WORK_* for handles nobody waits for, and ERROR outside any request, are
    ignored; the real answer still arrives, and the connection goes on."""
    chunks = (
        res(JOB_CREATED, H),
        res(WORK_COMPLETE, b"H:hostile:999", b"not yours"),
        res(WORK_DATA, b"H:elsewhere:5", b"nor this"),
        res(WORK_STATUS, b"H:hostile:998", b"1", b"2"),
        res(WORK_FAIL, b"H:hostile:997"),
        res(WORK_EXCEPTION, b"H:hostile:996", b"boom"),
        res(ERROR, b"SOME_ERROR", b"said outside any request"),
        res(WORK_STATUS, H, b"1", b"2"),
        res(WORK_DATA, H, b"part1-"),
        res(WORK_COMPLETE, H, b"part2"),
    )
    server = hostile(answer_submit(*chunks, then="serve", trickle=trickle))
    c = gearman.GearmanClient(max_packet_size=LIMIT)
    c.addServer("127.0.0.1", server.port)
    c.setTimeout(10000)
    with Measured() as m:
        assert c.doNormal("f", b"w") == b"part1-part2"
        assert c.doNormal("f", b"again") == b"ok:again"     # same connection goes on
    assert server.connections == 1
    assert m.peak < LIMIT
    c.close()


@pytest.mark.parametrize("code,cls", [
    (b"QUEUE_ERROR", errors.QueueFullError),
    (b"JOB_NOT_FOUND", errors.ServerError),
    (b"ARGUMENT_TOO_LARGE", errors.ServerError),
    (b"\xff\xfe not ascii", errors.ServerError),
])
def test_error_packet_fails_only_the_request_it_answers(hostile, code, cls):
    server = hostile(answer_submit(res(ERROR, code, b"refused by the hostile peer"),
                                   then="serve"))
    c = gearman.GearmanClient(max_packet_size=LIMIT)
    c.addServer("127.0.0.1", server.port)
    c.setTimeout(5000)
    with pytest.raises(cls) as ei:
        c.doNormal("f", b"w")
    assert "refused by the hostile peer" in str(ei.value)
    assert ei.value.server_code == code.decode("ascii", "replace")
    assert c.doNormal("f", b"next") == b"ok:next"             # connection still usable
    assert c.doBackground("f", b"bg").startswith("H:hostile:")
    assert server.connections == 1
    c.close()


def test_error_packet_in_a_pipelined_batch_fails_one_task(hostile):
    """An ERROR answers the head of the FIFO: the task it answers fails, the
    tasks behind it still get their own JOB_CREATED."""

    def script(peer):
        n = 0
        while True:
            p = peer.expect(SUBMIT_JOB_BG)
            if p is None:
                return
            n += 1
            if n == 3:
                peer.send(res(ERROR, b"QUEUE_ERROR", b"full"))
            else:
                peer.send(res(JOB_CREATED, b"H:hostile:%d" % n), hostile=False)

    server = hostile(script)
    c = gearman.GearmanClient(max_packet_size=LIMIT)
    c.addServer("127.0.0.1", server.port)
    c.setTimeout(5000)
    tasks = [c.addTaskBackground("f", b"w%d" % i) for i in range(6)]
    c.runTasks()
    handles = [t.jobHandle() for t in tasks]
    assert handles[2] == ""
    assert isinstance(tasks[2].exception, errors.QueueFullError)
    assert handles[:2] + handles[3:] == [f"H:hostile:{i}" for i in (1, 2, 4, 5, 6)]
    c.close()


def test_many_bad_servers_in_a_pool_do_not_stop_a_good_one(hostile, gearmand):
    """Every kind of damage at once, one hostile server per kind, plus the real
    gearmand: background jobs routed to a broken server end in a typed error
    (the outcome of a job that reached a server is unknown, so it is not resent),
    jobs routed to the good one are accepted, and nothing hangs."""
    bad = [hostile(answer_submit(DAMAGE[k][0], then=DAMAGE[k][1]))
           for k in ("negative_length", "magic_garbage", "unknown_command_43",
                     "truncated_body_then_close", "http_banner")]
    c = gearman.GearmanClient(max_packet_size=LIMIT, connect_timeout=2.0)
    for s in bad:
        c.addServer("127.0.0.1", s.port)
    c.addServer("127.0.0.1", gearmand.port)
    c.setTimeout(TIMEOUT_MS)
    accepted = failed = 0
    with Measured() as m:
        for i in range(40):
            try:
                c.doBackground("hostile-pool-fn", b"x", f"u{i}")
                accepted += 1
            except (errors.ConnectionError, errors.GearmanTimeoutError):
                failed += 1
    assert accepted + failed == 40 and accepted >= 20
    assert m.wall < 40 * (TIMEOUT_MS / 1000.0) and m.cpu < 2.0
    c.close()


def test_flood_of_work_data_is_bounded_by_max_packet_size(hostile):
    """A server that streams WORK_DATA chunks (each within the limit) for one job:
    the client must not assemble a result bigger than max_packet_size."""
    limit = 256 * 1024
    chunk = res(WORK_DATA, H, b"d" * 60000)

    def script(peer):
        if peer.expect(SUBMIT_JOB) is None:
            return
        peer.send(res(JOB_CREATED, H))
        for _ in range(64):                  # 3.8 MB in chunks of 60 kB
            peer.send(chunk)
        peer.send(res(WORK_COMPLETE, H, b"end"))
        peer.stall()

    server = hostile(script)
    c = gearman.GearmanClient(max_packet_size=limit)
    c.addServer("127.0.0.1", server.port)
    c.setTimeout(5000)
    result = err = None
    with Measured() as m:
        try:
            result = c.doNormal("f", b"w")
        except errors.GearmanError as e:
            err = e
    assert result is None or len(result) <= limit, \
        f"doNormal assembled {len(result)} bytes with max_packet_size={limit}"
    assert isinstance(err, errors.GearmanError)
    assert m.peak < 4 * limit
    c.close()


@pytest.mark.parametrize("case,reason", [
    ("length_2GiB", "max_packet_size"),
    ("magic_garbage", "magic"),
    ("unknown_command_43", "unknown command"),
])
def test_protocol_damage_is_named_in_the_error(hostile, case, reason):
    """The typed error says what went wrong (in its text or its __cause__): a
    caller cannot act on a bare "lost connection" when the server sent garbage."""
    data, then, _ = DAMAGE[case]
    server = hostile(answer_submit(data, then=then))
    _result, err, _m = call_client(server)
    assert isinstance(err, errors.GearmanError)
    told = str(err) + " | " + str(err.__cause__ or "")
    assert reason in told, f"{type(err).__name__}: {told}"


def test_result_over_max_packet_size_is_refused_clearly(hostile):
    """A WORK_COMPLETE larger than the client's max_packet_size: the error is
    PacketTooLargeError (GEARMAN_DATA_TOO_LARGE), not an anonymous lost connection,
    and nothing of that size is allocated."""
    server = hostile(answer_submit(res(JOB_CREATED, H), header(WORK_COMPLETE, 4 * LIMIT),
                                   then="stall"))
    _result, err, m = call_client(server)
    assert isinstance(err, errors.PacketTooLargeError), f"{type(err).__name__}: {err}"
    assert err.code == gearman.GEARMAN_DATA_TOO_LARGE
    check_bounded(m)


def test_huge_handle_is_not_kept(hostile):
    """gearmand's handles are under 64 bytes; a 200 kB "handle" is either refused
    with a typed error or at least does not crash the client."""
    big = b"H:" + b"h" * 200000
    server = hostile(answer_submit(res(JOB_CREATED, big), then="stall"))
    result, err, m = call_client(server, background=True)
    assert err is None or isinstance(err, errors.GearmanError)
    check_bounded(m)


def test_server_that_never_accepts_data_back(hostile):
    """A server that reads nothing: a large submission fills the socket buffers;
    the call still ends at its timeout."""

    def script(peer):
        peer.stall()

    server = hostile(script)
    c = gearman.GearmanClient(max_packet_size=64 * MIB)
    c.addServer("127.0.0.1", server.port)
    c.setTimeout(TIMEOUT_MS)
    with Measured() as m:
        with pytest.raises(errors.GearmanTimeoutError):
            c.doBackground("f", b"z" * (32 * MIB))
    assert m.wall < TIMEOUT_MS / 1000.0 + MARGIN and m.cpu < 1.0
    c.close()


# -- the worker against a hostile server -------------------------------------------------

def assign(fn=b"f", handle=H, unique=b"u", payload=b"payload"):
    return res(JOB_ASSIGN_UNIQ, handle, fn, unique, payload)


def answer_grab(*chunks, then="stall", every_connection=True):
    """A script for workers: wait for a GRAB, send ``chunks``, then ``then``."""
    seen = []

    def script(peer):
        if seen and not every_connection:
            serve_idle(peer)
            return
        seen.append(1)
        p = peer.expect(*GRABS)
        if p is None:
            return
        for chunk in chunks:
            peer.send(chunk)
        if then == "stall":
            peer.stall()
        elif then == "reset":
            peer.close(reset=True)
        # "close": return, the server closes

    script.seen = seen
    return script


def serve_idle(peer):
    """Answer every GRAB with NO_JOB, never wake the worker."""
    while True:
        p = peer.expect(*GRABS)
        if p is None:
            return
        peer.send(res(NO_JOB), hostile=False)


def make_worker(server, limit=LIMIT, timeout_ms=TIMEOUT_MS, fn="f", callback=None):
    w = gearman.GearmanWorker(max_packet_size=limit, connect_timeout=2.0)
    w.addServer("127.0.0.1", server.port)
    w.addFunction(fn, callback or (lambda job, ctx: b"done:" + job.workload()))
    w.setTimeout(timeout_ms)
    return w


WORKER_DAMAGE = {
    "negative_length": (header(JOB_ASSIGN_UNIQ, -12), "stall"),
    "length_2GiB": (header(JOB_ASSIGN_UNIQ, 2 ** 31), "stall"),
    "length_over_limit": (header(JOB_ASSIGN_UNIQ, OVER_LIMIT), "stall"),
    "magic_REQ": (header(NO_JOB, 0, REQ), "stall"),
    "text_line": (b"ERR UNKNOWN_COMMAND\r\n", "stall"),
    "unknown_command_0": (header(0, 0), "stall"),
    "unknown_command_77": (header(77, 3) + b"abc", "stall"),
    "client_packet_to_worker": (res(WORK_COMPLETE, H, b"x"), "stall"),
    "job_created_to_worker": (res(JOB_CREATED, H), "stall"),
    "assign_missing_args": (res(JOB_ASSIGN_UNIQ, H, b"f"), "stall"),
    "assign_all_missing_args": (res(JOB_ASSIGN_ALL, H, b"f", b"u"), "stall"),
    "no_job_with_body": (res(NO_JOB, b"zz"), "stall"),
    "truncated_assign_then_close": (assign()[:20], "close"),
    "truncated_header_then_close": (assign()[:5], "close"),
    "truncated_assign_then_reset": (assign()[:20], "reset"),
    "close_at_grab": ((), "close"),
    "truncated_assign_then_stall": (assign()[:20], "stall"),
    "announce_limit_then_stall": (header(JOB_ASSIGN_UNIQ, LIMIT) + b"x" * 1000, "stall"),
    "no_answer_to_grab": ((), "stall"),
}


@pytest.mark.parametrize("case", sorted(WORKER_DAMAGE))
def test_worker_survives_damage_within_its_timeout(hostile, case):
    """work() returns False within its timeout, without spinning on reconnects
    (backoff), without allocating a hostile length, and runs no job."""
    data, then = WORKER_DAMAGE[case]
    if isinstance(data, bytes):
        data = (data,)
    ran = []
    server = hostile(answer_grab(*data, then=then))
    w = make_worker(server, callback=lambda job, ctx: ran.append(job) or b"")
    with Measured() as m:
        ok = w.work()
    assert ok is False and not ran
    assert w.returnCode() != gearman.GEARMAN_SUCCESS
    check_bounded(m)
    w.close()


@pytest.mark.parametrize("case", ["close_at_grab", "magic_REQ"])
def test_worker_backs_off_from_a_server_that_keeps_breaking(hostile, case):
    """A server that accepts the connection and then breaks it, every time, is
    reconnected with growing (jittered exponential) backoff, not every few ms:
    a successful TCP connect alone must not reset the backoff."""
    data, then = WORKER_DAMAGE[case]
    if isinstance(data, bytes):
        data = (data,)
    server = hostile(answer_grab(*data, then=then), max_connections=1000)
    w = make_worker(server, timeout_ms=1500)
    assert w.work() is False
    # 0.05 s doubling (x0.5-1 jitter) gives at most ~8 attempts in 1.5 s
    assert server.connections <= 12, f"{server.connections} connections in 1.5 s"
    w.close()


@pytest.mark.parametrize("side", ["client", "worker"])
def test_a_packet_of_exactly_max_packet_size_allocates_no_more(hostile, side):
    """A peer announces a packet of exactly max_packet_size and sends a little of
    it: the receive buffer may grow to the limit (plus a read window), never to
    twice the limit (geometric growth past the announced size)."""
    if side == "client":
        server = hostile(answer_submit(header(WORK_DATA, LIMIT) + b"x" * 1000, then="stall"))
        _result, err, m = call_client(server)
        assert isinstance(err, errors.GearmanTimeoutError)
    else:
        server = hostile(answer_grab(header(JOB_ASSIGN_UNIQ, LIMIT) + b"x" * 1000))
        w = make_worker(server)
        with Measured() as m:
            assert w.work() is False
        w.close()
    check_bounded(m, slack=256 * 1024)


@pytest.mark.parametrize("case", ["length_over_limit", "magic_REQ"])
def test_worker_reports_the_damage_in_its_return_code(hostile, case):
    """work() after protocol damage says so: a return code and error text naming
    the problem, not a plain GEARMAN_TIMEOUT that hides it."""
    data, then = WORKER_DAMAGE[case]
    server = hostile(answer_grab(data, then=then))
    w = make_worker(server)
    assert w.work() is False
    assert w.returnCode() != gearman.GEARMAN_TIMEOUT, w.error()
    w.close()


def test_worker_recovers_when_the_server_behaves_again(hostile):
    """The first connection sends garbage; the worker reconnects (after its
    backoff) and runs the job the next connection offers."""
    state = {"n": 0}

    def script(peer):
        state["n"] += 1
        p = peer.expect(*GRABS)
        if p is None:
            return
        if state["n"] == 1:
            peer.send(b"\x00XYZgarbage!")
            return
        peer.send(assign(payload=b"second"))
        peer.expect(WORK_COMPLETE)
        serve_idle(peer)

    server = hostile(script)
    w = make_worker(server, timeout_ms=5000)
    assert w.work() is True
    assert server.connections == 2
    w.close()


def test_worker_error_in_answer_to_grab_does_not_wedge_it(hostile):
    """gearmand may answer GRAB_JOB with ERROR.  The worker must neither stop
    grabbing for good (a wedge) nor re-grab in a tight loop: it sleeps
    (PRE_SLEEP) and grabs again when woken."""
    state = {"grabs": 0}

    def script(peer):
        while True:
            p = peer.expect(PRE_SLEEP, *GRABS, timeout=10)
            if p is None:
                return
            if p[0] == PRE_SLEEP:
                peer.send(res(NOOP), hostile=False)
                continue
            state["grabs"] += 1
            if state["grabs"] == 1:
                peer.send(res(ERROR, b"JOB_NOT_FOUND", b"grab refused"))
            else:
                peer.send(assign(payload=b"after-error"))
                peer.expect(WORK_COMPLETE)
                serve_idle(peer)
                return

    server = hostile(script)
    w = make_worker(server, timeout_ms=3000)
    with Measured() as m:
        ok = w.work()
    assert ok is True, w.error()
    assert m.cpu < 0.5
    w.close()


def test_worker_error_packets_mid_stream_are_survived(hostile):
    """ERROR packets between jobs (e.g. JOB_NOT_FOUND after a late WORK_COMPLETE)
    are logged and ignored; the connection goes on."""

    def script(peer):
        p = peer.expect(*GRABS)
        if p is None:
            return
        peer.send(res(ERROR, b"JOB_NOT_FOUND", b"stale") + assign(payload=b"one"))
        peer.expect(WORK_COMPLETE)
        peer.send(res(ERROR, b"JOB_NOT_FOUND", b"stale again"), hostile=True)
        p = peer.expect(*GRABS)
        if p is None:
            return
        peer.send(assign(handle=b"H:hostile:2", payload=b"two"))
        peer.expect(WORK_COMPLETE)
        serve_idle(peer)

    server = hostile(script)
    w = make_worker(server, timeout_ms=5000)
    assert w.work() is True
    assert w.work() is True
    assert server.connections == 1
    w.close()


def test_worker_job_for_an_unregistered_function_is_failed(hostile):
    """A JOB_ASSIGN for a function this worker never registered: WORK_FAIL, and
    the worker goes on."""
    got = []
    answered = threading.Event()

    def script(peer):
        p = peer.expect(*GRABS)
        if p is None:
            return
        peer.send(assign(fn=b"never-registered"))
        got.append(peer.expect(WORK_FAIL, WORK_COMPLETE, WORK_EXCEPTION))
        answered.set()
        serve_idle(peer)

    server = hostile(script)
    w = make_worker(server)
    # answered (WORK_FAIL) is handled: work() goes on like after any failed job
    assert w.work() is True
    assert w.returnCode() == gearman.GEARMAN_SUCCESS
    assert answered.wait(5)
    assert got[0] is not None and got[0][0] == WORK_FAIL and got[0][1][0] == H
    w.close()


def test_worker_connection_reset_while_running_a_job(hostile):
    """The server resets the connection while the callback runs: sending the
    result fails with a typed error and work() reports a lost connection."""

    def script(peer):
        p = peer.expect(*GRABS)
        if p is None:
            return
        peer.send(assign(payload=b"x"))
        time.sleep(0.1)
        peer.close(reset=True)

    server = hostile(script)

    def slow(job, ctx):
        time.sleep(0.5)
        for _ in range(3):
            job.sendData(b"d" * 1000)
        return b"never delivered"

    w = make_worker(server, callback=slow)
    assert w.work() is False
    assert w.returnCode() == gearman.GEARMAN_LOST_CONNECTION
    w.close()


def test_worker_trickled_assign_is_parsed(hostile):
    """A JOB_ASSIGN delivered one byte at a time is a whole job."""

    def script(peer):
        p = peer.expect(*GRABS)
        if p is None:
            return
        peer.trickle(res(NOOP) + assign(payload=b"slowly"))
        peer.expect(WORK_COMPLETE)
        serve_idle(peer)

    server = hostile(script)
    results = []
    w = make_worker(server, timeout_ms=5000,
                    callback=lambda job, ctx: results.append(job.workload()) or b"ok")
    assert w.work() is True
    assert results == [b"slowly"]
    w.close()


def test_reply_of_the_wrong_type_leaves_no_phantom_task(hostile):
    """A STATUS_RES where JOB_CREATED was due (during runTasks): the connection
    is dropped with a ProtocolError as the named cause, every task on it ends,
    and a later runTasks neither waits for a phantom task nor hangs."""
    replies = []

    def script(peer):
        n = 0
        while True:
            p = peer.expect(SUBMIT_JOB_BG)
            if p is None:
                return
            n += 1
            if n == 2 and not replies:
                replies.append("wrong")
                peer.send(res(STATUS_RES, b"H:x", b"0", b"0", b"0", b"0"))
            else:
                peer.send(res(JOB_CREATED, b"H:hostile:%d" % n), hostile=False)

    server = hostile(script)
    c = gearman.GearmanClient(max_packet_size=LIMIT)
    c.addServer("127.0.0.1", server.port)
    c.setTimeout(5000)
    tasks = [c.addTaskBackground("f", b"w%d" % i) for i in range(3)]
    with pytest.raises(errors.LostConnectionError) as ei:
        c.runTasks()
    assert isinstance(ei.value.__cause__, errors.ProtocolError)
    assert "STATUS_RES" in str(ei.value)
    assert all(t.finished for t in tasks)
    assert c._engine.outstanding == 0
    # the client is usable: the next runTasks ends on its own tasks
    more = [c.addTaskBackground("f", b"again%d" % i) for i in range(3)]
    c.runTasks()
    assert all(t.jobHandle().startswith("H:hostile:") for t in more)
    c.close()


def test_worker_keeps_no_unsolicited_echo_res(hostile):
    """ECHO_RES packets nobody asked for are dropped, not kept: a hostile
    server cannot grow a worker's memory with them."""

    def script(peer):
        p = peer.expect(*GRABS)
        if p is None:
            return
        for _ in range(2000):
            peer.send(res(ECHO_RES, b"x" * 1000), hostile=False)
        peer.send(res(NO_JOB), hostile=False)
        serve_idle(peer)

    server = hostile(script)
    w = make_worker(server, timeout_ms=1000)
    assert w.work() is False                    # no job came, only noise
    kept = sum(conn.in_flight for conn in w._engine.servers)
    assert kept == 0
    w.close()
