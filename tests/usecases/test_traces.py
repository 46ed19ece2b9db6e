"""Traces, recorded with OpenTelemetry's SDK and an in-memory exporter: a start's span, its
deliveries' spans with the HTTP request under each, and the callback's span are one trace,
the one a caller's traceparent began; and each delivery carries that trace to its subscriber
in a traceparent header of its HTTP request's span."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from gateway.telemetry import traces
from tests.servers import Subscriber, answer
from tests.usecases.driver import Driver

CALLER_TRACE = "0af7651916cd43dd8448eb211c80319c"
CALLER_SPAN = "b7ad6b7169203331"
TRACEPARENT = f"00-{CALLER_TRACE}-{CALLER_SPAN}-01"

_exporter = InMemorySpanExporter()


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    """The spans ended during the test (the SDK's provider is installed once per process)."""
    if not isinstance(trace.get_tracer_provider(), TracerProvider):
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(_exporter))
        trace.set_tracer_provider(provider)
    _exporter.clear()
    yield _exporter
    _exporter.clear()


def hex_ids(span: ReadableSpan) -> tuple[str, str, str | None]:
    """(trace id, span id, parent span id) as W3C hex strings."""
    context = span.get_span_context()
    assert context is not None
    parent = None if span.parent is None else f"{span.parent.span_id:016x}"
    return f"{context.trace_id:032x}", f"{context.span_id:016x}", parent


def named(exporter: InMemorySpanExporter, name: str) -> list[ReadableSpan]:
    return [span for span in exporter.get_finished_spans() if span.name == name]


async def test_a_start_its_delivery_and_the_callback_are_one_trace(
    app: Driver, subscriber: Subscriber, spans: InMemorySpanExporter
) -> None:
    await app.create_trigger("t:approve")
    await app.subscribe("t:approve", subscriber.endpoint("ack", answer(200, {})), "ASYNC")
    with traces.caller_context({"traceparent": TRACEPARENT}):
        [started] = await app.start("t:approve", {})
    await app.settled()
    [received] = subscriber.received
    assert await app.complete(received.body["_metadata"], output={"approved": True}) == 204

    [start] = named(spans, "gateway.start")
    [deliver] = named(spans, "gateway.deliver")
    [post] = named(spans, "POST")
    [callback] = named(spans, "gateway.callback")
    start_ids, deliver_ids, post_ids = hex_ids(start), hex_ids(deliver), hex_ids(post)
    assert start_ids[0] == CALLER_TRACE and start_ids[2] == CALLER_SPAN  # the caller's trace
    assert deliver_ids[0] == CALLER_TRACE and deliver_ids[2] == start_ids[1]
    assert post_ids[0] == CALLER_TRACE and post_ids[2] == deliver_ids[1]
    assert post.kind == trace.SpanKind.CLIENT
    assert post.attributes is not None and post.attributes["http.response.status_code"] == 200
    assert hex_ids(callback)[0] == CALLER_TRACE and hex_ids(callback)[2] == start_ids[1]
    assert deliver.attributes is not None and deliver.attributes["gateway.invocation.id"] == started["id"]
    # The subscriber got the trace, as a child of the HTTP request's span.
    assert received.headers["traceparent"] == f"00-{CALLER_TRACE}-{post_ids[1]}-01"


async def test_without_a_caller_trace_a_start_begins_one_that_its_delivery_joins(
    app: Driver, subscriber: Subscriber, spans: InMemorySpanExporter
) -> None:
    await app.create_trigger("t:ok")
    await app.subscribe("t:ok", subscriber.endpoint("ok", answer(200, {"ok": True})))
    await app.start("t:ok", {})
    await app.settled()
    [start] = named(spans, "gateway.start")
    [deliver] = named(spans, "gateway.deliver")
    assert start.parent is None
    assert hex_ids(deliver)[0] == hex_ids(start)[0] and hex_ids(deliver)[2] == hex_ids(start)[1]
    [received] = subscriber.received
    assert received.headers["traceparent"].split("-")[1] == hex_ids(start)[0]
