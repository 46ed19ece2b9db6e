"""A heartbeat over HTTP keeps an invocation alive past its first deadline, in both modes
(distributed: the deferred expiry job at the first deadline must not expire it)."""

from __future__ import annotations

import asyncio

from tests.gateway_client import GatewayClient
from tests.servers import Subscriber, answer


async def test_a_heartbeat_keeps_it_alive_and_shows_its_progress(
    gateway: GatewayClient, subscriber: Subscriber
) -> None:
    await gateway.create_trigger()
    url = subscriber.endpoint("slow", answer(200, {}))
    await gateway.subscribe("test:approver", url, "ASYNC", responseDeadline="PT1S")
    [invocation] = await gateway.start("test:approver", {})
    [delivered] = await subscriber.wait_for(1)
    meta = delivered.body["_metadata"]
    heartbeat_url = meta["callbackURL"].replace("/complete", "/heartbeat")
    for _ in range(100):  # the acknowledgement is recorded just after the subscriber answers
        beat = await gateway.complete(
            heartbeat_url, {"secret": meta["secret"], "extendBy": "PT3S", "progress": "half"}
        )
        if beat.status_code != 409:
            break
        await asyncio.sleep(0.02)
    assert beat.status_code == 200, beat.text
    assert beat.json()["deadline"] > meta["deadline"]

    await asyncio.sleep(1.6)  # past the first deadline, and the expiry job scheduled for it
    status = await gateway.status(invocation["id"])
    assert (status["status"], status["progress"], status["deadline"]) == (
        "AWAITING_CALLBACK",
        "half",
        beat.json()["deadline"],
    )
    done = await gateway.complete(
        meta["callbackURL"], {"secret": meta["secret"], "output": {"approver": "x"}}
    )
    assert done.status_code == 204
    wrong = await gateway.complete(heartbeat_url, {"secret": meta["secret"] + "x"})
    assert wrong.status_code == 403
    finished = await gateway.complete(heartbeat_url, {"secret": meta["secret"]})
    assert finished.status_code == 409
