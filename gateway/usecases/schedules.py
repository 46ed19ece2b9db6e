"""Scheduled runs: the firing of due ticks.

A subscription's next tick is stored (subscriptions.next_fire_at). Firing moves it to the first
tick after *now*, with a compare-and-set in the transaction that records the run: however many
processes look, one wins each tick, and after downtime the missed ticks fire once. On
PostgreSQL, due rows another process is firing are skipped (SKIP LOCKED), so processes share
the work rather than queue behind each other's locks.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime
from typing import Any

from sqlalchemy import func, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from gateway.domain.clock import timestamp, utcnow
from gateway.domain.cron import next_tick
from gateway.domain.errors import Invalid
from gateway.domain.model import NewInvocation, Source, Subscription, Trigger
from gateway.runtime import Runtime
from gateway.usecases import raise_trigger

log = logging.getLogger("gateway.schedules")

# Due subscriptions fired per transaction, and batches per sweep at most (the rest wait for
# the next sweep, so the sweep's other work is not starved).
FIRE_BATCH = 100
MAX_BATCHES = 50
MIN_WAIT = 0.01


async def fire_forever(rt: Runtime) -> None:
    """Fire due ticks, sleeping until the next one: on time, not at the sweep's phase. The
    sleep is at most the sweep interval, so a schedule saved meanwhile is seen that soon."""
    while True:
        try:
            await fire_due(rt)
            wait = await _seconds_to_next_tick(rt)
        except Exception:
            log.exception("firing schedules failed; trying again in %.1f s", rt.settings.sweep_interval)
            wait = rt.settings.sweep_interval
        await asyncio.sleep(min(wait, rt.settings.sweep_interval))


async def _seconds_to_next_tick(rt: Runtime) -> float:
    query = select(func.min(col(Subscription.next_fire_at))).where(col(Subscription.enabled))
    async with rt.sessions() as session:
        tick = (await session.execute(query)).scalar_one_or_none()
    if tick is None:
        return rt.settings.sweep_interval
    # A floor: a tick still due now is being fired by another process (its rows are locked).
    return max(MIN_WAIT, (tick - utcnow()).total_seconds())


async def fire_due(rt: Runtime) -> int:
    """Raise a cron run for every enabled, unpaused subscription whose tick has come."""
    fired = 0
    for _ in range(MAX_BATCHES):
        rows, more = await _fire_batch(rt, utcnow())
        await raise_trigger.queue(rt, rows)
        fired += len(rows)
        if not more:
            break
    return fired


async def _fire_batch(rt: Runtime, now: datetime) -> tuple[list[NewInvocation], bool]:
    """The runs of one batch of due subscriptions, recorded; and whether more may be due."""
    query = (
        select(Subscription, Trigger)
        .join(Trigger, col(Trigger.id) == col(Subscription.trigger_id))
        .where(col(Subscription.enabled), col(Subscription.next_fire_at) <= now)
        .order_by(col(Subscription.next_fire_at))
        .limit(FIRE_BATCH)
        .with_for_update(of=Subscription, skip_locked=True)  # SQLite has no row locks: ignored
    )
    rows: list[NewInvocation] = []
    async with rt.sessions() as session:
        due = (await session.execute(query)).all()
        for sub, trigger in due:
            row = await _fire(rt, session, sub, trigger, now)
            if row is not None:
                rows.append(row)
        if rows:
            await raise_trigger.insert_invocations(session, rows)
        await session.commit()
    for row in rows:
        log.info(
            "subscription=%s fired its schedule due %s", row["subscription_id"], row["input"]["scheduledFor"]
        )
    return rows, len(due) == FIRE_BATCH


async def _fire(
    rt: Runtime, session: AsyncSession, sub: Subscription, trigger: Trigger, now: datetime
) -> NewInvocation | None:
    """Move the subscription on to its next tick and return the run of this one; None if
    another process fired it first or the run cannot be made (the tick is skipped, and said so)."""
    due = sub.next_fire_at
    values: dict[str, Any]
    try:
        assert sub.schedule_cron is not None and sub.schedule_timezone is not None
        values = {"next_fire_at": next_tick(sub.schedule_cron, sub.schedule_timezone, now)}
    except Exception:  # e.g. a time zone the system's tz database has since dropped
        log.exception("subscription=%s: its schedule cannot be stepped; pausing it", sub.id)
        values = {"next_fire_at": None, "schedule_paused": True}
    claim = (
        update(Subscription)
        .where(col(Subscription.id) == sub.id, col(Subscription.next_fire_at) == due)
        .values(**values)
    )
    if (await (await session.connection()).execute(claim)).rowcount != 1:
        return None  # another process fired this tick (SQLite: it read the row before us)
    if values["next_fire_at"] is None:
        return None
    payload = {"schedule": sub.schedule_name or "custom", "scheduledFor": timestamp(due)}
    origin = raise_trigger.Origin(Source.CRON, sub.schedule_tenant_id, None, None)
    try:
        return raise_trigger.run_row(rt, trigger, sub, payload, origin, now)
    except Invalid as exc:  # the trigger's tenantIdPath finds no usable tenant in the payload
        log.warning("subscription=%s tick %s skipped: %s", sub.id, payload["scheduledFor"], exc.message)
        return None
