"""Over HTTP in both modes (distributed, the worker delivers): a W3C traceparent sent with a
start reaches the subscriber in its delivery's traceparent, the same trace; and a caller's
X-Request-Id that is a safe token becomes the request's trackingId."""

from __future__ import annotations

from tests.gateway_client import GatewayClient
from tests.servers import Subscriber, answer

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACEPARENT = f"00-{TRACE_ID}-00f067aa0ba902b7-01"


async def test_a_callers_trace_reaches_the_subscriber(gateway: GatewayClient, subscriber: Subscriber) -> None:
    await gateway.create_trigger("t:traced")
    await gateway.subscribe("t:traced", subscriber.endpoint("traced", answer(200, {"ok": True})))
    response = await gateway.http.post(
        "/beta/trigger-invocations/start",
        json={"triggerId": "t:traced", "input": {}},
        headers={"traceparent": TRACEPARENT},
    )
    assert response.status_code == 200, response.text
    await gateway.final_status(response.json()[0]["id"])
    [received] = subscriber.received
    version, trace_id, parent_id, flags = received.headers["traceparent"].split("-")
    assert (version, trace_id, flags) == ("00", TRACE_ID, "01")
    assert len(parent_id) == 16 and int(parent_id, 16) != 0


async def test_a_safe_request_id_becomes_the_tracking_id(gateway: GatewayClient) -> None:
    cases = [("req-42.a_B", True), ("x" * 128, True), ("x" * 129, False), ("bad id", False), ("a/b", False)]
    for sent, kept in cases:
        response = await gateway.http.get("/beta/triggers/t:none", headers={"x-request-id": sent})
        assert response.status_code == 404
        tracking = response.headers["x-tracking-id"]
        assert response.json()["trackingId"] == tracking
        assert (tracking == sent) is kept, sent
        if not kept:
            assert len(tracking) == 32 and tracking.isalnum()
