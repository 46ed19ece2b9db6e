"""Runs of a subscription per tenant: debounce, bundling, and what a run knows of the last one.

A debounced subscription's triggers are recorded WAITING. ``promote`` starts the tenant's next
run when none is in flight: the oldest waiting cron triggers (they have their own queue and go
first), else the oldest others, up to GATEWAY_MAX_BUNDLE. The first of them leads the run (it
is delivered, PENDING, with run_id its own id); the rest become BUNDLED with run_id the
leader's. The subscription's row lock makes the in-flight check and the promotion one step,
so two processes never start two runs for one tenant.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from typing import Any, NamedTuple

from sqlalchemy import ColumnElement, and_, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased
from sqlmodel import col, select

from gateway.adapters.database.invocation_store import InvocationStore
from gateway.adapters.database.rows import lock_row
from gateway.adapters.database.states import in_state
from gateway.adapters.queue import DispatchJob
from gateway.domain.clock import timestamp, utcnow
from gateway.domain.model import (
    IN_FLIGHT,
    RUN_PHASES,
    Invocation,
    Source,
    Status,
    Subscription,
)
from gateway.runtime import Runtime, best_effort
from gateway.telemetry import metrics

log = logging.getLogger("gateway.runs")


class Lane(NamedTuple):
    """One subscription's runs for one tenant (None: invocations without a tenant)."""

    subscription_id: str
    tenant_id: str | None


def _in_lane(lane: Lane) -> ColumnElement[bool]:
    tenant = col(Invocation.tenant_id)
    same_tenant = tenant.is_(None) if lane.tenant_id is None else tenant == lane.tenant_id
    return and_(col(Invocation.subscription_id) == lane.subscription_id, same_tenant)


def _unfinished_in(lane: Lane) -> ColumnElement[bool]:
    # Waiting and in-flight rows have no completion time: with it, the lane index
    # (subscription, tenant, completed) finds them without reading the lane's history.
    return and_(_in_lane(lane), col(Invocation.completed).is_(None))


async def promote(rt: Runtime, lane: Lane) -> str | None:
    """Start the lane's next run if it has waiting triggers and no run in flight; return
    the new run's id."""
    async with rt.sessions() as session:
        await lock_row(session, Subscription, lane.subscription_id)
        in_flight = select(Invocation.id).where(
            _unfinished_in(lane),
            col(Invocation.run_id).is_not(None),
            col(Invocation.status).in_(list(IN_FLIGHT)),
        )
        if (await session.execute(in_flight.limit(1))).first() is not None:
            return None
        bundle = await _next_bundle(session, lane, rt.settings.max_bundle, rt.settings.max_bundle_bytes)
        if not bundle:
            return None
        leader = bundle[0]
        now = utcnow()
        connection = await session.connection()
        await connection.execute(
            update(Invocation)
            .where(col(Invocation.id) == leader.id, col(Invocation.status) == Status.WAITING)
            .values(
                status=Status.PENDING,
                run_id=leader.id,
                queued_at=now,
                # The callback deadline counts from the run's start, not from its arrival.
                deadline=now + (leader.deadline - leader.created),
            )
        )
        if len(bundle) > 1:
            await connection.execute(
                update(Invocation)
                .where(col(Invocation.id).in_([inv.id for inv in bundle[1:]]))
                .where(col(Invocation.status) == Status.WAITING)
                .values(status=Status.BUNDLED, run_id=leader.id, completed=now)
            )
        await session.commit()
    log.info("subscription=%s tenant=%s run=%s carries %d trigger(s)", *lane, leader.id, len(bundle))
    metrics.finished(leader, Status.BUNDLED, count=len(bundle) - 1)
    await rt.queue.enqueue([DispatchJob(leader.id)])
    # Long-polls on the bundled triggers end now: their status names the run to follow.
    await rt.notifier.notify([inv.id for inv in bundle[1:]])
    return leader.id


async def _next_bundle(session: AsyncSession, lane: Lane, limit: int, max_bytes: int) -> list[Invocation]:
    """The oldest waiting cron triggers, else the oldest others: at most ``limit`` of them
    and, past the first, at most ``max_bytes`` of payload and headers together."""
    waiting = (
        select(Invocation)
        .where(_unfinished_in(lane), col(Invocation.status) == Status.WAITING)
        .order_by(col(Invocation.created), col(Invocation.id))
        .limit(limit)
    )
    found = (await session.execute(waiting.where(col(Invocation.source) == Source.CRON))).scalars().all()
    if not found:
        found = (await session.execute(waiting)).scalars().all()
    bundle: list[Invocation] = []
    size = 0
    for inv in found:
        size += len(json.dumps([inv.input, inv.headers], separators=(",", ":")))
        if bundle and size > max_bytes:
            break
        bundle.append(inv)
    return bundle


async def promote_after(rt: Runtime, ended: Iterable[Lane]) -> None:
    """A run ended, or a trigger arrived, in each of these lanes: start their next runs."""
    for lane in dict.fromkeys(ended):
        await best_effort(f"starting the next run of {lane}", promote(rt, lane))


async def promote_due(rt: Runtime) -> None:
    """Start the next run of every lane with waiting triggers and none in flight (what a
    crash between a run's end and its successor's start left behind)."""
    run = aliased(Invocation)
    run_in_flight = select(run.id).where(
        run.subscription_id == Invocation.subscription_id,
        col(run.tenant_id).is_not_distinct_from(Invocation.tenant_id),
        col(run.completed).is_(None),
        col(run.run_id).is_not(None),
        col(run.status).in_(list(IN_FLIGHT)),
    )
    query = select(Invocation.subscription_id, Invocation.tenant_id).where(
        in_state(Status.WAITING), ~run_in_flight.exists()
    )
    async with rt.sessions() as session:
        lanes = [Lane(*row) for row in (await session.execute(query.distinct())).all()]
    await promote_after(rt, lanes)


async def context(store: InvocationStore, inv: Invocation) -> dict[str, Any]:
    """The ``_metadata`` a run carries: its triggers and the run before it in its lane."""
    last = await store.last_run(inv)
    mode = "init" if last is None else "normal"
    triggers = [inv] if inv.run_id is None else await store.run_members(inv.run_id)
    return {
        "runTriggers": [_run_trigger(trigger, mode) for trigger in triggers],
        "lastRun": None if last is None else _last_run(last),
    }


def _last_run(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "phase": RUN_PHASES[Status(row["status"])],
        "startedAt": timestamp(row["dispatched_at"]),
        "completedAt": timestamp(row["completed"]),
        "output": row["output"],
    }


def _run_trigger(inv: Invocation, mode: str) -> dict[str, Any]:
    return {
        "invocationId": inv.id,
        "source": inv.source,
        "mode": mode,
        "payload": inv.input,
        "headers": inv.headers,
        "receivedAt": timestamp(inv.created),
    }
