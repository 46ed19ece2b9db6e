"""usecases/retention.py: finished invocations and their attempt logs go once past their
retention (completed and failed apart); what is in flight or recent stays; P0D keeps all."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from sqlalchemy import func
from sqlmodel import select

from gateway.domain.clock import utcnow
from gateway.domain.model import DeliveryAttempt, Invocation
from gateway.usecases import retention
from tests.servers import Subscriber, answer
from tests.usecases.conftest import OpenDriver
from tests.usecases.driver import Driver


async def finished(app: Driver, subscriber: Subscriber) -> dict[str, str]:
    """One completed, one failed and one in-flight invocation, by status."""
    await app.create_trigger("t:notify", name="Notify", type="FIRE_AND_FORGET")
    await app.subscribe("t:notify", subscriber.endpoint("ok", answer(200)), name="ok")
    await app.subscribe("t:notify", subscriber.endpoint("no", answer(400, {})), name="no")
    await app.create_trigger("t:ask", name="Ask")
    await app.subscribe("t:ask", subscriber.endpoint("ack", answer(200, {})), "ASYNC")
    started = [i["id"] for i in await app.start("t:notify", {})] + [(await app.start("t:ask", {}))[0]["id"]]
    by_status = {}
    for invocation_id in started:
        status = await app.status(invocation_id, wait=2)
        if status["status"] == "DISPATCHING":
            await app.reach(invocation_id, "AWAITING_CALLBACK")
        by_status[(await app.status(invocation_id))["status"]] = invocation_id
    assert set(by_status) == {"COMPLETED", "FAILED", "AWAITING_CALLBACK"}
    return by_status


async def count(app: Driver, table: type[Invocation] | type[DeliveryAttempt]) -> int:
    async with app.rt.sessions() as session:
        return int((await session.execute(select(func.count()).select_from(table))).scalar_one())


async def test_what_is_past_its_retention_goes_with_its_attempts(
    open_driver: OpenDriver, subscriber: Subscriber
) -> None:
    async with open_driver(retention_completed="P7D", retention_failed="P30D", retry_schedule="") as app:
        await app.stop_loops()
        ids = await finished(app, subscriber)
        assert await count(app, DeliveryAttempt) == 3
        assert await retention.purge_due(app.rt) == 0  # all recent

        # Eight days on: the completed one goes, the failed one (30 days) stays.
        for status in ("COMPLETED", "FAILED"):
            await app.alter(Invocation, ids[status], completed=utcnow() - timedelta(days=8))
        assert await retention.purge_due(app.rt) == 1
        remaining = {s["id"] for s in await app.statuses()}
        assert remaining == {ids["FAILED"], ids["AWAITING_CALLBACK"]}
        assert await count(app, DeliveryAttempt) == 2

        await app.alter(Invocation, ids["FAILED"], completed=utcnow() - timedelta(days=31))
        assert await retention.purge_due(app.rt) == 1
        assert {s["id"] for s in await app.statuses()} == {ids["AWAITING_CALLBACK"]}  # in flight: kept
        assert await count(app, DeliveryAttempt) == 1


async def test_p0d_keeps_them_forever(open_driver: OpenDriver, subscriber: Subscriber) -> None:
    async with open_driver(retention_completed="P0D", retention_failed="P0D", retry_schedule="") as app:
        await app.stop_loops()
        ids = await finished(app, subscriber)
        for status in ("COMPLETED", "FAILED"):
            await app.alter(Invocation, ids[status], completed=utcnow() - timedelta(days=3650))
        assert await retention.purge_due(app.rt) == 0
        assert await count(app, Invocation) == 3


async def test_the_sweep_deletes_in_batches(open_driver: OpenDriver, subscriber: Subscriber) -> None:
    async with open_driver(retention_completed="PT1S") as app:
        await app.create_trigger("t:notify", name="Notify", type="FIRE_AND_FORGET")
        await app.subscribe("t:notify", subscriber.endpoint("ok", answer(200)))
        started = [(await app.start("t:notify", {"n": n}))[0]["id"] for n in range(5)]
        for invocation_id in started:
            await app.final_status(invocation_id)
        # The running sweep (every 0.2 s in tests) deletes them a second after they completed.
        for _ in range(50):
            if await count(app, Invocation) == 0:
                break
            await asyncio.sleep(0.1)
        assert await count(app, Invocation) == 0
