"""Circuit breaking with real subscribers and real time: a subscriber that keeps failing opens
its circuit; deliveries then wait (fire-and-forget) or fail at once (request-response); one
probe after the cooldown closes it and releases what waited, oldest first; a subscriber
failing for too long is disabled, and operators hear of it through
gateway:subscription-disabled."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime

from gateway.usecases.builtin import SUBSCRIPTION_DISABLED
from tests.servers import Subscriber, answer
from tests.usecases.conftest import OpenDriver
from tests.usecases.driver import Document, Driver

BREAKER = {"breaker_failures": 3, "breaker_cooldown": 1.0, "retry_schedule": ""}


def parsed(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


async def notify(app: Driver, url: str) -> Document:
    await app.create_trigger("t:notify", name="Notify", type="FIRE_AND_FORGET")
    return await app.subscribe("t:notify", url)


async def started(app: Driver, n: int) -> str:
    [invocation] = await app.start("t:notify", {"n": n})
    return str(invocation["id"])


async def test_an_open_circuit_holds_deliveries_and_a_probe_releases_them_in_order(
    open_driver: OpenDriver, subscriber: Subscriber
) -> None:
    async with open_driver(**BREAKER) as app:
        sub = await notify(app, subscriber.endpoint("down", answer(503, {})))
        for n in range(3):
            assert (await app.final_status(await started(app, n)))["status"] == "FAILED"
        await app.settled()  # the circuit counts each outcome just after it is recorded
        opened_at = time.time()
        circuit = (await app.subscription(sub["id"]))["circuit"]
        assert (circuit["state"], circuit["consecutiveFailures"]) == ("open", 3)

        held = [await started(app, n) for n in range(3, 6)]
        await asyncio.sleep(0.3)
        for invocation_id in held:
            status = await app.status(invocation_id)
            assert (status["status"], status["attempts"]) == ("RETRYING", 0)  # no attempt spent
        assert subscriber.count() == 3  # nothing sent while open

        subscriber.behaviours["down"] = answer(200)  # it is back
        for invocation_id in held:
            done = await app.final_status(invocation_id, within=10)
            assert (done["status"], done["attempts"]) == ("COMPLETED", 1)
        closed_at = time.time()
        await app.settled()
        circuit = (await app.subscription(sub["id"]))["circuit"]
        assert (circuit["state"], circuit["consecutiveFailures"]) == ("closed", 0)
        print(f"\ncircuit open at +0.00 s, probe and close at +{closed_at - opened_at:.2f} s (cooldown 1 s)")
        # One probe first, then the rest, oldest first.
        after = [r.body["n"] for r in subscriber.received[3:]]
        assert sorted(after) == [3, 4, 5] and after[1:] == sorted(after[1:])
        assert 1.0 <= subscriber.received[3].arrived - opened_at <= 1.0 + 0.8


async def test_a_failed_probe_opens_the_circuit_again(
    open_driver: OpenDriver, subscriber: Subscriber
) -> None:
    async with open_driver(**BREAKER) as app:
        sub = await notify(app, subscriber.endpoint("down", answer(503, {})))
        for n in range(3):
            await app.final_status(await started(app, n))
        await app.settled()
        first = (await app.subscription(sub["id"]))["circuit"]
        held = await started(app, 3)
        await subscriber.wait_for(4, within=5)  # the probe, still failing
        await asyncio.sleep(0.3)
        again = (await app.subscription(sub["id"]))["circuit"]
        assert again["state"] == "open" and parsed(again["since"]) > parsed(first["since"])
        assert again["consecutiveFailures"] == 4
        # The held delivery was the probe: a real attempt, failed (no retries here).
        assert ((await app.status(held))["status"], (await app.status(held))["attempts"]) == ("FAILED", 1)


async def test_a_request_response_invocation_fails_at_once_while_the_circuit_is_open(
    open_driver: OpenDriver, subscriber: Subscriber
) -> None:
    async with open_driver(**BREAKER) as app:
        await app.create_trigger(fallbackOutput={"approved": False})
        await app.subscribe("test:approver", subscriber.endpoint("down", answer(502, {})))
        for _ in range(3):
            [invocation] = await app.start("test:approver", {})
            assert (await app.final_status(invocation["id"]))["fallback"] is True
        await app.settled()
        clock = time.monotonic()
        [invocation] = await app.start("test:approver", {})
        status = await app.final_status(invocation["id"])
        assert time.monotonic() - clock < 1.0  # not the 2 s time limit
        assert subscriber.count() == 3
        assert (status["status"], status["completeInvocationInput"]["output"]) == (
            "COMPLETED",
            {"approved": False},
        )
        assert "circuit is open" in status["completeInvocationInput"]["localizedError"]["message"]


async def test_answers_below_500_keep_the_circuit_closed(
    open_driver: OpenDriver, subscriber: Subscriber
) -> None:
    async with open_driver(**BREAKER) as app:
        sub = await notify(app, subscriber.endpoint("picky", answer(400, {})))
        for n in range(5):
            await app.final_status(await started(app, n))
        await app.settled()
        circuit = (await app.subscription(sub["id"]))["circuit"]
        assert (circuit["state"], circuit["consecutiveFailures"]) == ("closed", 0)


async def test_a_subscriber_failing_too_long_is_disabled_and_operators_are_told(
    open_driver: OpenDriver, subscriber: Subscriber
) -> None:
    async with open_driver(breaker_failures=0, retry_schedule="", disable_after="PT1S") as app:
        await app.subscribe(SUBSCRIPTION_DISABLED, subscriber.endpoint("operators", answer(200)))
        sub = await notify(app, subscriber.endpoint("down", answer(500, {})))
        await app.final_status(await started(app, 0))
        await asyncio.sleep(1.1)
        await app.final_status(await started(app, 1))
        await subscriber.wait_for(1, path="/operators")
        [notice] = [r for r in subscriber.received if r.path == "/operators"]
        disabled = await app.subscription(sub["id"])
        assert disabled["enabled"] is False
        assert "without a success (GATEWAY_DISABLE_AFTER PT1S)" in disabled["disabledReason"]
        assert notice.body["subscriptionId"] == sub["id"]
        assert notice.body["reason"] == disabled["disabledReason"]
        assert notice.body["_metadata"]["triggerId"] == SUBSCRIPTION_DISABLED

        # Enabled again, its failures start afresh: one more does not disable it at once.
        enable = [{"op": "replace", "path": "/enabled", "value": True}]
        enabled = await app.patch_subscription(sub["id"], enable)
        assert (enabled["disabledReason"], enabled["circuit"]["consecutiveFailures"]) == (None, 0)
        await app.final_status(await started(app, 2))
        await app.settled()
        assert (await app.subscription(sub["id"]))["enabled"] is True
