"""gearman.events: the listener interface and its registry.

These tests drive the registry with stand-in sources, plain objects with the
one attribute (``_events``) a client or worker carries; what the real client
and worker emit is tests/test_events_e2e.py's.
"""
import gc
import inspect
import logging
import threading
import weakref

import pytest

from gearman import events
from gearman.events import EVENTS, Emitter, Listener
from gearman.testing import wait_until


class Source:
    """What a client or worker is to the registry: an object with _events."""


class Recorder(Listener):
    def __init__(self):
        self.calls = []

    def __getattribute__(self, name):
        if name in EVENTS:
            calls = object.__getattribute__(self, "calls")
            return lambda *args: calls.append((name, args))
        return object.__getattribute__(self, name)


@pytest.fixture(autouse=True)
def no_global_listeners_left():
    before = events.listeners()
    yield
    for listener in events.listeners():
        if listener not in before:
            events.remove_listener(listener)
    assert events.listeners() == before


#: Sample arguments of every event (after the source for emit_*).
ARGS = {
    "request_submitted": ("req", "fn", "u", False, "normal"),
    "request_accepted": ("req", "fn", "h:1", "H:1"),
    "request_completed": ("req", "fn", "h:1", "H:1"),
    "request_failed": ("req", "fn", "h:1", None),
    "request_exception": ("req", "fn", "h:1", "H:1", b"boom"),
    "request_timed_out": ("req", "fn", None, None),
    "request_lost_connection": ("req", "fn", "h:1", "H:1"),
    "request_abandoned": ("req", "fn", "h:1", None, KeyboardInterrupt()),
    "job_grabbed": ("job", "fn", "h:1", "H:2", None),
    "job_started": ("job", "fn", "h:1", "H:2"),
    "job_completed": ("job", "fn", "h:1", "H:2", 0.5),
    "job_failed": ("job", "fn", "h:1", "H:2", 0.5),
    "job_raised": ("job", "fn", "h:1", "H:2", 0.5, ValueError("x")),
    "server_demoted": ("h:1", "connect timed out", 2.0),
    "server_restored": ("h:1",),
}


def test_interface_is_consistent():
    assert set(ARGS) == set(EVENTS)
    for name in EVENTS:
        base = inspect.signature(getattr(Listener, name))
        assert inspect.signature(getattr(Emitter, name)) == base, name
        emit = inspect.signature(getattr(events, "emit_" + name))
        params = list(emit.parameters.values())
        assert params[0].name == "source"
        assert [p.name for p in params[1:]] == [p for p in base.parameters if p != "self"]
        assert len(ARGS[name]) == len(base.parameters) - 1, name
        # the base class does nothing
        assert getattr(Listener(), name)(*ARGS[name]) is None
    assert set(events.EMISSION_POINTS) == set(EVENTS)


def test_attached_source_without_listeners_has_none():
    src = Source()
    events.attach(src)
    assert src._events is None
    for name in EVENTS:            # emitting to nobody is a no-op
        getattr(events, "emit_" + name)(src, *ARGS[name])
    events.detach(src)


@pytest.mark.parametrize("name", EVENTS)
def test_every_event_reaches_a_source_listener(name):
    src, rec = Source(), Recorder()
    events.add_listener(rec, source=src)
    try:
        assert isinstance(src._events, Emitter)
        getattr(events, "emit_" + name)(src, *ARGS[name])
        getattr(src._events, name)(*ARGS[name])      # the inline form of the hot paths
        assert rec.calls == [(name, ARGS[name])] * 2
    finally:
        events.detach(src)


def test_global_listener_reaches_attached_sources_and_follows_changes():
    a, b = Source(), Source()
    events.attach(a)
    rec = Recorder()
    events.add_listener(rec)
    events.attach(b)                 # attached after: sees the global listener too
    try:
        assert a._events is b._events is events.emitter_for(None)
        events.emit_server_restored(a, "x:1")
        events.emit_server_restored(b, "y:1")
        events.emit_server_restored(None, "z:1")      # no source: the global listeners
        assert [args for _, args in rec.calls] == [("x:1",), ("y:1",), ("z:1",)]
        events.remove_listener(rec)
        assert a._events is None and b._events is None
        assert events.emitter_for(None) is None
        events.emit_server_restored(a, "x:1")
        assert len(rec.calls) == 3
    finally:
        events.detach(a)
        events.detach(b)


def test_source_listener_only_hears_its_source():
    a, b = Source(), Source()
    events.attach(b)
    rec = Recorder()
    events.add_listener(rec, source=a)
    try:
        assert b._events is None
        events.emit_job_started(a, "j", "f", "h:1", "H:1")
        events.emit_job_started(b, "j", "f", "h:1", "H:1")
        assert len(rec.calls) == 1
        events.remove_listener(rec, source=a)
        assert a._events is None
        events.remove_listener(rec, source=a)         # twice: ignored
        events.remove_listener(rec, source=Source())  # never attached: ignored
    finally:
        events.detach(a)
        events.detach(b)


def test_global_and_source_listeners_combine_once_each():
    src, g, own = Source(), Recorder(), Recorder()
    events.add_listener(g)
    events.add_listener(own, source=src)
    events.add_listener(own, source=src)      # twice: once
    events.add_listener(g, source=src)        # also global: called once
    try:
        assert events.listeners(src) == [g, own]
        events.emit_server_restored(src, "h:1")
        assert len(g.calls) == 1 and len(own.calls) == 1
        events.remove_listener(g)             # the global registration goes; src keeps its own
        assert events.listeners(src) == [own, g]
        events.remove_listener(g, source=src)
        assert events.listeners(src) == [own]
    finally:
        events.detach(src)


def test_a_failing_listener_is_logged_and_the_others_still_hear(caplog):
    class Broken(Listener):
        def job_completed(self, *args):
            raise RuntimeError("listener bug")

    src, rec = Source(), Recorder()
    events.add_listener(Broken(), source=src)
    events.add_listener(rec, source=src)
    try:
        with caplog.at_level(logging.ERROR, logger="gearman.events"):
            events.emit_job_completed(src, "j", "f", "h:1", "H:1", 0.1)
        assert rec.calls == [("job_completed", ("j", "f", "h:1", "H:1", 0.1))]
        assert "listener bug" in caplog.text
        assert "job_completed" in caplog.text
    finally:
        events.detach(src)


def test_duck_typed_listener_with_some_methods():
    class OnlyRestored:
        def __init__(self):
            self.seen = []

        def server_restored(self, server):
            self.seen.append(server)

    src, lst = Source(), OnlyRestored()
    events.add_listener(lst, source=src)
    try:
        events.emit_server_demoted(src, "h:1", "why", 1.0)    # it has no such method: skipped
        events.emit_server_restored(src, "h:1")
        assert lst.seen == ["h:1"]
    finally:
        events.detach(src)


def test_registry_does_not_keep_a_source_alive():
    src = Source()
    events.add_listener(Recorder(), source=src)
    ref = weakref.ref(src)
    del src
    gc.collect()
    assert ref() is None


def test_listener_added_while_another_thread_emits():
    src = Source()
    events.attach(src)
    stop = threading.Event()
    errors = []

    def emit():
        try:
            while not stop.is_set():
                ev = src._events
                if ev is not None:
                    ev.job_started("j", "f", "h:1", "H:1")
        except BaseException as exc:       # pragma: no cover - reported below
            errors.append(exc)

    th = threading.Thread(target=emit)
    th.start()
    recs = [Recorder() for _ in range(50)]
    try:
        for rec in recs:
            events.add_listener(rec, source=src)
        assert wait_until(lambda: recs[-1].calls, timeout=30)
        for rec in recs:
            events.remove_listener(rec, source=src)
    finally:
        stop.set()
        th.join(30)
        events.detach(src)
    assert not th.is_alive()
    assert errors == []
    assert src._events is None
    # every listener heard the events emitted while all were registered
    assert all(rec.calls for rec in recs)
