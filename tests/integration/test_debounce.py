"""Debounced subscriptions: one run at a time per tenant, what arrives meanwhile bundled into
the next run (cron triggers in their own run, first), and each run seeing the one before."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from tests.conftest import open_store, start_gateway
from tests.gateway_client import GatewayClient
from tests.servers import Received, Subscriber, answer

# A run's states between its delivery and its end.
IN_FLIGHT = ("DISPATCHING", "AWAITING_CALLBACK")


async def _statuses(gateway: GatewayClient, filters: str) -> list[dict[str, Any]]:
    response = await gateway.http.get(
        "/beta/trigger-invocations/status", params={"filters": filters, "sorters": "created", "limit": 250}
    )
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


async def _complete(gateway: GatewayClient, delivery: Received, output: dict[str, Any]) -> None:
    metadata = delivery.body["_metadata"]
    response = await gateway.complete(
        metadata["callbackURL"], {"secret": metadata["secret"], "output": output}
    )
    assert response.status_code == 204, response.text


async def test_triggers_racing_through_two_api_processes_still_give_one_run_at_a_time(
    tmp_path: Path, subscriber: Subscriber
) -> None:
    """Starts for one idle tenant arrive at once through two API processes, each with its own
    connection pool on one PostgreSQL: one run starts, and everything else is bundled into the
    next. (Embedded, one process has one SQLite connection, which serializes all of it.)"""
    async with (
        open_store("distributed", tmp_path) as store,
        start_gateway(store) as first,
        start_gateway(store, worker=False) as second,
    ):
        await first.create_trigger("t:race")
        await first.subscribe("t:race", subscriber.endpoint("async", answer(200, {})), "ASYNC", debounce=True)
        gateways = [first, second] * 10
        started = await asyncio.gather(
            *(gw.start("t:race", {"n": n}, tenantId="acme") for n, gw in enumerate(gateways))
        )
        ids = sorted(inv[0]["id"] for inv in started)
        carried: list[str] = []
        runs = 0
        while len(carried) < len(ids):
            runs += 1
            run = (await subscriber.wait_for(runs))[-1]
            # Never a second run while this one is in flight. The database says so at once: a
            # run is recorded (PENDING) before it is queued, so every other trigger still
            # WAITING (or BUNDLED into this run) means nothing else is on its way.
            leader = run.body["_metadata"]["invocationId"]
            statuses = {s["id"]: s["status"] for s in await _statuses(first, 'triggerId eq "t:race"')}
            in_flight = [i for i, status in statuses.items() if status in ("PENDING", *IN_FLIGHT)]
            assert in_flight == [leader], statuses
            assert set(statuses.values()) <= {"WAITING", "BUNDLED", "COMPLETED", *IN_FLIGHT}, statuses
            assert len(subscriber.received) == runs
            carried += [t["invocationId"] for t in run.body["_metadata"]["runTriggers"]]
            await _complete(first, run, {"run": runs})
        assert sorted(carried) == ids  # each trigger carried by exactly one run
        assert runs <= 2, runs  # the first run, then one carrying all that arrived meanwhile
        # Every trigger has ended (its run completed, or it was bundled into one): nothing is
        # left that any process could still deliver.
        ended = {s["id"]: s["status"] for s in await _statuses(first, 'triggerId eq "t:race"')}
        assert sorted(ended) == ids and set(ended.values()) <= {"COMPLETED", "BUNDLED"}, ended
        assert len(subscriber.received) == runs
