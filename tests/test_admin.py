"""gearman.admin: the typed admin API, against real gearmand servers.

Each test uses its own function names (the session gearmand is shared).
Line-ending and malformed-answer cases use a scripted peer (a socket that
answers with fixed bytes), the only non-gearmand server in this file.
"""
import os
import shutil
import socket
import subprocess
import ssl
import threading
import time
import uuid

import pytest

import gearman
from gearman import errors
from gearman.admin import (
    Admin,
    FunctionStatus,
    JobInfo,
    PriorityStatus,
    ServerInfo,
    Snapshot,
    WorkerInfo,
    merge_status,
)
from gearman.testing import wait_until


def _name(prefix="adm"):
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def _client(*servers):
    c = gearman.GearmanClient()
    for s in servers:
        c.addServer("127.0.0.1", s.port)
    c.setTimeout(10000)
    return c


@pytest.fixture
def admin(gearmand):
    a = Admin(gearmand.address, timeout=10)
    yield a
    a.close()


def _by_name(listing, name):
    found = [x for x in listing if x.name == name]
    assert len(found) <= 1
    return found[0] if found else None


# -- typed listings ----------------------------------------------------------------------

def test_status_counts_queued_jobs(admin, gearmand):
    fn = _name()
    with _client(gearmand) as c:
        c.doBackground(fn, b"a")
        c.doBackground(fn, b"b")
    st = _by_name(admin.status(), fn)
    assert st == FunctionStatus(fn, total=2, running=0, workers=0)
    assert st.waiting == 2
    per = admin.status(per_server=True)
    assert list(per) == [gearmand.address]
    assert _by_name(per[gearmand.address], fn) == st


def test_status_counts_running_jobs_and_workers(admin, gearmand, run_worker):
    fn = _name()
    started, release = threading.Event(), threading.Event()

    def slow(job, ctx):
        started.set()
        release.wait(20)
        return b"done"

    run_worker({fn: slow})
    assert wait_until(lambda: (_by_name(admin.status(), fn) or FunctionStatus(fn, 0, 0, 0)).workers == 1)
    with _client(gearmand) as c:
        c.doBackground(fn, b"x")
        c.doBackground(fn, b"y")
        assert started.wait(20)
        st = _by_name(admin.status(), fn)
        assert (st.total, st.running, st.workers, st.waiting) == (2, 1, 1, 1)
        release.set()
        assert wait_until(lambda: _by_name(admin.status(), fn).total == 0)


def test_priority_status_counts_waiting_jobs_per_priority(admin, gearmand):
    fn = _name()
    with _client(gearmand) as c:
        c.doHighBackground(fn, b"h")
        c.doBackground(fn, b"n1")
        c.doBackground(fn, b"n2")
        c.doLowBackground(fn, b"l")
    assert _by_name(admin.priority_status(), fn) == PriorityStatus(fn, 1, 2, 1, 0)


def test_workers_lists_ids_and_functions(admin, gearmand):
    f1, f2 = _name(), _name()
    w = gearman.GearmanWorker()
    w.addServer("127.0.0.1", gearmand.port)
    wid = "wid-" + uuid.uuid4().hex[:8]
    w.setId(wid)
    w.addFunction(f1, lambda j, c: b"")
    w.addFunction(f2, lambda j, c: b"")
    w.setTimeout(50)
    try:
        w.work()            # connects, registers, times out
        assert wait_until(lambda: any(x.client_id == wid for x in admin.workers()))
        mine = [x for x in admin.workers() if x.client_id == wid]
        assert len(mine) == 1
        info = mine[0]
        assert isinstance(info, WorkerInfo)
        assert set(info.functions) == {f1, f2}
        assert info.ip == "127.0.0.1"
        assert isinstance(info.fd, int)
        assert info.server == gearmand.address
        # Our own admin connection is listed too, without id or functions.
        assert any(x.client_id is None and x.functions == () for x in admin.workers())
    finally:
        w.close()


def test_show_jobs_and_unique_jobs(admin, gearmand):
    fn, unique = _name(), "u-" + uuid.uuid4().hex
    with _client(gearmand) as c:
        handle = c.doBackground(fn, b"payload", unique)
    jobs = [j for j in admin.show_jobs() if j.handle == handle]
    assert jobs == [JobInfo(handle, retries=0, ignored=False, queued=True, server=gearmand.address)]
    assert unique in admin.show_unique_jobs()
    assert unique in admin.show_unique_jobs(per_server=True)[gearmand.address]


def test_version_getpid_verbose_info(admin, gearmand):
    a = gearmand.address
    assert admin.version()[a].startswith("1.")
    assert admin.getpid() == {a: gearmand.pid}
    assert admin.verbose() == {a: "INFO"}           # the fixture runs --verbose=INFO
    info = admin.info()[a]
    assert info == ServerInfo(a, admin.version()[a], gearmand.pid, "INFO")
    snap = admin.snapshot()[a]
    assert isinstance(snap, Snapshot) and snap.info == info
    assert all(isinstance(s, FunctionStatus) for s in snap.status)
    assert all(isinstance(w, WorkerInfo) for w in snap.workers)


# -- changes ----------------------------------------------------------------------------

def test_create_function_keeps_the_last_character(admin):
    # gearmand drops the last character of an LF-only "create function" line;
    # Admin sends CRLF, so the name arrives whole.
    fn = _name()
    assert admin.create_function(fn) is None
    assert _by_name(admin.status(), fn) == FunctionStatus(fn, 0, 0, 0)
    assert _by_name(admin.status(), fn[:-1]) is None


def test_drop_function(admin, gearmand):
    fn = _name()
    admin.create_function(fn)
    assert admin.drop_function(fn) == [gearmand.address]
    assert _by_name(admin.status(), fn) is None
    with pytest.raises(errors.ServerError, match="not found"):
        admin.drop_function(fn)
    assert admin.drop_function(fn, per_server=True) == {gearmand.address: False}


def test_drop_function_refused_while_a_worker_has_it(admin, gearmand):
    fn = _name()
    w = gearman.GearmanWorker()
    w.addServer("127.0.0.1", gearmand.port)
    w.addFunction(fn, lambda j, c: b"")
    w.setTimeout(50)
    try:
        w.work()
        assert wait_until(lambda: (_by_name(admin.status(), fn) or FunctionStatus(fn, 0, 0, 0)).workers == 1)
        with pytest.raises(errors.ServerError, match="still connected workers") as info:
            admin.drop_function(fn)
        assert info.value.server == gearmand.address
        assert isinstance(admin.drop_function(fn, per_server=True)[gearmand.address],
                          errors.ServerError)
    finally:
        w.close()


def test_maxqueue_limits_and_resets(admin, gearmand):
    fn = _name()
    admin.maxqueue(fn, 1, 1, 1)
    with _client(gearmand) as c:
        c.doBackground(fn, b"1")
        with pytest.raises(errors.QueueFullError):
            c.doBackground(fn, b"2")
        admin.maxqueue(fn)                    # every limit removed
        c.doBackground(fn, b"3")
    assert _by_name(admin.status(), fn).total == 2


def test_maxqueue_per_priority(admin, gearmand):
    fn = _name()
    admin.maxqueue(fn, high=None, normal=1, low=1)
    with _client(gearmand) as c:
        c.doBackground(fn, b"n1")
        with pytest.raises(errors.QueueFullError):
            c.doLowBackground(fn, b"l")
        c.doHighBackground(fn, b"h")          # high is unlimited
    assert admin.maxqueue(fn, per_server=True) == {gearmand.address: True}


def test_cancel_job(admin, gearmand):
    fn = _name()
    with _client(gearmand) as c:
        handle = c.doBackground(fn, b"x")
    assert admin.cancel_job(handle) == gearmand.address
    assert [j.ignored for j in admin.show_jobs() if j.handle == handle] == [True]
    with pytest.raises(errors.ServerError) as info:
        admin.cancel_job("H:no-such-host:1")
    assert info.value.server_code == "UNKNOWN_JOB"
    assert admin.cancel_job("H:no-such-host:1", per_server=True) == {gearmand.address: False}


def test_cancel_fails_a_waiting_foreground_client(admin, gearmand):
    fn = _name()
    c = _client(gearmand)
    task = c.addTask(fn, b"x")
    c.setTimeout(1)
    with pytest.raises(errors.GearmanTimeoutError):
        c.runTasks()        # submitted, JOB_CREATED received, nobody works on it
    handle = task.jobHandle()
    assert handle
    admin.cancel_job(handle)
    c.setTimeout(10000)
    c.runTasks()
    assert task.returnCode() == gearman.GEARMAN_WORK_FAIL
    c.close()


# -- arguments ---------------------------------------------------------------------------

@pytest.mark.parametrize("bad", ["", "two words", "tab\there", "line\nbreak", "cr\r"])
def test_bad_words_are_refused_before_sending(admin, bad):
    for call in (admin.create_function, admin.drop_function, admin.cancel_job,
                 lambda n: admin.maxqueue(n, 1)):
        with pytest.raises(errors.InvalidArgumentError):
            call(bad)


def test_bad_constructor_arguments():
    with pytest.raises(errors.InvalidArgumentError):
        Admin("127.0.0.1:99999")
    with pytest.raises(errors.InvalidArgumentError):
        Admin("127.0.0.1", timeout=0)
    with pytest.raises(errors.InvalidTypeError):
        Admin(42)
    with pytest.raises(errors.InvalidTypeError):
        Admin("127.0.0.1", ssl_context="yes")
    with pytest.raises(errors.InvalidTypeError):
        Admin("127.0.0.1").maxqueue("fn", "10")


def test_server_list_forms_and_env(monkeypatch, gearmand):
    assert Admin(["127.0.0.1:1", ("127.0.0.1", 2)]).servers == ["127.0.0.1:1", "127.0.0.1:2"]
    assert Admin("LOCALHOST:5,localhost:5").servers == ["localhost:5"]   # one server once
    monkeypatch.setenv("GEARMAN_SERVERS", gearmand.address)
    with Admin() as a:
        assert a.servers == [gearmand.address]
        assert list(a.version()) == [gearmand.address]
    monkeypatch.delenv("GEARMAN_SERVERS")
    # a library object with no server and no GEARMAN_SERVERS: the one no-server
    # policy (docs/design.md), the same error as GearmanClient's first call
    with pytest.raises(errors.NoServersError, match="GEARMAN_SERVERS"):
        Admin()


# -- failures ---------------------------------------------------------------------------

def test_unreachable_server(dead_port):
    with Admin(f"127.0.0.1:{dead_port}", timeout=5) as a:
        with pytest.raises(errors.ServerUnavailable) as info:
            a.status()
        assert isinstance(info.value, ConnectionError)          # the builtin, too
        assert info.value.server == f"127.0.0.1:{dead_port}"
        res = a.version(per_server=True)
        assert isinstance(res[f"127.0.0.1:{dead_port}"], errors.ServerUnavailable)


def test_frozen_server_times_out_then_recovers(gearmand_factory):
    server = gearmand_factory()
    with Admin(server.address, timeout=0.5) as a:
        assert a.status() is not None
        server.pause()
        try:
            with pytest.raises(errors.GearmanTimeoutError) as info:
                a.status()
            assert isinstance(info.value, TimeoutError)
        finally:
            server.resume()
        # The connection that timed out was dropped: a late answer is not
        # taken for the next command's.
        assert isinstance(a.getpid()[server.address], int)
        assert isinstance(a.status(), list)


def test_reconnects_after_a_server_restart(gearmand_factory):
    server = gearmand_factory()
    with Admin(server.address, timeout=5) as a:
        first = a.getpid()[server.address]
        sock = a._conns[0].sock
        a.status()
        assert a._conns[0].sock is sock          # an idle healthy connection is reused
        server.restart()
        # The idle connection was closed by the dead server: noticed, replaced.
        second = a.getpid()[server.address]
        assert first != second == server.pid


def test_lost_connection_mid_answer():
    # A peer that accepts, reads the command and closes without answering.
    with _ScriptedPeer(lambda cmd: None, close_after=True) as peer:
        with Admin(peer.address, timeout=5) as a:
            with pytest.raises(errors.LostConnectionError):
                a.status()


# -- the pool --------------------------------------------------------------------------

def test_pool_fan_out_with_an_unreachable_server(gearmand_factory, free_port):
    s1, s2 = gearmand_factory(), gearmand_factory()
    fn, only1 = _name(), _name()
    with _client(s1) as c:
        c.doBackground(fn, b"1")
        c.doBackground(only1, b"1")
    with _client(s2) as c:
        c.doBackground(fn, b"2")
        c.doBackground(fn, b"3")
    dead = f"127.0.0.1:{free_port}"
    with Admin([s1.address, dead, s2.address], timeout=5) as a:
        assert a.servers == [s1.address, dead, s2.address]
        per = a.status(per_server=True)
        assert list(per) == [s1.address, dead, s2.address]        # pool order
        assert _by_name(per[s1.address], fn).total == 1
        assert _by_name(per[s2.address], fn).total == 2
        assert isinstance(per[dead], errors.ServerUnavailable)
        # Merged: a partial answer is never passed off as a whole one.
        with pytest.raises(errors.ServerUnavailable) as info:
            a.status()
        assert info.value.server == dead
        assert set(info.value.results) == {s1.address, dead, s2.address}
        pids = a.getpid(per_server=True)
        assert pids[s1.address] == s1.pid and pids[s2.address] == s2.pid
        assert isinstance(pids[dead], errors.ServerUnavailable)
    with Admin([s1.address, s2.address], timeout=5) as a:
        merged = a.status()
        assert _by_name(merged, fn) == FunctionStatus(fn, 3, 0, 0)
        assert _by_name(merged, only1) == FunctionStatus(only1, 1, 0, 0)
        assert [x.name for x in merged] == sorted(x.name for x in merged)
        assert {j.server for j in a.show_jobs()} == {s1.address, s2.address}
        assert len(a.show_jobs()) == 4
        assert set(a.getpid()) == {s1.address, s2.address}
        assert {w.server for w in a.workers()} == {s1.address, s2.address}
        assert _by_name(a.priority_status(), fn).normal == 3
        a.create_function("pool-made")
        assert _by_name(a.status(per_server=True)[s2.address], "pool-made") is not None
        assert sorted(a.drop_function("pool-made")) == sorted([s1.address, s2.address])


def test_pool_cancel_needs_the_server_when_handles_collide(gearmand_factory):
    # Two gearmand on one host issue the same handles (H:host:1, ...).
    s1, s2 = gearmand_factory(), gearmand_factory()
    fn = _name()
    with _client(s1) as c:
        h1 = c.doBackground(fn, b"1")
    with _client(s2) as c:
        h2 = c.doBackground(fn, b"2")
        only2 = c.doBackground(fn, b"3")
    assert h1 == h2
    with Admin([s1.address, s2.address], timeout=5) as a:
        with pytest.raises(errors.InvalidArgumentError, match="several servers"):
            a.cancel_job(h1)
        assert not any(j.ignored for j in a.show_jobs())       # nothing was cancelled
        assert a.cancel_job(h1, server=s2.address) == s2.address
        assert a.cancel_job(only2) == s2.address              # found on one server only
        ignored = {(j.server, j.handle) for j in a.show_jobs() if j.ignored}
        assert ignored == {(s2.address, h2), (s2.address, only2)}
        with pytest.raises(errors.InvalidArgumentError, match="not in the pool"):
            a.cancel_job(h1, server="127.0.0.1:1")


def test_merge_status_sums_per_function():
    merged = merge_status([[FunctionStatus("b", 1, 1, 1), FunctionStatus("a", 2, 0, 0)],
                           [FunctionStatus("b", 3, 0, 2)], []])
    assert merged == [FunctionStatus("a", 2, 0, 0), FunctionStatus("b", 4, 1, 3)]


def test_shared_by_threads(gearmand):
    errors_seen = []
    with Admin(gearmand.address, timeout=10) as a:
        def hammer():
            try:
                for _ in range(30):
                    assert a.getpid()[gearmand.address] == gearmand.pid
                    assert isinstance(a.status(), list)
            except BaseException as exc:   # pragma: no cover - reported below
                errors_seen.append(exc)
        threads = [threading.Thread(target=hammer) for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert not any(t.is_alive() for t in threads)
    assert errors_seen == []


def test_survives_fork(gearmand):
    with Admin(gearmand.address, timeout=10) as a:
        server_pid = gearmand.pid        # (a child cannot ask: gearmand is not its child)
        assert a.getpid()[gearmand.address] == server_pid      # connection opened
        pid = os.fork()
        if pid == 0:     # child: must open its own connection
            code = 1
            try:
                code = 0 if a.getpid()[gearmand.address] == server_pid else 1
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
        assert a.getpid()[gearmand.address] == gearmand.pid       # parent's still fine


# -- line endings and malformed answers (scripted peer) -----------------------------------

class _ScriptedPeer:
    """A TCP server answering each admin command line with ``answer(cmd) -> bytes``."""

    def __init__(self, answer, close_after=False):
        self.answer = answer
        self.close_after = close_after
        self.lines = []
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.address = "127.0.0.1:%d" % self.sock.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            buf = b""
            with conn:
                while True:
                    try:
                        data = conn.recv(4096)
                    except OSError:
                        break
                    if not data:
                        break
                    buf += data
                    while b"\n" in buf:
                        line, buf = buf.split(b"\n", 1)
                        self.lines.append(line)
                        if self.close_after:
                            conn.shutdown(socket.SHUT_RDWR)
                            break
                        reply = self.answer(line.rstrip(b"\r").decode())
                        if reply:
                            conn.sendall(reply)
                    if self.close_after:
                        break

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        try:
            self.sock.shutdown(socket.SHUT_RDWR)     # wakes the accept() (Linux)
        except OSError:
            pass
        self.sock.close()
        self.thread.join(5)


def test_commands_are_sent_with_crlf():
    with _ScriptedPeer(lambda cmd: b"OK\r\n") as peer:
        with Admin(peer.address, timeout=5) as a:
            a.create_function("abc")
            a.maxqueue("abc", 3)
    assert peer.lines == [b"create function abc\r", b"create function abc\r", b"maxqueue abc 3 0 0\r"]


@pytest.mark.parametrize("eol", [b"\n", b"\r\n"])
def test_any_line_end_style_is_accepted(eol):
    replies = {
        "status": b"fa\t3\t1\t2" + eol + b"." + eol,
        "prioritystatus": b"fa\t1\t1\t0\t2" + eol + b"." + eol,
        "workers": b"9 10.0.0.1 my worker : fa fb" + eol + b"10 ::1 - :" + eol + b"." + eol,
        "show jobs": b"H:x:1\t2\t1\t0" + eol + b"." + eol,
        "show unique jobs": b"u1" + eol + eol + b"." + eol,
        "version": b"OK 9.9" + eol,
        "getpid": b"OK 42" + eol,
        "verbose": b"OK DEBUG" + eol,
        "maxqueue f 1 1 1": b"OK" + eol,
        "create function f": b"OK" + eol,
    }
    with _ScriptedPeer(lambda cmd: replies[cmd]) as peer:
        a, addr = Admin(peer.address, timeout=5), peer.address
        assert a.status() == [FunctionStatus("fa", 3, 1, 2)]
        assert a.priority_status() == [PriorityStatus("fa", 1, 1, 0, 2)]
        assert a.workers() == [WorkerInfo(9, "10.0.0.1", "my worker", ("fa", "fb"), addr),
                               WorkerInfo(10, "::1", None, (), addr)]
        assert a.show_jobs() == [JobInfo("H:x:1", 2, True, False, addr)]
        assert a.show_unique_jobs() == ["u1", ""]
        assert a.info() == {addr: ServerInfo(addr, "9.9", 42, "DEBUG")}
        assert a.maxqueue("f", 1, 1, 1) is None
        a.close()


def test_err_answers_become_server_errors():
    def answer(cmd):
        if cmd == "show unique jobs":
            # a unique that looks like an error, then a real error for "status"
            return b"ERR NOT_AN_ERROR just+a+unique\n.\n"
        return b"ERR UNKNOWN_COMMAND Unknown+server+command" + cmd.encode() + b"\r\n"
    with _ScriptedPeer(answer) as peer, Admin(peer.address, timeout=5) as a:
        with pytest.raises(errors.ServerError) as info:
            a.status()
        assert info.value.server_code == "UNKNOWN_COMMAND"
        assert "Unknown server commandstatus" in str(info.value)
        assert a.show_unique_jobs() == ["ERR NOT_AN_ERROR just+a+unique"]
        with pytest.raises(errors.ServerError):
            a.version()
        # The stream stayed in step: the next answer is the right one.
        assert a.show_unique_jobs() == ["ERR NOT_AN_ERROR just+a+unique"]


@pytest.mark.parametrize("reply", [b"fa\t1\t2\n.\n", b"fa\tx\t0\t0\n.\n", b"NOPE\n"])
def test_malformed_answers_are_protocol_errors(reply):
    with _ScriptedPeer(lambda cmd: reply) as peer, Admin(peer.address, timeout=5) as a:
        with pytest.raises(errors.ProtocolError):
            if reply == b"NOPE\n":
                a.version()
            else:
                a.status()


def test_raw_command(admin, gearmand):
    out = admin.command("version")
    assert out[gearmand.address][0].startswith("OK ")
    assert isinstance(admin.command("status", listing=True)[gearmand.address], list)
    assert isinstance(admin.command("nonsense")[gearmand.address], errors.ServerError)
    with pytest.raises(errors.InvalidArgumentError):
        admin.command("status\nversion")


# -- TLS ----------------------------------------------------------------------------------

@pytest.fixture
def tls_front(gearmand, tmp_path, free_port):
    """A socat TLS listener before the session gearmand: (address, ca_path)."""
    if shutil.which("socat") is None or shutil.which("openssl") is None:
        pytest.skip("socat and openssl are needed for the TLS front")
    ca_key, ca, key, csr, cert = (str(tmp_path / n) for n in
                                  ("ca.key", "ca.pem", "srv.key", "srv.csr", "srv.pem"))
    ext = tmp_path / "ext.cnf"
    ext.write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    run = lambda *a: subprocess.run(a, check=True, capture_output=True, timeout=60)
    run("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", ca_key,
        "-out", ca, "-days", "2", "-subj", "/CN=cygearman test CA")
    run("openssl", "req", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", csr,
        "-subj", "/CN=localhost")
    run("openssl", "x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial",
        "-out", cert, "-days", "2", "-extfile", str(ext))
    proc = subprocess.Popen(
        ["socat", f"OPENSSL-LISTEN:{free_port},bind=127.0.0.1,reuseaddr,fork,cert={cert},"
                  f"key={key},verify=0", f"TCP:127.0.0.1:{gearmand.port}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def listening():
        try:
            socket.create_connection(("127.0.0.1", free_port), timeout=1).close()
            return True
        except OSError:
            return False
    try:
        assert wait_until(listening, timeout=10), "socat did not start"
        yield f"127.0.0.1:{free_port}", ca
    finally:
        proc.kill()
        proc.wait(10)


def test_admin_over_tls(tls_front, gearmand):
    address, ca = tls_front
    ctx = ssl.create_default_context(cafile=ca)
    with Admin(address, timeout=10, ssl_context=ctx) as a:
        assert a.getpid() == {address: gearmand.pid}
        sock = a._conns[0].sock
        assert isinstance(sock, ssl.SSLSocket)
        time.sleep(0.2)          # let TLS 1.3 session tickets arrive on the idle connection
        assert isinstance(a.status(), list)
        assert a._conns[0].sock is sock          # reused: tickets are not taken for an EOF
    # Without the CA the handshake fails: unreachable, not a protocol error.
    with Admin(address, timeout=10, ssl_context=ssl.create_default_context()) as a:
        with pytest.raises(errors.ServerUnavailable, match="TLS"):
            a.version()


# -- the transport is the core's ----------------------------------------------------------

def test_admin_connections_get_the_cores_socket_options(admin, gearmand):
    admin.version()
    sock = admin._conns[0].sock
    # what every client and worker connection gets (src/gearman/_connection.pxi)
    assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) == 1
    assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
    if hasattr(socket, "TCP_KEEPIDLE"):
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE) == 30
    assert sock.getblocking() is False


def test_a_tls_handshake_nobody_answers_is_unreachable():
    # A peer that accepts TCP and never says a word: the handshake counts as
    # the connect, so it fails as unreachable (not as a call timeout).
    # (a listening socket nobody accepts from: the kernel completes the TCP handshake)
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        address = "127.0.0.1:%d" % listener.getsockname()[1]
        with Admin(address, timeout=1, ssl_context=ssl.create_default_context()) as a:
            with pytest.raises(errors.ServerUnavailable, match="timed out") as info:
                a.version()
            assert info.value.server == address


def test_an_answer_line_over_the_limit_is_a_protocol_error(monkeypatch):
    monkeypatch.setattr(gearman.admin, "MAX_LINE", 1024)
    with _ScriptedPeer(lambda cmd: b"x" * 4096) as peer, Admin(peer.address, timeout=5) as a:
        with pytest.raises(errors.ProtocolError, match="1024") as info:
            a.status()
        assert info.value.server == peer.address
        assert a._conns[0].sock is None          # dropped: the stream is out of step


def test_bytes_nobody_asked_for_make_the_next_call_reconnect():
    # "version" is answered twice: the stray line waits on the idle connection
    # and must not be taken for the answer to the next command.
    with _ScriptedPeer(lambda cmd: b"OK 1\nOK stray\n") as peer, Admin(peer.address, timeout=5) as a:
        assert a.version() == {peer.address: "1"}
        assert a.version() == {peer.address: "1"}
        assert peer.lines == [b"version\r", b"version\r"]


def test_python_gearman_reachability_check_does_the_tls_handshake(tls_front, tmp_path):
    # establish_connection() asks the core to connect as the worker's engine
    # would: a server whose certificate the worker cannot verify is not
    # reachable, although its TCP port accepts connections.
    address, ca = tls_front
    port = int(address.rsplit(":", 1)[1])
    host = {"host": "127.0.0.1", "port": port, "keyfile": str(tmp_path / "srv.key"),
            "certfile": str(tmp_path / "srv.pem")}
    for ca_certs, reachable in ((ca, True), (str(tmp_path / "srv.pem"), False)):
        w = gearman.GearmanWorker()
        try:
            w.add_connection(dict(host, ca_certs=ca_certs))
            [conn] = w.connection_list
            if reachable:
                assert w.establish_connection(conn) is conn
            else:
                with pytest.raises(errors.ConnectionError, match="TLS"):
                    w.establish_connection(conn)
        finally:
            w.shutdown()
