"""httpConfig.maxConcurrency with a real subscriber that holds its deliveries: never more in
flight than the limit, the rest QUEUED and delivered in creation order, and a flood to one
subscriber does not hold up another's deliveries."""

from __future__ import annotations

import asyncio
import time

from starlette.responses import JSONResponse, Response

from tests.servers import Behaviour, Received, Subscriber, answer
from tests.usecases.driver import Driver


class Gate:
    """A subscriber behaviour that holds every delivery until let go, counting those held."""

    def __init__(self) -> None:
        self.open = asyncio.Event()
        self.held = 0
        self.most = 0

    def behaviour(self) -> Behaviour:
        async def respond(_: Received) -> Response:
            self.held += 1
            self.most = max(self.most, self.held)
            try:
                await self.open.wait()
            finally:
                self.held -= 1
            return JSONResponse({})

        return respond


async def capped(app: Driver, subscriber: Subscriber, gate: Gate, limit: int) -> dict[str, object]:
    await app.create_trigger("t:notify", name="Notify", type="FIRE_AND_FORGET")
    url = subscriber.endpoint("slow", gate.behaviour())
    return await app.subscribe("t:notify", url, httpConfig={"maxConcurrency": limit})


async def test_never_more_in_flight_than_the_limit_and_the_rest_in_turn(
    app: Driver, subscriber: Subscriber
) -> None:
    gate = Gate()
    sub = await capped(app, subscriber, gate, 2)
    assert sub["httpConfig"]["maxConcurrency"] == 2  # type: ignore[index]
    started = [(await app.start("t:notify", {"n": n}))[0]["id"] for n in range(6)]
    await subscriber.wait_for(2)
    await asyncio.sleep(0.5)  # several sweeps: none lets a third go
    assert subscriber.count() == 2 and gate.most == 2
    assert [(await app.status(i))["status"] for i in started[2:]] == ["QUEUED"] * 4
    gate.open.set()
    for invocation_id in started:
        done = await app.final_status(invocation_id)
        assert (done["status"], done["attempts"]) == ("COMPLETED", 1)
    assert [r.body["n"] for r in subscriber.received] == list(range(6))  # in creation order
    assert gate.most == 2


async def test_a_flood_to_one_subscriber_does_not_hold_up_another(
    app: Driver, subscriber: Subscriber
) -> None:
    gate = Gate()
    await capped(app, subscriber, gate, 1)
    await app.create_trigger("t:other", name="Other", type="FIRE_AND_FORGET")
    await app.subscribe("t:other", subscriber.endpoint("quick", answer(200)))
    flood = [(await app.start("t:notify", {"n": n}))[0]["id"] for n in range(300)]
    clock = time.monotonic()
    [other] = await app.start("t:other", {})
    assert (await app.final_status(other["id"]))["status"] == "COMPLETED"
    assert time.monotonic() - clock < 0.5
    assert gate.most == 1
    assert (await app.status(flood[-1]))["status"] == "QUEUED"
    gate.open.set()


async def test_lifting_the_limit_lets_the_queue_go(app: Driver, subscriber: Subscriber) -> None:
    gate = Gate()
    sub = await capped(app, subscriber, gate, 1)
    started = [(await app.start("t:notify", {"n": n}))[0]["id"] for n in range(4)]
    await subscriber.wait_for(1)
    lift = [{"op": "replace", "path": "/httpConfig/maxConcurrency", "value": None}]
    await app.patch_subscription(str(sub["id"]), lift)
    await subscriber.wait_for(4, within=3)  # the sweep lets the rest go at once
    gate.open.set()
    for invocation_id in started:
        assert (await app.final_status(invocation_id))["status"] == "COMPLETED"
