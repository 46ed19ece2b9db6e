"""Delivering one invocation: claim it (PENDING -> DISPATCHING), send it, record the outcome.

Safe to run twice for one invocation (a queue delivers at least once): only the claim's
winner sends, and only the attempt that sent may record its outcome.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlmodel import col, select

from gateway.adapters.database.transitions import NO_SYNC, transition, transition_query
from gateway.adapters.outbound import http
from gateway.domain import delivery, json_schema
from gateway.domain.clock import utcnow
from gateway.domain.delivery import Outcome
from gateway.domain.keys import Undecryptable
from gateway.domain.model import Invocation, Status, Subscription, Trigger
from gateway.runtime import Runtime, best_effort
from gateway.usecases import runs
from gateway.usecases.finished import after_final

log = logging.getLogger("gateway.invocations")


async def deliver(rt: Runtime, invocation_id: str) -> None:
    """Claim a PENDING invocation, deliver it, record the outcome."""
    async with rt.sessions() as session:
        # The claim returns the row, and one read brings its subscription and trigger: two
        # statements and one commit before the delivery (four reads before, profiled).
        claim = transition_query(invocation_id, {Status.PENDING}).values(
            status=Status.DISPATCHING, dispatched_at=utcnow(), attempts=col(Invocation.attempts) + 1
        )
        inv = (await session.scalars(claim.returning(Invocation), execution_options=NO_SYNC)).one_or_none()
        if inv is None:
            return
        row = (
            await session.execute(
                select(Subscription, Trigger)
                .outerjoin(Trigger, col(Trigger.id) == col(Subscription.trigger_id))
                .where(col(Subscription.id) == inv.subscription_id)
            )
        ).one_or_none()
        target = None if row is None else (row[0], row[1])
        run = await runs.context(session, inv)
        await session.commit()
    outcome = await _send(rt, inv, target, run)
    await _record(rt, inv, outcome)


async def _send(
    rt: Runtime, inv: Invocation, target: tuple[Subscription, Trigger | None] | None, run: dict[str, Any]
) -> Outcome:
    if target is None:
        return delivery.failed("the subscription was deleted before delivery")
    sub, trigger = target
    try:
        request = delivery.request_for(
            inv, sub, run, keys=rt.keys, public_url=rt.settings.public_url, now=utcnow()
        )
    except Undecryptable as exc:
        return delivery.failed(str(exc))
    settings = rt.settings
    outcome = await http.send(
        rt.http, request, time_limit=settings.response_timeout, max_bytes=settings.max_response_bytes
    )
    schema = trigger.output_schema if trigger else None
    if outcome.kind == "completed" and outcome.output is not None:
        problems = await json_schema.check(schema, outcome.output)
        if problems:
            return delivery.failed(
                "the output does not match the trigger's outputSchema: " + "; ".join(problems)
            )
    return outcome


async def _record(rt: Runtime, inv: Invocation, outcome: Outcome) -> None:
    now = utcnow()
    values: dict[str, Any]
    if outcome.kind == "awaiting":
        values = {"status": Status.AWAITING_CALLBACK}
    elif outcome.kind == "completed":
        values = {"status": Status.COMPLETED, "output": outcome.output, "completed": now}
    else:
        values = {"status": Status.FAILED, "error": outcome.error, "completed": now}
    async with rt.sessions() as session:
        # A callback may have completed it while we waited for the acknowledgement, and
        # only this attempt may record its outcome (not one that a sweep started again).
        changed = await transition(
            session, inv.id, {Status.DISPATCHING}, col(Invocation.attempts) == inv.attempts, **values
        )
        await session.commit()
    if not changed:
        log.info("invocation=%s outcome=%s not recorded: it moved on meanwhile", inv.id, outcome.kind)
        return
    if outcome.kind == "awaiting":
        await best_effort("scheduling expiry", rt.queue.schedule_expiry(inv.id, inv.deadline))
    else:
        await after_final(rt, [inv])
    log.info(
        "invocation=%s subscription=%s outcome=%s%s",
        inv.id,
        inv.subscription_id,
        outcome.kind,
        f" error={outcome.error!r}" if outcome.error else "",
    )
