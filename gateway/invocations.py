"""Use-cases of an invocation once raised (gateway.starts raises them): dispatch, complete,
expire, re-queue. The state machine.

Every transition is a conditional UPDATE (... WHERE status = <expected>), so a retry, a second
worker and a late callback can never all win.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import time
from collections.abc import Iterable, Sequence
from datetime import timedelta
from typing import Any, Protocol

from sqlalchemy import ColumnElement, Update, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from gateway import dispatch, jsonschemas, runs, signing, subscriptions
from gateway.errors import Conflict, Forbidden, Gone, Invalid, NotFound
from gateway.models import (
    AuthType,
    Invocation,
    Status,
    Subscription,
    Trigger,
    TriggerType,
    utcnow,
)
from gateway.queue import DispatchJob
from gateway.runtime import Runtime, best_effort
from gateway.schemas import timestamp

log = logging.getLogger("gateway.invocations")

# A PENDING invocation not claimed this long after it was queued is queued again.
REQUEUE_AFTER = timedelta(seconds=5)
# A DISPATCHING invocation older than the time limit plus this was cut off by a crash.
STRANDED_GRACE = timedelta(seconds=5)
# Deliveries cut off this often are not tried again.
MAX_ATTEMPTS = 5


async def dispatch_one(rt: Runtime, invocation_id: str) -> None:
    """Claim a PENDING invocation, deliver it, record the outcome. Safe to call twice."""
    async with rt.sessions() as session:
        # The claim returns the row, and one read brings its subscription and trigger: two
        # statements and one commit before the delivery (four reads before, profiled).
        claim = _transition_query(invocation_id, {Status.PENDING}).values(
            status=Status.DISPATCHING, dispatched_at=utcnow(), attempts=col(Invocation.attempts) + 1
        )
        inv = (await session.scalars(claim.returning(Invocation), execution_options=NO_SYNC)).one_or_none()
        if inv is None:
            return
        target = (
            await session.execute(
                select(Subscription, Trigger)
                .outerjoin(Trigger, col(Trigger.id) == col(Subscription.trigger_id))
                .where(col(Subscription.id) == inv.subscription_id)
            )
        ).one_or_none()
        run = await runs.context(session, inv)
        await session.commit()
    if target is None:
        outcome = dispatch.failed("the subscription was deleted before delivery")
    else:
        sub, trigger = target
        try:
            delivery = _delivery(rt, inv, sub, trigger, run)
        except ValueError as exc:  # a credential that no configured key decrypts
            outcome = dispatch.failed(str(exc))
        else:
            outcome = await dispatch.deliver(
                rt.http,
                delivery,
                time_limit=rt.settings.response_timeout,
                max_bytes=rt.settings.max_response_bytes,
            )
    await _record(rt, inv, outcome)


def _delivery(
    rt: Runtime, inv: Invocation, sub: Subscription, trigger: Trigger | None, run: dict[str, Any]
) -> dispatch.Delivery:
    fire_and_forget = inv.trigger_type == TriggerType.FIRE_AND_FORGET
    metadata: dict[str, Any] = {
        "responseMode": inv.dispatch_mode.lower(),
        "triggerId": inv.trigger_id,
        "triggerType": "fireAndForget" if fire_and_forget else "requestResponse",
        "invocationId": inv.id,
        "deadline": timestamp(inv.deadline),
        "source": inv.source,
        "tenantId": inv.tenant_id,
        "option": inv.option,
        **run,
    }
    if not fire_and_forget:
        metadata["callbackURL"] = callback_url(rt, inv.id)
        metadata["secret"] = rt.keys.callback_secret(inv.id)
    body = json.dumps({**(inv.input or {}), "_metadata": metadata}, separators=(",", ":")).encode()
    # The subscriber sends INVOCATION_HEADER back on starts its own action causes: the loop guard.
    headers = {
        "content-type": "application/json",
        "user-agent": dispatch.USER_AGENT,
        INVOCATION_HEADER: inv.id,
    }
    signing_secrets = subscriptions.active_signing_secrets(rt, sub)
    headers.update(signing.headers(signing_secrets, inv.id, int(time.time()), body))
    if sub.auth_type == AuthType.BASIC_AUTH and sub.credential is not None:
        pair = f"{sub.basic_user}:{rt.keys.decrypt(sub.credential)}".encode()
        headers["authorization"] = "Basic " + base64.b64encode(pair).decode()
    elif sub.auth_type == AuthType.BEARER_TOKEN and sub.credential is not None:
        headers["authorization"] = "Bearer " + rt.keys.decrypt(sub.credential)
    return dispatch.Delivery(
        url=sub.url,
        headers=headers,
        body=body,
        mode=inv.dispatch_mode,
        fire_and_forget=fire_and_forget,
        output_schema=trigger.output_schema if trigger else None,
    )


def callback_url(rt: Runtime, invocation_id: str) -> str:
    return f"{rt.settings.public_url.rstrip('/')}/beta/trigger-invocations/{invocation_id}/complete"


async def _record(rt: Runtime, inv: Invocation, outcome: dispatch.Outcome) -> None:
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
        changed = await _transition(
            session, inv.id, {Status.DISPATCHING}, col(Invocation.attempts) == inv.attempts, **values
        )
        await session.commit()
    if not changed:
        log.info("invocation=%s outcome=%s not recorded: it moved on meanwhile", inv.id, outcome.kind)
        return
    if outcome.kind == "awaiting":
        await best_effort("scheduling expiry", rt.queue.schedule_expiry(inv.id, inv.deadline))
    else:
        await _ended(rt, [inv])
    log.info(
        "invocation=%s subscription=%s outcome=%s%s",
        inv.id,
        inv.subscription_id,
        outcome.kind,
        f" error={outcome.error!r}" if outcome.error else "",
    )


async def complete(rt: Runtime, invocation_id: str, secret: str, output: Any, error: str | None) -> None:
    """A subscriber's callback. Idempotent: the same completion twice is accepted twice."""
    digest = _completion_digest(output, error)
    async with rt.sessions() as session:
        inv = await session.get(Invocation, invocation_id)
        if inv is None:
            raise NotFound(f"invocation {invocation_id} does not exist")
        if not rt.keys.check_callback_secret(inv.id, secret):
            raise Forbidden("the secret does not match this invocation; use _metadata.secret")
        _check_can_complete(inv, digest)
        if Status(inv.status).terminal:
            return  # the same completion again
        past_deadline = utcnow() >= inv.deadline
        if not past_deadline:
            await _accept_completion(session, inv, output, error, digest)
    if past_deadline:
        # Expired now rather than at the next sweep, so that its status agrees with the 410.
        await expire_due(rt, invocation_id)
        raise Gone(f"the deadline {timestamp(inv.deadline)} has passed")
    await _ended(rt, [inv])


async def _accept_completion(
    session: AsyncSession, inv: Invocation, output: Any, error: str | None, digest: str
) -> None:
    if error is not None:
        values: dict[str, Any] = {"status": Status.FAILED, "error": f"the subscriber reported: {error}"}
    else:
        trigger = await session.get(Trigger, inv.trigger_id)
        schema = trigger.output_schema if trigger else None
        problems = jsonschemas.validate(schema, output) if output is not None else ["$: output is required"]
        if problems:
            raise Invalid(
                "output does not match the trigger's outputSchema; correct it and send it again "
                f"before {timestamp(inv.deadline)}",
                causes=problems,
            )
        values = {"status": Status.COMPLETED, "output": output}
    now = utcnow()
    changed = await _transition(
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
        await session.refresh(inv)
        _check_can_complete(inv, digest)
        if not Status(inv.status).terminal:
            raise Gone(f"the deadline {timestamp(inv.deadline)} has passed")


def _check_can_complete(inv: Invocation, digest: str) -> None:
    status = Status(inv.status)
    if status.terminal:
        if inv.completion_digest == digest:
            return
        if status == Status.EXPIRED:
            raise Gone(f"the deadline {timestamp(inv.deadline)} has passed; the invocation expired")
        raise Conflict(f"the invocation is already {status.value.lower()}")
    if inv.trigger_type == TriggerType.FIRE_AND_FORGET or inv.dispatch_mode == "SYNC":
        raise Conflict("this invocation does not take a callback: its subscription answers synchronously")
    if status == Status.WAITING or (status == Status.PENDING and inv.attempts == 0):
        raise Conflict("the invocation has not been delivered yet")


class _Ended(Protocol):
    @property
    def id(self) -> str: ...
    @property
    def subscription_id(self) -> str: ...
    @property
    def tenant_id(self) -> str | None: ...
    @property
    def run_id(self) -> str | None: ...


async def _ended(rt: Runtime, ended: Sequence[_Ended]) -> None:
    """After these invocations reached a final state: wake long-polls, start next runs."""
    if not ended:
        return
    await best_effort("waking long-polls", rt.notifier.notify([inv.id for inv in ended]))
    lanes = [runs.Lane(inv.subscription_id, inv.tenant_id) for inv in ended if inv.run_id is not None]
    await runs.promote_after(rt, lanes)


def _completion_digest(output: Any, error: str | None) -> str:
    canonical = json.dumps({"output": output, "error": error}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


async def expire_due(rt: Runtime, invocation_id: str | None = None) -> list[str]:
    """Mark EXPIRED every invocation (or just this one) still awaiting its callback past
    its deadline."""
    now = utcnow()
    query = (
        update(Invocation)
        .where(col(Invocation.status) == Status.AWAITING_CALLBACK)
        .where(col(Invocation.deadline) <= now)
    )
    if invocation_id is not None:
        query = query.where(col(Invocation.id) == invocation_id)
    async with rt.sessions() as session:
        result = await session.execute(
            query.values(
                status=Status.EXPIRED, completed=now, error="no callback before the deadline"
            ).returning(*ENDED_COLUMNS)
        )
        expired = result.all()
        await session.commit()
    if expired:
        await _ended(rt, expired)
        log.info("expired %d invocation(s) past their deadline", len(expired))
    return [row.id for row in expired]


async def requeue_due(rt: Runtime) -> list[DispatchJob]:
    """Queue again what a crash or a lost message left behind."""
    now = utcnow()
    stranded_before = now - timedelta(seconds=rt.settings.response_timeout) - STRANDED_GRACE
    stranded = (
        update(Invocation)
        .where(col(Invocation.status) == Status.DISPATCHING)
        .where(col(Invocation.dispatched_at) < stranded_before)
    )
    async with rt.sessions() as session:
        gave_up = await session.execute(
            stranded.where(col(Invocation.attempts) >= MAX_ATTEMPTS)
            .values(
                status=Status.FAILED,
                completed=now,
                error=f"delivery was interrupted {MAX_ATTEMPTS} times; not trying again",
            )
            .returning(*ENDED_COLUMNS)
        )
        failed = gave_up.all()
        await session.execute(stranded.values(status=Status.PENDING, queued_at=now - REQUEUE_AFTER))
        result = await session.execute(
            update(Invocation)
            .where(col(Invocation.status) == Status.PENDING)
            .where(col(Invocation.queued_at) <= now - REQUEUE_AFTER)
            .values(queued_at=now)
            .returning(col(Invocation.id), col(Invocation.attempts))
        )
        due = [DispatchJob(invocation_id, attempts) for invocation_id, attempts in result.all()]
        await session.commit()
    if due:
        log.info("re-queued %d invocation(s) found pending", len(due))
        await rt.queue.enqueue(due)
    await _ended(rt, failed)
    return due


# What a final transition returns for _ended.
ENDED_COLUMNS = (
    col(Invocation.id),
    col(Invocation.subscription_id),
    col(Invocation.tenant_id),
    col(Invocation.run_id),
)
INVOCATION_HEADER = "x-invocation-id"

# Conditional updates change rows the session may hold; nothing re-reads them from the
# session afterwards, so SQLAlchemy need not evaluate the WHERE clause against them in Python.
NO_SYNC = {"synchronize_session": False}


def _transition_query(
    invocation_id: str, expected: Iterable[Status], *conditions: ColumnElement[bool]
) -> Update:
    return (
        update(Invocation)
        .where(col(Invocation.id) == invocation_id)
        .where(col(Invocation.status).in_([s.value for s in expected]), *conditions)
    )


async def _transition(
    session: AsyncSession,
    invocation_id: str,
    expected: Iterable[Status],
    *conditions: ColumnElement[bool],
    **values: Any,
) -> bool:
    """Apply ``values`` only if the invocation is still in an ``expected`` state and meets
    the ``conditions``: the compare-and-set every transition uses."""
    query = _transition_query(invocation_id, expected, *conditions).values(**values)
    # On the session's connection, as plain SQL: the ORM's bulk-update machinery has nothing
    # to do for a conditional UPDATE, and profiled it was most of the statement's cost.
    connection = await session.connection()
    result = await connection.execute(query)
    return result.rowcount == 1
