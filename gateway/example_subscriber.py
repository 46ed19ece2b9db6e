"""`gateway example-subscriber`: a demo subscriber that approves every delivery, built on the
subscriber kit (gateway/subscriber/). ``--mode`` says how it answers: at once (sync), by a
callback a moment later (async), or either, as the input asks (dynamic: later when the input
has ``"later": true``)."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from gateway.subscriber import Delivery, Handler, Later, later

MODES = ("sync", "async", "dynamic")
CALLBACK_DELAY = 1.0  # seconds: long enough to see the invocation await its callback

log = logging.getLogger("gateway.example_subscriber")


def approval(delivery: Delivery) -> dict[str, Any]:
    return {"approver": "ada", "reason": f"approved {len(delivery.input)} field(s)"}


async def approve_after_a_moment(delivery: Delivery) -> dict[str, Any]:
    await asyncio.sleep(CALLBACK_DELAY)
    log.info("calling back for invocation %s", delivery.invocation_id)
    return approval(delivery)


def handler(mode: str) -> Handler:
    async def answer(delivery: Delivery) -> dict[str, Any] | Later:
        log.info("received invocation %s of %s", delivery.invocation_id, delivery.trigger_id)
        if mode == "async" or (mode == "dynamic" and delivery.input.get("later")):
            return later(approve_after_a_moment(delivery))
        return approval(delivery)

    return answer
