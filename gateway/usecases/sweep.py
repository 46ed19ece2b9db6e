"""The sweep: the database, not a queue, decides what is due. Every GATEWAY_SWEEP_INTERVAL
(wherever the sweep runs: `serve` when embedded, every worker when distributed), passed
deadlines expire, retries whose time has come are queued, deliveries a crash or a lost
message left behind are queued again, waiting runs start, and what is past its retention
is deleted. Every step is safe to run in
many processes at once."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, insert, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from gateway.adapters.database.states import in_state
from gateway.adapters.database.transitions import ENDED_COLUMNS
from gateway.adapters.queue import DispatchJob
from gateway.domain.clock import utcnow
from gateway.domain.model import DeliveryAttempt, Invocation, Status, TriggerType
from gateway.runtime import Runtime
from gateway.usecases import concurrency, fallback, idempotency, retention, runs
from gateway.usecases.finished import after_final

log = logging.getLogger("gateway.sweep")

_request_response = col(Invocation.trigger_type) == TriggerType.REQUEST_RESPONSE

# A delivery cut off by a crash is tried again (it may be what crashes the process), at
# most this many attempts in all, or as many as the retry schedule gives if more.
MAX_ATTEMPTS = 5
INTERRUPTED = "the attempt was cut off: the process delivering it stopped"
# Retries queued per sweep, at most.
RETRY_BATCH = 1000


async def expire_due(rt: Runtime, invocation_id: str | None = None) -> list[str]:
    """Mark EXPIRED every invocation (or just this one) still awaiting its callback past
    its deadline (or complete it with its trigger's fallback output)."""
    now = utcnow()
    due = [in_state(Status.AWAITING_CALLBACK), col(Invocation.deadline) <= now]
    if invocation_id is not None:
        due.append(col(Invocation.id) == invocation_id)
    falling_back = await _fallbacks(rt, due)
    async with rt.sessions() as session:
        expired = await _end(
            session, due, Status.EXPIRED, "no callback before the deadline", now, falling_back
        )
        await session.commit()
    if expired:
        await after_final(rt, expired)
        log.info("expired %d invocation(s) past their deadline", len(expired))
    return [row.id for row in expired]


async def _fallbacks(rt: Runtime, conditions: Sequence[ColumnElement[bool]]) -> dict[str, Any]:
    """The fallback outputs of the request-response triggers of the invocations that meet
    ``conditions``, by trigger id (read before the transaction: the catalog may need one)."""
    # Not DISTINCT: SQLite would then walk the whole trigger_id index rather than the few
    # rows the state's partial index finds.
    query = select(col(Invocation.trigger_id)).where(*conditions, _request_response)
    async with rt.sessions() as session:
        trigger_ids = set((await session.execute(query)).scalars().all())
    outputs = {trigger_id: await fallback.output_for(rt, trigger_id) for trigger_id in trigger_ids}
    return {trigger_id: output for trigger_id, output in outputs.items() if output is not None}


async def _end(
    session: AsyncSession,
    conditions: Sequence[ColumnElement[bool]],
    status: Status,
    error: str,
    now: datetime,
    falling_back: Mapping[str, Any],
) -> list[Any]:
    """Every invocation that meets ``conditions`` to ``status``, or COMPLETED with the
    fallback output of its trigger if it has one; the ENDED_COLUMNS of each."""
    ended: list[Any] = []
    for trigger_id, output in falling_back.items():
        with_fallback = [*conditions, _request_response, col(Invocation.trigger_id) == trigger_id]
        values = {"completed": now, **fallback.failure(error, output)}
        result = await session.execute(
            update(Invocation).where(*with_fallback).values(values).returning(*ENDED_COLUMNS)
        )
        ended += result.all()
    values = {"status": status, "completed": now, "error": error}
    result = await session.execute(
        update(Invocation).where(*conditions).values(values).returning(*ENDED_COLUMNS)
    )
    ended += result.all()
    return ended


async def requeue_due(rt: Runtime) -> list[DispatchJob]:
    """Queue again what a crash or a lost message left behind."""
    now = utcnow()
    settings = rt.settings
    requeue_after = timedelta(seconds=settings.requeue_after)
    # DISPATCHING past the time limit plus a grace: cut off by a crash (see Settings).
    stranded_before = now - timedelta(seconds=settings.response_timeout + settings.stranded_grace)
    is_stranded = (
        in_state(Status.DISPATCHING),
        col(Invocation.dispatched_at) < stranded_before,
    )
    most = max(MAX_ATTEMPTS, len(settings.retry_delays) + 1)
    spent = col(Invocation.attempts) - col(Invocation.attempts_at_replay) >= most
    falling_back = await _fallbacks(rt, [*is_stranded, spent])
    async with rt.sessions() as session:
        # Taken back first: the UPDATE decides which sweep takes each (two sweeps at once
        # never both do), then each is logged as a cut-off attempt, in the same transaction.
        cut_off = (
            await session.execute(
                update(Invocation)
                .where(*is_stranded)
                .values(status=Status.PENDING, queued_at=now - requeue_after)
                .returning(col(Invocation.id), col(Invocation.attempts), col(Invocation.dispatched_at), spent)
            )
        ).all()
        if cut_off:
            logged = [
                {"invocation_id": row[0], "attempt": row[1], "started": row[2], "error": INTERRUPTED}
                for row in cut_off
            ]
            await session.execute(insert(DeliveryAttempt), logged)
        failed: list[Any] = []
        if exhausted := [row[0] for row in cut_off if row[3]]:
            taken = [col(Invocation.status) == Status.PENDING, col(Invocation.id).in_(exhausted)]
            gave_up = f"{INTERRUPTED}, and no attempts are left"
            failed = await _end(session, taken, Status.FAILED, gave_up, now, falling_back)
        result = await session.execute(
            update(Invocation)
            .where(in_state(Status.PENDING), col(Invocation.queued_at) <= now - requeue_after)
            .values(queued_at=now)
            .returning(col(Invocation.id), col(Invocation.attempts))
        )
        due = [DispatchJob(invocation_id, attempts) for invocation_id, attempts in result.all()]
        await session.commit()
    if due:
        log.info("re-queued %d invocation(s) found pending", len(due))
        await rt.queue.enqueue(due)
    await after_final(rt, failed)
    return due


async def retry_due(rt: Runtime) -> list[DispatchJob]:
    """Queue the retries whose time has come (RETRYING -> PENDING), longest due first, a batch
    per sweep. On PostgreSQL the rows another sweep is taking are skipped, not waited for:
    two workers taking hundreds of rows in different orders deadlocked."""
    now = utcnow()
    is_due = [in_state(Status.RETRYING), col(Invocation.next_attempt) <= now]
    batch = (
        select(col(Invocation.id))
        .where(*is_due)
        .order_by(col(Invocation.next_attempt))
        .limit(RETRY_BATCH)
        .with_for_update(skip_locked=True)
    )
    async with rt.sessions() as session:
        result = await session.execute(
            update(Invocation)
            .where(col(Invocation.id).in_(batch.scalar_subquery()), *is_due)
            .values(status=Status.PENDING, queued_at=now, next_attempt=None)
            .returning(col(Invocation.id), col(Invocation.attempts), col(Invocation.created))
        )
        taken = sorted(result.all(), key=lambda row: row[2])
        due = [DispatchJob(invocation_id, attempts) for invocation_id, attempts, _ in taken]
        await session.commit()
    if due:
        await rt.queue.enqueue(due)
    return due


# Schedules have a loop of their own, which wakes at the next tick (schedules.fire_forever).
STEPS = (
    expire_due,
    retry_due,
    requeue_due,
    runs.promote_due,
    concurrency.promote_due,
    idempotency.purge_expired,
    retention.purge_due,
)


async def sweep_once(rt: Runtime) -> None:
    # Each step on its own: one that fails (say, on a row it cannot handle) must not stop
    # the others, which are what keep deadlines and deliveries moving.
    for step in STEPS:
        try:
            await step(rt)
        except Exception:
            log.exception(
                "sweep: %s failed; it runs again in %.1f s", step.__name__, rt.settings.sweep_interval
            )


async def sweep_forever(rt: Runtime) -> None:
    while True:
        await sweep_once(rt)
        await asyncio.sleep(rt.settings.sweep_interval)
