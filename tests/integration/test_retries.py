"""Retries, the attempt log, 410 Gone and replay over HTTP, in both modes (distributed: the
worker delivers, and its sweep queues the retries)."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

from tests.conftest import start_gateway
from tests.gateway_client import GatewayClient
from tests.servers import Received, Subscriber, answer, hang
from tests.services import Store


async def test_a_subscriber_that_fails_then_recovers_then_goes(store: Store, subscriber: Subscriber) -> None:
    answers = [answer(503, raw=b"deploying"), answer(500, {}), answer(204)]

    async def flaky(received: Received) -> object:
        return await (answers.pop(0) if len(answers) > 1 else answers[0])(received)

    async with start_gateway(store, retry_schedule="0.2,0.2", retry_jitter=0) as gateway:
        await gateway.create_trigger("t:notify", name="Notify", type="FIRE_AND_FORGET")
        sub = await gateway.subscribe("t:notify", subscriber.endpoint("flaky", flaky))  # type: ignore[arg-type]
        [invocation] = await gateway.start("t:notify", {"n": 1})
        done = await gateway.final_status(invocation["id"])
        assert (done["status"], done["attempts"], done["nextAttempt"]) == ("COMPLETED", 3, None)

        logged = (
            await gateway.http.get(f"/trigger-invocations/{invocation['id']}/attempts?count=true")
        ).json()
        assert [(a["attempt"], a["statusCode"], a["responseExcerpt"]) for a in logged] == [
            (1, 503, "deploying"),
            (2, 500, "{}"),
            (3, 204, None),
        ]
        v1 = await gateway.http.get(f"/trigger-invocations/v1/{invocation['id']}/attempts")
        assert v1.json() == logged

        # Replayed (a fire-and-forget COMPLETED may be): a fourth attempt, the same webhook-id.
        replayed = await gateway.http.post(f"/trigger-invocations/{invocation['id']}/replay")
        assert replayed.status_code == 202, replayed.text
        assert (await gateway.final_status(invocation["id"]))["attempts"] == 4
        assert [r.headers["webhook-id"] for r in subscriber.received] == [invocation["id"]] * 4

        # Then it goes away for good: the subscription is disabled, saying why.
        subscriber.behaviours["flaky"] = answer(410, {})
        since = datetime.now().astimezone().isoformat()
        [gone] = await gateway.start("t:notify", {"n": 2})
        assert (await gateway.final_status(gone["id"]))["attempts"] == 1
        for _ in range(50):
            shown = (await gateway.http.get(f"/trigger-subscriptions/{sub['id']}")).json()
            if not shown["enabled"]:
                break
        assert "410 Gone" in shown["disabledReason"]

        # Back and enabled again: what failed since the outage is replayed in one call.
        subscriber.behaviours["flaky"] = answer(200)
        patched = await gateway.http.patch(
            f"/trigger-subscriptions/{sub['id']}",
            json=[{"op": "replace", "path": "/enabled", "value": True}],
            headers={"content-type": "application/json-patch+json"},
        )
        assert (patched.json()["enabled"], patched.json()["disabledReason"]) == (True, None)
        many = await gateway.http.post(f"/trigger-subscriptions/{sub['id']}/replay", json={"since": since})
        assert (many.status_code, many.json()) == (202, {"replayed": 1})
        assert (await gateway.final_status(gone["id"]))["status"] == "COMPLETED"


async def test_replay_refusals_are_clear(gateway: GatewayClient) -> None:
    missing = await gateway.http.post("/trigger-invocations/no-such-id/replay")
    assert missing.status_code == 404
    bad = await gateway.http.post("/trigger-subscriptions/no-such-id/replay", json={"since": "yesterday"})
    assert bad.status_code == 400 and "since" in bad.text
    naive = await gateway.http.post(
        "/trigger-subscriptions/no-such-id/replay",
        json={"since": "2026-12-01T00:00:00", "statuses": ["FAILED"]},
    )
    assert naive.status_code == 400  # a time without its offset is ambiguous
    wrong = await gateway.http.post(
        "/trigger-subscriptions/no-such-id/replay",
        json={"since": "2026-12-01T00:00:00Z", "statuses": ["PENDING"]},
    )
    assert wrong.status_code == 400


async def test_a_finished_invocation_past_its_retention_is_deleted(
    store: Store, subscriber: Subscriber
) -> None:
    async with start_gateway(store, retention_completed="PT1S") as gateway:
        await gateway.create_trigger("t:notify", name="Notify", type="FIRE_AND_FORGET")
        await gateway.subscribe("t:notify", subscriber.endpoint("ok", answer(200)))
        [invocation] = await gateway.start("t:notify", {})
        assert (await gateway.final_status(invocation["id"]))["status"] == "COMPLETED"
        for _ in range(100):
            found = await gateway.http.get(f"/trigger-invocations/{invocation['id']}/status")
            if found.status_code == 404:
                break
            await asyncio.sleep(0.05)
        assert found.status_code == 404, found.text
        attempts = await gateway.http.get(f"/trigger-invocations/{invocation['id']}/attempts")
        assert attempts.status_code == 404


async def test_a_circuit_opens_holds_and_closes_across_processes(
    store: Store, subscriber: Subscriber
) -> None:
    async with start_gateway(store, retry_schedule="", breaker_failures=2, breaker_cooldown=1.0) as gateway:
        assert (await gateway.http.get("/triggers/gateway:subscription-disabled")).status_code == 200
        await gateway.create_trigger("t:notify", name="Notify", type="FIRE_AND_FORGET")
        sub = await gateway.subscribe("t:notify", subscriber.endpoint("down", answer(503, {})))
        for n in range(2):
            [failing] = await gateway.start("t:notify", {"n": n})
            assert (await gateway.final_status(failing["id"]))["status"] == "FAILED"
        assert (await circuit_of(gateway, sub["id"], "open"))["consecutiveFailures"] == 2
        [held] = await gateway.start("t:notify", {"n": 2})
        await gateway.reach(held["id"], "RETRYING")
        subscriber.behaviours["down"] = answer(200)
        done = await gateway.final_status(held["id"])
        assert (done["status"], done["attempts"]) == ("COMPLETED", 1)
        assert (await circuit_of(gateway, sub["id"], "closed"))["consecutiveFailures"] == 0


async def circuit_of(gateway: GatewayClient, subscription_id: str, state: str) -> dict[str, object]:
    """The subscription's circuit once in ``state``: an outcome is counted just after it is
    recorded, so a status can be final a moment before its circuit shows it."""
    for _ in range(100):
        circuit: dict[str, object] = (
            await gateway.http.get(f"/trigger-subscriptions/{subscription_id}")
        ).json()["circuit"]
        if circuit["state"] == state:
            return circuit
        await asyncio.sleep(0.02)
    raise AssertionError(f"the circuit stayed {circuit}, not {state}")


async def test_max_concurrency_holds_across_processes(store: Store, subscriber: Subscriber) -> None:
    let_go, held, most = asyncio.Event(), [0], [0]

    async def slow(_: Received) -> object:
        held[0] += 1
        most[0] = max(most[0], held[0])
        await let_go.wait()
        held[0] -= 1
        return await answer(200)(_)

    async with start_gateway(store) as gateway:
        await gateway.create_trigger("t:notify", name="Notify", type="FIRE_AND_FORGET")
        url = subscriber.endpoint("slow", slow)  # type: ignore[arg-type]
        await gateway.subscribe("t:notify", url, httpConfig={"maxConcurrency": 2})
        started = [(await gateway.start("t:notify", {"n": n}))[0]["id"] for n in range(5)]
        await subscriber.wait_for(2)
        await asyncio.sleep(0.6)
        assert most[0] == 2
        assert (await gateway.status(started[-1]))["status"] == "QUEUED"
        let_go.set()
        for invocation_id in started:
            assert (await gateway.final_status(invocation_id))["status"] == "COMPLETED"
        assert most[0] == 2
        # The oldest go first; after them, two in flight at once may reach it in either order.
        arrived = [r.body["n"] for r in subscriber.received]
        assert sorted(arrived[:2]) == [0, 1] and sorted(arrived) == list(range(5))


async def test_retry_after_and_a_hanging_subscriber_are_tried_again_on_time(
    store: Store, subscriber: Subscriber
) -> None:
    throttled = [answer(503, {}, headers={"retry-after": "1"}), answer(200)]
    hanging = [hang(5), answer(200)]

    def in_turn(answers: list[Any]) -> Any:
        async def respond(received: Received) -> object:
            return await (answers.pop(0) if len(answers) > 1 else answers[0])(received)

        return respond

    async with start_gateway(store, retry_schedule="0.2", retry_jitter=0, response_timeout=1.0) as gateway:
        await gateway.create_trigger("t:notify", name="Notify", type="FIRE_AND_FORGET")
        await gateway.subscribe(
            "t:notify", subscriber.endpoint("throttled", in_turn(throttled)), name="throttled"
        )
        await gateway.subscribe("t:notify", subscriber.endpoint("hanging", in_turn(hanging)), name="hanging")
        started = await gateway.start("t:notify", {})
        for invocation in started:
            done = await gateway.final_status(invocation["id"])
            assert (done["status"], done["attempts"]) == ("COMPLETED", 2)
        arrivals = {
            path: [r.arrived for r in subscriber.received if r.path == path]
            for path in ("/throttled", "/hanging")
        }
        # Retry-After: 1 over a 0.2 s schedule; a hang cut off at the 1 s time limit, then 0.2 s.
        assert 1.0 <= arrivals["/throttled"][1] - arrivals["/throttled"][0] <= 1.0 + 0.6
        assert 1.2 <= arrivals["/hanging"][1] - arrivals["/hanging"][0] <= 1.2 + 0.6
        errors = {}
        for invocation in started:
            name = (await gateway.status(invocation["id"]))["subscriptionName"]
            logged = (await gateway.http.get(f"/trigger-invocations/{invocation['id']}/attempts")).json()
            errors[name] = logged[0]["error"]
        assert errors["throttled"] == "the subscriber answered HTTP 503"
        assert errors["hanging"].startswith("no answer from") and "within 1 s" in errors["hanging"]
