"""Debounced subscriptions: one run at a time per tenant, what arrives meanwhile bundled into
the next run (cron triggers in their own run, first), and each run seeing the one before."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
from starlette.responses import JSONResponse, Response

from tests.conftest import open_store, start_gateway
from tests.gateway_client import GatewayClient
from tests.servers import Received, Subscriber, answer
from tests.services import Store


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


async def _quiet(subscriber: Subscriber, count: int, seconds: float = 0.6) -> None:
    """Nothing more arrives for a while."""
    await asyncio.sleep(seconds)
    assert len(subscriber.received) == count, [
        r.body["_metadata"]["runTriggers"] for r in subscriber.received
    ]


async def test_a_burst_during_a_slow_async_run_becomes_one_follow_up_run_in_arrival_order(
    gateway: GatewayClient, subscriber: Subscriber
) -> None:
    await gateway.create_trigger("t:debounce")
    sub = await gateway.subscribe(
        "t:debounce", subscriber.endpoint("async", answer(200, {})), "ASYNC", debounce=True
    )
    assert sub["debounce"] is True
    [first] = await gateway.start("t:debounce", {"n": 0}, tenantId="acme")
    [run1] = await subscriber.wait_for(1)
    assert run1.body["_metadata"]["runTriggers"][0]["mode"] == "init"

    burst = [(await gateway.start("t:debounce", {"n": n}, tenantId="acme"))[0]["id"] for n in range(1, 21)]
    waiting = await _statuses(gateway, 'status eq "WAITING"')
    assert [s["id"] for s in waiting] == burst
    await _quiet(subscriber, 1)

    # A long-poll on a waiting trigger ends when a run takes it, and names the run.
    poll = asyncio.create_task(gateway.status(burst[5], wait=10))
    await _complete(gateway, run1, {"cursor": "after-0"})
    async with asyncio.timeout(3):
        bundled = await poll
    assert (bundled["status"], bundled["runId"]) == ("BUNDLED", burst[0])
    received = await subscriber.wait_for(2)
    run2 = received[1].body["_metadata"]
    assert [t["payload"]["n"] for t in run2["runTriggers"]] == list(range(1, 21))
    assert [t["invocationId"] for t in run2["runTriggers"]] == burst
    assert {t["mode"] for t in run2["runTriggers"]} == {"normal"}
    assert {t["source"] for t in run2["runTriggers"]} == {"api"}
    assert run2["invocationId"] == burst[0]
    assert run2["lastRun"]["phase"] == "succeeded"
    assert run2["lastRun"]["output"] == {"cursor": "after-0"}
    assert run2["lastRun"]["completedAt"] == (await gateway.status(first["id"]))["completed"]
    await _quiet(subscriber, 2)

    statuses = {s["id"]: s for s in await _statuses(gateway, f'runId eq "{burst[0]}"')}
    assert set(statuses) == set(burst)
    assert statuses[burst[0]]["status"] == "AWAITING_CALLBACK"
    assert {statuses[i]["status"] for i in burst[1:]} == {"BUNDLED"}
    await _complete(gateway, received[1], {"cursor": "after-20"})
    assert (await gateway.final_status(burst[0]))["status"] == "COMPLETED"
    await _quiet(subscriber, 2)


async def test_cron_triggers_arriving_during_a_run_go_into_their_own_run_first(
    gateway: GatewayClient, subscriber: Subscriber
) -> None:
    await gateway.create_trigger("t:cronfirst", customSchedules=True)
    sub = await gateway.subscribe(
        "t:cronfirst",
        subscriber.endpoint("async", answer(200, {})),
        "ASYNC",
        debounce=True,
        schedule={"cron": "0 0 1 1 *", "tenantId": "acme"},  # not due: the run starts by hand
    )
    [first] = await gateway.start("t:cronfirst", {"n": 0}, tenantId="acme")
    [run1] = await subscriber.wait_for(1)
    api = [(await gateway.start("t:cronfirst", {"n": n}, tenantId="acme"))[0]["id"] for n in (1, 2)]
    # Every second, then paused again: two or more ticks arrive while run 1 is in flight.
    await _set_schedule(gateway, sub["id"], {"cron": "* * * * * *", "tenantId": "acme", "paused": False})
    async with asyncio.timeout(10):
        while len(await _statuses(gateway, 'source eq "cron" and status eq "WAITING"')) < 2:  # noqa: ASYNC110
            await asyncio.sleep(0.1)
    await _set_schedule(gateway, sub["id"], {"cron": "* * * * * *", "tenantId": "acme", "paused": True})
    cron = [s["id"] for s in await _statuses(gateway, 'source eq "cron"')]
    api.append((await gateway.start("t:cronfirst", {"n": 3}, tenantId="acme"))[0]["id"])

    await _complete(gateway, run1, {"done": 0})
    received = await subscriber.wait_for(2)
    run2 = received[1].body["_metadata"]
    assert [t["invocationId"] for t in run2["runTriggers"]] == cron
    assert {t["source"] for t in run2["runTriggers"]} == {"cron"}
    assert all(t["payload"]["scheduledFor"] for t in run2["runTriggers"])
    await _quiet(subscriber, 2, 0.3)

    await _complete(gateway, received[1], {"done": 1})
    received = await subscriber.wait_for(3)
    run3 = received[2].body["_metadata"]
    assert [t["invocationId"] for t in run3["runTriggers"]] == api
    assert run3["lastRun"]["output"] == {"done": 1}
    assert (await gateway.status(first["id"]))["status"] == "COMPLETED"


async def _set_schedule(gateway: GatewayClient, subscription_id: str, schedule: dict[str, Any]) -> None:
    response = await gateway.http.patch(
        f"/beta/trigger-subscriptions/{subscription_id}",
        json=[{"op": "replace", "path": "/schedule", "value": schedule}],
    )
    assert response.status_code == 200, response.text


async def test_two_tenants_never_block_each_other(gateway: GatewayClient, subscriber: Subscriber) -> None:
    await gateway.create_trigger("t:tenants", tenantIdPath="$.tenant")
    await gateway.subscribe(
        "t:tenants", subscriber.endpoint("async", answer(200, {})), "ASYNC", debounce=True
    )
    await gateway.start("t:tenants", {"tenant": "a", "n": 1})
    await gateway.start("t:tenants", {"tenant": "b", "n": 1})
    await subscriber.wait_for(2)
    [a_waits] = await gateway.start("t:tenants", {"tenant": "a", "n": 2})
    assert (await gateway.status(a_waits["id"]))["status"] == "WAITING"
    # No tenant is a tenant of its own: its runs are not held up by a's or b's.
    await gateway.start("t:tenants", {"n": 1})
    received = await subscriber.wait_for(3)
    assert received[2].body["_metadata"]["tenantId"] is None
    b_run = next(r for r in received if r.body.get("tenant") == "b")
    await _complete(gateway, b_run, {"b": 1})
    await _quiet(subscriber, 3, 0.4)  # b's end starts nothing for a
    a_run = next(r for r in received if r.body.get("tenant") == "a")
    await _complete(gateway, a_run, {"a": 1})
    received = await subscriber.wait_for(4)
    assert received[3].body["_metadata"]["invocationId"] == a_waits["id"]


async def test_each_run_sees_the_last_run_of_its_subscription_and_tenant(
    gateway: GatewayClient, subscriber: Subscriber
) -> None:
    """A pull integration resumes from the cursor its last run returned."""

    async def pull(delivery: Received) -> Response:
        last = delivery.body["_metadata"]["lastRun"]
        cursor = (last["output"] or {}).get("cursor", 0) if last else 0
        if delivery.body.get("fail"):
            return JSONResponse({"error": "upstream down"}, status_code=500)
        return JSONResponse({"cursor": cursor + 1})

    await gateway.create_trigger("t:pull")
    sub = await gateway.subscribe("t:pull", subscriber.endpoint("pull", pull), "SYNC", debounce=True)
    # A test invocation is not a run: the first run still starts from nothing.
    tested = await gateway.http.post(
        "/beta/trigger-invocations/test", json={"triggerId": "t:pull", "input": {}, "contentJson": {}}
    )
    assert tested.status_code == 200, tested.text
    assert (await gateway.final_status(tested.json()[0]["id"]))["status"] == "COMPLETED"
    subscriber.received.clear()
    outputs = []
    for payload in ({}, {}, {"fail": True}, {}):
        response = await gateway.http.post(
            f"/beta/trigger-subscriptions/{sub['id']}/run", json={"payload": payload, "tenantId": "acme"}
        )
        assert response.status_code == 202, response.text
        status = await gateway.final_status(response.json()["id"])
        outputs.append(status["completeInvocationInput"]["output"])
    # After the failed run the last run has no output, so this subscriber starts over.
    assert outputs == [{"cursor": 1}, {"cursor": 2}, None, {"cursor": 1}]
    last_runs = [r.body["_metadata"]["lastRun"] for r in subscriber.received]
    assert last_runs[0] is None
    assert [lr["phase"] for lr in last_runs[1:]] == ["succeeded", "succeeded", "failed"]
    assert last_runs[3]["output"] is None
    assert [t["mode"] for r in subscriber.received for t in r.body["_metadata"]["runTriggers"]] == [
        "init",
        "normal",
        "normal",
        "normal",
    ]
    # Another tenant starts from the beginning.
    other = await gateway.http.post(
        f"/beta/trigger-subscriptions/{sub['id']}/run", json={"tenantId": "globex"}
    )
    status = await gateway.final_status(other.json()["id"])
    assert status["completeInvocationInput"]["output"] == {"cursor": 1}


async def test_runs_that_time_out_pass_on_and_big_backlogs_go_in_bounded_bundles(
    store: Store, subscriber: Subscriber
) -> None:
    async with start_gateway(store, max_bundle=3) as gateway:
        await gateway.create_trigger("t:backlog", tenantIdPath="$.shop")
        sub = await gateway.subscribe(
            "t:backlog",
            subscriber.endpoint("async", answer(200, {})),
            "ASYNC",
            debounce=True,
            responseDeadline="PT1S",  # nobody calls back: every run times out
        )
        hook = (await gateway.http.post(f"/beta/trigger-subscriptions/{sub['id']}/webhook")).json()["url"]
        await gateway.start("t:backlog", {"shop": "acme", "n": 0})
        await subscriber.wait_for(1)
        waiting = []
        async with httpx.AsyncClient() as sender:
            for n in range(1, 6):
                if n % 2:
                    response = await sender.post(hook, json={"shop": "acme", "n": n})
                    assert response.status_code == 202, response.text
                    waiting.append(response.json()["id"])
                else:
                    waiting.append((await gateway.start("t:backlog", {"shop": "acme", "n": n}))[0]["id"])
        received = await subscriber.wait_for(3, within=8)
        run2, run3 = (r.body["_metadata"] for r in received[1:])
        assert [t["invocationId"] for t in run2["runTriggers"]] == waiting[:3]
        assert [t["source"] for t in run2["runTriggers"]] == ["webhook", "api", "webhook"]
        assert [t["invocationId"] for t in run3["runTriggers"]] == waiting[3:]
        assert run2["lastRun"]["phase"] == run3["lastRun"]["phase"] == "timedOut"
        assert run2["lastRun"]["output"] is None
        assert run2["tenantId"] == "acme"


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
            await _quiet(subscriber, runs, 0.3)  # never a second run while this one is in flight
            carried += [t["invocationId"] for t in run.body["_metadata"]["runTriggers"]]
            await _complete(first, run, {"run": runs})
        assert sorted(carried) == ids  # each trigger carried by exactly one run
        assert runs <= 2, runs  # the first run, then one carrying all that arrived meanwhile
        await _quiet(subscriber, runs, 0.5)
