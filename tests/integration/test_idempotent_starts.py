"""Idempotency-Key on POST /trigger-invocations/start and /test over HTTP, in both modes (the
keys live in the database that every API process shares)."""

from __future__ import annotations

import asyncio

from tests.gateway_client import GatewayClient
from tests.servers import Subscriber, answer


async def test_a_start_repeated_with_its_key_is_answered_again_and_creates_nothing(
    gateway: GatewayClient, subscriber: Subscriber
) -> None:
    await gateway.create_trigger("t:notify", name="Notify", type="FIRE_AND_FORGET")
    await gateway.subscribe("t:notify", subscriber.endpoint("a", answer(200)))
    body = {"triggerId": "t:notify", "input": {"order": 7}}
    key = {"Idempotency-Key": "order-7-created"}

    first = await gateway.http.post("/trigger-invocations/start", json=body, headers=key)
    again = await gateway.http.post("/beta/trigger-invocations/start", json=body, headers=key)
    assert (first.status_code, again.status_code) == (200, 200)
    assert again.json() == first.json()  # the same ids, and the same callback secrets
    assert "idempotent-replayed" not in first.headers
    assert again.headers["idempotent-replayed"] == "true"
    await subscriber.wait_for(1)
    listed = (await gateway.http.get('/trigger-invocations/status?filters=triggerId eq "t:notify"')).json()
    assert [s["id"] for s in listed] == [first.json()[0]["id"]]

    other = await gateway.http.post(
        "/trigger-invocations/start", json={**body, "input": {"order": 8}}, headers=key
    )
    assert other.status_code == 422 and "different request" in other.json()["messages"][0]["text"]
    long = await gateway.http.post(
        "/trigger-invocations/start", json=body, headers={"Idempotency-Key": "k" * 256}
    )
    assert long.status_code == 400


async def test_two_at_once_create_one(gateway: GatewayClient, subscriber: Subscriber) -> None:
    await gateway.create_trigger("t:notify", name="Notify", type="FIRE_AND_FORGET")
    await gateway.subscribe("t:notify", subscriber.endpoint("a", answer(200)))
    body = {"triggerId": "t:notify", "input": {}}
    key = {"Idempotency-Key": "twice-at-once"}
    answers = await asyncio.gather(
        *(gateway.http.post("/trigger-invocations/start", json=body, headers=key) for _ in range(2))
    )
    codes = sorted(a.status_code for a in answers)
    # The second either finds the first still handled (409) or already answered (the same answer).
    assert codes in ([200, 200], [200, 409]), [a.text for a in answers]
    ids = {inv["id"] for a in answers if a.status_code == 200 for inv in a.json()}
    assert len(ids) == 1
    await subscriber.wait_for(1)
    listed = (await gateway.http.get('/trigger-invocations/status?filters=triggerId eq "t:notify"')).json()
    assert len(listed) == 1


async def test_a_test_invocation_takes_a_key_too(gateway: GatewayClient, subscriber: Subscriber) -> None:
    await gateway.create_trigger("t:notify", name="Notify", type="FIRE_AND_FORGET")
    await gateway.subscribe("t:notify", subscriber.endpoint("a", answer(200)))
    key = {"Idempotency-Key": "a-test"}
    first = await gateway.http.post(
        "/trigger-invocations/test", json={"triggerId": "t:notify", "input": {}}, headers=key
    )
    again = await gateway.http.post(
        "/trigger-invocations/test", json={"triggerId": "t:notify", "input": {}}, headers=key
    )
    assert first.status_code == again.status_code == 200
    assert again.json() == first.json()
