"""Fail-open: a REQUEST_RESPONSE trigger's fallbackOutput is what its invocations complete
with when they fail or expire, wherever that happens (a delivery, a callback reporting an
error, the sweep). Without one they fail (fail-closed)."""

from __future__ import annotations

from typing import Any

from gateway.domain.model import Status
from gateway.runtime import Runtime


async def output_for(rt: Runtime, trigger_id: str) -> Any:
    """The trigger's fallbackOutput; None if it has none (or no longer exists)."""
    entry = await rt.catalog.trigger(trigger_id)
    return None if entry is None else entry.trigger.fallback_output


def failure(error: str, fallback: Any) -> dict[str, Any]:
    """What a failure records: FAILED, or COMPLETED with the fallback output, saying what failed."""
    if fallback is None:
        return {"status": Status.FAILED, "error": error, "fallback": False}
    return {"status": Status.COMPLETED, "output": fallback, "error": error, "fallback": True}
