"""A DYNAMIC subscriber: a small expense is approved at once (200 with the output), a large
one is looked at again and approved by a callback (202 now).

    python examples/dynamic.py --port 9003 --secret whsec_...

Subscribe it with ``"httpDispatchMode": "DYNAMIC"``; start it with ``{"amount": 40}`` and
``{"amount": 4000}``.
"""

from __future__ import annotations

import asyncio
from typing import Any

from gateway.subscriber import Delivery, Later, later
from gateway.subscriber.serving import main

AT_ONCE_UP_TO = 100
REVIEW_SECONDS = 0.5


async def approve(delivery: Delivery) -> dict[str, Any] | Later:
    amount = float(delivery.input.get("amount", 0))
    if amount <= AT_ONCE_UP_TO:
        return {"approved": True, "by": "rule", "amount": amount}
    return later(review(amount))


async def review(amount: float) -> dict[str, Any]:
    await asyncio.sleep(REVIEW_SECONDS)  # a slower check than the request's 10 s allow
    return {"approved": amount <= 10_000, "by": "review", "amount": amount}


if __name__ == "__main__":
    main(approve, description="answers small expenses at once, large ones later (DYNAMIC)", port=9003)
