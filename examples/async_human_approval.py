"""An ASYNC subscriber: answers ``{}`` at once, asks a human, and calls back with the decision.

    python examples/async_human_approval.py --port 9002 --secret whsec_...

Subscribe it with ``"httpDispatchMode": "ASYNC"``. The "human" here decides after
HUMAN_SECONDS; a real one may take hours, so the work first sends a heartbeat: the deadline
moves ``extend_by`` from now, and the invocation's status shows the progress note.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from gateway.subscriber import Delivery, Later, heartbeat, later
from gateway.subscriber.serving import main

HUMAN_SECONDS = 1.0
PROGRESS = "asked a human; waiting for the decision"


async def ask_a_human(delivery: Delivery) -> Later:
    # Answered now; the kit awaits the decision afterwards and completes the invocation with it.
    return later(decision(delivery))


async def decision(delivery: Delivery) -> dict[str, Any]:
    await heartbeat(delivery, extend_by=timedelta(hours=8), progress=PROGRESS)
    await asyncio.sleep(HUMAN_SECONDS)  # the human thinks it over
    return {"approved": True, "approver": "a human", "for": delivery.input.get("requestedFor")}


if __name__ == "__main__":
    main(ask_a_human, description="asks a human, then calls back with the decision (ASYNC)", port=9002)
