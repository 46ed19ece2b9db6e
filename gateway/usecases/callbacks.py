"""A subscriber's callback: POST /trigger-invocations/{id}/complete with the invocation's
secret, its output or an error. Idempotent: the same completion twice is accepted twice."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from gateway.adapters.database.rows import get_existing
from gateway.adapters.database.transitions import transition
from gateway.domain import json_schema
from gateway.domain.clock import timestamp, utcnow
from gateway.domain.errors import Conflict, Forbidden, Gone, Invalid
from gateway.domain.model import DispatchMode, Invocation, Status, Trigger, TriggerType
from gateway.runtime import Runtime
from gateway.telemetry import traces
from gateway.usecases import fallback
from gateway.usecases.finished import after_final
from gateway.usecases.sweep import expire_due


async def complete(rt: Runtime, invocation_id: str, secret: str, output: Any, error: str | None) -> None:
    """Reads, checks the output with no session open (a costly check runs in a thread), then
    records the completion with a conditional update: what changed in between is seen there."""
    digest = _completion_digest(output, error)
    async with rt.sessions() as session:
        inv = await get_existing(session, Invocation, invocation_id)
        if not rt.keys.check_callback_secret(inv.id, secret):
            raise Forbidden("the secret does not match this invocation; use _metadata.secret")
        _check_can_complete(inv, digest)
        if Status(inv.status).terminal:
            return  # the same completion again
        trigger = await session.get(Trigger, inv.trigger_id)
    # In the start's trace (or the subscriber's, if it carried that on): once the secret matched.
    with traces.span("gateway.callback", parent=inv.traceparent) as span:
        span.set_attribute("gateway.invocation.id", inv.id)
        if utcnow() >= inv.deadline:
            # Expired now rather than at the next sweep, so that its status agrees with the 410.
            await expire_due(rt, invocation_id)
            raise Gone(f"the deadline {timestamp(inv.deadline)} has passed")
        values = await _completion(inv, trigger, output, error)
        async with rt.sessions() as session:
            recorded = await _record(session, inv, digest, values)
        if recorded:  # not the same completion again, recorded meanwhile by a twin
            inv.status = values["status"]
            await after_final(rt, [inv])


async def _completion(
    inv: Invocation, trigger: Trigger | None, output: Any, error: str | None
) -> dict[str, Any]:
    """The values a completion records, once the output is checked."""
    if error is not None:
        fallback_output = None if trigger is None else trigger.fallback_output
        return fallback.failure(f"the subscriber reported: {error}", fallback_output)
    schema = trigger.output_schema if trigger else None
    problems = await json_schema.check(schema, output) if output is not None else ["$: output is required"]
    if problems:
        raise Invalid(
            "output does not match the trigger's outputSchema; correct it and send it again "
            f"before {timestamp(inv.deadline)}",
            causes=problems,
        )
    return {"status": Status.COMPLETED, "output": output}


async def _record(session: AsyncSession, inv: Invocation, digest: str, values: dict[str, Any]) -> bool:
    """Whether this completion was recorded (False: the same one was, meanwhile)."""
    now = utcnow()
    changed = await transition(
        session,
        inv.id,
        # PENDING with an attempt behind it: delivered, then re-queued by a sweep.
        {Status.PENDING, Status.DISPATCHING, Status.AWAITING_CALLBACK},
        col(Invocation.attempts) > 0,
        col(Invocation.deadline) > now,
        completed=now,
        completion_digest=digest,
        **values,
    )
    await session.commit()
    if not changed:
        # Someone else moved it first, or the deadline passed meanwhile.
        now_stored = await get_existing(session, Invocation, inv.id)
        _check_can_complete(now_stored, digest)
        if not Status(now_stored.status).terminal:
            raise Gone(f"the deadline {timestamp(now_stored.deadline)} has passed")
    return changed


def _check_can_complete(inv: Invocation, digest: str) -> None:
    status = Status(inv.status)
    if status.terminal:
        if inv.completion_digest == digest:
            return
        if status == Status.EXPIRED:
            raise Gone(f"the deadline {timestamp(inv.deadline)} has passed; the invocation expired")
        raise Conflict(f"the invocation is already {status.value.lower()}")
    if inv.trigger_type == TriggerType.FIRE_AND_FORGET or inv.dispatch_mode == DispatchMode.SYNC:
        raise Conflict("this invocation does not take a callback: its subscription answers synchronously")
    if status in (Status.WAITING, Status.QUEUED) or (status == Status.PENDING and inv.attempts == 0):
        raise Conflict("the invocation has not been delivered yet")


def _completion_digest(output: Any, error: str | None) -> str:
    canonical = json.dumps({"output": output, "error": error}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()
