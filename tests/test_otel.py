"""gearman.otel: the OpenTelemetry listener, driven through its event methods and
through gearman.events, with the SDK's in-memory span exporter.

The end-to-end tests run a real client and worker against gearmand.  Needs
opentelemetry-api and opentelemetry-sdk: without them these tests fail (they
are not skipped).
"""
import threading

import pytest

try:
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from opentelemetry.trace import SpanKind, StatusCode
except ImportError as exc:  # fail clearly, never skip: CI installs the extra
    raise ImportError("tests/test_otel.py needs opentelemetry-api and opentelemetry-sdk "
                      "(pip install 'cygearman[otel]' opentelemetry-sdk)") from exc

import gearman
from gearman import errors, events
from gearman.otel import GearmanInstrumentor, OpenTelemetryListener

SERVER = "127.0.0.1:4730"


@pytest.fixture
def spans():
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield provider, exporter
    provider.shutdown()


@pytest.fixture
def listener(spans):
    provider, _ = spans
    return OpenTelemetryListener(tracer_provider=provider)


def finished(exporter):
    return list(exporter.get_finished_spans())


def test_foreground_request_span(listener, spans):
    provider, exporter = spans
    req = object()
    listener.request_submitted(req, "resize", "u-1", False, "high")
    listener.request_accepted(req, "resize", SERVER, "H:host:42")
    assert finished(exporter) == []          # a foreground request lasts until its result
    assert listener.open_spans == 1
    listener.request_completed(req, "resize", SERVER, "H:host:42")
    (span,) = finished(exporter)
    assert span.name == "publish resize"
    assert span.kind == SpanKind.PRODUCER
    assert span.status.status_code == StatusCode.UNSET
    assert dict(span.attributes) == {
        "messaging.system": "gearman",
        "messaging.operation.name": "publish",
        "messaging.operation": "publish",
        "messaging.operation.type": "send",
        "messaging.destination.name": "resize",
        "messaging.message.id": "H:host:42",
        "messaging.gearman.unique": "u-1",
        "messaging.gearman.priority": "high",
        "messaging.gearman.background": False,
        "server.address": "127.0.0.1",
        "server.port": 4730,
    }
    assert [e.name for e in span.events] == ["accepted"]
    assert span.instrumentation_scope.name == "gearman"
    assert listener.open_spans == 0


def test_background_request_ends_when_accepted(listener, spans):
    _, exporter = spans
    req = object()
    listener.request_submitted(req, "bg", None, True, "low")
    listener.request_accepted(req, "bg", "[::1]:4731", "H:h:7")
    (span,) = finished(exporter)
    assert span.attributes["messaging.gearman.background"] is True
    assert span.attributes["server.address"] == "::1"
    assert span.attributes["server.port"] == 4731
    assert span.attributes["messaging.message.id"] == "H:h:7"
    assert "messaging.gearman.unique" not in span.attributes
    assert listener.open_spans == 0
    # a late event for an ended request changes nothing
    listener.request_completed(req, "bg", SERVER, "H:h:7")
    assert len(finished(exporter)) == 1


@pytest.mark.parametrize("end,error_type", [
    (lambda l, r: l.request_failed(r, "f", SERVER, "H:1"), "WORK_FAIL"),
    (lambda l, r: l.request_failed(r, "f", SERVER, None), "refused"),
    (lambda l, r: l.request_exception(r, "f", SERVER, "H:1", b"ValueError: bad"), "WORK_EXCEPTION"),
    (lambda l, r: l.request_timed_out(r, "f", None, None), "timeout"),
    (lambda l, r: l.request_lost_connection(r, "f", SERVER, "H:1"), "lost_connection"),
])
def test_request_errors(listener, spans, end, error_type):
    _, exporter = spans
    req = object()
    listener.request_submitted(req, "f", None, False, "normal")
    end(listener, req)
    (span,) = finished(exporter)
    assert span.status.status_code == StatusCode.ERROR
    assert span.attributes["error.type"] == error_type
    if error_type == "WORK_EXCEPTION":
        (event,) = [e for e in span.events if e.name == "exception"]
        assert event.attributes["exception.message"] == "ValueError: bad"
        assert span.status.description == "ValueError: bad"
    if error_type == "timeout":
        assert "messaging.message.id" not in span.attributes
        assert "server.address" not in span.attributes
    assert listener.open_spans == 0


def test_request_span_is_child_of_the_current_span(listener, spans):
    provider, exporter = spans
    tracer = provider.get_tracer("app")
    req = object()
    with tracer.start_as_current_span("handler") as parent:
        listener.request_submitted(req, "f", None, False, "normal")
    listener.request_completed(req, "f", SERVER, "H:1")
    publish = [s for s in finished(exporter) if s.name == "publish f"][0]
    assert publish.parent is not None
    assert publish.parent.span_id == parent.get_span_context().span_id
    assert publish.context.trace_id == parent.get_span_context().trace_id


def test_worker_job_span_is_current_while_the_job_runs(listener, spans):
    provider, exporter = spans
    tracer = provider.get_tracer("app")
    job = object()
    listener.job_grabbed(job, "resize", SERVER, "H:h:9", "u")
    listener.job_started(job, "resize", SERVER, "H:h:9")
    with tracer.start_as_current_span("inside the job"):
        pass
    listener.job_completed(job, "resize", SERVER, "H:h:9", 0.25)
    assert not trace.get_current_span().get_span_context().is_valid   # detached again
    inner, process = finished(exporter)
    assert process.name == "process resize"
    assert process.kind == SpanKind.CONSUMER
    assert process.status.status_code == StatusCode.UNSET
    assert process.attributes["messaging.operation.name"] == "process"
    assert process.attributes["messaging.operation.type"] == "process"
    assert process.attributes["messaging.destination.name"] == "resize"
    assert process.attributes["messaging.message.id"] == "H:h:9"
    assert process.attributes["messaging.system"] == "gearman"
    assert inner.parent.span_id == process.context.span_id
    assert listener.open_spans == 0


def test_worker_job_raised_records_the_exception(listener, spans):
    _, exporter = spans
    job = object()
    listener.job_started(job, "f", SERVER, "H:1")
    try:
        raise KeyError("missing")
    except KeyError as exc:
        listener.job_raised(job, "f", SERVER, "H:1", 0.1, exc)
    (span,) = finished(exporter)
    assert span.status.status_code == StatusCode.ERROR
    assert span.attributes["error.type"] == "KeyError"
    (event,) = span.events
    assert event.name == "exception"
    assert event.attributes["exception.type"] == "KeyError"
    assert "missing" in event.attributes["exception.message"]
    assert "Traceback" in event.attributes["exception.stacktrace"]


def test_worker_job_failed(listener, spans):
    _, exporter = spans
    job = object()
    listener.job_started(job, "f", SERVER, "H:1")
    listener.job_failed(job, "f", SERVER, "H:1", 0.1)
    (span,) = finished(exporter)
    assert span.status.status_code == StatusCode.ERROR
    assert span.attributes["error.type"] == "WORK_FAIL"
    assert span.events == ()


def test_activate_false_leaves_the_current_context(spans):
    provider, exporter = spans
    listener = OpenTelemetryListener(tracer_provider=provider, activate=False)
    job = object()
    listener.job_started(job, "f", SERVER, "H:1")
    assert not trace.get_current_span().get_span_context().is_valid
    listener.job_completed(job, "f", SERVER, "H:1", 0.0)
    assert len(finished(exporter)) == 1


def test_instrumentor_through_the_event_registry(spans):
    provider, exporter = spans

    class Source:     # what a client or worker is to gearman.events
        pass

    src = Source()
    events.attach(src)
    inst = GearmanInstrumentor()
    try:
        listener = inst.instrument(tracer_provider=provider, source=src)
        assert inst.is_instrumented
        assert events.listeners(src) == [listener]
        job, req = object(), object()
        events.emit_request_submitted(src, req, "f", None, True, "normal")
        events.emit_request_accepted(src, req, "f", SERVER, "H:1")
        events.emit_job_started(src, job, "g", SERVER, "H:2")
        events.emit_job_completed(src, job, "g", SERVER, "H:2", 0.5)
        assert sorted(s.name for s in finished(exporter)) == ["process g", "publish f"]
    finally:
        inst.uninstrument()
        events.detach(src)
    assert not inst.is_instrumented
    assert src._events is None


def test_instrument_twice_replaces_the_listener(spans):
    provider, exporter = spans

    class Source:
        pass

    src = Source()
    inst = GearmanInstrumentor()
    try:
        first = inst.instrument(tracer_provider=provider, source=src)
        second = inst.instrument(tracer_provider=provider, source=src)
        assert first is not second
        assert events.listeners(src) == [second]
        events.emit_job_started(src, 1, "f", SERVER, "H:1")
        events.emit_job_completed(src, 1, "f", SERVER, "H:1", 0.1)
        assert len(finished(exporter)) == 1
    finally:
        inst.uninstrument()
        events.detach(src)


# -- end to end: a real client and worker against gearmand ------------------------------------

def test_end_to_end_publish_and_process_spans(spans, gearmand, client, fn):
    provider, exporter = spans
    inner_parent = []

    def cb(job, ctx):
        # the job's span is current while its function runs: a span made here is its child
        with trace.get_tracer("app", tracer_provider=provider).start_as_current_span("inner") as s:
            inner_parent.append(s.parent)
        if job.workload() == b"boom":
            raise ValueError("boom in the job")
        return job.workload()[::-1]

    worker = gearman.GearmanWorker()
    worker.addServer("127.0.0.1", gearmand.port)
    worker.addFunction(fn, cb)
    worker.setTimeout(5000)
    inst = GearmanInstrumentor()
    inst.instrument(tracer_provider=provider, source=worker)
    inst2 = GearmanInstrumentor()
    inst2.instrument(tracer_provider=provider, source=client)
    th = threading.Thread(target=lambda: [worker.work() for _ in range(2)], daemon=True)
    th.start()
    try:
        assert client.doNormal(fn, b"abc", "u-e2e") == b"cba"
        with pytest.raises(errors.JobExceptionError):
            client.doNormal(fn, b"boom")
        th.join(10)
    finally:
        inst.uninstrument()
        inst2.uninstrument()
        worker.close()
    server = {"server.address": "127.0.0.1", "server.port": gearmand.port}
    done = finished(exporter)
    publish = [s for s in done if s.name == f"publish {fn}"]
    process = [s for s in done if s.name == f"process {fn}"]
    assert len(publish) == 2 and len(process) == 2
    assert inst.listener is None
    for p, q in zip(publish, process):
        assert p.kind == SpanKind.PRODUCER and q.kind == SpanKind.CONSUMER
        handle = p.attributes["messaging.message.id"]
        assert handle.startswith("H:")
        assert q.attributes["messaging.message.id"] == handle     # the two ends correlate
        for span, op in ((p, "publish"), (q, "process")):
            attrs = dict(span.attributes)
            assert attrs["messaging.system"] == "gearman"
            assert attrs["messaging.operation.name"] == op
            assert attrs["messaging.destination.name"] == fn
            assert {k: attrs[k] for k in server} == server
    assert publish[0].attributes["messaging.gearman.unique"] == "u-e2e"
    assert publish[0].status.status_code == StatusCode.UNSET
    assert process[0].status.status_code == StatusCode.UNSET
    # the raising job: its process span records the exception, its publish span the outcome
    assert process[1].status.status_code == StatusCode.ERROR
    assert process[1].attributes["error.type"] == "ValueError"
    (exc_event,) = [e for e in process[1].events if e.name == "exception"]
    assert exc_event.attributes["exception.type"] == "ValueError"
    assert "boom in the job" in exc_event.attributes["exception.message"]
    assert publish[1].status.status_code == StatusCode.ERROR
    assert publish[1].attributes["error.type"] == "WORK_EXCEPTION"
    # the spans made inside the job's function are children of its process span
    inner = [s for s in done if s.name == "inner"]
    assert [s.parent.span_id for s in inner] == [q.context.span_id for q in process]
    assert all(p is not None for p in inner_parent)


@pytest.mark.parametrize("task_context", ["native", False], ids=["native", "no-task-context"])
def test_asyncio_worker_job_spans_for_every_kind_of_function(spans, gearmand, fn, monkeypatch,
                                                             task_context):
    """gearman.aio runs a plain function in its serving task, an ``async def``
    in a task per job, and awaits what a plain function returns: each job's
    span is current while its code runs (a span made there is its child),
    every span ends, and none stays current afterwards (the context token of
    job_started is detached in the context it was attached in).  Before
    Python 3.11 a task cannot be given a context: with listeners, a plain
    function's job then runs in a task of its own (``no-task-context``,
    forced here on any Python; ``native`` is what this Python does)."""
    import asyncio
    import logging

    from gearman import aio
    from gearman.aio import AsyncGearmanClient, AsyncGearmanWorker

    if task_context is False:
        monkeypatch.setattr(aio, "_TASK_CONTEXT", False)

    provider, exporter = spans
    tracer = trace.get_tracer("app", tracer_provider=provider)
    parents = {}

    def inner(name):
        with tracer.start_as_current_span("inner " + name) as s:
            parents[name] = s.parent.span_id if s.parent else None

    def plain(job):
        inner(job.workload().decode())
        return b"p"

    async def coro(job):
        await asyncio.sleep(0)
        inner(job.workload().decode())
        return b"c"

    def returns_awaitable(job):
        async def later():
            await asyncio.sleep(0)
            inner(job.workload().decode())
            return b"a"
        return later()

    errors_logged = []

    class Catch(logging.Handler):
        def emit(self, record):
            if record.levelno >= logging.ERROR:
                errors_logged.append(record.getMessage())

    handler = Catch()
    logging.getLogger("opentelemetry").addHandler(handler)

    async def main():
        w = AsyncGearmanWorker(gearmand.address, concurrency=4)
        w.register(fn + "-plain", plain)
        w.register(fn + "-coro", coro)
        w.register(fn + "-aw", returns_awaitable)
        inst = GearmanInstrumentor()
        inst.instrument(tracer_provider=provider, source=w)
        run = asyncio.ensure_future(w.run())
        try:
            async with AsyncGearmanClient(gearmand.address, timeout=20) as c:
                got = await asyncio.gather(*(c.do_normal(fn + kind, kind.encode() + b"%d" % i)
                                             for i in range(5)
                                             for kind in ("-plain", "-coro", "-aw")))
            assert got == [b"p", b"c", b"a"] * 5
            assert not trace.get_current_span().get_span_context().is_valid
        finally:
            w.stop()
            await asyncio.wait_for(run, 10)
            inst.uninstrument()
        return inst

    try:
        asyncio.run(main())
    finally:
        logging.getLogger("opentelemetry").removeHandler(handler)
    assert errors_logged == []
    process = {s.attributes["messaging.message.id"]: s for s in finished(exporter)
               if s.name.startswith("process ")}
    assert len(process) == 15
    by_span_id = {s.context.span_id: s for s in process.values()}
    assert len(parents) == 15
    for name, parent_id in parents.items():
        kind = "-" + name.rstrip("0123456789").lstrip("-")
        span = by_span_id[parent_id]          # the inner span's parent is a process span
        assert span.name == f"process {fn}{kind}", (name, span.name)
