"""GET /trigger-invocations/status and /{id}/status: filters, sorters, paging, long-polling."""

from __future__ import annotations

import asyncio
import time

from tests.gateway_client import GatewayClient
from tests.servers import Subscriber, answer


async def fan_out(gateway: GatewayClient, subscriber: Subscriber, count: int) -> list[dict[str, str]]:
    await gateway.create_trigger("test:fanout", type="FIRE_AND_FORGET")
    await gateway.create_trigger("test:other", type="FIRE_AND_FORGET")
    for name in ("alpha", "bravo"):
        await gateway.subscribe("test:fanout", subscriber.endpoint(name, answer(200, {})), name=name)
    await gateway.subscribe("test:other", subscriber.endpoint("other", answer(200, {})), name="other")
    invocations = []
    for i in range(count):
        invocations += await gateway.start("test:fanout", {"i": i})
    invocations += await gateway.start("test:other", {})
    for invocation in invocations:
        await gateway.final_status(invocation["id"])
    return invocations


async def test_filters_sorters_paging_and_count(gateway: GatewayClient, subscriber: Subscriber) -> None:
    await fan_out(gateway, subscriber, 3)
    list_url = "/beta/trigger-invocations/status"
    response = await gateway.http.get(
        list_url, params={"filters": 'triggerId eq "test:fanout"', "count": "true"}
    )
    assert response.status_code == 200
    assert response.headers["X-Total-Count"] == "6"
    statuses = response.json()
    assert {s["triggerId"] for s in statuses} == {"test:fanout"}
    assert all(s["completeInvocationInput"] == {"localizedError": None, "output": None} for s in statuses)

    sub_id = statuses[0]["subscriptionId"]
    response = await gateway.http.get(list_url, params={"filters": f'subscriptionId eq "{sub_id}"'})
    assert {s["subscriptionId"] for s in response.json()} == {sub_id}
    assert len(response.json()) == 3

    response = await gateway.http.get(list_url, params={"sorters": "-subscriptionName,created"})
    names = [s["subscriptionName"] for s in response.json()]
    assert names == sorted(names, reverse=True)

    response = await gateway.http.get(list_url, params={"sorters": "-created"})
    created = [s["created"] for s in response.json()]
    assert created == sorted(created, reverse=True)

    response = await gateway.http.get(
        list_url, params={"sorters": "completed", "limit": 2, "offset": 1, "count": "true"}
    )
    assert len(response.json()) == 2
    assert response.headers["X-Total-Count"] == "7"
    everything = (await gateway.http.get(list_url, params={"sorters": "completed"})).json()
    assert [s["id"] for s in response.json()] == [s["id"] for s in everything[1:3]]


async def test_bad_list_parameters_are_400(gateway: GatewayClient) -> None:
    for params in (
        {"limit": "251"},
        {"limit": "-1"},
        {"offset": "x"},
        {"filters": 'nope eq "x"'},
        {"filters": 'triggerId gt "x"'},
        {"sorters": "secret"},
    ):
        response = await gateway.http.get("/beta/trigger-invocations/status", params=params)
        assert response.status_code == 400, params
        assert response.json()["messages"][0]["text"]


async def test_long_poll_returns_as_soon_as_the_callback_arrives(
    gateway: GatewayClient, subscriber: Subscriber
) -> None:
    await gateway.create_trigger()
    await gateway.subscribe("test:approver", subscriber.endpoint("ack", answer(200, {})), "ASYNC")
    [invocation] = await gateway.start("test:approver", {})
    [received] = await subscriber.wait_for(1)
    meta = received.body["_metadata"]

    poll = asyncio.create_task(gateway.status(invocation["id"], wait=20))
    await asyncio.sleep(0.5)  # time for the long-poll to start waiting
    assert not poll.done()
    response = await gateway.complete(meta["callbackURL"], {"secret": meta["secret"], "output": {"ok": True}})
    assert response.status_code == 204
    called_back = time.monotonic()
    status = await poll
    woke_after = time.monotonic() - called_back
    assert status["status"] == "COMPLETED"
    # Woken by the callback at once, give or take a busy machine's scheduling; not by the
    # 20 s limit.
    assert woke_after < 1.5, f"woke {woke_after:.2f} s after the callback was taken"


async def test_wait_seconds_is_bounded_and_unknown_ids_are_404(gateway: GatewayClient) -> None:
    base = "/beta/trigger-invocations"
    response = await gateway.http.get(f"{base}/00000000-0000-0000-0000-000000000000/status")
    assert response.status_code == 404
    for wait in ("31", "-1", "soon", "nan"):
        response = await gateway.http.get(f"{base}/x/status", params={"waitSeconds": wait})
        assert response.status_code == 400, wait
