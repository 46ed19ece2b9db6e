"""Retention: finished invocations and their attempt logs are deleted once older than
GATEWAY_RETENTION_COMPLETED (completed) or GATEWAY_RETENTION_FAILED (failed, expired), a
small batch per sweep, each in a short transaction of its own, so that traffic never waits
behind a large delete."""

from __future__ import annotations

from collections.abc import Collection
from datetime import timedelta

from sqlalchemy import delete
from sqlmodel import col, select

from gateway.domain.clock import utcnow
from gateway.domain.model import DeliveryAttempt, Invocation, Status
from gateway.runtime import Runtime

# Invocations deleted per sweep and kind: at the default sweep interval, up to 2,000 per
# second each, far above what a gateway creates, with each transaction a few milliseconds.
BATCH = 1000
# BUNDLED and SUPPRESSED invocations were never delivered on their own: kept like the
# completed ones.
KEPT_AS_COMPLETED = (Status.COMPLETED, Status.BUNDLED, Status.SUPPRESSED)
KEPT_AS_FAILED = (Status.FAILED, Status.EXPIRED)


async def purge_due(rt: Runtime) -> int:
    """Delete one batch of each kind that is past its retention; how many were deleted."""
    completed, failed = rt.settings.retention
    deleted = 0
    for statuses, kept in ((KEPT_AS_COMPLETED, completed), (KEPT_AS_FAILED, failed)):
        if kept is not None:
            deleted += await _purge(rt, statuses, kept)
    return deleted


async def _purge(rt: Runtime, statuses: Collection[Status], kept: timedelta) -> int:
    cutoff = utcnow() - kept
    past = (col(Invocation.status).in_([s.value for s in statuses]), col(Invocation.completed) < cutoff)
    old = select(Invocation.id).where(*past).limit(BATCH)
    async with rt.sessions() as session:
        ids = list((await session.execute(old)).scalars().all())
        if not ids:
            return 0
        # Still past it when deleted: one replayed meanwhile (PENDING again) is kept.
        deleted = await session.execute(
            delete(Invocation).where(col(Invocation.id).in_(ids), *past).returning(col(Invocation.id))
        )
        gone = list(deleted.scalars().all())
        if gone:
            await session.execute(delete(DeliveryAttempt).where(col(DeliveryAttempt.invocation_id).in_(gone)))
        await session.commit()
    return len(gone)
