"""POST /trigger-invocations/{id}/complete: every outcome, deadlines, expiry and restarts."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

from tests.conftest import start_gateway
from tests.gateway_client import GatewayClient
from tests.servers import Subscriber, answer, hang
from tests.services import Store

OUTPUT_SCHEMA = {"type": "object", "required": ["approver"], "properties": {"approver": {"type": "string"}}}


async def awaiting(
    gateway: GatewayClient, subscriber: Subscriber, deadline: str = "PT1H", mode: str = "ASYNC"
) -> tuple[str, dict[str, Any]]:
    """An invocation acknowledged by its subscriber and awaiting the callback."""
    if not (await gateway.http.get("/beta/triggers/test:approver")).is_success:
        await gateway.create_trigger(outputSchema=OUTPUT_SCHEMA)
        url = subscriber.endpoint("ack", answer(200, {}))
        await gateway.subscribe("test:approver", url, mode, responseDeadline=deadline)
    before = len(subscriber.received)
    [invocation] = await gateway.start("test:approver", {})
    received = await subscriber.wait_for(before + 1)
    # The acknowledgement is recorded just after the subscriber answers: poll briefly for it.
    await gateway.reach(invocation["id"], "AWAITING_CALLBACK")
    return invocation["id"], received[-1].body["_metadata"]


def on_new_port(gateway: GatewayClient, meta: dict[str, Any]) -> str:
    """The restarted gateway listens on another port; the path is what identifies the call."""
    path: str = meta["callbackURL"].split("/beta/", 1)[1]
    return f"{gateway.settings.public_url}/beta/{path}"


async def test_error_fails_the_invocation_without_checking_output(
    gateway: GatewayClient, subscriber: Subscriber
) -> None:
    invocation_id, meta = await awaiting(gateway, subscriber)
    response = await gateway.complete(
        meta["callbackURL"], {"secret": meta["secret"], "output": {"bad": 1}, "error": "nobody can approve"}
    )
    assert response.status_code == 204
    status = await gateway.status(invocation_id)
    assert status["status"] == "FAILED"
    assert "nobody can approve" in status["completeInvocationInput"]["localizedError"]["message"]
    assert status["completeInvocationInput"]["output"] is None


async def test_invalid_output_is_refused_and_can_be_corrected(
    gateway: GatewayClient, subscriber: Subscriber
) -> None:
    invocation_id, meta = await awaiting(gateway, subscriber)
    response = await gateway.complete(
        meta["callbackURL"], {"secret": meta["secret"], "output": {"approver": 1}}
    )
    assert response.status_code == 400
    assert "$.approver" in response.json()["causes"][0]["text"]
    assert (await gateway.status(invocation_id))["status"] == "AWAITING_CALLBACK"
    response = await gateway.complete(
        meta["callbackURL"], {"secret": meta["secret"], "output": {"approver": "x"}}
    )
    assert response.status_code == 204
    assert (await gateway.status(invocation_id))["completeInvocationInput"]["output"] == {"approver": "x"}


async def test_missing_output_is_refused(gateway: GatewayClient, subscriber: Subscriber) -> None:
    _, meta = await awaiting(gateway, subscriber)
    response = await gateway.complete(meta["callbackURL"], {"secret": meta["secret"]})
    assert response.status_code == 400


async def test_wrong_secret_is_403_and_changes_nothing(
    gateway: GatewayClient, subscriber: Subscriber
) -> None:
    invocation_id, meta = await awaiting(gateway, subscriber)
    _, other = await awaiting(gateway, subscriber)  # a valid secret, but for another invocation
    for secret in ("guess", other["secret"], meta["secret"] + "x"):
        response = await gateway.complete(
            meta["callbackURL"], {"secret": secret, "output": {"approver": "x"}}
        )
        assert response.status_code == 403
        assert response.json()["detailCode"].startswith("403")
    assert (await gateway.status(invocation_id))["status"] == "AWAITING_CALLBACK"


async def test_unknown_invocation_is_404(gateway: GatewayClient) -> None:
    unknown = "00000000-0000-0000-0000-000000000000"
    url = f"{gateway.settings.public_url}/beta/trigger-invocations/{unknown}/complete"
    response = await gateway.complete(url, {"secret": "s", "output": {}})
    assert response.status_code == 404


async def test_repeated_completion_is_idempotent_and_a_different_one_conflicts(
    gateway: GatewayClient, subscriber: Subscriber
) -> None:
    invocation_id, meta = await awaiting(gateway, subscriber)
    body = {"secret": meta["secret"], "output": {"approver": "x"}}
    assert (await gateway.complete(meta["callbackURL"], body)).status_code == 204
    completed = (await gateway.status(invocation_id))["completed"]
    assert (await gateway.complete(meta["callbackURL"], body)).status_code == 204
    assert (await gateway.status(invocation_id))["completed"] == completed
    different = {"secret": meta["secret"], "output": {"approver": "y"}}
    response = await gateway.complete(meta["callbackURL"], different)
    assert response.status_code == 409
    assert (await gateway.status(invocation_id))["completeInvocationInput"]["output"] == {"approver": "x"}


async def test_concurrent_different_completions_have_one_winner(
    gateway: GatewayClient, subscriber: Subscriber
) -> None:
    invocation_id, meta = await awaiting(gateway, subscriber)
    bodies = [{"secret": meta["secret"], "output": {"approver": f"n{i}"}} for i in range(10)]
    responses = await asyncio.gather(*(gateway.complete(meta["callbackURL"], b) for b in bodies))
    codes = sorted(r.status_code for r in responses)
    assert codes == [204] + [409] * 9
    winner = bodies[[r.status_code for r in responses].index(204)]["output"]
    assert (await gateway.status(invocation_id))["completeInvocationInput"]["output"] == winner


async def test_sync_invocation_takes_no_callback(gateway: GatewayClient, subscriber: Subscriber) -> None:
    await gateway.create_trigger()
    await gateway.subscribe("test:approver", subscriber.endpoint("slow", hang(30)), "SYNC")
    [invocation] = await gateway.start("test:approver", {})
    await subscriber.wait_for(1)
    url = f"{gateway.settings.public_url}/beta/trigger-invocations/{invocation['id']}/complete"
    response = await gateway.complete(url, {"secret": invocation["secret"], "output": {}})
    assert response.status_code == 409


async def test_callback_after_the_deadline_is_410(gateway: GatewayClient, subscriber: Subscriber) -> None:
    invocation_id, meta = await awaiting(gateway, subscriber, deadline="PT1S")
    await asyncio.sleep(1.1)
    response = await gateway.complete(
        meta["callbackURL"], {"secret": meta["secret"], "output": {"approver": "x"}}
    )
    assert response.status_code == 410
    assert (await gateway.status(invocation_id))["status"] == "EXPIRED"


async def test_deadline_expires_the_invocation_without_anyone_looking(
    gateway: GatewayClient, subscriber: Subscriber
) -> None:
    invocation_id, _ = await awaiting(gateway, subscriber, deadline="PT2S")
    await asyncio.sleep(3.2)  # nobody asks until well after the deadline
    status = await gateway.status(invocation_id)
    assert status["status"] == "EXPIRED"
    lateness = datetime.fromisoformat(status["completed"]) - datetime.fromisoformat(status["deadline"])
    assert 0 <= lateness.total_seconds() < 1.0
    assert "deadline" in status["completeInvocationInput"]["localizedError"]["message"]


async def test_long_poll_wakes_on_expiry(gateway: GatewayClient, subscriber: Subscriber) -> None:
    invocation_id, _ = await awaiting(gateway, subscriber, deadline="PT1S")
    status = await gateway.status(invocation_id, wait=10)
    assert status["status"] == "EXPIRED"


async def test_deadline_passed_while_stopped_expires_after_restart(
    store: Store, subscriber: Subscriber
) -> None:
    async with start_gateway(store) as gateway:
        invocation_id, meta = await awaiting(gateway, subscriber, deadline="PT1S")
    await asyncio.sleep(1.2)  # the deadline passes while no gateway runs
    async with start_gateway(store) as gateway:
        status = await gateway.status(invocation_id, wait=2)
        assert status["status"] == "EXPIRED"
        response = await gateway.complete(
            on_new_port(gateway, meta), {"secret": meta["secret"], "output": {"approver": "x"}}
        )
        assert response.status_code == 410


async def test_callback_secret_survives_a_restart(store: Store, subscriber: Subscriber) -> None:
    async with start_gateway(store) as gateway:
        invocation_id, meta = await awaiting(gateway, subscriber)
    async with start_gateway(store) as gateway:
        response = await gateway.complete(
            on_new_port(gateway, meta), {"secret": meta["secret"], "output": {"approver": "x"}}
        )
        assert response.status_code == 204
        assert (await gateway.status(invocation_id))["status"] == "COMPLETED"


async def test_delivery_cut_off_by_a_stop_is_retried_after_restart(
    store: Store, subscriber: Subscriber
) -> None:
    # No grace: the stop cuts the delivery off, as a crash would.
    async with start_gateway(store, stop_grace=0) as gateway:
        await gateway.create_trigger()
        url = subscriber.endpoint("flaky", hang(30))
        await gateway.subscribe("test:approver", url, "SYNC")
        [invocation] = await gateway.start("test:approver", {})
        await subscriber.wait_for(1)
    # Stopped mid-delivery: the invocation is left DISPATCHING in the database.
    subscriber.behaviours["flaky"] = answer(200, {"approver": "second try"})
    async with start_gateway(store) as gateway:
        status = await gateway.final_status(invocation["id"], within=20)
    assert status["status"] == "COMPLETED"
    assert status["attempts"] == 2
    assert [r.body["_metadata"]["invocationId"] for r in subscriber.received] == [invocation["id"]] * 2


async def test_key_rotation_keeps_callbacks_and_credentials_working(
    store: Store, subscriber: Subscriber
) -> None:
    old_key, new_key = "old-key-" + "o" * 32, "new-key-" + "n" * 32
    async with start_gateway(store, secret_key=old_key) as gateway:
        await gateway.create_trigger(outputSchema=OUTPUT_SCHEMA)
        bearer = {"httpAuthenticationType": "BEARER_TOKEN", "bearerTokenAuthConfig": {"bearerToken": "t0k"}}
        url = subscriber.endpoint("ack", answer(200, {}))
        await gateway.subscribe("test:approver", url, "ASYNC", httpConfig=bearer)
        [first] = await gateway.start("test:approver", {})
        [received] = await subscriber.wait_for(1)
    # The new key signs; the old one still verifies and decrypts.
    async with start_gateway(store, secret_key=f"{new_key},{old_key}") as gateway:
        meta = received.body["_metadata"]
        body = {"secret": meta["secret"], "output": {"approver": "x"}}
        assert (await gateway.complete(on_new_port(gateway, meta), body)).status_code == 204
        [second] = await gateway.start("test:approver", {})
        [_, again] = await subscriber.wait_for(2)
        assert again.headers["authorization"] == "Bearer t0k"
        assert again.body["_metadata"]["secret"] != meta["secret"]  # signed with the new key
        assert (await gateway.status(first["id"]))["status"] == "COMPLETED"
        assert second["id"] != first["id"]
