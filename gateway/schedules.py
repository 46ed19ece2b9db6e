"""Scheduled runs: the firing of due ticks.

A subscription's next tick is stored (subscriptions.next_fire_at). Firing is a compare-and-set
that moves it to the first tick after *now*, in the transaction that records the run: however
many processes look, one wins each tick, and after downtime the missed ticks fire once.
"""

from __future__ import annotations

import logging

from sqlalchemy import update
from sqlmodel import col, select

from gateway import starts
from gateway.cron import next_tick
from gateway.errors import Conflict, NotFound
from gateway.models import Source, Subscription, utcnow
from gateway.runtime import Runtime
from gateway.schemas import timestamp

log = logging.getLogger("gateway.schedules")

# Subscriptions fired per sweep at most; more due than this fire on the next sweep.
FIRE_BATCH = 100


async def fire_due(rt: Runtime) -> int:
    """Raise a cron run for every enabled, unpaused subscription whose tick has come."""
    now = utcnow()
    query = (
        select(Subscription)
        .where(col(Subscription.enabled), col(Subscription.next_fire_at) <= now)
        .order_by(col(Subscription.next_fire_at))
        .limit(FIRE_BATCH)
    )
    async with rt.sessions() as session:
        due = (await session.execute(query)).scalars().all()
    fired = 0
    for sub in due:
        assert sub.schedule_cron is not None and sub.schedule_timezone is not None
        following = next_tick(sub.schedule_cron, sub.schedule_timezone, now)
        # Changes the row for the first process only; the run is recorded with it or not at all.
        claim = (
            update(Subscription)
            .where(col(Subscription.id) == sub.id, col(Subscription.next_fire_at) == sub.next_fire_at)
            .values(next_fire_at=following)
        )
        payload = {"schedule": sub.schedule_name or "custom", "scheduledFor": timestamp(sub.next_fire_at)}
        try:
            started = await starts.raise_run(
                rt, sub.id, Source.CRON, payload, tenant_id=sub.schedule_tenant_id, claim=claim
            )
        except (NotFound, Conflict) as exc:  # deleted or disabled since it was read
            log.info("subscription=%s schedule not fired: %s", sub.id, exc.message)
            continue
        if started is not None:
            fired += 1
            log.info("subscription=%s fired its schedule due %s", sub.id, payload["scheduledFor"])
    return fired
