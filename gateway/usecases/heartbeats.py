"""A subscriber's heartbeat: POST /trigger-invocations/{id}/heartbeat with the invocation's
secret keeps an invocation awaiting its callback alive past its deadline (up to its
creation + GATEWAY_MAX_RESPONSE_DEADLINE), and leaves a progress note on its status."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlmodel import col

from gateway.adapters.database.rows import missing
from gateway.adapters.database.transitions import transition
from gateway.domain.clock import parse_duration, timestamp, utcnow
from gateway.domain.errors import Conflict, Forbidden, Gone, Invalid
from gateway.domain.model import Invocation, Status
from gateway.runtime import Runtime
from gateway.usecases.sweep import expire_due

MAX_PROGRESS_BYTES = 1024


async def beat(
    rt: Runtime, invocation_id: str, secret: str, extend_by: str | None, progress: str | None
) -> datetime:
    """The invocation's deadline after this heartbeat."""
    if progress is not None and len(progress.encode()) > MAX_PROGRESS_BYTES:
        raise Invalid(f"progress is a note of at most {MAX_PROGRESS_BYTES} bytes")
    inv = await rt.invocations.read(invocation_id)
    if inv is None:
        raise missing(Invocation, invocation_id)
    if not rt.keys.check_callback_secret(inv.id, secret):
        raise Forbidden("the secret does not match this invocation; use _metadata.secret")
    now = utcnow()
    if inv.status == Status.EXPIRED or (inv.status == Status.AWAITING_CALLBACK and now >= inv.deadline):
        await expire_due(rt, invocation_id)  # now rather than at the next sweep
        raise Gone(f"the deadline {timestamp(inv.deadline)} has passed; the invocation expired")
    if inv.status != Status.AWAITING_CALLBACK:
        raise Conflict(
            f"the invocation is {inv.status}, not awaiting a callback; a heartbeat keeps only those alive"
        )
    latest = _latest(rt, inv)
    # Capped before it is added: a duration of a billion days would overflow a datetime.
    extension = min(await _extension(rt, inv, extend_by), latest - now)
    deadline = min(max(inv.deadline, now + extension), latest)
    async with rt.sessions() as session:
        # Only forward, and only while it still awaits its callback before its deadline.
        changed = await transition(
            session,
            inv.id,
            [Status.AWAITING_CALLBACK],
            col(Invocation.deadline) > now,
            col(Invocation.deadline) <= deadline,
            deadline=deadline,
            # A heartbeat without a note keeps the last one.
            **({} if progress is None else {"progress": progress}),
        )
        await session.commit()
    if not changed:
        raise Conflict(
            "the invocation changed meanwhile (completed, expired, or extended further); read its status"
        )
    return deadline


async def _extension(rt: Runtime, inv: Invocation, extend_by: str | None) -> timedelta:
    """extendBy, or else the subscription's responseDeadline (the span its delivery had, if
    the subscription is gone)."""
    if extend_by is not None:
        try:
            return parse_duration(extend_by, "extendBy")
        except ValueError as exc:
            raise Invalid(str(exc)) from None
    entry = await rt.catalog.trigger(inv.trigger_id)
    sub = None if entry is None else entry.subscription(inv.subscription_id)
    if sub is not None:
        return parse_duration(sub.response_deadline)
    return inv.deadline - inv.created


def _latest(rt: Runtime, inv: Invocation) -> datetime:
    return inv.created + parse_duration(rt.settings.max_response_deadline, "GATEWAY_MAX_RESPONSE_DEADLINE")
