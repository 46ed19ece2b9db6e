"""Delivery to real subscribers: every row of the answer table, time limits, auth, filters."""

from __future__ import annotations

import asyncio
import base64
from datetime import datetime
from pathlib import Path

import pytest

from tests.conftest import start_gateway
from tests.gateway_client import GatewayClient
from tests.servers import Subscriber, answer, hang
from tests.services import Store

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


@pytest.mark.parametrize(
    ("mode", "behaviour", "error"),
    [
        ("SYNC", answer(500, {"oops": True}), "HTTP 500"),
        ("SYNC", answer(200, raw=b"<html>not json</html>"), "not JSON"),
        ("SYNC", answer(200, raw=b""), "not JSON (empty body)"),
        ("SYNC", answer(200, {"approver": 42}), "$.approver: 42 is not of type 'string'"),
        ("SYNC", answer(200, {"someone": "x"}), "'approver' is a required property"),
        ("SYNC", answer(202, {}), "SYNC expects 200"),
        ("DYNAMIC", answer(200, {"approver": None}), "$.approver: None is not of type 'string'"),
        ("DYNAMIC", answer(201, {}), "DYNAMIC expects 200 with the output or 202"),
        ("ASYNC", answer(404, {}), "HTTP 404"),
        ("SYNC", answer(302, {}), "redirects are not followed"),
    ],
)
async def test_unusable_answers_fail_with_a_reason(
    gateway: GatewayClient, subscriber: Subscriber, mode: str, behaviour: object, error: str
) -> None:
    invocation = await raise_once(gateway, subscriber, mode, behaviour)
    status = await gateway.final_status(invocation["id"])
    assert status["status"] == "FAILED"
    assert status["completeInvocationInput"]["output"] is None
    assert error in status["completeInvocationInput"]["localizedError"]["message"]


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


async def test_dynamic_answers_sync_with_200(gateway: GatewayClient, subscriber: Subscriber) -> None:
    invocation = await raise_once(gateway, subscriber, "DYNAMIC", answer(200, {"approver": "cy"}))
    status = await gateway.final_status(invocation["id"])
    assert status["status"] == "COMPLETED"
    assert status["completeInvocationInput"]["output"] == {"approver": "cy"}
    assert subscriber.received[0].body["_metadata"]["responseMode"] == "dynamic"


async def test_dynamic_answers_async_with_202(gateway: GatewayClient, subscriber: Subscriber) -> None:
    invocation = await raise_once(gateway, subscriber, "DYNAMIC", answer(202, {}))
    [delivered] = await subscriber.wait_for(1)
    assert (await gateway.status(invocation["id"], wait=0.5))["status"] == "AWAITING_CALLBACK"
    meta = delivered.body["_metadata"]
    response = await gateway.complete(
        meta["callbackURL"], {"secret": meta["secret"], "output": {"approver": "di"}}
    )
    assert response.status_code == 204
    assert (await gateway.status(invocation["id"]))["completeInvocationInput"]["output"] == {"approver": "di"}


async def test_callback_that_beats_the_acknowledgement_wins(
    gateway: GatewayClient, subscriber: Subscriber
) -> None:
    """A subscriber may call back before its own 200 {} reaches the gateway."""

    async def call_back_first(received: object) -> object:
        meta = received.body["_metadata"]  # type: ignore[attr-defined]
        response = await gateway.complete(
            meta["callbackURL"], {"secret": meta["secret"], "output": {"approver": "ed"}}
        )
        assert response.status_code == 204
        return await answer(200, {})(received)  # type: ignore[arg-type]

    invocation = await raise_once(gateway, subscriber, "ASYNC", call_back_first)
    status = await gateway.final_status(invocation["id"])
    assert status["status"] == "COMPLETED"
    assert status["completeInvocationInput"]["output"] == {"approver": "ed"}
    await asyncio.sleep(0.3)  # the late acknowledgement must not reopen it
    assert (await gateway.status(invocation["id"]))["status"] == "COMPLETED"


async def test_fire_and_forget_delivers_to_every_subscription(
    gateway: GatewayClient, subscriber: Subscriber
) -> None:
    await gateway.create_trigger("test:created", type="FIRE_AND_FORGET")
    for name in ("a", "b", "c"):
        await gateway.subscribe("test:created", subscriber.endpoint(name, answer(204, None)), name=name)
    invocations = await gateway.start("test:created", {"identity": "x"})
    assert len(invocations) == 3
    for invocation in invocations:
        status = await gateway.final_status(invocation["id"])
        assert status["status"] == "COMPLETED"
        assert status["completeInvocationInput"] == {"localizedError": None, "output": None}
    assert sorted(r.path for r in subscriber.received) == ["/a", "/b", "/c"]
    for received in subscriber.received:
        meta = received.body["_metadata"]
        assert meta["triggerType"] == "fireAndForget"
        assert "callbackURL" not in meta and "secret" not in meta


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


async def test_unreachable_subscriber_fails(gateway: GatewayClient) -> None:
    await gateway.create_trigger()
    await gateway.subscribe("test:approver", "http://127.0.0.1:9/nobody-listens")
    [invocation] = await gateway.start("test:approver", {})
    status = await gateway.final_status(invocation["id"])
    assert status["status"] == "FAILED"
    assert "could not deliver" in status["completeInvocationInput"]["localizedError"]["message"]


async def test_oversized_answer_fails(store: Store, subscriber: Subscriber) -> None:
    async with start_gateway(store, max_response_bytes=1000) as gateway:
        invocation = await raise_once(gateway, subscriber, "SYNC", answer(200, {"approver": "x" * 5000}))
        status = await gateway.final_status(invocation["id"])
    assert "larger than 1000 bytes" in status["completeInvocationInput"]["localizedError"]["message"]


@pytest.mark.parametrize(
    ("auth", "expected"),
    [
        (
            {
                "httpAuthenticationType": "BASIC_AUTH",
                "basicAuthConfig": {"userName": "u", "password": "p@ss"},
            },
            "Basic " + base64.b64encode(b"u:p@ss").decode(),
        ),
        (
            {"httpAuthenticationType": "BEARER_TOKEN", "bearerTokenAuthConfig": {"bearerToken": "tok-123"}},
            "Bearer tok-123",
        ),
    ],
)
async def test_configured_authentication_is_sent(
    gateway: GatewayClient, subscriber: Subscriber, auth: dict[str, object], expected: str
) -> None:
    await gateway.create_trigger()
    url = subscriber.endpoint("auth", answer(200, {"approver": "x"}))
    await gateway.subscribe("test:approver", url, httpConfig=auth)
    [invocation] = await gateway.start("test:approver", {})
    await gateway.final_status(invocation["id"])
    assert subscriber.received[0].headers["authorization"] == expected


async def test_filters_choose_subscriptions(gateway: GatewayClient, subscriber: Subscriber) -> None:
    await gateway.create_trigger("test:fanout", type="FIRE_AND_FORGET")
    url = subscriber.endpoint("big", answer(200, {}))
    await gateway.subscribe("test:fanout", url, name="big", filter="$[?($.amount > 100)]")
    assert len(await gateway.start("test:fanout", {"amount": 150})) == 1
    response = await gateway.http.post(
        "/beta/trigger-invocations/start", json={"triggerId": "test:fanout", "input": {"amount": 5}}
    )
    assert response.status_code == 204
    await subscriber.wait_for(1)
    await asyncio.sleep(0.2)
    assert len(subscriber.received) == 1


async def test_input_is_checked_against_the_input_schema(gateway: GatewayClient) -> None:
    schema = {"type": "object", "required": ["amount"], "properties": {"amount": {"type": "number"}}}
    await gateway.create_trigger(inputSchema=schema)
    response = await gateway.http.post(
        "/beta/trigger-invocations/start", json={"triggerId": "test:approver", "input": {"amount": "lots"}}
    )
    assert response.status_code == 400
    assert "inputSchema" in response.json()["messages"][0]["text"]
    assert "$.amount: 'lots' is not of type 'number'" in response.json()["causes"][0]["text"]


async def test_start_on_unknown_trigger_is_404(gateway: GatewayClient) -> None:
    response = await gateway.http.post(
        "/beta/trigger-invocations/start", json={"triggerId": "nope", "input": {}}
    )
    assert response.status_code == 404


async def test_disabled_subscriptions_get_only_test_invocations(
    gateway: GatewayClient, subscriber: Subscriber
) -> None:
    await gateway.create_trigger(exampleInput={"amount": 1})
    url = subscriber.endpoint("t", answer(200, {"approver": "x"}))
    sub = await gateway.subscribe("test:approver", url, enabled=False)
    response = await gateway.http.post(
        "/beta/trigger-invocations/start", json={"triggerId": "test:approver", "input": {"amount": 2}}
    )
    assert response.status_code == 204
    response = await gateway.http.post(
        "/beta/trigger-invocations/test", json={"triggerId": "test:approver", "subscriptionIds": [sub["id"]]}
    )
    assert response.status_code == 200, response.text
    [invocation] = response.json()
    status = await gateway.final_status(invocation["id"])
    assert status["type"] == "TEST"
    assert status["startInvocationInput"]["input"] == {"amount": 1}  # the trigger's exampleInput
    assert subscriber.received[0].body["amount"] == 1


async def test_test_invocation_rejects_foreign_subscription_ids(gateway: GatewayClient) -> None:
    await gateway.create_trigger(exampleInput={"amount": 1})
    response = await gateway.http.post(
        "/beta/trigger-invocations/test", json={"triggerId": "test:approver", "subscriptionIds": ["nope"]}
    )
    assert response.status_code == 400
    assert "nope" in response.json()["messages"][0]["text"]


async def test_an_answer_that_is_not_http_fails_once(gateway: GatewayClient) -> None:
    """A subscriber that answers garbage fails the invocation at once, not after retries."""

    async def garbage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"THIS IS NOT HTTP\r\n\r\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(garbage, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        await gateway.create_trigger()
        await gateway.subscribe("test:approver", f"http://127.0.0.1:{port}/hook?code=s3cr3t")
        [invocation] = await gateway.start("test:approver", {})
        status = await gateway.final_status(invocation["id"])
    assert status["status"] == "FAILED"
    assert status["attempts"] == 1
    message = status["completeInvocationInput"]["localizedError"]["message"]
    assert f"could not deliver to http://127.0.0.1:{port}/hook" in message
    assert "s3cr3t" not in message  # the query string may carry credentials


async def test_a_null_answer_is_not_an_output(gateway: GatewayClient, subscriber: Subscriber) -> None:
    await gateway.create_trigger()
    await gateway.subscribe("test:approver", subscriber.endpoint("null", answer(200, raw=b"null")))
    [invocation] = await gateway.start("test:approver", {})
    status = await gateway.final_status(invocation["id"])
    assert status["status"] == "FAILED"
    assert "null" in status["completeInvocationInput"]["localizedError"]["message"]


async def test_fire_and_forget_answers_are_not_read(store: Store, subscriber: Subscriber) -> None:
    async with start_gateway(store, max_response_bytes=1000) as gateway:
        await gateway.create_trigger("test:created", type="FIRE_AND_FORGET")
        url = subscriber.endpoint("big", answer(200, {"junk": "x" * 5000}))
        await gateway.subscribe("test:created", url)
        [invocation] = await gateway.start("test:created", {})
        assert (await gateway.final_status(invocation["id"]))["status"] == "COMPLETED"
