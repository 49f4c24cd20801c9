"""TCP_USER_TIMEOUT against a real cut link (the rest of the doors' tests are in
test_doors_engine.py).

gearmand runs in a network namespace of its own behind a veth pair
(test_partition.py's NetnsGearmand); the cut takes the link down on its side, so
the client's packets are dropped without an answer. Keepalive does not run while
sent data is unacknowledged: without TCP_USER_TIMEOUT Linux retransmits such data
for about 15 minutes. With it (by default keepalive's idle + interval x count,
docs/reliability.md §5), the connection fails within that bound.

Needs root (``ip netns``), as test_partition.py; CI runs as root.
"""
import importlib.util
import pathlib
import time

import pytest

import gearman
from gearman import errors
from gearman.testing import wait_until

_spec = importlib.util.spec_from_file_location(
    "cygearman_doors_test_partition",
    pathlib.Path(__file__).resolve().with_name("test_partition.py"))
_partition = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_partition)        # skips this module where test_partition skips


@pytest.fixture
def remote(tmp_path):
    server = _partition.NetnsGearmand(tmp_path)
    yield server
    server.close()


def test_a_cut_link_with_unacknowledged_data_fails_within_the_user_timeout(remote, fn):
    """keepalive (1, 1, 2): TCP_USER_TIMEOUT 3 s. A call sent across a link that
    was just cut ends with LostConnectionError (its outcome unknown) within
    twice that, long before the call's own timeout (10 times it)."""
    UT = 3.0
    c = gearman.GearmanClient()
    c._engine.keepalive = (1, 1, 2)
    assert c._engine.tcp_user_timeout is None       # derived: 1 + 1 x 2 s
    c.addServer(remote.ip, remote.port)
    c.setTimeout(int(10 * UT * 1000))
    assert c.doBackground(fn, b"before").startswith("H:")
    remote.cut()
    t0 = time.monotonic()
    with pytest.raises(errors.GearmanError) as ei:
        c.doBackground(fn, b"during")
    took = time.monotonic() - t0
    assert isinstance(ei.value, errors.LostConnectionError), ei.value   # not the call's timeout
    assert took < 2 * UT, took
    remote.heal()

    def after():
        try:
            return c.doBackground(fn, b"after").startswith("H:")
        except errors.GearmanError:         # the link comes back, the backoff ends
            return False

    assert wait_until(after, timeout=10 * UT)
    c.close()

