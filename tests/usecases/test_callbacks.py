"""A subscriber's callback (usecases/callbacks.py): every outcome, refusals, and deadlines."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from gateway.domain.clock import utcnow
from gateway.domain.errors import Invalid
from gateway.domain.model import Invocation
from gateway.telemetry import metrics
from tests.servers import Subscriber, answer, hang
from tests.usecases.conftest import OpenDriver
from tests.usecases.driver import Document, Driver

OUTPUT_SCHEMA = {"type": "object", "required": ["approver"], "properties": {"approver": {"type": "string"}}}


async def awaiting(app: Driver, subscriber: Subscriber, deadline: str = "PT1H") -> tuple[str, Document]:
    """An invocation acknowledged by its subscriber and awaiting the callback; its metadata."""
    if not app.signing_secrets:
        await app.create_trigger(outputSchema=OUTPUT_SCHEMA)
        await app.subscribe(
            "test:approver", subscriber.endpoint("ack", answer(200, {})), "ASYNC", responseDeadline=deadline
        )
    before = len(subscriber.received)
    [invocation] = await app.start("test:approver", {})
    received = await subscriber.wait_for(before + 1)
    await app.reach(invocation["id"], "AWAITING_CALLBACK")
    return invocation["id"], received[-1].body["_metadata"]


async def test_error_fails_the_invocation_without_checking_output(
    app: Driver, subscriber: Subscriber
) -> None:
    invocation_id, meta = await awaiting(app, subscriber)
    assert await app.complete(meta, {"bad": 1}, error="nobody can approve") == 204
    status = await app.status(invocation_id)
    assert status["status"] == "FAILED"
    assert "nobody can approve" in status["completeInvocationInput"]["localizedError"]["message"]
    assert status["completeInvocationInput"]["output"] is None


async def test_invalid_output_is_refused_and_can_be_corrected(app: Driver, subscriber: Subscriber) -> None:
    invocation_id, meta = await awaiting(app, subscriber)
    with pytest.raises(Invalid) as refused:
        await app.callback(meta, {"approver": 1})
    assert "$.approver" in refused.value.causes[0]
    assert (await app.status(invocation_id))["status"] == "AWAITING_CALLBACK"
    assert await app.complete(meta, {"approver": "x"}) == 204
    assert (await app.status(invocation_id))["completeInvocationInput"]["output"] == {"approver": "x"}


async def test_missing_output_is_refused(app: Driver, subscriber: Subscriber) -> None:
    invocation_id, meta = await awaiting(app, subscriber)
    assert await app.complete(meta, None) == 400
    assert (await app.status(invocation_id))["status"] == "AWAITING_CALLBACK"


async def test_wrong_secret_is_403_and_changes_nothing(app: Driver, subscriber: Subscriber) -> None:
    invocation_id, meta = await awaiting(app, subscriber)
    _, other = await awaiting(app, subscriber)  # a valid secret, but for another invocation
    for secret in ("guess", other["secret"], meta["secret"] + "x"):
        assert await app.complete(meta, {"approver": "x"}, secret=secret) == 403
    assert (await app.status(invocation_id))["status"] == "AWAITING_CALLBACK"


async def test_unknown_invocation_is_404(app: Driver) -> None:
    unknown = {"callbackURL": "http://gateway.test/beta/trigger-invocations/nope/complete", "secret": "s"}
    assert await app.complete(unknown, {}) == 404


async def test_repeated_completion_is_idempotent_and_a_different_one_conflicts(
    app: Driver, subscriber: Subscriber
) -> None:
    invocation_id, meta = await awaiting(app, subscriber)
    assert await app.complete(meta, {"approver": "x"}) == 204
    completed = (await app.status(invocation_id))["completed"]
    assert await app.complete(meta, {"approver": "x"}) == 204
    assert (await app.status(invocation_id))["completed"] == completed
    assert await app.complete(meta, {"approver": "y"}) == 409
    assert (await app.status(invocation_id))["completeInvocationInput"]["output"] == {"approver": "x"}


async def test_sync_and_fire_and_forget_invocations_take_no_callback(
    app: Driver, subscriber: Subscriber
) -> None:
    await app.create_trigger()
    await app.subscribe("test:approver", subscriber.endpoint("slow", hang(30)), "SYNC")
    await app.create_trigger("test:created", type="FIRE_AND_FORGET")
    await app.subscribe("test:created", subscriber.endpoint("slow", hang(30)), "ASYNC")
    for trigger_id in ("test:approver", "test:created"):
        [invocation] = await app.start(trigger_id, {})
        await app.reach(invocation["id"], "DISPATCHING")
        meta = _metadata_of(invocation)
        assert await app.complete(meta, {}) == 409


async def test_a_callback_before_the_delivery_is_409(app: Driver, subscriber: Subscriber) -> None:
    await app.create_trigger(outputSchema=OUTPUT_SCHEMA)
    await app.subscribe("test:approver", subscriber.endpoint("ack", answer(200, {})), "ASYNC", debounce=True)
    [first] = await app.start("test:approver", {}, tenantId="acme")
    await app.reach(first["id"], "AWAITING_CALLBACK")
    [waiting] = await app.start("test:approver", {}, tenantId="acme")  # debounced: WAITING
    assert (await app.status(waiting["id"]))["status"] == "WAITING"
    assert await app.complete(_metadata_of(waiting), {"approver": "x"}) == 409


async def test_callback_after_the_deadline_is_410_and_expires_it(
    open_driver: OpenDriver, subscriber: Subscriber
) -> None:
    # The sweep runs once at start-up and not again: only the callback can expire it.
    async with open_driver(sweep_interval=3600) as app:
        invocation_id, meta = await awaiting(app, subscriber)
        await app.alter(Invocation, invocation_id, deadline=utcnow() - timedelta(seconds=1))
        assert await app.complete(meta, {"approver": "x"}) == 410
        status = await app.status(invocation_id)
    assert status["status"] == "EXPIRED"
    assert "deadline" in status["completeInvocationInput"]["localizedError"]["message"]


def _metadata_of(invocation: Document) -> Document:
    """The _metadata a delivery of ``invocation`` carries, as far as a callback needs it."""
    return {
        "callbackURL": f"http://gateway.test/beta/trigger-invocations/{invocation['id']}/complete",
        "secret": invocation["secret"],
    }


async def test_the_same_callback_twice_at_once_is_counted_once(app: Driver, subscriber: Subscriber) -> None:
    """Both are accepted (a callback is idempotent), but what follows a final state (the
    count, the wake-ups, the next run) follows it once."""
    await app.create_trigger("t:twice")
    await app.subscribe("t:twice", subscriber.endpoint("ack", answer(200, {})), "ASYNC")
    await app.start("t:twice", {})
    await app.settled()  # acknowledged
    [received] = subscriber.received
    metadata = received.body["_metadata"]
    labels = {"trigger": "t:twice", "mode": "ASYNC", "outcome": "completed"}

    def finished() -> float:
        return metrics.REGISTRY.get_sample_value("gateway_invocations_finished_total", labels) or 0.0

    before = finished()
    codes = await asyncio.gather(*(app.complete(metadata, output={"ok": True}) for _ in range(2)))
    assert codes == [204, 204]
    assert finished() - before == 1
