"""Scheduled runs in both modes: on time, once per tick however many processes look, and one
catch-up run after downtime. Checking schedules and pausing them is tested in
tests/usecases/test_schedules.py."""

from __future__ import annotations

import asyncio
import itertools
import time
from contextlib import AsyncExitStack
from datetime import datetime
from typing import Any

from tests.conftest import start_gateway, worker_process
from tests.gateway_client import GatewayClient
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


async def _runs_of(gateway: GatewayClient, subscription_id: str) -> list[dict[str, Any]]:
    """Every run the subscription's schedule fired: the database records each in the
    transaction that fires it, before it is delivered."""
    response = await gateway.http.get(
        "/beta/trigger-invocations/status",
        params={"filters": f'subscriptionId eq "{subscription_id}"', "limit": 250},
    )
    assert response.status_code == 200, response.text
    runs: list[dict[str, Any]] = response.json()
    assert {run["source"] for run in runs} <= {"cron"}, runs
    return runs


def _tick(run: dict[str, Any]) -> str:
    return str(run["startInvocationInput"]["input"]["scheduledFor"])


def _epoch(timestamp: str) -> float:
    return datetime.fromisoformat(timestamp).timestamp()


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
        sub = await gateway.subscribe(
            "t:sched",
            subscriber.endpoint("scheduled", answer(200, {})),
            schedule={"option": "every second"},
        )
        await subscriber.wait_for(4, within=8)
        # Paused, the schedule fires no more: a process that read a tick before the pause
        # loses its compare-and-set. Every run fired is then in the database, and each has
        # ended once it was delivered: nothing more can arrive.
        pause = [{"op": "replace", "path": "/schedule/paused", "value": True}]
        paused = await gateway.http.patch(f"/beta/trigger-subscriptions/{sub['id']}", json=pause)
        assert paused.status_code == 200, paused.text
        runs = await _runs_of(gateway, sub["id"])
        for run in runs:
            assert (await gateway.final_status(run["id"]))["status"] == "COMPLETED"
    # Each run fired was delivered, and nothing else was.
    assert {r.body["_metadata"]["invocationId"] for r in subscriber.received} == {run["id"] for run in runs}
    ticks_fired = sorted(_tick(run) for run in runs)
    assert len(ticks_fired) == len(set(ticks_fired)), f"a tick fired twice: {ticks_fired}"
    # In tick order: runs are delivered concurrently, so a tick fired late by a descheduled
    # process may arrive after the next one, fired by the other.
    arrivals = sorted(_arrivals(subscriber), key=lambda arrival: arrival[1])
    ticks = [scheduled for _, scheduled in arrivals]
    assert all(t.microsecond == 0 for t in ticks), ticks
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
    await asyncio.sleep(3.5)  # three ticks pass with nothing running
    restarted = time.time()  # ticks from here on are due while it runs (or is starting)
    async with start_gateway(store) as gateway:
        # Ticks fire in order: once a tick due after the restart has arrived, the catch-up
        # run for the ticks missed before it has been fired.
        async with asyncio.timeout(8):
            while all(s.timestamp() < restarted for _, s in _arrivals(subscriber)):  # noqa: ASYNC110
                await asyncio.sleep(0.05)
        runs = await _runs_of(gateway, sub["id"])
        # Of the ticks due while it was down (or as it stopped, or started), one fires once it
        # runs again; what the stopping gateway fired, it made before it stopped.
        missed = [run for run in runs if _epoch(run["created"]) >= restarted > _epoch(_tick(run))]
        assert len(missed) == 1, f"the missed ticks fired {len(missed)} times: {missed}"
        assert (await gateway.final_status(missed[0]["id"]))["status"] == "COMPLETED"
        caught_up = (await gateway.http.get(f"/beta/trigger-subscriptions/{sub['id']}")).json()
    ticks = sorted(_tick(run) for run in runs)
    assert len(ticks) == len(set(ticks)), f"a tick fired twice: {ticks}"
    assert _epoch(caught_up["schedule"]["nextRunAt"]) > restarted
