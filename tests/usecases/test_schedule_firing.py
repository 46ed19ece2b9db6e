"""Firing due ticks (usecases/schedules.py): a schedule that cannot be stepped is paused, a
tick with no usable tenant is skipped, disabled subscriptions do not fire and enabling one
moves its next tick past what it missed, and due subscriptions fire in bounded batches.

Ticks are made due by back-dating the stored next tick, and fire_due is called directly with
the runtime's own loops stopped: only these calls fire anything.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import update

from gateway.domain import cron
from gateway.domain.clock import utcnow
from gateway.domain.model import Subscription
from gateway.usecases import schedules
from tests.servers import Subscriber, answer
from tests.usecases.driver import Document, Driver

YEARLY = {"cron": "0 0 1 1 *", "paused": False}  # never due during a test unless back-dated
HOURLY = "0 * * * *"


async def scheduled(app: Driver, subscriber: Subscriber, trigger_id: str, **schedule: Any) -> Document:
    return await app.subscribe(
        trigger_id, subscriber.endpoint("tick", answer(200, {})), schedule={**YEARLY, **schedule}
    )


async def make_due(app: Driver, subscription_id: str, ago: timedelta = timedelta(minutes=1)) -> None:
    await app.alter(Subscription, subscription_id, next_fire_at=utcnow() - ago)


async def make_all_due(app: Driver) -> None:
    async with app.rt.sessions() as session:
        await session.execute(update(Subscription).values(next_fire_at=utcnow() - timedelta(minutes=1)))
        await session.commit()


async def cron_runs(app: Driver, subscription_id: str) -> list[Document]:
    return await app.statuses(filters=f'source eq "cron" and subscriptionId eq "{subscription_id}"')


def next_run_at(sub: Document) -> datetime | None:
    shown = sub["schedule"]["nextRunAt"]
    return None if shown is None else datetime.fromisoformat(shown)


async def test_a_schedule_that_cannot_be_stepped_is_paused_and_the_others_still_fire(
    app: Driver, subscriber: Subscriber, caplog: pytest.LogCaptureFixture
) -> None:
    await app.stop_loops()
    await app.create_trigger("t:cron", type="FIRE_AND_FORGET", customSchedules=True)
    broken = await scheduled(app, subscriber, "t:cron")
    fine = await scheduled(app, subscriber, "t:cron")
    # A time zone the system's tz database has since dropped.
    await app.alter(Subscription, broken["id"], schedule_timezone="Mars/Olympus")
    for sub in (broken, fine):
        await make_due(app, sub["id"])

    with caplog.at_level(logging.ERROR, logger="gateway.schedules"):
        assert await schedules.fire_due(app.rt) == 1
    assert f"subscription={broken['id']}: its schedule cannot be stepped; pausing it" in caplog.text
    shown = await app.subscription(broken["id"])
    assert (shown["schedule"]["paused"], shown["schedule"]["nextRunAt"]) == (True, None)
    assert await cron_runs(app, broken["id"]) == []
    assert len(await cron_runs(app, fine["id"])) == 1
    assert await schedules.fire_due(app.rt) == 0  # paused: never due again


async def test_a_tick_with_no_usable_tenant_is_skipped_and_its_schedule_moves_on(
    app: Driver, subscriber: Subscriber, caplog: pytest.LogCaptureFixture
) -> None:
    await app.stop_loops()
    # "$" finds the whole tick payload, an object: no tenant id.
    await app.create_trigger("t:cron", type="FIRE_AND_FORGET", customSchedules=True, tenantIdPath="$")
    skipped = await scheduled(app, subscriber, "t:cron")
    named = await scheduled(app, subscriber, "t:cron", tenantId="acme")  # no path needed
    for sub in (skipped, named):
        await make_due(app, sub["id"])

    with caplog.at_level(logging.WARNING, logger="gateway.schedules"):
        assert await schedules.fire_due(app.rt) == 1
    assert f"subscription={skipped['id']} tick" in caplog.text
    assert "skipped: tenantIdPath $ must find a string or an integer" in caplog.text
    assert await cron_runs(app, skipped["id"]) == []
    [run] = await cron_runs(app, named["id"])
    assert run["tenantId"] == "acme"
    # The skipped tick is not tried again: the schedule moved on to its next tick.
    moved = next_run_at(await app.subscription(skipped["id"]))
    assert moved is not None and moved > utcnow()
    assert await schedules.fire_due(app.rt) == 0


async def test_a_disabled_subscription_does_not_fire_and_enabling_it_skips_what_it_missed(
    app: Driver, subscriber: Subscriber
) -> None:
    await app.stop_loops()
    await app.create_trigger("t:cron", type="FIRE_AND_FORGET", customSchedules=True)
    sub = await scheduled(app, subscriber, "t:cron", cron=HOURLY)
    await app.patch_subscription(sub["id"], [{"op": "replace", "path": "/enabled", "value": False}])
    await make_due(app, sub["id"], ago=timedelta(days=1))  # a day of ticks missed while disabled
    assert await schedules.fire_due(app.rt) == 0
    assert await cron_runs(app, sub["id"]) == []

    before = utcnow()
    enabled = await app.patch_subscription(sub["id"], [{"op": "replace", "path": "/enabled", "value": True}])
    after = utcnow()
    moved = next_run_at(enabled)
    assert moved is not None
    assert cron.next_tick(HOURLY, "UTC", before) <= moved <= cron.next_tick(HOURLY, "UTC", after)
    assert await schedules.fire_due(app.rt) == 0

    # Any other change keeps the next tick as it is: a due one still fires.
    await make_due(app, sub["id"])
    stale = next_run_at(await app.subscription(sub["id"]))
    renamed = await app.patch_subscription(sub["id"], [{"op": "replace", "path": "/name", "value": "x"}])
    assert next_run_at(renamed) == stale
    assert await schedules.fire_due(app.rt) == 1


async def test_due_schedules_fire_in_batches_until_none_is_due_and_at_most_max_batches_a_round(
    app: Driver, subscriber: Subscriber, monkeypatch: pytest.MonkeyPatch
) -> None:
    count = schedules.FIRE_BATCH + 1  # one full batch, then one more
    await app.stop_loops()
    ids = []
    for n in range(count):
        trigger_id = f"t:cron{n // 50}"  # a fire-and-forget trigger takes 50 subscriptions
        if n % 50 == 0:
            await app.create_trigger(trigger_id, type="FIRE_AND_FORGET", customSchedules=True)
        ids.append((await scheduled(app, subscriber, trigger_id))["id"])
    await make_all_due(app)
    assert await schedules.fire_due(app.rt) == count
    assert await schedules.fire_due(app.rt) == 0

    # At most MAX_BATCHES a round: what is left is fired by the next.
    await make_all_due(app)
    monkeypatch.setattr(schedules, "MAX_BATCHES", 1)
    assert await schedules.fire_due(app.rt) == schedules.FIRE_BATCH
    assert await schedules.fire_due(app.rt) == 1
    runs = await app.statuses(filters='source eq "cron"', limit="250")
    assert len(runs) == 2 * count
    assert {r["subscriptionId"] for r in runs} == set(ids)
