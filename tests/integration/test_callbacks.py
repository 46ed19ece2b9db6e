"""POST /trigger-invocations/{id}/complete over HTTP in both modes: concurrent callbacks,
expiry (arq's deferred jobs, distributed), wake-ups across processes, and restarts. Each
outcome of a callback is tested in tests/usecases/test_callbacks.py."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

from gateway.domain.keys import Keys
from tests.conftest import start_gateway
from tests.gateway_client import GatewayClient
from tests.servers import Subscriber, answer, hang
from tests.services import Store

OUTPUT_SCHEMA = {"type": "object", "required": ["approver"], "properties": {"approver": {"type": "string"}}}
# Deadlines here leave a loaded two-core machine time to deliver and record the acknowledgement
# (or stop a gateway) before they pass; an expiry is on time within this much scheduling noise.
DEADLINE = "PT2S"
NOISE_ON_A_BUSY_MACHINE = 1.5


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


async def deadline_of(gateway: GatewayClient, invocation_id: str) -> datetime:
    return datetime.fromisoformat((await gateway.status(invocation_id))["deadline"])


async def until_past(moment: datetime) -> None:
    await asyncio.sleep(max(0.0, (moment - datetime.now(UTC)).total_seconds()))


def on_new_port(gateway: GatewayClient, meta: dict[str, Any]) -> str:
    """The restarted gateway listens on another port; the path is what identifies the call."""
    path: str = meta["callbackURL"].split("/beta/", 1)[1]
    return f"{gateway.settings.public_url}/beta/{path}"


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


async def test_deadline_expires_the_invocation_without_anyone_looking(
    gateway: GatewayClient, subscriber: Subscriber
) -> None:
    invocation_id, _ = await awaiting(gateway, subscriber, deadline=DEADLINE)
    deadline = await deadline_of(gateway, invocation_id)
    # Nobody asks until well after the deadline: an expiry made only when someone asks would
    # be recorded this late.
    await until_past(deadline + timedelta(seconds=NOISE_ON_A_BUSY_MACHINE + 1))
    status = await gateway.status(invocation_id)
    assert status["status"] == "EXPIRED"
    lateness = (datetime.fromisoformat(status["completed"]) - deadline).total_seconds()
    assert 0 <= lateness < NOISE_ON_A_BUSY_MACHINE, lateness
    assert "deadline" in status["completeInvocationInput"]["localizedError"]["message"]


async def test_long_poll_wakes_on_expiry(gateway: GatewayClient, subscriber: Subscriber) -> None:
    invocation_id, _ = await awaiting(gateway, subscriber, deadline=DEADLINE)
    deadline = await deadline_of(gateway, invocation_id)
    assert datetime.now(UTC) < deadline  # the long-poll starts before the expiry it waits for
    status = await gateway.status(invocation_id, wait=20)
    assert status["status"] == "EXPIRED"
    # Woken by the expiry, not by its own 20 s limit (which would find it expired too).
    woke_after = (datetime.now(UTC) - deadline).total_seconds()
    assert woke_after < NOISE_ON_A_BUSY_MACHINE, woke_after


async def test_deadline_passed_while_stopped_expires_after_restart(
    store: Store, subscriber: Subscriber
) -> None:
    async with start_gateway(store) as gateway:
        invocation_id, meta = await awaiting(gateway, subscriber, deadline=DEADLINE)
        deadline = await deadline_of(gateway, invocation_id)
    await until_past(deadline)  # the deadline passes while no gateway runs
    restarted = datetime.now(UTC)
    async with start_gateway(store) as gateway:
        status = await gateway.status(invocation_id, wait=10)
        assert status["status"] == "EXPIRED"
        # Expired by the restarted gateway: the first one had stopped before the deadline.
        assert datetime.fromisoformat(status["completed"]) >= restarted
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
        assert (await gateway.status(first["id"]))["status"] == "COMPLETED"
    # Each invocation is delivered its own callback secret, the one its start answered with,
    # signed over its id: the first with the old key, the second with the new one.
    second_meta = again.body["_metadata"]
    assert (meta["invocationId"], second_meta["invocationId"]) == (first["id"], second["id"])
    assert (meta["secret"], second_meta["secret"]) == (first["secret"], second["secret"])
    assert second_meta["callbackURL"].endswith(f"/trigger-invocations/{second['id']}/complete")
    old, new = Keys([old_key]), Keys([new_key])
    assert meta["secret"] == old.callback_secret(first["id"])
    assert second_meta["secret"] == new.callback_secret(second["id"])
    assert not old.check_callback_secret(second["id"], second_meta["secret"])
