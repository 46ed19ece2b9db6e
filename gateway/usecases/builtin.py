"""The gateway's own triggers, in every catalog from the first start: operators subscribe to
them to hear what the gateway did on its own."""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError

from gateway.domain.clock import utcnow
from gateway.domain.model import Trigger, TriggerType
from gateway.runtime import Runtime

SUBSCRIPTION_DISABLED = "gateway:subscription-disabled"

_TRIGGERS = [
    Trigger(
        id=SUBSCRIPTION_DISABLED,
        name="Subscription disabled by the gateway",
        type=TriggerType.FIRE_AND_FORGET,
        description=(
            "Raised when the gateway disables a subscription: its subscriber answered 410 Gone, "
            "or its deliveries failed for GATEWAY_DISABLE_AFTER without a success."
        ),
        input_schema={
            "type": "object",
            "required": ["subscriptionId", "subscriptionName", "triggerId", "reason", "disabledAt"],
            "properties": {
                "subscriptionId": {"type": "string"},
                "subscriptionName": {"type": "string"},
                "triggerId": {"type": "string"},
                "reason": {"type": "string"},
                "disabledAt": {"type": "string", "format": "date-time"},
            },
        },
    )
]


async def ensure(rt: Runtime) -> int:
    """Add the built-in triggers missing from the catalog (one deleted comes back); how many."""
    added = 0
    async with rt.sessions() as session:
        for builtin in _TRIGGERS:
            if await session.get(Trigger, builtin.id) is None:
                session.add(Trigger.model_validate({**builtin.model_dump(), "created": utcnow()}))
                added += 1
        try:
            await session.commit()
        except IntegrityError:  # another process starting at the same time added them
            return 0
    return added
