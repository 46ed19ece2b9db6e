"""Replay: deliver a finished invocation again, as a new attempt with the same invocation id
(and so the same ``webhook-id``), one at a time or every one of a subscription since a time."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, or_, tuple_
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from gateway.adapters.database.rows import get_existing, missing
from gateway.adapters.database.transitions import transition
from gateway.adapters.queue import DispatchJob
from gateway.domain.clock import utcnow
from gateway.domain.errors import Conflict
from gateway.domain.model import REPLAYABLE, Invocation, Status, Subscription, TriggerType
from gateway.runtime import Runtime, best_effort

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

# Invocations a subscription's replay changes per transaction: each batch is short, so
# deliveries and other writes go on between them.
BATCH = 200


def replayable(inv: Invocation) -> bool:
    status = Status(inv.status)
    if status == Status.COMPLETED:
        # A request-response output was accepted, unless it is the fallback of a failure.
        return inv.trigger_type == TriggerType.FIRE_AND_FORGET or inv.fallback
    return status in REPLAYABLE


async def invocation(rt: Runtime, invocation_id: str) -> Invocation:
    """Deliver it again; the invocation as it now is (PENDING)."""
    inv = await rt.invocations.read(invocation_id)
    if inv is None:
        raise missing(Invocation, invocation_id)
    if not replayable(inv):
        raise Conflict(
            f"invocation {invocation_id} is {inv.status}: only FAILED and EXPIRED invocations, and "
            "COMPLETED fire-and-forget ones or ones completed with a fallback output, can be replayed"
        )
    async with rt.sessions() as session:
        replayed = await _again(session, [inv], utcnow())
        await session.commit()
    if not replayed:
        raise Conflict(f"invocation {invocation_id} changed meanwhile; read its status and replay it again")
    await best_effort("queueing a replay", rt.queue.enqueue(replayed))
    again = await rt.invocations.read(invocation_id)
    if again is None:  # deleted meanwhile (retention only deletes finished ones)
        raise missing(Invocation, invocation_id)
    return again


async def subscription(
    rt: Runtime, subscription_id: str, since: datetime, statuses: Collection[Status]
) -> int:
    """Replay every invocation of the subscription created at or after ``since`` whose status
    is one of ``statuses`` (COMPLETED: fire-and-forget only); how many were replayed."""
    since = max(since, EPOCH)  # no invocation is older; and year 1 overflows in UTC
    async with rt.sessions() as session:
        await get_existing(session, Subscription, subscription_id)
    kinds: list[ColumnElement[bool]] = [
        col(Invocation.status).in_([s.value for s in statuses if s != Status.COMPLETED])
    ]
    if Status.COMPLETED in statuses:
        completed = col(Invocation.status) == Status.COMPLETED
        fire_and_forget = col(Invocation.trigger_type) == TriggerType.FIRE_AND_FORGET
        kinds.append(and_(completed, or_(fire_and_forget, col(Invocation.fallback))))
    wanted = or_(*kinds)
    query = (
        select(Invocation)
        .where(col(Invocation.subscription_id) == subscription_id, col(Invocation.created) >= since, wanted)
        .order_by(col(Invocation.created), col(Invocation.id))
        .limit(BATCH)
    )
    total = 0
    after: tuple[datetime, str] | None = None
    while True:
        # Forward only (by creation, then id), so one replayed and failed again meanwhile is
        # not replayed twice.
        batch_query = (
            query if after is None else query.where(tuple_(Invocation.created, Invocation.id) > after)
        )
        async with rt.sessions() as session:
            batch = list((await session.execute(batch_query)).scalars().all())
            replayed = await _again(session, batch, utcnow())
            await session.commit()
        if replayed:
            await best_effort("queueing replays", rt.queue.enqueue(replayed))
        total += len(replayed)
        if len(batch) < BATCH:
            return total
        after = (batch[-1].created, batch[-1].id)


async def _again(
    session: AsyncSession, invocations: Sequence[Invocation], now: datetime
) -> list[DispatchJob]:
    """Each of ``invocations`` back to PENDING if it is still as read: a fresh deadline (the
    span its first delivery had), no outcome, and the retry schedule counted from here."""
    replayed = []
    for inv in invocations:
        values: dict[str, Any] = {
            "status": Status.PENDING,
            "deadline": now + (inv.deadline - inv.created),
            "queued_at": now,
            "completed": None,
            "output": None,
            "error": None,
            "completion_digest": None,
            "next_attempt": None,
            "fallback": False,
            "attempts_at_replay": inv.attempts,
        }
        as_read = col(Invocation.attempts) == inv.attempts
        if await transition(session, inv.id, [Status(inv.status)], as_read, **values):
            replayed.append(DispatchJob(inv.id, inv.attempts))
    return replayed
