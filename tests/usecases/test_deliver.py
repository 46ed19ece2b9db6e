"""Delivery to real subscribers, driven through the use cases: every row of the answer table,
fan-out, filters, input schemas, authentication, bounds on answers, test invocations."""

from __future__ import annotations

import asyncio
import base64

import pytest

from gateway.domain.errors import Invalid, NotFound
from gateway.usecases import runs
from tests.servers import Received, Subscriber, answer
from tests.usecases.conftest import OpenDriver
from tests.usecases.driver import Document, Driver

OUTPUT_SCHEMA = {
    "type": "object",
    "required": ["approver"],
    "properties": {"approver": {"type": "string"}},
}


async def raise_once(app: Driver, subscriber: Subscriber, mode: str, behaviour: object) -> Document:
    await app.create_trigger(outputSchema=OUTPUT_SCHEMA)
    url = subscriber.endpoint("target", behaviour)  # type: ignore[arg-type]
    await app.subscribe("test:approver", url, mode)
    [invocation] = await app.start("test:approver", {"amount": 7})
    return invocation


@pytest.mark.parametrize(
    ("mode", "behaviour", "error"),
    [
        ("SYNC", answer(500, {"oops": True}), "HTTP 500"),
        ("SYNC", answer(200, raw=b"<html>not json</html>"), "not JSON"),
        ("SYNC", answer(200, raw=b""), "not JSON (empty body)"),
        ("SYNC", answer(200, {"approver": 42}), "$.approver: 42 is not of type 'string'"),
        ("SYNC", answer(200, {"someone": "x"}), "'approver' is a required property"),
        ("SYNC", answer(202, {}), "SYNC expects 200"),
        ("SYNC", answer(200, raw=b"null"), "the subscriber's answer is null"),
        (
            "SYNC",
            answer(200, raw=b'{"approver": "\\ud800"}'),
            "refused: the JSON document is not valid Unicode",
        ),
        ("DYNAMIC", answer(200, {"approver": None}), "$.approver: None is not of type 'string'"),
        ("DYNAMIC", answer(201, {}), "DYNAMIC expects 200 with the output or 202"),
        ("ASYNC", answer(404, {}), "HTTP 404"),
        ("ASYNC", answer(201, {}), "ASYNC expects 200 with {}"),
        ("SYNC", answer(302, {}), "redirects are not followed"),
    ],
)
async def test_unusable_answers_fail_with_a_reason(
    app: Driver, subscriber: Subscriber, mode: str, behaviour: object, error: str
) -> None:
    invocation = await raise_once(app, subscriber, mode, behaviour)
    status = await app.final_status(invocation["id"])
    assert status["status"] == "FAILED"
    assert status["completeInvocationInput"]["output"] is None
    assert error in status["completeInvocationInput"]["localizedError"]["message"]


async def test_dynamic_answers_sync_with_200(app: Driver, subscriber: Subscriber) -> None:
    invocation = await raise_once(app, subscriber, "DYNAMIC", answer(200, {"approver": "cy"}))
    status = await app.final_status(invocation["id"])
    assert status["status"] == "COMPLETED"
    assert status["completeInvocationInput"]["output"] == {"approver": "cy"}
    assert subscriber.received[0].body["_metadata"]["responseMode"] == "dynamic"


async def test_dynamic_answers_async_with_202(app: Driver, subscriber: Subscriber) -> None:
    invocation = await raise_once(app, subscriber, "DYNAMIC", answer(202, {}))
    [delivered] = await subscriber.wait_for(1)
    await app.reach(invocation["id"], "AWAITING_CALLBACK")
    assert await app.complete(delivered.body["_metadata"], {"approver": "di"}) == 204
    assert (await app.status(invocation["id"]))["completeInvocationInput"]["output"] == {"approver": "di"}


async def test_callback_that_beats_the_acknowledgement_wins(app: Driver, subscriber: Subscriber) -> None:
    """A subscriber may call back before its own 200 {} reaches the gateway."""
    acknowledged = asyncio.Event()

    async def call_back_first(received: Received) -> object:
        assert await app.complete(received.body["_metadata"], {"approver": "ed"}) == 204
        acknowledged.set()
        return await answer(200, {})(received)

    invocation = await raise_once(app, subscriber, "ASYNC", call_back_first)
    status = await app.final_status(invocation["id"])
    assert status["status"] == "COMPLETED"
    assert status["completeInvocationInput"]["output"] == {"approver": "ed"}
    await acknowledged.wait()
    # The late acknowledgement is recorded by a conditional update that no longer matches.
    await app.settled()
    again = await app.status(invocation["id"])
    assert (again["status"], again["completed"]) == ("COMPLETED", status["completed"])


async def test_fire_and_forget_delivers_to_every_subscription(app: Driver, subscriber: Subscriber) -> None:
    await app.create_trigger("test:created", type="FIRE_AND_FORGET")
    for name in ("a", "b", "c"):
        await app.subscribe("test:created", subscriber.endpoint(name, answer(204, None)), name=name)
    invocations = await app.start("test:created", {"identity": "x"})
    assert len(invocations) == 3
    for invocation in invocations:
        status = await app.final_status(invocation["id"])
        assert status["status"] == "COMPLETED"
        assert status["completeInvocationInput"] == {"localizedError": None, "output": None}
    assert sorted(r.path for r in subscriber.received) == ["/a", "/b", "/c"]
    for received in subscriber.received:
        meta = received.body["_metadata"]
        assert meta["triggerType"] == "fireAndForget"
        assert "callbackURL" not in meta and "secret" not in meta


async def test_unreachable_subscriber_fails_without_a_retry_schedule(open_driver: OpenDriver) -> None:
    async with open_driver(retry_schedule="") as app:
        await app.create_trigger()
        await app.subscribe("test:approver", "http://127.0.0.1:9/nobody-listens")
        [invocation] = await app.start("test:approver", {})
        status = await app.final_status(invocation["id"])
        assert status["status"] == "FAILED"
        assert "could not deliver" in status["completeInvocationInput"]["localizedError"]["message"]


async def test_oversized_answer_fails_but_fire_and_forget_answers_are_not_read(
    open_driver: OpenDriver, subscriber: Subscriber
) -> None:
    async with open_driver(max_response_bytes=1000) as app:
        big = answer(200, {"approver": "x" * 5000})
        invocation = await raise_once(app, subscriber, "SYNC", big)
        status = await app.final_status(invocation["id"])
        assert "larger than 1000 bytes" in status["completeInvocationInput"]["localizedError"]["message"]

        await app.create_trigger("test:created", type="FIRE_AND_FORGET")
        await app.subscribe("test:created", subscriber.endpoint("big", big))
        [notified] = await app.start("test:created", {})
        assert (await app.final_status(notified["id"]))["status"] == "COMPLETED"


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
    app: Driver, subscriber: Subscriber, auth: dict[str, object], expected: str
) -> None:
    await app.create_trigger()
    url = subscriber.endpoint("auth", answer(200, {"approver": "x"}))
    await app.subscribe("test:approver", url, httpConfig=auth)
    [invocation] = await app.start("test:approver", {})
    await app.final_status(invocation["id"])
    assert subscriber.received[0].headers["authorization"] == expected


async def test_filters_choose_subscriptions(app: Driver, subscriber: Subscriber) -> None:
    await app.create_trigger("test:fanout", type="FIRE_AND_FORGET")
    url = subscriber.endpoint("big", answer(200, {}))
    big = await app.subscribe("test:fanout", url, name="big", filter="$[?($.amount > 100)]")
    await app.subscribe("test:fanout", url, name="all")
    [small] = await app.start("test:fanout", {"amount": 5})
    assert (await app.status(small["id"]))["subscriptionName"] == "all"
    matched = await app.start("test:fanout", {"amount": 150})
    names = {(await app.status(i["id"]))["subscriptionId"] for i in matched}
    assert big["id"] in names and len(names) == 2


async def test_input_is_checked_against_the_input_schema(app: Driver) -> None:
    schema = {"type": "object", "required": ["amount"], "properties": {"amount": {"type": "number"}}}
    await app.create_trigger(inputSchema=schema)
    with pytest.raises(Invalid) as refused:
        await app.start("test:approver", {"amount": "lots"})
    assert "inputSchema" in refused.value.message
    assert "$.amount: 'lots' is not of type 'number'" in refused.value.causes[0]


async def test_start_on_unknown_trigger_is_404(app: Driver) -> None:
    with pytest.raises(NotFound):
        await app.start("nope", {})


async def test_disabled_subscriptions_get_only_test_invocations(app: Driver, subscriber: Subscriber) -> None:
    await app.create_trigger(exampleInput={"amount": 1})
    url = subscriber.endpoint("t", answer(200, {"approver": "x"}))
    sub = await app.subscribe("test:approver", url, enabled=False)
    assert await app.start("test:approver", {"amount": 2}) == []  # the API answers 204
    [invocation] = await app.test("test:approver", subscriptionIds=[sub["id"]])
    status = await app.final_status(invocation["id"])
    assert status["type"] == "TEST"
    assert status["startInvocationInput"]["input"] == {"amount": 1}  # the trigger's exampleInput
    assert [r.body["amount"] for r in subscriber.received] == [1]


async def test_test_invocations_need_an_input_or_example_and_their_own_subscriptions(app: Driver) -> None:
    await app.create_trigger()
    with pytest.raises(Invalid, match="has no exampleInput"):
        await app.test("test:approver")
    with pytest.raises(Invalid, match="nope"):
        await app.test("test:approver", input={}, subscriptionIds=["nope"])


async def test_an_answer_that_is_not_http_fails_once(app: Driver) -> None:
    """A subscriber that answers garbage fails the invocation at once, not after retries."""

    async def garbage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"THIS IS NOT HTTP\r\n\r\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(garbage, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        await app.create_trigger()
        await app.subscribe("test:approver", f"http://127.0.0.1:{port}/hook?code=s3cr3t")
        [invocation] = await app.start("test:approver", {})
        status = await app.final_status(invocation["id"])
    assert status["status"] == "FAILED"
    assert status["attempts"] == 1
    message = status["completeInvocationInput"]["localizedError"]["message"]
    assert f"could not deliver to http://127.0.0.1:{port}/hook" in message
    assert "s3cr3t" not in message  # the query string may carry credentials


async def test_a_delivery_that_fails_before_sending_gives_its_claim_back(
    app: Driver, subscriber: Subscriber, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Reading what a delivery needs after its claim can fail (a database blip): the
    invocation goes back to PENDING without spending an attempt, not to the sweep's grace."""
    await app.stop_loops()  # nothing else may deliver it meanwhile
    await app.create_trigger("t:blip", type="FIRE_AND_FORGET")
    await app.subscribe("t:blip", subscriber.endpoint("ok", answer(204, None)))

    async def blip(*_: object) -> dict[str, object]:
        raise ConnectionError("database blip")

    monkeypatch.setattr(runs, "context", blip)
    [invocation] = await app.start("t:blip", {})
    await app.settled()
    status = await app.status(invocation["id"])
    assert (status["status"], status["attempts"]) == ("PENDING", 0)
    assert subscriber.count() == 0
