"""TLS through a real TLS front (socat) before a real gearmand.

Debian's gearmand 1.1.20 accepts ``--ssl`` and then serves plaintext, so the
tests put ``socat OPENSSL-LISTEN:...`` in front of it, as a deployment would put
stunnel.  A throwaway CA, server certificates (a good one, one for another host
name, an expired one), a client certificate, and a second unrelated CA are made
with the ``openssl`` command line in a temporary folder.

What is checked: a client and a worker with an ``ssl.SSLContext`` complete jobs
end to end, with server-only TLS and with mutual TLS; the server certificate and
its host name are verified by default; a wrong CA, a host name mismatch, an
expired certificate, a missing or foreign client certificate, plaintext against
the TLS port and TLS against the plaintext port each end in a clear
:class:`gearman.errors.ConnectionError` within the connect timeout, with no hang.
"""
import os
import shutil
import signal
import socket
import ssl
import subprocess
import threading
import time

import pytest

import gearman
from gearman import errors
from gearman.testing import free_port, wait_until

MIB = 1024 * 1024
CONNECT_TIMEOUT = 2.0
MARGIN = 3.0            # a hang check, not a speed check


def _openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, timeout=60,
                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


class Certs:
    """A CA and its certificates in ``folder``; paths as attributes."""

    def __init__(self, folder):
        self.dir = str(folder)
        ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
        for ca in ("ca", "otherca"):
            _openssl("req", "-x509", *ec, "-keyout", f"{ca}.key", "-out", f"{ca}.pem",
                     "-days", "2", "-subj", f"/CN=cygearman test {ca}", cwd=self.dir)
        self._leaf("server", "subjectAltName=IP:127.0.0.1,DNS:localhost\n"
                             "extendedKeyUsage=serverAuth\n")
        self._leaf("otherhost", "subjectAltName=DNS:gearman.other.example\n"
                                "extendedKeyUsage=serverAuth\n")
        self._leaf("expired", "subjectAltName=IP:127.0.0.1,DNS:localhost\n", days="-1")
        self._leaf("client", "extendedKeyUsage=clientAuth\n")
        self._leaf("foreignclient", "extendedKeyUsage=clientAuth\n", ca="otherca")

    def _leaf(self, name, ext, days="2", ca="ca"):
        ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
        with open(os.path.join(self.dir, f"{name}.ext"), "w") as f:
            f.write(ext)
        _openssl("req", "-new", *ec, "-keyout", f"{name}.key", "-out", f"{name}.csr",
                 "-subj", f"/CN=cygearman test {name}", cwd=self.dir)
        _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.pem", "-CAkey", f"{ca}.key",
                 "-CAcreateserial", "-out", f"{name}.pem", "-days", days,
                 "-extfile", f"{name}.ext", cwd=self.dir)

    def path(self, name):
        return os.path.join(self.dir, name)

    def context(self, ca="ca", client=None):
        """A client context as a user makes it: verification and host name check on."""
        ctx = ssl.create_default_context(cafile=self.path(f"{ca}.pem"))
        if client:
            ctx.load_cert_chain(self.path(f"{client}.pem"), self.path(f"{client}.key"))
        return ctx


class TlsFront:
    """``socat OPENSSL-LISTEN`` on 127.0.0.1 relaying to a plaintext gearmand."""

    def __init__(self, certs, target_port, cert="server", verify_client=False):
        self.port = free_port()
        self.log = open(certs.path(f"socat-{self.port}.log"), "wb")
        listen = (f"OPENSSL-LISTEN:{self.port},bind=127.0.0.1,reuseaddr,fork,"
                  f"cert={certs.path(cert + '.pem')},key={certs.path(cert + '.key')},"
                  f"cafile={certs.path('ca.pem')},verify={1 if verify_client else 0},nodelay")
        # nodelay on both sides: without it Nagle's algorithm in socat meets the
        # peer's delayed ACK and every small message waits ~40 ms.
        # Its own session: stopping the group also stops the children it forked.
        self.proc = subprocess.Popen(["socat", listen, f"TCP:127.0.0.1:{target_port},nodelay"],
                                     stdin=subprocess.DEVNULL, stdout=self.log,
                                     stderr=self.log, start_new_session=True)
        if not wait_until(self._listening, timeout=10):
            self.close()
            raise RuntimeError("socat did not start listening")

    def _listening(self):
        assert self.proc.poll() is None, "socat exited"
        try:
            # a bare TCP connect: socat's child for it fails its handshake and exits
            socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
            return True
        except OSError:
            return False

    @property
    def address(self):
        return f"127.0.0.1:{self.port}"

    def close(self):
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        self.log.close()


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    if shutil.which("socat") is None or shutil.which("openssl") is None:
        pytest.fail("the TLS tests need socat and openssl (apt-get install socat openssl)")
    return Certs(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="module")
def fronts(certs, gearmand):
    """name -> TlsFront before the session gearmand."""
    made = {
        "tls": TlsFront(certs, gearmand.port),
        "mtls": TlsFront(certs, gearmand.port, verify_client=True),
        "otherhost": TlsFront(certs, gearmand.port, cert="otherhost"),
        "expired": TlsFront(certs, gearmand.port, cert="expired"),
    }
    yield made
    for f in made.values():
        f.close()


def worker_thread(front_port, fn, ctx, callback=None):
    w = gearman.GearmanWorker(ssl_context=ctx, connect_timeout=CONNECT_TIMEOUT)
    w.addServer("127.0.0.1", front_port)
    w.addFunction(fn, callback or (lambda job, c: b"tls:" + job.workload()))
    w.setTimeout(100)
    stop = threading.Event()

    def loop():
        while not stop.is_set():
            w.work()

    th = threading.Thread(target=loop, daemon=True)
    th.start()

    def finish():
        stop.set()
        w.stop()
        th.join(10)
        w.close()

    return w, finish


def tls_client(front_port, ctx, host="127.0.0.1", timeout_ms=20000):
    c = gearman.GearmanClient(ssl_context=ctx, connect_timeout=CONNECT_TIMEOUT)
    c.addServer(host, front_port)
    c.setTimeout(timeout_ms)
    return c


def timed_failure(call):
    t0 = time.monotonic()
    with pytest.raises(errors.GearmanError) as ei:
        call()
    return ei.value, time.monotonic() - t0


# -- working end to end -------------------------------------------------------------------

@pytest.mark.parametrize("mode", ["tls", "mtls"])
def test_client_and_worker_over_tls(certs, fronts, fn, mode):
    client_cert = "client" if mode == "mtls" else None
    front = fronts[mode]
    _w, finish = worker_thread(front.port, fn, certs.context(client=client_cert))
    try:
        c = tls_client(front.port, certs.context(client=client_cert))
        assert c.doNormal(fn, b"secret") == b"tls:secret"
        handle = c.doBackground(fn, b"bg")
        assert handle.startswith("H:")
        assert wait_until(lambda: c.jobStatus(handle)[0] is False)
        assert c.ping(b"over tls")
        c.close()
    finally:
        finish()


def test_large_payload_and_many_pipelined_tasks_over_tls(certs, fronts, fn):
    """Partial TLS writes (an 8 MiB record stream) and decrypted bytes that poll()
    cannot see (hundreds of small answers in few records) are both handled."""
    _w, finish = worker_thread(fronts["mtls"].port, fn, certs.context(client="client"),
                               callback=lambda job, c: job.workload()[::-1])
    try:
        c = tls_client(fronts["mtls"].port, certs.context(client="client"), timeout_ms=60000)
        data = os.urandom(8 * MIB)
        assert c.doNormal(fn, data) == data[::-1]
        tasks = [c.addTask(fn, b"%d" % i) for i in range(500)]
        c.runTasks()
        assert [t.data() for t in tasks] == [(b"%d" % i)[::-1] for i in range(500)]
        handles = c.submit_batch(fn, [b"b%d" % i for i in range(300)])
        assert len(handles) == 300 and all(h.startswith("H:") for h in handles)
        c.close()
    finally:
        finish()


def test_hostname_is_checked_against_the_name_given(certs, fronts, gearmand, fn):
    """The certificate names IP:127.0.0.1 and DNS:localhost: both spellings work."""
    c = tls_client(fronts["tls"].port, certs.context(), host="localhost")
    # "localhost" may resolve to ::1 first (nothing listens there): the client
    # moves on to 127.0.0.1 within the connect timeout.
    assert c.doBackground(fn + "-bg", b"x").startswith("H:")
    c.close()


def test_worker_ping_over_tls(certs, fronts, fn):
    """ping() on a fresh worker must drive the TLS handshake itself (five fresh
    workers: a handshake that only progresses by accident fails some of them)."""
    for i in range(5):
        w = gearman.GearmanWorker(ssl_context=certs.context(client="client"),
                                  connect_timeout=CONNECT_TIMEOUT)
        w.addServer("127.0.0.1", fronts["mtls"].port)
        w.addFunction(fn, lambda job, c: b"")
        w.setTimeout(3000)
        assert w.ping(b"hello %d" % i)
        w.close()


def test_admin_client_over_tls(certs, fronts):
    """The issue asks for TLS on client, worker and admin."""
    from gearman.admin_client import GearmanAdminClient

    admin = GearmanAdminClient([fronts["mtls"].address],
                               ssl_context=certs.context(client="client"))
    assert admin.get_version().startswith("OK")
    assert isinstance(admin.get_status(), tuple)


# -- failing clearly ------------------------------------------------------------------------

def check_clear(err, elapsed, *words):
    assert isinstance(err, errors.ConnectionError), f"{type(err).__name__}: {err}"
    assert elapsed < CONNECT_TIMEOUT + MARGIN, f"took {elapsed:.1f} s"
    text = str(err).lower() + " | " + str(err.__cause__ or "").lower()
    assert any(w in text for w in words), f"{type(err).__name__}: {err}"


def test_wrong_ca_is_refused(certs, fronts, fn):
    c = tls_client(fronts["tls"].port, certs.context(ca="otherca"))
    err, took = timed_failure(lambda: c.doBackground(fn, b"x"))
    check_clear(err, took, "certificate verify failed")
    assert isinstance(err, errors.ServerUnavailable)
    assert c.returnCode() == gearman.GEARMAN_COULD_NOT_CONNECT


def test_hostname_mismatch_is_refused(certs, fronts, fn):
    c = tls_client(fronts["otherhost"].port, certs.context())
    err, took = timed_failure(lambda: c.doBackground(fn, b"x"))
    check_clear(err, took, "hostname mismatch", "doesn't match", "not valid for")
    assert isinstance(err, errors.ServerUnavailable)


def test_expired_certificate_is_refused(certs, fronts, fn):
    c = tls_client(fronts["expired"].port, certs.context())
    err, took = timed_failure(lambda: c.doBackground(fn, b"x"))
    check_clear(err, took, "expired")
    assert isinstance(err, errors.ServerUnavailable)


def test_tls_client_against_a_plaintext_server(certs, gearmand, fn):
    """What Debian's gearmand --ssl really is: the handshake fails, clearly and
    at once; nothing is sent in clear."""
    c = tls_client(gearmand.port, certs.context())
    err, took = timed_failure(lambda: c.doBackground(fn + "-never", b"secret"))
    check_clear(err, took, "tls", "ssl", "handshake")
    assert isinstance(err, errors.ServerUnavailable)
    assert f"{fn}-never\t" not in gearmand.admin("status")


def test_plaintext_client_against_the_tls_port(fronts, fn):
    c = gearman.GearmanClient(connect_timeout=CONNECT_TIMEOUT)
    c.addServer("127.0.0.1", fronts["tls"].port)
    c.setTimeout(5000)
    err, took = timed_failure(lambda: c.doBackground(fn, b"x"))
    assert isinstance(err, (errors.ConnectionError, errors.GearmanTimeoutError)), \
        f"{type(err).__name__}: {err}"
    assert took < 5.0 + MARGIN


@pytest.mark.parametrize("client_cert", [None, "foreignclient"], ids=["no_cert", "foreign_cert"])
def test_mutual_tls_refuses_a_client_without_a_valid_certificate(certs, fronts, fn, client_cert):
    """With TLS 1.3 the server judges the client certificate after the client
    finished its handshake, so the refusal may arrive with the first read: it is
    still a ConnectionError naming the certificate, within the timeouts."""
    c = tls_client(fronts["mtls"].port, certs.context(client=client_cert), timeout_ms=5000)
    err, took = timed_failure(lambda: c.doBackground(fn, b"x"))
    check_clear(err, took, "certificate", "alert", "tls", "ssl")


def test_mutual_tls_refusal_is_reported_as_not_submitted(certs, fronts, fn):
    """A refused client certificate means the job never reached gearmand: the
    error must not claim an unknown outcome (LostConnectionError), it is a
    connect failure (ServerUnavailable), so the caller may safely retry."""
    c = tls_client(fronts["mtls"].port, certs.context(), timeout_ms=5000)
    err, _took = timed_failure(lambda: c.doBackground(fn, b"x"))
    assert isinstance(err, errors.ServerUnavailable), f"{type(err).__name__}: {err}"


def test_worker_with_a_wrong_ca_fails_clearly_and_does_not_spin(certs, fronts, fn):
    w = gearman.GearmanWorker(ssl_context=certs.context(ca="otherca", client="client"),
                              connect_timeout=CONNECT_TIMEOUT)
    w.addServer("127.0.0.1", fronts["mtls"].port)
    w.addFunction(fn, lambda job, c: b"")
    w.setTimeout(1500)
    before = time.thread_time()
    t0 = time.monotonic()
    assert w.work() is False
    took = time.monotonic() - t0
    cpu = time.thread_time() - before
    assert took < 1.5 + MARGIN and cpu < 0.5
    err, took = timed_failure(lambda: w.ping())
    check_clear(err, took, "certificate verify failed")
    w.close()


def test_worker_tls_against_plaintext_server(certs, gearmand, fn):
    w = gearman.GearmanWorker(ssl_context=certs.context(), connect_timeout=CONNECT_TIMEOUT)
    w.addServer("127.0.0.1", gearmand.port)
    w.addFunction(fn, lambda job, c: b"")
    w.setTimeout(1000)
    assert w.work() is False
    err, took = timed_failure(lambda: w.ping())
    check_clear(err, took, "tls", "ssl", "handshake")
    w.close()


def test_tls_front_going_away_mid_job(certs, gearmand, fn):
    """The TLS front dies while a foreground job waits: a LostConnectionError,
    not a hang; a new front on another port serves the next call."""
    front = TlsFront(certs, gearmand.port)
    try:
        c = tls_client(front.port, certs.context(), timeout_ms=10000)
        assert c.doBackground(fn + "-warm", b"x")
        outcome = []
        th = threading.Thread(target=lambda: outcome.append(
            pytest.raises(errors.GearmanError, c.doNormal, fn + "-nobody", b"x").value))
        th.start()
        time.sleep(0.3)
        front.close()
        th.join(15)
        assert not th.is_alive()
        assert isinstance(outcome[0], errors.LostConnectionError), outcome
    finally:
        front.close()
