"""Shared fixtures of our own suite.

The gearmand fixtures (``gearmand``, ``gearmand_factory``, ``free_port``...)
come from cygearman's pytest plugin (``_cygearman_pytest``, the ``pytest11``
entry point ``gearman``): do not register it again here.
"""
import socket
import threading
import uuid

import pytest


@pytest.fixture
def fn():
    """A function name no other test uses (the session gearmand is shared)."""
    return "f-" + uuid.uuid4().hex[:12]


@pytest.fixture
def client(gearmand):
    """A PECL client on the session gearmand, with a 20 s safety-net timeout."""
    import gearman

    c = gearman.GearmanClient()
    c.addServer("127.0.0.1", gearmand.port)
    c.setTimeout(20000)
    yield c
    c.close()


@pytest.fixture
def run_worker(gearmand):
    """Start a PECL worker in a thread: ``run_worker({"name": callback}, server=None)``."""
    import gearman

    started = []

    def start(functions, server=None):
        w = gearman.GearmanWorker()
        w.addServer("127.0.0.1", (server or gearmand).port)
        for name, cb in functions.items():
            w.addFunction(name, cb)
        w.setTimeout(100)
        stop = threading.Event()

        def loop():
            while not stop.is_set():
                w.work()

        th = threading.Thread(target=loop, daemon=True)
        th.start()
        started.append((w, stop, th))
        return w

    yield start
    for w, stop, th in started:
        stop.set()
        w.stop()
        th.join(10)
        assert not th.is_alive(), "worker thread did not stop"
        w.close()


@pytest.fixture
def dead_port():
    """A port on 127.0.0.1 where connecting is refused for the whole test.

    Unlike ``free_port`` the port is held: a socket is bound to it without
    listening, so no other process can start listening there meanwhile, and
    a connect gets ECONNREFUSED at once.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        yield s.getsockname()[1]
