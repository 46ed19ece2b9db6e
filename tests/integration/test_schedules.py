"""Scheduled runs in both modes: on time, once per tick however many processes look, and one
catch-up run after downtime. Checking schedules and pausing them is tested in
tests/usecases/test_schedules.py."""

from __future__ import annotations

import asyncio
import itertools
import time
from contextlib import AsyncExitStack
from datetime import datetime

from tests.conftest import start_gateway, worker_process
from tests.schedules import create_scheduled_trigger
from tests.servers import Subscriber, answer
from tests.services import Store

# How late a tick may arrive: the scheduler sleeps until the tick, so it is on time within
# milliseconds on an idle machine; the suite runs beside other tests on two cores.
LATE_ON_A_BUSY_MACHINE = 3.0


def _arrivals(subscriber: Subscriber) -> list[tuple[float, datetime]]:
    """(arrival time, scheduledFor) of every run so far, in order of first arrival. A delivery
    cut off by a stop is sent again with the same invocation id: that is one run, not two."""
    runs: dict[str, tuple[float, datetime]] = {}
    for r in subscriber.received:
        runs.setdefault(
            r.body["_metadata"]["invocationId"], (r.arrived, datetime.fromisoformat(r.body["scheduledFor"]))
        )
    return list(runs.values())


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
        await create_scheduled_trigger(gateway)
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
    assert ticks == sorted(ticks) and all(t.microsecond == 0 for t in ticks), ticks
    lateness = [arrived - scheduled.timestamp() for arrived, scheduled in arrivals]
    # On time, with a margin for a loaded machine; a tick is skipped only when the one
    # before it was fired more than a second late (the missed ticks then fire once).
    assert all(0 <= late < LATE_ON_A_BUSY_MACHINE for late in lateness), lateness
    for (a, b), late in zip(itertools.pairwise(ticks), lateness, strict=False):
        skipped = (b - a).total_seconds() - 1
        assert skipped == 0 or late >= skipped, (
            f"tick {b} came {skipped:g} s early after one {late:.2f} s late"
        )


async def test_a_gateway_down_across_three_ticks_fires_one_catch_up_run(
    store: Store, subscriber: Subscriber
) -> None:
    async with start_gateway(store) as gateway:
        await create_scheduled_trigger(gateway)
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
