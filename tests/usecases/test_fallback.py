"""Fail-open: a REQUEST_RESPONSE trigger's fallbackOutput completes its invocations that fail
or expire, saying what failed; without one they fail as before (fail-closed)."""

from __future__ import annotations

import pytest

from gateway.domain.errors import Invalid
from tests.servers import Subscriber, answer
from tests.usecases.driver import Driver

SCHEMA = {"type": "object", "required": ["approved"], "properties": {"approved": {"type": "boolean"}}}
FALLBACK = {"approved": False}


async def fail_open(app: Driver) -> None:
    trigger = await app.create_trigger(outputSchema=SCHEMA, fallbackOutput=FALLBACK)
    assert trigger["fallbackOutput"] == FALLBACK


async def test_a_fallback_must_match_the_output_schema_and_needs_an_output(app: Driver) -> None:
    with pytest.raises(Invalid) as refused:
        await app.create_trigger(outputSchema=SCHEMA, fallbackOutput={"approved": "no"})
    assert any("fallbackOutput" in cause for cause in refused.value.causes or [])
    with pytest.raises(Invalid, match="fire-and-forget"):
        await app.create_trigger("t:ff", name="FF", type="FIRE_AND_FORGET", fallbackOutput={})


async def test_a_failed_delivery_completes_with_the_fallback(app: Driver, subscriber: Subscriber) -> None:
    await fail_open(app)
    await app.subscribe("test:approver", subscriber.endpoint("down", answer(500, {})))
    [invocation] = await app.start("test:approver", {})
    status = await app.final_status(invocation["id"])
    assert (status["status"], status["fallback"]) == ("COMPLETED", True)
    assert status["completeInvocationInput"] == {
        "output": FALLBACK,
        "localizedError": {"locale": "en-US", "message": "the subscriber answered HTTP 500"},
    }
    # Replayable, unlike an output the subscriber gave: it failed really.
    subscriber.behaviours["down"] = answer(200, {"approved": True})
    await app.replay(invocation["id"])
    replayed = await app.final_status(invocation["id"])
    assert (replayed["fallback"], replayed["completeInvocationInput"]["output"]) == (
        False,
        {"approved": True},
    )


async def test_an_expired_invocation_completes_with_the_fallback(app: Driver, subscriber: Subscriber) -> None:
    await fail_open(app)
    await app.subscribe(
        "test:approver", subscriber.endpoint("ack", answer(200, {})), "ASYNC", responseDeadline="PT1S"
    )
    [invocation] = await app.start("test:approver", {})
    status = await app.final_status(invocation["id"], within=5)
    assert (status["status"], status["fallback"]) == ("COMPLETED", True)
    assert status["completeInvocationInput"]["output"] == FALLBACK
    assert status["completeInvocationInput"]["localizedError"]["message"] == "no callback before the deadline"


async def test_a_callback_reporting_an_error_completes_with_the_fallback(
    app: Driver, subscriber: Subscriber
) -> None:
    await fail_open(app)
    await app.subscribe("test:approver", subscriber.endpoint("ack", answer(200, {})), "ASYNC")
    [invocation] = await app.start("test:approver", {})
    [delivered] = await subscriber.wait_for(1)
    await app.reach(invocation["id"], "AWAITING_CALLBACK")
    assert await app.complete(delivered.body["_metadata"], error="the approver is on leave") == 204
    status = await app.status(invocation["id"])
    assert (status["status"], status["fallback"]) == ("COMPLETED", True)
    assert (
        status["completeInvocationInput"]["localizedError"]["message"]
        == "the subscriber reported: the approver is on leave"
    )


async def test_without_a_fallback_it_fails(app: Driver, subscriber: Subscriber) -> None:
    await app.create_trigger(outputSchema=SCHEMA)
    await app.subscribe("test:approver", subscriber.endpoint("down", answer(500, {})))
    [invocation] = await app.start("test:approver", {})
    status = await app.final_status(invocation["id"])
    assert (status["status"], status["fallback"], status["completeInvocationInput"]["output"]) == (
        "FAILED",
        False,
        None,
    )
