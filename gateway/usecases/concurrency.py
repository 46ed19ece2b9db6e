"""Per-subscription concurrency (httpConfig.maxConcurrency): at most that many deliveries in
flight to a subscriber, across every process; the rest wait, QUEUED, and go oldest first as
slots free. A start's deliveries to such a subscription are queued only as slots allow, so a
flood to it never fills the dispatch queue ahead of other subscribers' deliveries."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import func, update
from sqlmodel import col, select

from gateway.adapters.database.rows import lock_row
from gateway.adapters.database.states import in_state, open_in_state
from gateway.adapters.database.transitions import transition
from gateway.adapters.queue import DispatchJob
from gateway.domain.clock import utcnow
from gateway.domain.model import Invocation, Status, Subscription
from gateway.runtime import Runtime

# Queued deliveries of a subscription whose limit was removed (or that was deleted) let go at
# once; and subscriptions looked at per sweep.
BATCH = 1000


async def admit(rt: Runtime, sub: Subscription, inv: Invocation) -> bool:
    """Whether ``inv``, claimed, may go: fewer than the limit of its subscription's other
    deliveries are in flight. If not, it is given back, QUEUED, its attempt not counted.
    (Deliveries reach the dispatch queue other ways too: a retry, a replay, a debounced run.)
    The subscription's row lock makes each look and give-back whole, so two claims racing in
    two processes never both go past the limit, nor both give way."""
    if sub.max_concurrency is None:
        return True
    others = (
        select(func.count())
        .select_from(Invocation)
        .where(open_in_state(sub.id, Status.DISPATCHING))
        .where(col(Invocation.id) != inv.id)
    )
    async with rt.sessions() as session:
        await lock_row(session, Subscription, sub.id)
        if (await session.execute(others)).scalar_one() < sub.max_concurrency:
            await session.commit()
            return True
        this_attempt = col(Invocation.attempts) == inv.attempts
        given_back = {
            "status": Status.QUEUED,
            "dispatched_at": None,
            "attempts": col(Invocation.attempts) - 1,
        }
        await transition(session, inv.id, [Status.DISPATCHING], this_attempt, **given_back)
        await session.commit()
    return False


async def promote(rt: Runtime, subscription_ids: Iterable[str]) -> list[DispatchJob]:
    """Queue each subscription's oldest QUEUED deliveries, as many as it has free slots."""
    jobs: list[DispatchJob] = []
    for subscription_id in set(subscription_ids):
        jobs += await _promote(rt, subscription_id)
    if jobs:
        await rt.queue.enqueue(jobs)
    return jobs


async def promote_due(rt: Runtime) -> list[DispatchJob]:
    """A sweep step: what a lost promotion (a crash, a race) left QUEUED with slots free."""
    waiting = select(col(Invocation.subscription_id)).where(in_state(Status.QUEUED)).distinct()
    async with rt.sessions() as session:
        subscription_ids = (await session.execute(waiting.limit(BATCH))).scalars().all()
    return await promote(rt, subscription_ids)


async def _promote(rt: Runtime, subscription_id: str) -> list[DispatchJob]:
    of_subscription = col(Invocation.subscription_id) == subscription_id
    async with rt.sessions() as session:
        await lock_row(session, Subscription, subscription_id)  # as admit: counts stay true
        limit = (
            await session.execute(
                select(Subscription.max_concurrency).where(col(Subscription.id) == subscription_id)
            )
        ).scalar_one_or_none()
        going = (
            select(func.count())
            .select_from(Invocation)
            .where(open_in_state(subscription_id, Status.PENDING, Status.DISPATCHING))
        )
        free = BATCH if limit is None else limit - (await session.execute(going)).scalar_one()
        if free <= 0:
            return []
        oldest = (
            select(col(Invocation.id))
            .where(of_subscription, in_state(Status.QUEUED))
            .order_by(col(Invocation.created), col(Invocation.id))
            .limit(free)
            .with_for_update(skip_locked=True)
        )
        result = await session.execute(
            update(Invocation)
            .where(col(Invocation.id).in_(oldest.scalar_subquery()), col(Invocation.status) == Status.QUEUED)
            .values(status=Status.PENDING, queued_at=utcnow())
            .returning(col(Invocation.id), col(Invocation.attempts), col(Invocation.created))
        )
        promoted = sorted(result.all(), key=lambda row: row[2])
        await session.commit()
    return [DispatchJob(invocation_id, attempts) for invocation_id, attempts, _ in promoted]
