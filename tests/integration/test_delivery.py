"""Delivery over HTTP in both modes: what a subscriber receives, the ASYNC callback, and time
limits enforced where deliveries run (the worker, distributed). Every row of the answer
table, filters, schemas and authentication are tested in tests/usecases/test_deliver.py."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest

from tests.conftest import start_gateway
from tests.gateway_client import GatewayClient
from tests.servers import Subscriber, answer, hang

OUTPUT_SCHEMA = {
    "type": "object",
    "required": ["approver"],
    "properties": {"approver": {"type": "string"}},
}


def seconds_between(start: str, end: str) -> float:
    return (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds()


async def raise_once(gateway: GatewayClient, subscriber: Subscriber, mode: str, behaviour: object) -> dict:  # type: ignore[type-arg]
    await gateway.create_trigger(outputSchema=OUTPUT_SCHEMA)
    url = subscriber.endpoint("target", behaviour)  # type: ignore[arg-type]
    await gateway.subscribe("test:approver", url, mode)
    [invocation] = await gateway.start("test:approver", {"amount": 7})
    return invocation


async def test_sync_answer_completes_with_output_and_metadata(
    gateway: GatewayClient, subscriber: Subscriber
) -> None:
    invocation = await raise_once(gateway, subscriber, "SYNC", answer(200, {"approver": "ada"}))
    status = await gateway.final_status(invocation["id"])
    assert status["status"] == "COMPLETED"
    assert status["completeInvocationInput"] == {"localizedError": None, "output": {"approver": "ada"}}
    assert status["startInvocationInput"]["input"] == {"amount": 7}
    [delivered] = subscriber.received
    meta = delivered.body["_metadata"]
    assert meta["responseMode"] == "sync"
    assert meta["triggerType"] == "requestResponse"
    assert meta["triggerId"] == "test:approver"
    assert meta["invocationId"] == invocation["id"]
    assert meta["secret"] == invocation["secret"]
    assert (
        meta["callbackURL"]
        == f"{gateway.settings.public_url}/beta/trigger-invocations/{invocation['id']}/complete"
    )
    assert meta["deadline"] == status["deadline"]
    assert delivered.headers["content-type"] == "application/json"


async def test_async_acknowledgement_then_callback(gateway: GatewayClient, subscriber: Subscriber) -> None:
    invocation = await raise_once(gateway, subscriber, "ASYNC", answer(200, {}))
    [delivered] = await subscriber.wait_for(1)
    assert delivered.body["_metadata"]["responseMode"] == "async"
    status = await gateway.status(invocation["id"], wait=0.5)
    assert status["status"] == "AWAITING_CALLBACK"
    assert status["completed"] is None and status["completeInvocationInput"] is None
    meta = delivered.body["_metadata"]
    response = await gateway.complete(
        meta["callbackURL"], {"secret": meta["secret"], "output": {"approver": "bo"}}
    )
    assert response.status_code == 204
    status = await gateway.status(invocation["id"])
    assert status["status"] == "COMPLETED"
    assert status["completeInvocationInput"]["output"] == {"approver": "bo"}


async def test_time_limit_fails_a_silent_subscriber(gateway: GatewayClient, subscriber: Subscriber) -> None:
    # The gateway fixture sets GATEWAY_RESPONSE_TIMEOUT=2.
    invocation = await raise_once(gateway, subscriber, "SYNC", hang(30))
    status = await gateway.final_status(invocation["id"])
    assert status["status"] == "FAILED"
    assert "within 2 s" in status["completeInvocationInput"]["localizedError"]["message"]
    assert 2.0 <= seconds_between(status["created"], status["completed"]) < 2.8


@pytest.mark.slow
async def test_default_time_limit_is_ten_seconds(tmp_path: Path, subscriber: Subscriber) -> None:
    # Embedded only: the limit is enforced by the same deliver() in both modes, which
    # test_time_limit_fails_a_silent_subscriber checks in each; ten real seconds once is enough.
    async with start_gateway(tmp_path, response_timeout=10.0) as gateway:
        invocation = await raise_once(gateway, subscriber, "SYNC", hang(60))
        status = await gateway.final_status(invocation["id"], within=20)
    assert gateway.settings.response_timeout == 10.0
    assert "within 10 s" in status["completeInvocationInput"]["localizedError"]["message"]
    assert 10.0 <= seconds_between(status["created"], status["completed"]) < 10.8


async def test_slow_subscriber_does_not_delay_another(gateway: GatewayClient, subscriber: Subscriber) -> None:
    await gateway.create_trigger("test:fanout", type="FIRE_AND_FORGET")
    await gateway.subscribe("test:fanout", subscriber.endpoint("slow", hang(30)), name="slow")
    await gateway.subscribe("test:fanout", subscriber.endpoint("fast", answer(200, {})), name="fast")
    invocations = await gateway.start("test:fanout", {"n": 1})
    fast = [i for i in invocations if (await gateway.status(i["id"]))["subscriptionName"] == "fast"]
    status = await gateway.final_status(fast[0]["id"], within=5)
    assert status["status"] == "COMPLETED"
    assert seconds_between(status["created"], status["completed"]) < 1.0
