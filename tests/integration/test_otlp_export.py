"""With OTEL_EXPORTER_OTLP_ENDPOINT set, `gateway serve` exports its spans over OTLP/HTTP: a
real receiver on loopback gets the start's, the delivery's and its HTTP request's spans, one
trace, under the service name OTEL_SERVICE_NAME gives."""

from __future__ import annotations

import asyncio
from pathlib import Path

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import Span
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.conftest import make_settings
from tests.integration.test_json_logs import serve_process
from tests.integration.test_metrics import free_port
from tests.servers import Subscriber, answer, bound_socket, serve


class Receiver:
    """An OTLP/HTTP trace receiver: what it was sent, decoded."""

    def __init__(self) -> None:
        self.spans: list[tuple[str, Span]] = []  # (service name, span)
        self.app = Starlette(routes=[Route("/v1/traces", self.receive, methods=["POST"])])

    async def receive(self, request: Request) -> Response:
        export = ExportTraceServiceRequest.FromString(await request.body())
        for resource_spans in export.resource_spans:
            attributes = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
            for scope_spans in resource_spans.scope_spans:
                self.spans += [(attributes.get("service.name", ""), span) for span in scope_spans.spans]
        return Response(ExportTraceServiceRequest().SerializeToString(), media_type="application/x-protobuf")

    def named(self, name: str) -> list[Span]:
        return [span for _, span in self.spans if span.name == name]


async def test_spans_are_exported_over_otlp(tmp_path: Path, subscriber: Subscriber) -> None:
    receiver = Receiver()
    async with serve(receiver.app, bound_socket()) as endpoint:
        port = free_port()
        settings = make_settings(tmp_path, f"http://127.0.0.1:{port}", port=port)
        otel = {
            "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
            "OTEL_SERVICE_NAME": "gateway-under-test",
            "OTEL_BSP_SCHEDULE_DELAY": "50",  # ms: export at once, not every 5 s
        }
        async with serve_process(settings, tmp_path / "serve.log", extra_env=otel) as gateway:
            await gateway.create_trigger("t:exported")
            await gateway.subscribe("t:exported", subscriber.endpoint("e", answer(200, {"ok": True})))
            [started] = await gateway.start("t:exported", {})
            await gateway.final_status(started["id"])
            async with asyncio.timeout(10):
                while not (receiver.named("gateway.start") and receiver.named("POST")):  # noqa: ASYNC110
                    await asyncio.sleep(0.05)
    [start], [deliver], [post] = (receiver.named(n) for n in ("gateway.start", "gateway.deliver", "POST"))
    assert start.trace_id == deliver.trace_id == post.trace_id
    assert deliver.parent_span_id == start.span_id and post.parent_span_id == deliver.span_id
    assert post.kind == Span.SpanKind.SPAN_KIND_CLIENT
    assert {service for service, _ in receiver.spans} == {"gateway-under-test"}
    [received] = subscriber.received
    version, trace_id, parent_id, flags = received.headers["traceparent"].split("-")
    assert (version, trace_id, parent_id) == ("00", post.trace_id.hex(), post.span_id.hex())
    assert int(flags, 16) & 1  # sampled
