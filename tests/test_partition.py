"""A network partition between the client and one server of its pool.

The server is a real gearmand in a network namespace of its own, reached over a
veth pair (addresses inside that namespace only); the partition takes the link
down on the server's side, so the client's packets are silently dropped: no
RST, no ICMP, exactly what a stalled middlebox or a cut cable looks like. The
client's policy for such a server is in docs/reliability.md §5a.

Needs root (``ip netns``, as CI runs); ``iproute2`` is installed by scripts/setup.sh.
"""
import os
import shutil
import subprocess
import time
import uuid

import pytest

import gearman
from gearman import errors
from gearman.testing import wait_until

if os.geteuid() != 0 or shutil.which("ip") is None:     # pragma: no cover - CI is root
    pytest.skip("network namespaces need root and iproute2 (CI has both)",
                allow_module_level=True)


def ip(*args, ns=None):
    cmd = (["ip", "netns", "exec", ns] if ns else []) + ["ip", *args]
    subprocess.run(cmd, check=True, capture_output=True, timeout=10)


class NetnsGearmand:
    """gearmand in its own network namespace, reached at ``address`` over a veth pair."""

    def __init__(self, tmp_path):
        tag = uuid.uuid4().hex[:6]
        self.ns = f"cgpart-{tag}"
        self.host_if, self.ns_if = f"cgh{tag}", f"cgn{tag}"
        octet = int(tag[:2], 16)
        self.host_ip, self.ip = f"10.232.{octet}.1", f"10.232.{octet}.2"
        self.port = 4730
        self.dir = tmp_path
        self.proc = None
        ip("netns", "add", self.ns)
        try:
            ip("link", "add", self.host_if, "type", "veth", "peer", "name", self.ns_if)
            ip("link", "set", self.ns_if, "netns", self.ns)
            ip("addr", "add", f"{self.host_ip}/30", "dev", self.host_if)
            ip("link", "set", self.host_if, "up")
            ip("addr", "add", f"{self.ip}/30", "dev", self.ns_if, ns=self.ns)
            ip("link", "set", self.ns_if, "up", ns=self.ns)
            ip("link", "set", "lo", "up", ns=self.ns)
            self.proc = subprocess.Popen(
                ["ip", "netns", "exec", self.ns, "gearmand", f"--listen={self.ip}",
                 f"--port={self.port}", f"--log-file={tmp_path}/gearmand.log",
                 f"--pid-file={tmp_path}/gearmand.pid", "--verbose=INFO"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            assert wait_until(self._answers, timeout=10), "gearmand in the namespace did not start"
        except BaseException:
            self.close()
            raise

    def _answers(self):
        try:
            c = gearman.GearmanClient()
            c.addServer(self.ip, self.port)
            c.setTimeout(500)
            c.ping(b"x")
            c.close()
            return True
        except errors.GearmanError:
            return False

    def cut(self):
        """Partition: the server's side of the link goes down; packets are dropped."""
        ip("link", "set", self.ns_if, "down", ns=self.ns)

    def heal(self):
        ip("link", "set", self.ns_if, "up", ns=self.ns)

    def close(self):
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        subprocess.run(["ip", "netns", "del", self.ns], capture_output=True)
        subprocess.run(["ip", "link", "del", self.host_if], capture_output=True)


@pytest.fixture
def remote(tmp_path):
    server = NetnsGearmand(tmp_path)
    yield server
    server.close()


def test_a_partitioned_server_is_routed_around_and_comes_back(gearmand, remote, fn):
    c = gearman.GearmanClient()
    c.addServer("127.0.0.1", gearmand.port)
    c.addServer(remote.ip, remote.port)
    c.setTimeout(1000)
    for i in range(10):                            # both servers in use
        assert c.doBackground(fn, b"before", f"b{i}").startswith("H:")
    remote.cut()
    outcomes = []
    for i in range(30):
        try:
            c.doBackground(fn, b"during", f"d{i}")
            outcomes.append("ok")
        except errors.GearmanTimeoutError as e:
            outcomes.append(e)
    failed = [o for o in outcomes if o != "ok"]
    assert len(failed) <= 1, failed
    assert all(isinstance(e, errors.ServerSilentError) for e in failed)
    remote_conn = next(conn for conn in c._engine.servers if conn.host == remote.ip)
    assert remote_conn.demoted
    remote.heal()
    # its probe is answered once the link is back: it is in rotation again
    assert wait_until(lambda: (c.doBackground(fn, b"after"), not remote_conn.demoted)[1],
                      timeout=30)
    c.close()


def test_a_partition_mid_stream_ends_with_the_requests_accounted_for(gearmand, remote, fn):
    """The link goes down while a batch is streaming to the remote server: the
    call times out, the remote's jobs end with ServerSilentError (``submitted``
    False or None), and the local server's jobs keep their handles."""
    c = gearman.GearmanClient()
    c.addServer("127.0.0.1", gearmand.port)
    c.addServer(remote.ip, remote.port)
    c.setTimeout(2000)
    c.doBackground(fn, b"warm", "w1")
    c.doBackground(fn, b"warm", "w2")
    remote.cut()
    started = time.monotonic()
    with pytest.raises(errors.GearmanTimeoutError) as ei:
        c.submit_batch(fn, [b"job-%d" % i for i in range(2000)])
    assert time.monotonic() - started < 10
    handles, errs = ei.value.handles, ei.value.errors
    assert sum(h is not None for h in handles) >= 900          # the local server's half
    for i, h in enumerate(handles):
        if h is None:
            assert isinstance(errs[i], errors.ServerSilentError)
            assert errs[i].submitted in (False, None)
    assert c._engine.outstanding == 0
    c.close()
