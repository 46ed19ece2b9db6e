"""Signing secrets over HTTP: shown once (never in a GET, a list, a PUT or a PATCH), and
rotated only by a triggers:manage client. Signatures themselves are tested in
tests/usecases/test_signing.py."""

from __future__ import annotations

from typing import Any

from standardwebhooks import Webhook

from tests.gateway_client import GatewayClient
from tests.servers import Received, Subscriber, answer


async def deliver_once(gateway: GatewayClient, subscriber: Subscriber) -> tuple[dict[str, Any], Received]:
    """Raise the fire-and-forget trigger once; return the invocation and what arrived."""
    count = len(subscriber.received)
    [invocation] = await gateway.start("test:created", {"user": "ada"})
    await gateway.final_status(invocation["id"])
    received = await subscriber.wait_for(count + 1)
    return invocation, received[count]


async def subscribe_signed(gateway: GatewayClient, subscriber: Subscriber) -> tuple[dict[str, Any], str]:
    """A subscription to a fire-and-forget trigger, and its signing secret."""
    await gateway.create_trigger("test:created", type="FIRE_AND_FORGET")
    subscription = await gateway.subscribe("test:created", subscriber.endpoint("hook", answer(200, {})))
    return subscription, gateway.signing_secrets[subscription["id"]]


def verify(secret: str, delivered: Received) -> Any:
    return Webhook(secret).verify(delivered.raw, delivered.headers)


async def test_the_signing_secret_is_shown_once(gateway: GatewayClient, subscriber: Subscriber) -> None:
    subscription, secret = await subscribe_signed(gateway, subscriber)
    path = f"/beta/trigger-subscriptions/{subscription['id']}"
    shown = [
        (await gateway.http.get(path)).text,
        (await gateway.http.get("/beta/trigger-subscriptions")).text,
    ]
    put = await gateway.http.put(path, json=subscription)
    patch = await gateway.http.patch(path, json=[{"op": "replace", "path": "/name", "value": "renamed"}])
    assert put.status_code == patch.status_code == 200
    shown += [put.text, patch.text]
    for text in shown:
        assert secret not in text
        assert "signingSecret" not in text
    # Changing the subscription keeps its secret: deliveries still verify with it.
    _, delivered = await deliver_once(gateway, subscriber)
    verify(secret, delivered)


async def test_rotating_needs_an_existing_subscription_and_the_manage_scope(gateway: GatewayClient) -> None:
    missing = await gateway.http.post("/beta/trigger-subscriptions/no-such-id/rotate-secret")
    assert missing.status_code == 404
    assert "no-such-id" in missing.json()["messages"][0]["text"]
    anonymous = await gateway.http.post(
        "/beta/trigger-subscriptions/no-such-id/rotate-secret", headers={"authorization": ""}
    )
    assert anonymous.status_code == 401
