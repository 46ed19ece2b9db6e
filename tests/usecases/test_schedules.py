"""Schedules through the use cases: cron strings and time zones checked with reasons, a
subscription's pick (or custom cron), paused by default, resumed and paused again."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from gateway.domain.errors import Conflict, Invalid
from tests.schedules import create_scheduled_trigger
from tests.servers import Subscriber, answer
from tests.usecases.driver import Driver


async def test_cron_strings_and_time_zones_are_checked_with_reasons(
    app: Driver, subscriber: Subscriber
) -> None:
    for schedule, expected in (
        (
            {"name": "x", "cron": "61 * * * *"},
            "schedules[0].cron '61 * * * *' is not a cron string: Bad minute",
        ),
        ({"name": "x", "cron": "* * * *"}, "Wrong number of fields"),
        ({"name": "x", "cron": "* * * * *", "timezone": "Mars/Olympus"}, "is not an IANA time zone"),
    ):
        with pytest.raises(Invalid) as refused:
            await app.create_trigger("t:bad", type="FIRE_AND_FORGET", schedules=[schedule])
        assert expected in refused.value.message

    await create_scheduled_trigger(app)
    url = subscriber.endpoint("s", answer(200, {}))
    for choice, expected in (
        ({"option": "hourly"}, "has no schedule 'hourly'; its schedules: every 5 minutes"),
        ({"cron": "* * * * *"}, "does not allow custom schedules"),
        ({}, "needs an option"),
        ({"option": "every 5 minutes", "cron": "* * * * *"}, "schedule.cron is set by the option"),
    ):
        with pytest.raises(Invalid) as refused:
            await app.subscribe("t:sched", url, schedule=choice)
        assert expected in refused.value.message

    friday = await app.subscribe("t:sched", url, schedule={"option": "Fridays at 16:00"})
    assert friday["schedule"]["cron"] == "0 16 * * 5"
    assert friday["schedule"]["timezone"] == "Europe/Berlin"
    next_run = datetime.fromisoformat(friday["schedule"]["nextRunAt"])
    assert next_run.utcoffset() == timedelta(0)  # shown in UTC
    in_berlin = next_run.astimezone(ZoneInfo("Europe/Berlin"))
    assert (in_berlin.weekday(), in_berlin.hour, in_berlin.minute) == (4, 16, 0)
    # A schedule in use cannot be taken away from the trigger.
    with pytest.raises(Conflict):
        await app.replace_trigger("t:sched", name="S", type="FIRE_AND_FORGET")


async def test_paused_by_default_then_resumed_then_paused(app: Driver, subscriber: Subscriber) -> None:
    await create_scheduled_trigger(app, schedulesPausedByDefault=True)
    sub = await app.subscribe(
        "t:sched", subscriber.endpoint("scheduled", answer(200, {})), schedule={"option": "every second"}
    )
    assert sub["schedule"]["paused"] is True
    assert sub["schedule"]["nextRunAt"] is None
    # A companion on the same schedule, not paused: its ticks show that the scheduler ran.
    companion = {"option": "every second", "paused": False}
    await app.subscribe("t:sched", subscriber.endpoint("companion", answer(200, {})), schedule=companion)
    await subscriber.wait_for(2, within=10, path="/companion")
    assert subscriber.count("/scheduled") == 0

    resumed = await app.patch_subscription(
        sub["id"], [{"op": "replace", "path": "/schedule/paused", "value": False}]
    )
    assert resumed["schedule"]["nextRunAt"] is not None
    await subscriber.wait_for(1, within=10, path="/scheduled")
    await app.patch_subscription(sub["id"], [{"op": "replace", "path": "/schedule/paused", "value": True}])
    # A tick fired just before the pause may still be on its way; two companion ticks later,
    # it has arrived, and nothing more may come after a third.
    companion_ticks = subscriber.count("/companion")
    await subscriber.wait_for(companion_ticks + 2, within=10, path="/companion")
    count = subscriber.count("/scheduled")
    await subscriber.wait_for(companion_ticks + 3, within=10, path="/companion")
    assert subscriber.count("/scheduled") == count
    [status] = await app.statuses(filters='source eq "cron"', limit="1")
    assert status["startInvocationInput"]["input"]["schedule"] == "every second"
