"""cygearman's pytest plugin: real gearmand servers as fixtures.

Installing cygearman registers this module through the ``pytest11`` entry point
``gearman``, so every pytest session in that environment loads it.  It lives
outside the ``gearman`` package on purpose: importing anything under
``gearman.`` runs ``gearman/__init__.py``, which loads the compiled core.  This
module imports nothing of cygearman until a test asks for one of its fixtures,
so a session that uses none of them pays nothing, and a project that only
happens to share the environment keeps running its tests even if cygearman's
compiled core is missing or broken (only a test that uses a fixture would see
that error).

Fixtures (``gearman.testing`` documents the server class behind them):

``gearmand``
    One :class:`gearman.testing.GearmandServer` for the whole session.
``gearmand_factory(persistent=False, extra_args=(), **kw)``
    Starts more servers, each killed and its files removed after the test.
``gearman_client`` / ``gearman_worker``
    A ``gearman.GearmanClient()`` / ``gearman.GearmanWorker()`` with the
    session server added, closed after the test.
``free_port``
    A TCP port on 127.0.0.1 where nothing listened when it was picked.

``pytest -p no:gearman`` turns the plugin off; with
``PYTEST_DISABLE_PLUGIN_AUTOLOAD=1`` set, ``pytest -p gearman`` turns it on.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Iterator, List, Sequence

import pytest

if TYPE_CHECKING:
    from gearman.testing import GearmandServer

__all__ = ["gearmand", "gearmand_factory", "free_port_fixture", "gearman_client", "gearman_worker"]


@pytest.fixture(scope="session")
def gearmand() -> Iterator["GearmandServer"]:
    """One real gearmand for the whole session; never stop or kill it.

    Shared by all tests: use function names no other test uses.  A missing
    gearmand binary is an error (GearmandNotFound), never a skip.
    """
    from gearman.testing import GearmandServer

    server = GearmandServer()
    try:
        yield server
    finally:
        server.cleanup()


@pytest.fixture
def gearmand_factory() -> Iterator[Callable[..., "GearmandServer"]]:
    """Return ``make(persistent=False, extra_args=(), **kw) -> GearmandServer``.

    Each call starts one more gearmand (keywords as for GearmandServer);
    all are killed and their folders removed when the test ends.
    """
    from gearman.testing import GearmandServer

    servers: List[GearmandServer] = []

    def make(persistent: bool = False, extra_args: Sequence[str] = (),
             **kw: Any) -> GearmandServer:
        server = GearmandServer(persistent=persistent, extra_args=extra_args, **kw)
        servers.append(server)
        return server

    try:
        yield make
    finally:
        for server in servers:
            server.cleanup()


@pytest.fixture(name="free_port")
def free_port_fixture() -> int:
    """A TCP port on 127.0.0.1 where nothing listened when it was picked."""
    from gearman.testing import free_port

    return free_port()


@pytest.fixture
def gearman_client(gearmand: "GearmandServer") -> Iterator[Any]:
    """A ``gearman.GearmanClient`` with the session's gearmand added; closed afterwards."""
    import gearman

    client = gearman.GearmanClient()
    client.addServer(gearmand.host, gearmand.port)
    try:
        yield client
    finally:
        client.close()


@pytest.fixture
def gearman_worker(gearmand: "GearmandServer") -> Iterator[Any]:
    """A ``gearman.GearmanWorker`` with the session's gearmand added; closed afterwards."""
    import gearman

    worker = gearman.GearmanWorker()
    worker.addServer(gearmand.host, gearmand.port)
    try:
        yield worker
    finally:
        worker.close()
