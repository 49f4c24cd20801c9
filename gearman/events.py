"""Event hooks: one small interface for watching client requests, worker jobs and servers.

A *listener* is any object with the methods of :class:`Listener` (subclass it
and override the ones you need; the others do nothing).  Register it for every
client and worker of the process, or for one object::

    from gearman import events

    class Log(events.Listener):
        def job_completed(self, job, function, server, handle, duration):
            print(f"{function} {handle} took {duration:.3f}s")

    events.add_listener(Log())                 # every client and worker
    events.add_listener(Log(), source=worker)  # this worker only

The Prometheus (:mod:`gearman.metrics`) and OpenTelemetry (:mod:`gearman.otel`)
adapters are listeners.  See docs/monitoring.md.

**Rules for listeners.**  Methods are called synchronously on the thread (or
the event loop) that handles the request or job, so they must be quick and
must not block or call back into the client or worker that emitted.  An
exception raised by a listener is logged (logger ``gearman.events``) and
swallowed: a broken listener never breaks a job.  Listeners may be called
from several threads at once.

**The events.**  ``request`` and ``job`` are opaque objects that identify one
request or one job for as long as it lives (use them as dictionary keys to
pair a start with its end; they are hashable by identity).  ``server`` is
``"host:port"``; ``handle`` the job handle as text; durations are seconds
(``time.monotonic()`` differences).

Client requests (one ``request_submitted``, then at most one ``request_accepted``,
then exactly one terminal event; a background request ends at
``request_accepted``, or at a terminal event if it was never accepted):

* :meth:`Listener.request_submitted` -- the request is about to be sent;
* :meth:`Listener.request_accepted` -- the server answered JOB_CREATED;
* :meth:`Listener.request_completed` -- WORK_COMPLETE (terminal);
* :meth:`Listener.request_failed` -- WORK_FAIL, or the server refused the
  request (queue full, ERROR); ``handle`` is None when it was never accepted
  (terminal);
* :meth:`Listener.request_exception` -- WORK_EXCEPTION (terminal);
* :meth:`Listener.request_timed_out` -- the caller's timeout expired (terminal);
* :meth:`Listener.request_lost_connection` -- the connection broke before an
  answer, or no server could be reached (terminal);
* :meth:`Listener.request_abandoned` -- the caller gave up on the request for
  another reason than its timeout: a cancelled ``await``, an interrupt, a
  callback that raised (terminal).

``request`` is the task (``GearmanTask``) of a ``do*`` call, an ``addTask*``
or an asyncio call, and ``(batch, index)`` for each job of ``submit_batch``
(a batch emits per job).  A ``runTasks()`` that times out leaves its tasks
running (the next ``runTasks()`` goes on with them): no event until they end.

Worker jobs (``job_grabbed``, ``job_started``, then exactly one terminal event):

* :meth:`Listener.job_grabbed` -- JOB_ASSIGN received (a prefetched job may
  wait before it starts);
* :meth:`Listener.job_started` -- the function is called;
* :meth:`Listener.job_completed` -- the function returned and WORK_COMPLETE
  was sent (terminal);
* :meth:`Listener.job_failed` -- the job ended without WORK_COMPLETE and
  without a Python exception: WORK_FAIL (``setReturn``, ``sendFail``, no
  callback for the function), a WORK_EXCEPTION the function sent itself, a
  cancelled asyncio job, or an answer that could not be sent (terminal);
* :meth:`Listener.job_raised` -- the function raised (or returned a result
  that cannot be sent); ``exc`` is the exception (terminal).

``job_started`` and the job's terminal event are emitted on the same thread
(or asyncio task; for a plain function of an asyncio worker that returns an
awaitable, in the same ``contextvars`` context), and the terminal event goes
to the listeners that saw ``job_started``; durations are measured only while
someone listens.

Servers: :meth:`Listener.server_demoted` (a silent server is skipped for a
backoff) and :meth:`Listener.server_restored` (a probe found it answering).

**Where they are emitted.**  An emitting object (a client or a worker: a
*source*) holds one attribute, ``_events``: None while nobody listens to it,
else an :class:`Emitter` that fans out to its listeners.  Emission in a hot
path is therefore one attribute read and one ``is None`` test::

    ev = self._events
    if ev is not None:
        ev.job_completed(job, function, server, handle, duration)

(or, where a function call is cheap enough, ``events.emit_job_completed(self,
job, ...)``, which does the same).  A source is registered once with
:func:`attach` (from its constructor); from then on :func:`add_listener` and
:func:`remove_listener`, global or for that source, keep its ``_events`` up to
date.  Which points of the client and worker emit is listed in
:data:`EMISSION_POINTS`; see docs/monitoring.md.
"""
from __future__ import annotations

import inspect
import logging
import threading
import weakref
from typing import Any, Callable, Dict, List, Optional, Tuple

__all__ = [
    "Listener",
    "Emitter",
    "EVENTS",
    "EMISSION_POINTS",
    "attach",
    "detach",
    "add_listener",
    "remove_listener",
    "listeners",
    "emitter_for",
    "emit_request_submitted",
    "emit_request_accepted",
    "emit_request_completed",
    "emit_request_failed",
    "emit_request_exception",
    "emit_request_timed_out",
    "emit_request_lost_connection",
    "emit_request_abandoned",
    "emit_job_grabbed",
    "emit_job_started",
    "emit_job_completed",
    "emit_job_failed",
    "emit_job_raised",
    "emit_server_demoted",
    "emit_server_restored",
]

log = logging.getLogger("gearman.events")

#: The attribute of a source that holds its Emitter (or None).
ATTR = "_events"


class Listener:
    """The event interface: every method does nothing; override the ones you need.

    A listener need not subclass this: any object with these methods will do
    (:class:`Emitter` only calls the methods a listener has).
    """

    # -- client requests -----------------------------------------------------------------

    def request_submitted(self, request: object, function: str, unique: Optional[str],
                          background: bool, priority: str) -> None:
        """A request is about to be sent.

        ``priority`` is ``"high"``, ``"normal"`` or ``"low"``; ``unique`` the
        unique id as text, or None for none.
        """

    def request_accepted(self, request: object, function: str, server: str,
                         handle: str) -> None:
        """``server`` answered JOB_CREATED with ``handle``."""

    def request_completed(self, request: object, function: str, server: str,
                          handle: str) -> None:
        """WORK_COMPLETE arrived."""

    def request_failed(self, request: object, function: str, server: Optional[str],
                       handle: Optional[str]) -> None:
        """WORK_FAIL arrived, or the server refused the request (``handle`` None)."""

    def request_exception(self, request: object, function: str, server: str, handle: str,
                          message: Optional[bytes]) -> None:
        """WORK_EXCEPTION arrived; ``message`` is the worker's exception data, if any."""

    def request_timed_out(self, request: object, function: str, server: Optional[str],
                          handle: Optional[str]) -> None:
        """The caller's timeout expired before an answer (``handle`` None: not accepted yet)."""

    def request_lost_connection(self, request: object, function: str, server: Optional[str],
                                handle: Optional[str]) -> None:
        """The connection to ``server`` broke before the request was answered."""

    def request_abandoned(self, request: object, function: str, server: Optional[str],
                          handle: Optional[str], reason: Optional[BaseException]) -> None:
        """The caller gave up on the request, not for its timeout (``reason``: why)."""

    # -- worker jobs -----------------------------------------------------------------------

    def job_grabbed(self, job: object, function: str, server: str, handle: str,
                    unique: Optional[str]) -> None:
        """JOB_ASSIGN (or JOB_ASSIGN_UNIQ) arrived from ``server``."""

    def job_started(self, job: object, function: str, server: str, handle: str) -> None:
        """The job's function is about to be called."""

    def job_completed(self, job: object, function: str, server: str, handle: str,
                      duration: float) -> None:
        """The function returned and WORK_COMPLETE was sent; ``duration`` since job_started."""

    def job_failed(self, job: object, function: str, server: str, handle: str,
                   duration: float) -> None:
        """The job ended with WORK_FAIL without a Python exception."""

    def job_raised(self, job: object, function: str, server: str, handle: str,
                   duration: float, exc: BaseException) -> None:
        """The function raised ``exc`` (the job was reported failed to the server)."""

    # -- servers -----------------------------------------------------------------------------

    def server_demoted(self, server: str, reason: str, backoff: float) -> None:
        """``server`` stopped answering and is skipped for ``backoff`` seconds."""

    def server_restored(self, server: str) -> None:
        """A demoted ``server`` answered again and is used again."""


#: Every event method name, in the order of :class:`Listener`.
EVENTS: Tuple[str, ...] = (
    "request_submitted", "request_accepted", "request_completed", "request_failed",
    "request_exception", "request_timed_out", "request_lost_connection",
    "request_abandoned", "job_grabbed", "job_started", "job_completed", "job_failed", "job_raised",
    "server_demoted", "server_restored",
)

#: Which events the client and worker emit, by name.  ``True``: emitted;
#: ``False``: defined here, not emitted yet.  Every event is emitted now: by the
#: compiled engines (gearman._core), which the blocking and asyncio surfaces
#: share, and by the asyncio worker's job task (job_started and a cancelled
#: job's end).  docs/monitoring.md says where each comes from.
EMISSION_POINTS: Dict[str, bool] = {name: True for name in EVENTS}


def _call(listeners: Tuple[Any, ...], name: str, args: Tuple[Any, ...]) -> None:
    for listener in listeners:
        method = getattr(listener, name, None)
        if method is None:
            continue
        try:
            method(*args)
        except Exception:
            log.exception("event listener %r failed in %s", listener, name)


class Emitter(Listener):
    """Fans one event out to several listeners; what a source's ``_events`` holds.

    Immutable: registering a listener builds a new Emitter, so emitting never
    takes a lock and a listener added meanwhile is simply seen from the next event.
    Its methods are :class:`Listener`'s, each made by :func:`_fan_out` (the
    signatures are written once, in :class:`Listener`).
    """

    __slots__ = ("listeners",)

    def __init__(self, listeners: Tuple[Any, ...]) -> None:
        self.listeners = listeners

    def __repr__(self) -> str:
        return f"<gearman.events.Emitter {list(self.listeners)!r}>"


def _fan_out(name: str) -> Callable[..., None]:
    """The Emitter method of event ``name``: call it on every listener that has it."""
    def method(self: Emitter, *args: Any) -> None:
        _call(self.listeners, name, args)
    method.__name__ = method.__qualname__ = name
    method.__doc__ = f"Call ``{name}`` on every listener (see :meth:`Listener.{name}`)."
    # what help() and inspect show: the Listener method's own signature
    method.__signature__ = inspect.signature(getattr(Listener, name))  # type: ignore[attr-defined]
    return method


for _name in EVENTS:
    setattr(Emitter, _name, _fan_out(_name))


# -- the registry ------------------------------------------------------------------------

_lock = threading.RLock()
_global: Tuple[Any, ...] = ()
_global_emitter: Optional[Emitter] = None
#: every attached source -> its own listeners (weakly: a source may die without detach)
_sources: "weakref.WeakKeyDictionary[Any, Tuple[Any, ...]]" = weakref.WeakKeyDictionary()


def _make(listeners: Tuple[Any, ...]) -> Optional[Emitter]:
    return Emitter(listeners) if listeners else None


def _refresh(source: Any, own: Tuple[Any, ...]) -> None:
    combined = _global + tuple(lst for lst in own if lst not in _global)
    setattr(source, ATTR, _make(combined) if own else _global_emitter)


def attach(source: Any) -> None:
    """Register ``source`` (a client or worker) so that its ``_events`` follows the listeners.

    Sets ``source._events`` now (None if there is no global listener) and
    whenever :func:`add_listener`/:func:`remove_listener` change what it
    should see.  The source is held weakly (it needs a ``__weakref__`` slot);
    attaching twice is harmless.
    """
    with _lock:
        own = _sources.get(source, ())
        _sources[source] = own
        _refresh(source, own)


def detach(source: Any) -> None:
    """Stop updating ``source``: forget its own listeners and set its ``_events`` to None."""
    with _lock:
        _sources.pop(source, None)
        setattr(source, ATTR, None)


def add_listener(listener: Any, source: Any = None) -> None:
    """Listen to every attached client and worker (``source`` None), or to ``source`` only.

    A source given here is attached if it was not.  Adding a listener that is
    already registered at that level does nothing; a listener registered both
    globally and for a source is called once per event.
    """
    global _global, _global_emitter
    with _lock:
        if source is None:
            if listener in _global:
                return
            _global = _global + (listener,)
            _global_emitter = _make(_global)
            for src, own in list(_sources.items()):
                _refresh(src, own)
        else:
            own = _sources.get(source, ())
            if listener not in own:
                own = own + (listener,)
            _sources[source] = own
            _refresh(source, own)


def remove_listener(listener: Any, source: Any = None) -> None:
    """Undo :func:`add_listener` (same ``source``); a listener not registered there is ignored."""
    global _global, _global_emitter
    with _lock:
        if source is None:
            if listener not in _global:
                return
            _global = tuple(lst for lst in _global if lst is not listener)
            _global_emitter = _make(_global)
            for src, own in list(_sources.items()):
                _refresh(src, own)
        elif source in _sources:
            own = tuple(lst for lst in _sources[source] if lst is not listener)
            _sources[source] = own
            _refresh(source, own)


def listeners(source: Any = None) -> List[Any]:
    """The global listeners (``source`` None), or those ``source`` emits to (global ones first)."""
    with _lock:
        if source is None:
            return list(_global)
        em = getattr(source, ATTR, None)
        return list(em.listeners) if isinstance(em, Emitter) else []


def emitter_for(source: Any = None) -> Optional[Emitter]:
    """What ``source`` emits to (``source._events``), or the global Emitter for None."""
    if source is None:
        return _global_emitter
    em: Optional[Emitter] = getattr(source, ATTR, None)
    return em


# -- emit_* helpers: one call per event, for code paths where a call costs nothing that matters.
# ``source`` None emits to the global listeners (code that belongs to no client or worker).
# Each takes ``source`` and then the arguments of the Listener method of the same name.

def _emit(name: str) -> Callable[..., None]:
    def emit(source: Any, *args: Any) -> None:
        ev = _global_emitter if source is None else getattr(source, ATTR, None)
        if ev is not None:
            getattr(ev, name)(*args)
    emit.__name__ = emit.__qualname__ = f"emit_{name}"
    emit.__doc__ = f"Emit :meth:`Listener.{name}` from ``source`` (None: the global listeners)."
    listener = inspect.signature(getattr(Listener, name))
    params = [inspect.Parameter("source", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation="Any")]
    params += [p for p in listener.parameters.values() if p.name != "self"]
    emit.__signature__ = listener.replace(parameters=params)  # type: ignore[attr-defined]
    return emit


emit_request_submitted = _emit("request_submitted")
emit_request_accepted = _emit("request_accepted")
emit_request_completed = _emit("request_completed")
emit_request_failed = _emit("request_failed")
emit_request_exception = _emit("request_exception")
emit_request_timed_out = _emit("request_timed_out")
emit_request_lost_connection = _emit("request_lost_connection")
emit_request_abandoned = _emit("request_abandoned")
emit_job_grabbed = _emit("job_grabbed")
emit_job_started = _emit("job_started")
emit_job_completed = _emit("job_completed")
emit_job_failed = _emit("job_failed")
emit_job_raised = _emit("job_raised")
emit_server_demoted = _emit("server_demoted")
emit_server_restored = _emit("server_restored")
