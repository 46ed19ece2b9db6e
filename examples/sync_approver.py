"""A SYNC subscriber: approves an access request at once, unless the role is privileged.

    python examples/sync_approver.py --port 9001 --secret whsec_...

Subscribe it with ``"httpDispatchMode": "SYNC"``; a start's input such as
``{"requestedFor": "ed", "role": "viewer"}`` completes with the decision as its output.
"""

from __future__ import annotations

from typing import Any

from gateway.subscriber import Delivery
from gateway.subscriber.serving import main

PRIVILEGED = frozenset({"admin", "owner"})


async def approve(delivery: Delivery) -> dict[str, Any]:
    role = str(delivery.input.get("role", "viewer"))
    approved = role not in PRIVILEGED
    return {
        "approved": approved,
        "approver": "sync-approver",
        "reason": f"{role} is {'not ' if approved else ''}a privileged role",
    }


if __name__ == "__main__":
    main(approve, description="approves requests for unprivileged roles, at once (SYNC)", port=9001)
