"""Deliveries are signed as Standard Webhooks; a subscriber verifies them with that package,
through a rotation of the subscription's signing secret and after its grace period."""

from __future__ import annotations

from typing import Any

import pytest
from standardwebhooks import Webhook, WebhookVerificationError

from gateway.usecases import subscriptions
from tests.servers import Received, Subscriber, answer
from tests.usecases.conftest import OpenDriver
from tests.usecases.driver import Document, Driver


async def deliver_once(app: Driver, subscriber: Subscriber) -> tuple[Document, Received]:
    """Raise the fire-and-forget trigger once; return the invocation and what arrived."""
    count = len(subscriber.received)
    [invocation] = await app.start("test:created", {"user": "ada"})
    await app.final_status(invocation["id"])
    received = await subscriber.wait_for(count + 1)
    return invocation, received[count]


async def subscribe_signed(app: Driver, subscriber: Subscriber) -> tuple[Document, str]:
    """A subscription to a fire-and-forget trigger, and its signing secret."""
    await app.create_trigger("test:created", type="FIRE_AND_FORGET")
    subscription = await app.subscribe("test:created", subscriber.endpoint("hook", answer(200, {})))
    return subscription, app.signing_secrets[subscription["id"]]


def verify(secret: str, delivered: Received) -> Any:
    return Webhook(secret).verify(delivered.raw, delivered.headers)


async def test_a_subscriber_verifies_deliveries_with_the_standardwebhooks_package(
    app: Driver, subscriber: Subscriber
) -> None:
    _, secret = await subscribe_signed(app, subscriber)
    assert secret.startswith("whsec_")
    invocation, delivered = await deliver_once(app, subscriber)

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
    other = await app.subscribe("test:created", subscriber.endpoint("other", answer(200, {})))
    with pytest.raises(WebhookVerificationError):
        verify(app.signing_secrets[other["id"]], delivered)


async def test_rotation_signs_with_both_secrets_during_the_grace_period(
    app: Driver, subscriber: Subscriber
) -> None:
    subscription, old = await subscribe_signed(app, subscriber)
    sub, _, new = await subscriptions.rotate_secret(app.rt, subscription["id"])
    assert new.startswith("whsec_") and new != old
    assert sub.id == subscription["id"]

    _, delivered = await deliver_once(app, subscriber)
    assert len(delivered.headers["webhook-signature"].split()) == 2
    verify(old, delivered)  # a subscriber that has not switched yet
    verify(new, delivered)  # and one that has


async def test_after_the_grace_period_only_the_new_secret_signs(
    open_driver: OpenDriver, subscriber: Subscriber
) -> None:
    async with open_driver(rotation_grace=0) as app:
        subscription, old = await subscribe_signed(app, subscriber)
        _, _, new = await subscriptions.rotate_secret(app.rt, subscription["id"])
        _, delivered = await deliver_once(app, subscriber)
    verify(new, delivered)
    with pytest.raises(WebhookVerificationError):
        verify(old, delivered)
