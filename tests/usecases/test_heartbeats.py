"""usecases/heartbeats.py: a heartbeat keeps an invocation awaiting its callback alive past its
first deadline, never beyond its creation + GATEWAY_MAX_RESPONSE_DEADLINE, and shows its
progress; wrong secrets, unknown ids, other states and passed deadlines are refused."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

import pytest

from gateway.domain.clock import utcnow
from gateway.domain.errors import Conflict, Forbidden, Gone, Invalid, NotFound
from gateway.usecases import heartbeats
from tests.servers import Subscriber, answer
from tests.usecases.conftest import OpenDriver
from tests.usecases.driver import Document, Driver


def parsed(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


async def awaiting(app: Driver, subscriber: Subscriber, deadline: str = "PT1S") -> Document:
    """An ASYNC invocation acknowledged and awaiting its callback; its delivered _metadata."""
    await app.create_trigger()
    await app.subscribe(
        "test:approver", subscriber.endpoint("ack", answer(200, {})), "ASYNC", responseDeadline=deadline
    )
    [invocation] = await app.start("test:approver", {})
    [delivered] = await subscriber.wait_for(1)
    await app.reach(invocation["id"], "AWAITING_CALLBACK")
    metadata: Document = delivered.body["_metadata"]
    return metadata


async def test_a_heartbeat_keeps_an_invocation_alive_past_its_first_deadline(
    app: Driver, subscriber: Subscriber
) -> None:
    meta = await awaiting(app, subscriber, "PT1S")
    invocation_id, secret = meta["invocationId"], meta["secret"]
    first_deadline = parsed(meta["deadline"])
    extended = await heartbeats.beat(app.rt, invocation_id, secret, "PT2S", "step 1 of 3")
    assert extended > first_deadline + timedelta(seconds=0.5)
    await asyncio.sleep(1.3)  # past the first deadline (the sweep runs every 0.2 s)
    status = await app.status(invocation_id)
    assert (status["status"], status["progress"]) == ("AWAITING_CALLBACK", "step 1 of 3")
    assert abs(parsed(status["deadline"]) - extended) < timedelta(milliseconds=1)
    # Without extendBy: the subscription's responseDeadline (PT1S) from now, if that is later.
    before = utcnow()
    again = await heartbeats.beat(app.rt, invocation_id, secret, None, None)
    assert before + timedelta(seconds=1) <= again <= utcnow() + timedelta(seconds=1)
    assert again > extended
    # A shorter extension than the deadline it has changes nothing: deadlines only move on.
    assert await heartbeats.beat(app.rt, invocation_id, secret, "PT0S", None) == again
    assert (await app.status(invocation_id))["progress"] == "step 1 of 3"  # the last note stays
    assert await app.complete(meta, {"approver": "after the first deadline"}) == 204
    assert (await app.status(invocation_id))["status"] == "COMPLETED"


async def test_without_heartbeats_it_expires(app: Driver, subscriber: Subscriber) -> None:
    meta = await awaiting(app, subscriber, "PT1S")
    assert (await app.final_status(meta["invocationId"], within=5))["status"] == "EXPIRED"
    with pytest.raises(Gone):
        await heartbeats.beat(app.rt, meta["invocationId"], meta["secret"], "PT1H", None)


async def test_an_extension_never_goes_beyond_the_longest_deadline(
    open_driver: OpenDriver, subscriber: Subscriber
) -> None:
    async with open_driver(max_response_deadline="PT3S") as app:
        meta = await awaiting(app, subscriber, "PT1S")
        status = await app.status(meta["invocationId"])
        # A billion days is no overflow (a 500), only the longest deadline.
        extended = await heartbeats.beat(app.rt, meta["invocationId"], meta["secret"], "P999999999D", None)
        latest = parsed(status["created"]) + timedelta(seconds=3)
        assert abs(extended - latest) < timedelta(milliseconds=1)  # the status shows milliseconds


async def test_refusals(app: Driver, subscriber: Subscriber) -> None:
    meta = await awaiting(app, subscriber, "PT30S")
    invocation_id, secret = meta["invocationId"], meta["secret"]
    with pytest.raises(Forbidden):
        await heartbeats.beat(app.rt, invocation_id, secret + "x", None, None)
    with pytest.raises(NotFound):
        await heartbeats.beat(app.rt, "no-such-invocation", secret, None, None)
    with pytest.raises(Invalid, match="extendBy"):
        await heartbeats.beat(app.rt, invocation_id, secret, "soon", None)
    with pytest.raises(Invalid, match="1024 bytes"):
        await heartbeats.beat(app.rt, invocation_id, secret, None, "é" * 513)
    assert await app.complete(meta, {"approver": "done"}) == 204
    with pytest.raises(Conflict, match="not awaiting a callback"):
        await heartbeats.beat(app.rt, invocation_id, secret, None, None)
