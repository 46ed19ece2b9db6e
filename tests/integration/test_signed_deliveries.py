"""Deliveries are signed as Standard Webhooks; a subscriber verifies them with that package."""

from __future__ import annotations

from typing import Any

import pytest
from standardwebhooks import Webhook, WebhookVerificationError

from tests.conftest import start_gateway
from tests.gateway_client import GatewayClient
from tests.servers import Received, Subscriber, answer
from tests.services import Store


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


async def test_a_subscriber_verifies_deliveries_with_the_standardwebhooks_package(
    gateway: GatewayClient, subscriber: Subscriber
) -> None:
    _, secret = await subscribe_signed(gateway, subscriber)
    assert secret.startswith("whsec_")
    invocation, delivered = await deliver_once(gateway, subscriber)

    payload = verify(secret, delivered)
    assert payload["user"] == "ada"
    assert delivered.headers["webhook-id"] == invocation["id"]
    assert len(delivered.headers["webhook-signature"].split()) == 1
    # A changed body, or another subscription's secret, does not verify.
    tampered = Received(
        delivered.path, delivered.headers, delivered.body, delivered.raw.replace(b"ada", b"eve")
    )
    with pytest.raises(WebhookVerificationError):
        verify(secret, tampered)
    other = await gateway.subscribe("test:created", subscriber.endpoint("other", answer(200, {})))
    with pytest.raises(WebhookVerificationError):
        verify(gateway.signing_secrets[other["id"]], delivered)


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


async def test_rotation_signs_with_both_secrets_during_the_grace_period(
    gateway: GatewayClient, subscriber: Subscriber
) -> None:
    subscription, old = await subscribe_signed(gateway, subscriber)
    rotated = await gateway.http.post(f"/beta/trigger-subscriptions/{subscription['id']}/rotate-secret")
    assert rotated.status_code == 200, rotated.text
    assert rotated.headers["cache-control"] == "no-store"
    new = rotated.json()["signingSecret"]
    assert new.startswith("whsec_") and new != old
    assert rotated.json()["id"] == subscription["id"]

    _, delivered = await deliver_once(gateway, subscriber)
    assert len(delivered.headers["webhook-signature"].split()) == 2
    verify(old, delivered)  # a subscriber that has not switched yet
    verify(new, delivered)  # and one that has


async def test_after_the_grace_period_only_the_new_secret_signs(store: Store, subscriber: Subscriber) -> None:
    async with start_gateway(store, rotation_grace=0) as gateway:
        subscription, old = await subscribe_signed(gateway, subscriber)
        rotated = await gateway.http.post(f"/trigger-subscriptions/{subscription['id']}/rotate-secret")
        new = rotated.json()["signingSecret"]
        _, delivered = await deliver_once(gateway, subscriber)
    verify(new, delivered)
    with pytest.raises(WebhookVerificationError):
        verify(old, delivered)


async def test_rotating_needs_an_existing_subscription_and_the_manage_scope(gateway: GatewayClient) -> None:
    missing = await gateway.http.post("/beta/trigger-subscriptions/no-such-id/rotate-secret")
    assert missing.status_code == 404
    assert "no-such-id" in missing.json()["messages"][0]["text"]
    anonymous = await gateway.http.post(
        "/beta/trigger-subscriptions/no-such-id/rotate-secret", headers={"authorization": ""}
    )
    assert anonymous.status_code == 401
