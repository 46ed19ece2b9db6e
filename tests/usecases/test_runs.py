"""Debounced subscriptions: one run at a time per tenant, what arrives meanwhile bundled into
the next run (cron triggers in their own run, first), and each run seeing the one before."""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.responses import JSONResponse, Response

from gateway.usecases import webhooks
from tests.servers import Received, Subscriber, answer
from tests.usecases.conftest import OpenDriver
from tests.usecases.driver import Driver


async def _statuses(app: Driver, filters: str) -> list[dict[str, Any]]:
    return await app.statuses(filters=filters, sorters="created", limit="250")


async def _complete(app: Driver, delivery: Received, output: dict[str, Any]) -> None:
    await app.callback(delivery.body["_metadata"], output)


async def test_a_burst_during_a_slow_async_run_becomes_one_follow_up_run_in_arrival_order(
    app: Driver, subscriber: Subscriber
) -> None:
    await app.create_trigger("t:debounce")
    sub = await app.subscribe(
        "t:debounce", subscriber.endpoint("async", answer(200, {})), "ASYNC", debounce=True
    )
    assert sub["debounce"] is True
    [first] = await app.start("t:debounce", {"n": 0}, tenantId="acme")
    [run1] = await subscriber.wait_for(1)
    assert run1.body["_metadata"]["runTriggers"][0]["mode"] == "init"

    burst = [(await app.start("t:debounce", {"n": n}, tenantId="acme"))[0]["id"] for n in range(1, 21)]
    waiting = await _statuses(app, 'status eq "WAITING"')
    assert [s["id"] for s in waiting] == burst
    await app.settled()
    assert len(subscriber.received) == 1  # the burst waits for run 1

    # A long-poll on a waiting trigger ends when a run takes it, and names the run.
    poll = asyncio.create_task(app.status(burst[5], wait=10))
    await _complete(app, run1, {"cursor": "after-0"})
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
    assert run2["lastRun"]["completedAt"] == (await app.status(first["id"]))["completed"]
    await app.settled()
    assert len(subscriber.received) == 2

    statuses = {s["id"]: s for s in await _statuses(app, f'runId eq "{burst[0]}"')}
    assert set(statuses) == set(burst)
    assert statuses[burst[0]]["status"] == "AWAITING_CALLBACK"
    assert {statuses[i]["status"] for i in burst[1:]} == {"BUNDLED"}
    await _complete(app, received[1], {"cursor": "after-20"})
    assert (await app.final_status(burst[0]))["status"] == "COMPLETED"
    await app.settled()
    assert len(subscriber.received) == 2  # nothing was left waiting for a third run


async def test_cron_triggers_arriving_during_a_run_go_into_their_own_run_first(
    app: Driver, subscriber: Subscriber
) -> None:
    await app.create_trigger("t:cronfirst", customSchedules=True)
    sub = await app.subscribe(
        "t:cronfirst",
        subscriber.endpoint("async", answer(200, {})),
        "ASYNC",
        debounce=True,
        schedule={"cron": "0 0 1 1 *", "tenantId": "acme"},  # not due: the run starts by hand
    )
    [first] = await app.start("t:cronfirst", {"n": 0}, tenantId="acme")
    [run1] = await subscriber.wait_for(1)
    api = [(await app.start("t:cronfirst", {"n": n}, tenantId="acme"))[0]["id"] for n in (1, 2)]
    # Every second, then paused again: two or more ticks arrive while run 1 is in flight.
    await _set_schedule(app, sub["id"], {"cron": "* * * * * *", "tenantId": "acme", "paused": False})
    async with asyncio.timeout(10):
        while len(await _statuses(app, 'source eq "cron" and status eq "WAITING"')) < 2:  # noqa: ASYNC110
            await asyncio.sleep(0.1)
    await _set_schedule(app, sub["id"], {"cron": "* * * * * *", "tenantId": "acme", "paused": True})
    cron = [s["id"] for s in await _statuses(app, 'source eq "cron"')]
    api.append((await app.start("t:cronfirst", {"n": 3}, tenantId="acme"))[0]["id"])

    await _complete(app, run1, {"done": 0})
    received = await subscriber.wait_for(2)
    run2 = received[1].body["_metadata"]
    assert [t["invocationId"] for t in run2["runTriggers"]] == cron
    assert {t["source"] for t in run2["runTriggers"]} == {"cron"}
    assert all(t["payload"]["scheduledFor"] for t in run2["runTriggers"])
    await app.settled()
    assert len(subscriber.received) == 2  # the api triggers wait for run 2

    await _complete(app, received[1], {"done": 1})
    received = await subscriber.wait_for(3)
    run3 = received[2].body["_metadata"]
    assert [t["invocationId"] for t in run3["runTriggers"]] == api
    assert run3["lastRun"]["output"] == {"done": 1}
    assert (await app.status(first["id"]))["status"] == "COMPLETED"


async def _set_schedule(app: Driver, subscription_id: str, schedule: dict[str, Any]) -> None:
    await app.patch_subscription(subscription_id, [{"op": "replace", "path": "/schedule", "value": schedule}])


async def test_two_tenants_never_block_each_other(app: Driver, subscriber: Subscriber) -> None:
    await app.create_trigger("t:tenants", tenantIdPath="$.tenant")
    await app.subscribe("t:tenants", subscriber.endpoint("async", answer(200, {})), "ASYNC", debounce=True)
    await app.start("t:tenants", {"tenant": "a", "n": 1})
    await app.start("t:tenants", {"tenant": "b", "n": 1})
    await subscriber.wait_for(2)
    [a_waits] = await app.start("t:tenants", {"tenant": "a", "n": 2})
    assert (await app.status(a_waits["id"]))["status"] == "WAITING"
    # No tenant is a tenant of its own: its runs are not held up by a's or b's.
    await app.start("t:tenants", {"n": 1})
    received = await subscriber.wait_for(3)
    assert received[2].body["_metadata"]["tenantId"] is None
    b_run = next(r for r in received if r.body.get("tenant") == "b")
    await _complete(app, b_run, {"b": 1})
    await app.settled()
    assert len(subscriber.received) == 3  # b's end starts nothing for a
    a_run = next(r for r in received if r.body.get("tenant") == "a")
    await _complete(app, a_run, {"a": 1})
    received = await subscriber.wait_for(4)
    assert received[3].body["_metadata"]["invocationId"] == a_waits["id"]


async def test_each_run_sees_the_last_run_of_its_subscription_and_tenant(
    app: Driver, subscriber: Subscriber
) -> None:
    """A pull integration resumes from the cursor its last run returned."""

    async def pull(delivery: Received) -> Response:
        last = delivery.body["_metadata"]["lastRun"]
        cursor = (last["output"] or {}).get("cursor", 0) if last else 0
        if delivery.body.get("fail"):
            return JSONResponse({"error": "upstream down"}, status_code=500)
        return JSONResponse({"cursor": cursor + 1})

    await app.create_trigger("t:pull")
    sub = await app.subscribe("t:pull", subscriber.endpoint("pull", pull), "SYNC", debounce=True)
    # A test invocation is not a run: the first run still starts from nothing.
    [tested] = await app.test("t:pull", input={}, contentJson={})
    assert (await app.final_status(tested["id"]))["status"] == "COMPLETED"
    subscriber.received.clear()
    outputs = []
    for payload in ({}, {}, {"fail": True}, {}):
        run = await app.run(sub["id"], payload=payload, tenantId="acme")
        status = await app.final_status(run["id"])
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
    other = await app.run(sub["id"], tenantId="globex")
    status = await app.final_status(other["id"])
    assert status["completeInvocationInput"]["output"] == {"cursor": 1}


async def test_runs_that_time_out_pass_on_and_big_backlogs_go_in_bounded_bundles(
    open_driver: OpenDriver, subscriber: Subscriber
) -> None:
    async with open_driver(max_bundle=3) as app:
        await app.create_trigger("t:backlog", tenantIdPath="$.shop")
        sub = await app.subscribe(
            "t:backlog",
            subscriber.endpoint("async", answer(200, {})),
            "ASYNC",
            debounce=True,
            responseDeadline="PT1S",  # nobody calls back: every run times out
        )
        await webhooks.issue(app.rt, sub["id"])
        await app.start("t:backlog", {"shop": "acme", "n": 0})
        await subscriber.wait_for(1)
        waiting = []
        for n in range(1, 6):
            if n % 2:
                waiting.append(await app.webhook_call(sub["id"], b'{"shop": "acme", "n": %d}' % n))
            else:
                waiting.append((await app.start("t:backlog", {"shop": "acme", "n": n}))[0]["id"])
        received = await subscriber.wait_for(3, within=8)
        run2, run3 = (r.body["_metadata"] for r in received[1:])
        assert [t["invocationId"] for t in run2["runTriggers"]] == waiting[:3]
        assert [t["source"] for t in run2["runTriggers"]] == ["webhook", "api", "webhook"]
        assert [t["invocationId"] for t in run3["runTriggers"]] == waiting[3:]
        assert run2["lastRun"]["phase"] == run3["lastRun"]["phase"] == "timedOut"
        assert run2["lastRun"]["output"] is None
        assert run2["tenantId"] == "acme"
