"""OpenTelemetry spans for client requests and worker jobs, from the event hooks.

Needs the optional extra ``cygearman[otel]`` (``opentelemetry-api``; an SDK
and an exporter of your choice to send the spans anywhere)::

    from gearman.otel import GearmanInstrumentor

    GearmanInstrumentor().instrument()        # every client and worker of the process
    # or: GearmanInstrumentor().instrument(tracer_provider=provider, source=worker)

The spans follow OpenTelemetry's messaging semantic conventions:

* a client request is a ``publish FUNCTION`` span of kind PRODUCER, from
  submission to its end (a background request ends when the server accepts
  it, a foreground one when its result, failure or timeout comes); it is a
  child of the span current when the request was submitted;
* a worker job is a ``process FUNCTION`` span of kind CONSUMER, from the
  call of the job's function to its end; while the function runs it is the
  current span, so spans made inside the function are its children.

Attributes: ``messaging.system`` ``gearman``; ``messaging.operation.name``
``publish``/``process`` (also as the older ``messaging.operation``);
``messaging.operation.type`` ``send``/``process`` (the current convention's
values); ``messaging.destination.name`` the function name;
``messaging.message.id`` the job handle (once known); ``server.address`` and
``server.port`` the job server; ``messaging.gearman.unique``,
``messaging.gearman.priority`` and ``messaging.gearman.background`` where
they apply.  A span that ends badly has status ERROR and ``error.type``
(``WORK_FAIL``, ``WORK_EXCEPTION``, ``timeout``, ``lost_connection``, the
class of what made the caller give up (``CancelledError``...), or the
class of the exception the job's function raised, which is also recorded as
an ``exception`` event).

Gearman's protocol carries no headers, so the trace context does not travel
from client to worker: a job's ``process`` span starts a trace of its own (or
joins the worker's current one).  Both ends carry the job handle as
``messaging.message.id`` to correlate them.
"""
from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any, Dict, Optional, Tuple

from gearman.events import Listener, add_listener, remove_listener

if TYPE_CHECKING:
    from opentelemetry.trace import Span, Tracer, TracerProvider

__all__ = ["OpenTelemetryListener", "GearmanInstrumentor", "require_otel", "MESSAGING_SYSTEM"]

#: ``messaging.system`` of every span.
MESSAGING_SYSTEM = "gearman"


def require_otel() -> Any:
    """Import ``opentelemetry.trace``, or raise ImportError saying which extra to install."""
    try:
        from opentelemetry import trace
    except ImportError as exc:
        raise ImportError("OpenTelemetry spans need opentelemetry-api: "
                          "pip install 'cygearman[otel]'") from exc
    return trace


def _version() -> str:
    from gearman._version import __version__
    return __version__


def _server_attrs(server: Optional[str]) -> Dict[str, Any]:
    if not server:
        return {}
    host, sep, port = server.rpartition(":")
    if not sep or not port.isdigit():
        return {"server.address": server}
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    return {"server.address": host, "server.port": int(port)}


class OpenTelemetryListener(Listener):
    """An event listener that makes the spans described in :mod:`gearman.otel`.

    Args:
        tracer_provider: None: the global one (``opentelemetry.trace.get_tracer_provider()``).
        activate: make a job's span current while its function runs (it is
            attached at ``job_started`` and detached at the job's end, which
            the worker emits on the same thread or asyncio task).
    """

    def __init__(self, tracer_provider: "Optional[TracerProvider]" = None,
                 activate: bool = True) -> None:
        trace = require_otel()
        self._trace = trace
        self.tracer: Tracer = trace.get_tracer("gearman", _version(),
                                               tracer_provider=tracer_provider)
        self.activate = activate
        # request -> (span, background); job -> (span, context token or None).
        self._requests: Dict[Any, Tuple[Span, bool]] = {}
        self._jobs: Dict[Any, Tuple[Span, Any]] = {}
        self._lock = threading.Lock()

    @property
    def open_spans(self) -> int:
        """Spans started and not yet ended (requests and jobs still in flight)."""
        return len(self._requests) + len(self._jobs)

    # -- client requests -------------------------------------------------------------------

    def request_submitted(self, request: object, function: str, unique: Optional[str],
                          background: bool, priority: str) -> None:
        attrs: Dict[str, Any] = {
            "messaging.system": MESSAGING_SYSTEM,
            "messaging.operation.name": "publish",
            "messaging.operation": "publish",
            "messaging.operation.type": "send",
            "messaging.destination.name": function,
            "messaging.gearman.priority": priority,
            "messaging.gearman.background": background,
        }
        if unique is not None:
            attrs["messaging.gearman.unique"] = unique
        span = self.tracer.start_span(f"publish {function}", kind=self._trace.SpanKind.PRODUCER,
                                      attributes=attrs)
        with self._lock:
            old = self._requests.pop(request, None)
            self._requests[request] = (span, background)
        if old is not None:       # submitted again without an end: close the first one
            old[0].end()

    def request_accepted(self, request: object, function: str, server: str,
                         handle: str) -> None:
        with self._lock:
            entry = self._requests.get(request)
            if entry is not None and entry[1]:
                del self._requests[request]
        if entry is None:
            return
        span, background = entry
        span.set_attributes({"messaging.message.id": handle, **_server_attrs(server)})
        span.add_event("accepted")
        if background:
            span.end()

    def _end_request(self, request: object, server: Optional[str], handle: Optional[str],
                     error: Optional[str], description: Optional[str] = None) -> Optional[Span]:
        with self._lock:
            entry = self._requests.pop(request, None)
        if entry is None:
            return None
        span = entry[0]
        attrs: Dict[str, Any] = _server_attrs(server)
        if handle is not None:
            attrs["messaging.message.id"] = handle
        if error is not None:
            attrs["error.type"] = error
            span.set_status(self._trace.Status(self._trace.StatusCode.ERROR, description or error))
        if attrs:
            span.set_attributes(attrs)
        return span

    def request_completed(self, request: object, function: str, server: str,
                          handle: str) -> None:
        span = self._end_request(request, server, handle, None)
        if span is not None:
            span.end()

    def request_failed(self, request: object, function: str, server: Optional[str],
                       handle: Optional[str]) -> None:
        error = "WORK_FAIL" if handle is not None else "refused"
        span = self._end_request(request, server, handle, error,
                                 "the job failed" if handle is not None
                                 else "the server refused the job")
        if span is not None:
            span.end()

    def request_exception(self, request: object, function: str, server: str, handle: str,
                          message: Optional[bytes]) -> None:
        text = message.decode("utf-8", "replace") if message is not None else ""
        span = self._end_request(request, server, handle, "WORK_EXCEPTION",
                                 text or "the worker reported an exception")
        if span is not None:
            span.add_event("exception", {"exception.type": "WORK_EXCEPTION",
                                         "exception.message": text})
            span.end()

    def request_timed_out(self, request: object, function: str, server: Optional[str],
                          handle: Optional[str]) -> None:
        span = self._end_request(request, server, handle, "timeout", "timed out")
        if span is not None:
            span.end()

    def request_lost_connection(self, request: object, function: str, server: Optional[str],
                                handle: Optional[str]) -> None:
        span = self._end_request(request, server, handle, "lost_connection",
                                 "the connection to the server was lost")
        if span is not None:
            span.end()

    def request_abandoned(self, request: object, function: str, server: Optional[str],
                          handle: Optional[str], reason: Optional[BaseException]) -> None:
        error = type(reason).__qualname__ if reason is not None else "abandoned"
        span = self._end_request(request, server, handle, error,
                                 f"the caller gave up: {reason!r}" if reason is not None
                                 else "the caller gave up")
        if span is not None:
            span.end()

    # -- worker jobs -----------------------------------------------------------------------

    def job_started(self, job: object, function: str, server: str, handle: str) -> None:
        attrs: Dict[str, Any] = {
            "messaging.system": MESSAGING_SYSTEM,
            "messaging.operation.name": "process",
            "messaging.operation": "process",
            "messaging.operation.type": "process",
            "messaging.destination.name": function,
            "messaging.message.id": handle,
            **_server_attrs(server),
        }
        span = self.tracer.start_span(f"process {function}", kind=self._trace.SpanKind.CONSUMER,
                                      attributes=attrs)
        token = None
        if self.activate:
            from opentelemetry import context
            token = context.attach(self._trace.set_span_in_context(span))
        with self._lock:
            self._jobs[job] = (span, token)

    def _end_job(self, job: object) -> Optional[Span]:
        with self._lock:
            entry = self._jobs.pop(job, None)
        if entry is None:
            return None
        span, token = entry
        if token is not None:
            from opentelemetry import context
            context.detach(token)
        return span

    def job_completed(self, job: object, function: str, server: str, handle: str,
                      duration: float) -> None:
        span = self._end_job(job)
        if span is not None:
            span.end()

    def job_failed(self, job: object, function: str, server: str, handle: str,
                   duration: float) -> None:
        span = self._end_job(job)
        if span is not None:
            span.set_attribute("error.type", "WORK_FAIL")
            span.set_status(self._trace.Status(self._trace.StatusCode.ERROR, "the job failed"))
            span.end()

    def job_raised(self, job: object, function: str, server: str, handle: str,
                   duration: float, exc: BaseException) -> None:
        span = self._end_job(job)
        if span is not None:
            span.record_exception(exc)
            span.set_attribute("error.type", type(exc).__qualname__)
            span.set_status(self._trace.Status(self._trace.StatusCode.ERROR,
                                               f"{type(exc).__name__}: {exc}"))
            span.end()


class GearmanInstrumentor:
    """``instrument()`` / ``uninstrument()``, as OpenTelemetry's instrumentors spell it.

    Registers an :class:`OpenTelemetryListener` with :func:`gearman.events.add_listener`
    (for every client and worker, or for ``source`` only); instrumenting again
    first removes the previous listener.
    """

    def __init__(self) -> None:
        self.listener: Optional[OpenTelemetryListener] = None
        self._source: Any = None

    def instrument(self, tracer_provider: "Optional[TracerProvider]" = None,
                   source: Any = None, activate: bool = True) -> OpenTelemetryListener:
        """Start making spans; returns the listener."""
        self.uninstrument()
        listener = OpenTelemetryListener(tracer_provider, activate=activate)
        add_listener(listener, source)
        self.listener, self._source = listener, source
        return listener

    def uninstrument(self) -> None:
        """Stop making spans (spans in flight are left open)."""
        if self.listener is not None:
            remove_listener(self.listener, self._source)
            self.listener, self._source = None, None

    @property
    def is_instrumented(self) -> bool:
        """True between :meth:`instrument` and :meth:`uninstrument`."""
        return self.listener is not None
