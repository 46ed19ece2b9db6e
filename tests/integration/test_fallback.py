"""Fail-open over HTTP, in both modes (distributed: the worker's delivery, and its expiry
job and sweep, take the trigger's fallbackOutput from the catalog)."""

from __future__ import annotations

from tests.gateway_client import GatewayClient
from tests.servers import Subscriber, answer

SCHEMA = {"type": "object", "properties": {"approved": {"type": "boolean"}}}


async def test_failures_and_expiries_complete_with_the_fallback(
    gateway: GatewayClient, subscriber: Subscriber
) -> None:
    fallback = {"approved": False}
    await gateway.create_trigger("t:fails", outputSchema=SCHEMA, fallbackOutput=fallback)
    await gateway.subscribe("t:fails", subscriber.endpoint("down", answer(503, {})))
    await gateway.create_trigger("t:slow", outputSchema=SCHEMA, fallbackOutput=fallback)
    await gateway.subscribe(
        "t:slow", subscriber.endpoint("ack", answer(200, {})), "ASYNC", responseDeadline="PT1S"
    )
    [failed] = await gateway.start("t:fails", {})
    [expired] = await gateway.start("t:slow", {})
    for invocation, error in (
        (failed, "the subscriber answered HTTP 503"),
        (expired, "no callback before the deadline"),
    ):
        status = await gateway.final_status(invocation["id"])
        assert (status["status"], status["fallback"]) == ("COMPLETED", True)
        assert status["completeInvocationInput"] == {
            "output": fallback,
            "localizedError": {"locale": "en-US", "message": error},
        }
