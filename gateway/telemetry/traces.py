"""OpenTelemetry traces: a span for each start, each delivery (with its HTTP request under
it) and each callback, all in the start's trace, which a caller's W3C traceparent begins and
each delivery carries on to its subscriber.

Configured by the standard OTEL_* variables: with OTEL_EXPORTER_OTLP_ENDPOINT (or
OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) set, spans are exported over OTLP/HTTP in batches;
without it the API's no-op tracer runs, which still carries a caller's trace on to the
subscribers (its spans take the caller's context) and costs next to nothing.

A delivery may run later and in another process (a worker): the start's span context goes
with the invocation, stored as its traceparent."""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, MutableMapping
from contextlib import contextmanager

from opentelemetry import context, propagate, trace
from opentelemetry.trace import Span, SpanKind

tracer = trace.get_tracer("gateway")
TRACEPARENT = "traceparent"


def configure(process: str) -> bool:
    """Export spans over OTLP if an endpoint is configured; whether it is. ``process`` (serve,
    worker) tells the gateway's processes apart in the spans' resource."""
    environ = os.environ
    endpoint = environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
    if not endpoint or environ.get("OTEL_SDK_DISABLED", "").lower() == "true":
        return False
    # Imported only here: without an endpoint the SDK is never loaded.
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    # Resource.create adds OTEL_RESOURCE_ATTRIBUTES; the attributes given here win over it.
    name = environ.get("OTEL_SERVICE_NAME") or "gateway"
    resource = Resource.create({SERVICE_NAME: name, "gateway.process": process})
    provider = TracerProvider(resource=resource)  # OTEL_TRACES_SAMPLER* are read here
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))  # OTEL_EXPORTER_OTLP_*
    trace.set_tracer_provider(provider)
    return True


@contextmanager
def caller_context(headers: Mapping[str, str]) -> Iterator[None]:
    """Within, spans continue the trace of a request's traceparent, if it has one."""
    if TRACEPARENT not in headers:
        yield
        return
    token = context.attach(propagate.extract(headers))
    try:
        yield
    finally:
        context.detach(token)


@contextmanager
def span(name: str, *, parent: str | None = None, kind: SpanKind = SpanKind.INTERNAL) -> Iterator[Span]:
    """A span, child of the current one, or of ``parent`` (a stored traceparent) if given
    and there is no current one of a trace. With no SDK configured, no span is made: the
    current trace (a caller's, or ``parent``) is only carried on, at a fraction of the cost."""
    parent_context = None
    if parent is not None and not _in_trace():
        parent_context = propagate.extract({TRACEPARENT: parent})
    if not _recording():
        token = None if parent_context is None else context.attach(parent_context)
        try:
            yield trace.get_current_span()  # the caller's (recording nothing), or none
        finally:
            if token is not None:
                context.detach(token)
        return
    with tracer.start_as_current_span(name, context=parent_context, kind=kind) as current:
        yield current


def current_traceparent() -> str | None:
    """The current span's context as a W3C traceparent, to be stored; None outside a trace."""
    if not _in_trace():
        return None
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier.get(TRACEPARENT)


def inject(headers: MutableMapping[str, str]) -> None:
    """Add the current span's traceparent (and tracestate) to outgoing headers."""
    if _in_trace():
        propagate.inject(headers)


def _in_trace() -> bool:
    return trace.get_current_span().get_span_context().is_valid


def _recording() -> bool:
    """Whether an SDK's tracer provider is installed (by configure, or by a test)."""
    return not isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider)
