"""One home for configuration (gearman/_config.py; docs/design.md, "Configuration").

Every door reads a server spec the same way and refuses a bad one with the same
error before any I/O; library objects with no server (and no GEARMAN_SERVERS)
raise NoServersError naming both ways to give one; the tools fall back to
localhost:4730 and say which servers they use.
"""
from __future__ import annotations

import asyncio
import os
import subprocess
import sys

import pytest

from gearman import GEARMAN_NO_SERVERS, GearmanAdminClient, GearmanClient, GearmanWorker, _config
from gearman.admin import Admin
from gearman.aio import AsyncGearmanClient, AsyncGearmanWorker
from gearman.errors import InvalidArgumentError, InvalidTypeError, NoServersError


def _servers_of(door):
    """Build an object through ``door(spec)`` and return its servers as host:port keys."""
    def read(spec):
        obj = door(spec)
        if isinstance(obj, AsyncGearmanWorker):
            return [s.key for s in obj._servers]
        if isinstance(obj, GearmanWorker):
            return [c.key for c in obj._engine.servers]
        return list(obj.servers)
    return read


def _pecl_add(cls):
    def make(spec):
        obj = cls()
        obj.addServers(spec)
        return obj
    return make


DOORS = {
    "GearmanClient(host_list)": GearmanClient,
    "GearmanClient().addServers": _pecl_add(GearmanClient),
    "GearmanWorker(host_list)": GearmanWorker,
    "GearmanWorker().addServers": _pecl_add(GearmanWorker),
    "AsyncGearmanClient": AsyncGearmanClient,
    "AsyncGearmanWorker": AsyncGearmanWorker,
    "Admin": Admin,
}

GOOD = [
    ("h1:4730,h2:4731", ["h1:4730", "h2:4731"]),
    (["h1:4730", ("H2", 4731)], ["h1:4730", "h2:4731"]),
    (("h1", 4731), ["h1:4731"]),
    ({"host": "h1", "port": 4732}, ["h1:4732"]),
    ([{"host": "h1"}, "[::1]:4733"], ["h1:4730", "::1:4733"]),
]

BAD = [
    ("h1:notaport", InvalidArgumentError),
    ("[::1", InvalidArgumentError),
    (",", InvalidArgumentError),
    ([("h1", 70000)], InvalidArgumentError),
    ({"port": 4730}, InvalidArgumentError),
    (4730, InvalidTypeError),
    ([None], InvalidTypeError),
]


@pytest.mark.parametrize("spec,keys", GOOD, ids=[repr(g[0]) for g in GOOD])
@pytest.mark.parametrize("door", sorted(DOORS))
def test_every_door_reads_every_server_form_alike(door, spec, keys):
    assert _servers_of(DOORS[door])(spec) == keys


@pytest.mark.parametrize("spec,error", BAD, ids=[repr(b[0]) for b in BAD])
@pytest.mark.parametrize("door", sorted(DOORS) + ["GearmanAdminClient"])
def test_every_door_refuses_a_bad_spec_alike(door, spec, error):
    make = DOORS.get(door, GearmanAdminClient)
    with pytest.raises(error) as raised:
        make(spec)
    # the same message from every door: the one parser's
    with pytest.raises(error) as reference:
        _config.parse_servers(spec)
    assert str(raised.value) == str(reference.value)


def test_the_tools_refuse_a_bad_spec_before_any_io():
    for argv in (["-m", "gearman", "-s", "h1:notaport", "version"],
                 ["-m", "gearman.runner", "-s", "h1:notaport", "-f", "x=json:dumps"]):
        r = subprocess.run([sys.executable, *argv], capture_output=True, text=True, timeout=60)
        assert r.returncode == 2, (argv, r.stderr)
        assert "bad port in server 'h1:notaport'" in r.stderr


@pytest.fixture
def no_env(monkeypatch):
    monkeypatch.delenv("GEARMAN_SERVERS", raising=False)


def test_library_objects_without_servers_raise_no_servers_error(no_env):
    with pytest.raises(NoServersError, match="GEARMAN_SERVERS") as pecl:
        GearmanClient().doBackground("f", b"x")
    assert "addServer" in str(pecl.value)
    with pytest.raises(NoServersError, match="GEARMAN_SERVERS"):
        asyncio.run(AsyncGearmanClient().do_background("f", b"x"))
    with pytest.raises(NoServersError, match="GEARMAN_SERVERS"):
        Admin()
    worker = AsyncGearmanWorker()
    worker.register("f", lambda job: b"")
    with pytest.raises(NoServersError, match="GEARMAN_SERVERS"):
        asyncio.run(worker.run())
    w = GearmanWorker()
    w.addFunction("f", lambda job, ctx: b"")
    with pytest.raises(NoServersError, match="GEARMAN_SERVERS"):
        w.ping()
    assert w.work() is False and w.returnCode() == GEARMAN_NO_SERVERS   # as PECL


def test_library_objects_take_gearman_servers(monkeypatch, gearmand):
    monkeypatch.setenv("GEARMAN_SERVERS", gearmand.address)
    assert GearmanClient().doBackground("cfg_env", b"x")
    assert asyncio.run(AsyncGearmanClient().do_background("cfg_env", b"x"))
    assert Admin().servers == [gearmand.address]
    # python-gearman's calls too (an empty host list is "none given")
    request = GearmanClient([]).submit_job("cfg_env", b"x", background=True, poll_timeout=10)
    assert request.complete and not request.timed_out


def test_asyncio_client_takes_a_list(gearmand):
    async def go():
        async with AsyncGearmanClient([gearmand.address], timeout=10) as client:
            return await client.do_background("cfg_list", b"x")
    assert asyncio.run(go())


def _tool_stderr(argv, env_servers):
    env = dict(os.environ)
    env.pop("GEARMAN_SERVERS", None)
    if env_servers:
        env["GEARMAN_SERVERS"] = env_servers
    r = subprocess.run([sys.executable, "-m", "gearman", "-v", *argv], capture_output=True,
                       text=True, timeout=60, env=env)
    return r.stderr


def test_the_tools_say_which_servers_they_use(gearmand):
    assert "servers: localhost:4730 (the default: no --servers and no GEARMAN_SERVERS)" in \
        _tool_stderr(["version", "-t", "1"], None)
    assert f"servers: {gearmand.address} ($GEARMAN_SERVERS)" in \
        _tool_stderr(["version"], gearmand.address)
    assert f"servers: {gearmand.address} (--servers)" in \
        _tool_stderr(["-s", gearmand.address, "version"], "h9:1")


def test_timeout_units_have_one_conversion():
    assert _config.ms_to_engine(-1) == -1.0 and _config.ms_to_engine(1500) == 1.5
    assert _config.seconds_to_engine(None) == -1.0 and _config.seconds_to_engine(-3) == 0.0
    assert _config.seconds_to_ms(0.0011) == 2 and _config.seconds_to_ms(None) == -1
    with pytest.raises(InvalidTypeError):
        GearmanClient().setTimeout(1.5)            # PECL's timeout is an int of milliseconds
    with pytest.raises(InvalidTypeError):
        GearmanWorker().setTimeout("10")


def test_transport_settings_reach_every_doors_engine():
    """keepalive / tcp_user_timeout / connect_timeout / max_packet_size: one Transport
    (gearman._config) applied by every door; the defaults are the engines' own."""
    from gearman import _core
    assert _config.KEEPALIVE == _core.ClientEngine().keepalive == _core.WorkerEngine().keepalive
    assert _config.MAX_PACKET_SIZE == _core.ClientEngine().max_packet_size
    kw = dict(keepalive=(1, 2, 3), tcp_user_timeout=7, connect_timeout=1.5)
    engines = [GearmanClient(**kw)._engine, GearmanWorker(**kw)._engine,
               AsyncGearmanClient(**kw)._engine]
    worker = AsyncGearmanWorker(**kw)
    engines.append(worker._transport.apply(_core.WorkerEngine()))
    for engine in engines:
        assert (engine.keepalive, engine.tcp_user_timeout, engine.connect_timeout) == \
            ((1, 2, 3), 7, 1.5)
    assert GearmanClient(keepalive=None)._engine.keepalive is None
    assert GearmanClient(**kw).clone()._engine.keepalive == (1, 2, 3)


@pytest.mark.parametrize("door", [GearmanClient, GearmanWorker, AsyncGearmanClient,
                                  AsyncGearmanWorker])
@pytest.mark.parametrize("kw,error", [({"keepalive": (1, 2)}, InvalidTypeError),
                                      ({"keepalive": (0, 1, 1)}, InvalidArgumentError),
                                      ({"tcp_user_timeout": -1}, InvalidArgumentError),
                                      ({"connect_timeout": 0}, InvalidArgumentError)])
def test_a_bad_transport_setting_is_refused_by_every_door_before_io(door, kw, error):
    with pytest.raises(error):
        door(**kw)
