"""Scheduled runs: cron options on the trigger, a subscription's pick (or custom cron),
paused by default, on time, once per tick however many processes, one catch-up after downtime."""

from __future__ import annotations

import asyncio
import itertools
import time
from contextlib import AsyncExitStack
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from tests.conftest import start_gateway, worker_process
from tests.gateway_client import GatewayClient
from tests.servers import Subscriber, answer
from tests.services import Store

EVERY_SECOND = "* * * * * *"  # six fields: seconds first


def _arrivals(subscriber: Subscriber) -> list[tuple[float, datetime]]:
    """(arrival time, scheduledFor) of every run so far, in order of first arrival. A delivery
    cut off by a stop is sent again with the same invocation id: that is one run, not two."""
    runs: dict[str, tuple[float, datetime]] = {}
    for r in subscriber.received:
        runs.setdefault(
            r.body["_metadata"]["invocationId"], (r.arrived, datetime.fromisoformat(r.body["scheduledFor"]))
        )
    return list(runs.values())


async def _schedule_trigger(gateway: GatewayClient, **fields: Any) -> None:
    await gateway.create_trigger(
        "t:sched",
        type="FIRE_AND_FORGET",
        schedules=[
            {"name": "every 5 minutes", "cron": "*/5 * * * *"},
            {"name": "Fridays at 16:00", "cron": "0 16 * * 5", "timezone": "Europe/Berlin"},
            {"name": "every second", "cron": EVERY_SECOND},
        ],
        **fields,
    )


async def test_cron_strings_and_time_zones_are_checked_with_reasons(
    gateway: GatewayClient, subscriber: Subscriber
) -> None:
    for schedule, expected in (
        (
            {"name": "x", "cron": "61 * * * *"},
            "schedules[0].cron '61 * * * *' is not a cron string: Bad minute",
        ),
        ({"name": "x", "cron": "* * * *"}, "Wrong number of fields"),
        ({"name": "x", "cron": "* * * * *", "timezone": "Mars/Olympus"}, "is not an IANA time zone"),
    ):
        response = await gateway.http.post(
            "/beta/triggers",
            json={"id": "t:bad", "name": "B", "type": "FIRE_AND_FORGET", "schedules": [schedule]},
        )
        assert response.status_code == 400, response.text
        assert expected in response.json()["messages"][0]["text"], response.text

    await _schedule_trigger(gateway)
    url = subscriber.endpoint("s", answer(200, {}))
    for schedule, expected in (
        ({"option": "hourly"}, "has no schedule 'hourly'; its schedules: every 5 minutes"),
        ({"cron": "* * * * *"}, "does not allow custom schedules"),
        ({}, "needs an option"),
        ({"option": "every 5 minutes", "cron": "* * * * *"}, "schedule.cron is set by the option"),
    ):
        response = await gateway.http.post(
            "/beta/trigger-subscriptions",
            json={"triggerId": "t:sched", "name": "s", "httpConfig": {"url": url}, "schedule": schedule},
        )
        assert response.status_code == 400, (schedule, response.text)
        assert expected in response.json()["messages"][0]["text"], response.text

    friday = await gateway.subscribe("t:sched", url, schedule={"option": "Fridays at 16:00"})
    assert friday["schedule"]["cron"] == "0 16 * * 5"
    assert friday["schedule"]["timezone"] == "Europe/Berlin"
    next_run = datetime.fromisoformat(friday["schedule"]["nextRunAt"])
    assert next_run.utcoffset() == timedelta(0)  # shown in UTC
    in_berlin = next_run.astimezone(ZoneInfo("Europe/Berlin"))
    assert (in_berlin.weekday(), in_berlin.hour, in_berlin.minute) == (4, 16, 0)
    # A schedule in use cannot be taken away from the trigger.
    shrink = await gateway.http.put("/beta/triggers/t:sched", json={"name": "S", "type": "FIRE_AND_FORGET"})
    assert shrink.status_code == 409


async def test_paused_by_default_then_resumed_then_paused(
    gateway: GatewayClient, subscriber: Subscriber
) -> None:
    await _schedule_trigger(gateway, schedulesPausedByDefault=True)
    sub = await gateway.subscribe(
        "t:sched", subscriber.endpoint("scheduled", answer(200, {})), schedule={"option": "every second"}
    )
    assert sub["schedule"]["paused"] is True
    assert sub["schedule"]["nextRunAt"] is None
    await asyncio.sleep(1.5)
    assert _arrivals(subscriber) == []

    resume = [{"op": "replace", "path": "/schedule/paused", "value": False}]
    resumed = await gateway.http.patch(f"/beta/trigger-subscriptions/{sub['id']}", json=resume)
    assert resumed.status_code == 200, resumed.text
    assert resumed.json()["schedule"]["nextRunAt"] is not None
    await subscriber.wait_for(1, within=5)
    pause = [{"op": "replace", "path": "/schedule/paused", "value": True}]
    paused = await gateway.http.patch(f"/beta/trigger-subscriptions/{sub['id']}", json=pause)
    assert paused.status_code == 200
    await asyncio.sleep(0.5)  # a tick fired just before the pause may still be on its way
    count = len(subscriber.received)
    await asyncio.sleep(1.5)
    assert len(subscriber.received) == count
    [status] = (
        await gateway.http.get(
            "/beta/trigger-invocations/status", params={"filters": 'source eq "cron"', "limit": 1}
        )
    ).json()
    assert status["startInvocationInput"]["input"]["schedule"] == "every second"


async def test_each_tick_fires_once_on_time_with_two_processes_scheduling(
    store: Store, subscriber: Subscriber
) -> None:
    async with AsyncExitStack() as stack:
        gateway = await stack.enter_async_context(start_gateway(store))
        # A second process looking at the same schedules: distributed, another worker;
        # embedded, another gateway on the same database file.
        if store.redis_url:
            await stack.enter_async_context(worker_process(gateway.settings))
        else:
            await stack.enter_async_context(start_gateway(store))
        await _schedule_trigger(gateway)
        await gateway.subscribe(
            "t:sched",
            subscriber.endpoint("scheduled", answer(200, {})),
            schedule={"option": "every second"},
        )
        await subscriber.wait_for(4, within=8)
        await asyncio.sleep(0.5)  # a duplicate of the last tick would have arrived by now
    arrivals = _arrivals(subscriber)
    ticks = [scheduled for _, scheduled in arrivals]
    assert len(ticks) == len(set(ticks)), f"a tick fired twice: {ticks}"
    assert all((b - a).total_seconds() == 1 for a, b in itertools.pairwise(ticks)), ticks
    lateness = [arrived - scheduled.timestamp() for arrived, scheduled in arrivals]
    assert all(0 <= late < 1.0 for late in lateness), lateness


async def test_a_gateway_down_across_three_ticks_fires_one_catch_up_run(
    store: Store, subscriber: Subscriber
) -> None:
    async with start_gateway(store) as gateway:
        await _schedule_trigger(gateway)
        sub = await gateway.subscribe(
            "t:sched",
            subscriber.endpoint("scheduled", answer(200, {})),
            schedule={"option": "every second"},
        )
        await subscriber.wait_for(1, within=5)
    stopped = time.time()
    before = len(_arrivals(subscriber))  # runs, whose deliveries may repeat after the restart
    await asyncio.sleep(3.5)  # three ticks pass with nothing running
    restarted = time.time()  # ticks from here on are due while it runs (or is starting)
    async with start_gateway(store) as gateway:
        async with asyncio.timeout(8):
            while len(_arrivals(subscriber)) < before + 2:  # noqa: ASYNC110
                await asyncio.sleep(0.05)
        ticks = [s for _, s in _arrivals(subscriber)]
        assert len(ticks) == len(set(ticks)), f"a tick fired twice: {ticks}"
        # A tick fired as it was stopping may arrive only now (delivered at least once); of
        # the ticks due while it was down, one fires.
        missed = [s for s in ticks[before:] if stopped < s.timestamp() < restarted]
        assert len(missed) == 1, f"the missed ticks fired {len(missed)} times: {missed}"
        caught_up = (await gateway.http.get(f"/beta/trigger-subscriptions/{sub['id']}")).json()
        assert datetime.fromisoformat(caught_up["schedule"]["nextRunAt"]).timestamp() > restarted
