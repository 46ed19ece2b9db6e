"""Delivering one invocation: claim it (PENDING -> DISPATCHING), send it, record the outcome.

Safe to run twice for one invocation (a queue delivers at least once): only the claim's
winner sends, and only the attempt that sent may record its outcome.
"""

from __future__ import annotations

import contextlib
import logging
import random
import time
from datetime import datetime
from typing import Any

from gateway.adapters.database.invocation_store import AttemptLog
from gateway.adapters.outbound import http
from gateway.domain import delivery, json_schema, retries
from gateway.domain.clock import timestamp, utcnow
from gateway.domain.delivery import Failure, Outcome
from gateway.domain.keys import Undecryptable
from gateway.domain.model import Invocation, Status, Subscription, Trigger, TriggerType
from gateway.runtime import Runtime, best_effort
from gateway.telemetry import logs, metrics, traces
from gateway.usecases import circuit, concurrency, runs, subscriptions
from gateway.usecases import fallback as fallbacks
from gateway.usecases.finished import after_final

log = logging.getLogger("gateway.invocations")


async def deliver(rt: Runtime, invocation_id: str) -> None:
    """Claim a PENDING invocation, deliver it, record the outcome."""
    # The claim returns the row; the subscription and trigger come from the catalog's cache.
    inv = await rt.invocations.claim(invocation_id, utcnow())
    if inv is None:
        return
    about = {"invocationId": inv.id, "triggerId": inv.trigger_id, "subscriptionId": inv.subscription_id}
    with (
        logs.about(trackingId=inv.tracking_id, **about),
        traces.span("gateway.deliver", parent=inv.traceparent) as span,
    ):
        span.set_attributes({"gateway.invocation.id": inv.id, "gateway.attempt": inv.attempts})
        await _deliver(rt, inv)


async def _deliver(rt: Runtime, inv: Invocation) -> None:
    try:
        run = await runs.context(rt.invocations, inv)
        target = await _target(rt, inv)
        # Its subscription's limit first (given back QUEUED if it is reached), then its
        # circuit: a probe this delivery takes must be sent.
        if target is not None and not await concurrency.admit(rt, target[0], inv):
            return
        held_until = None if target is None else await circuit.admit(rt, target[0], utcnow())
    except BaseException:
        # Nothing was sent: give the claim back rather than leave it to the sweep's grace
        # and spend an attempt (if this fails too, the sweep still delivers it).
        with contextlib.suppress(Exception):
            await rt.invocations.release(inv)
        raise
    if held_until is not None and inv.trigger_type == TriggerType.FIRE_AND_FORGET:
        # The circuit is open: it waits, without spending an attempt.
        await rt.invocations.release(inv, until=held_until)
        return
    started, clock = utcnow(), time.monotonic()
    if held_until is not None and target is not None:
        outcome = _circuit_open(target[0])  # a request-response fails at once
    else:
        outcome = await _send(rt, inv, target, run)
    attempt = AttemptLog(
        started=started,
        duration_ms=round((time.monotonic() - clock) * 1000),
        status_code=outcome.status_code,
        error=outcome.error,
        response_excerpt=outcome.excerpt,
    )
    await _record(rt, inv, outcome, attempt)
    if target is not None and held_until is None:
        await best_effort(
            "counting for the circuit breaker", circuit.observe(rt, target[0], outcome, utcnow())
        )
    if target is not None and target[0].max_concurrency is not None:  # a slot is free
        await best_effort(
            "queueing the next delivery in turn", concurrency.promote(rt, [inv.subscription_id])
        )


def _circuit_open(sub: Subscription) -> Outcome:
    return delivery.failed(
        f"not delivered: the subscription's circuit is open since {timestamp(sub.circuit_since)}, after "
        f"{sub.consecutive_failures} consecutive failed deliveries; a probe delivery goes at "
        f"{timestamp(sub.probe_at)}"
    )


async def _target(rt: Runtime, inv: Invocation) -> tuple[Subscription, Trigger] | None:
    """The invocation's subscription and trigger; None if the subscription was deleted. A
    miss is read again past the cache: another process's change may not have reached it."""
    for fresh in (False, True):
        entry = await rt.catalog.trigger(inv.trigger_id, fresh=fresh)
        sub = None if entry is None else entry.subscription(inv.subscription_id)
        if entry is not None and sub is not None:
            return sub, entry.trigger
    return None


async def _send(
    rt: Runtime, inv: Invocation, target: tuple[Subscription, Trigger] | None, run: dict[str, Any]
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
    clock = time.monotonic()
    with metrics.IN_FLIGHT.track_inprogress():
        outcome = await http.send(
            rt.http, request, time_limit=settings.response_timeout, max_bytes=settings.max_response_bytes
        )
    metrics.delivered(inv, outcome.kind, time.monotonic() - clock)
    if outcome.kind == "completed" and outcome.output is not None:
        problems = await json_schema.check(trigger.output_schema, outcome.output)
        if problems:
            return delivery.failed(
                "the output does not match the trigger's outputSchema: " + "; ".join(problems)
            )
    return outcome


_STATUS_OF = {"awaiting": Status.AWAITING_CALLBACK, "completed": Status.COMPLETED, "failed": Status.FAILED}


async def _record(rt: Runtime, inv: Invocation, outcome: Outcome, attempt: AttemptLog) -> None:
    now = utcnow()
    status = _STATUS_OF[outcome.kind]
    output, retry_at = outcome.output, _retry_at(rt, inv, outcome, now)
    if retry_at is not None:
        status = Status.RETRYING
    fallback = None
    if status == Status.FAILED and inv.trigger_type == TriggerType.REQUEST_RESPONSE:
        fallback = await fallbacks.output_for(rt, inv.trigger_id)
        if fallback is not None:
            status, output = Status.COMPLETED, fallback
    # A callback may have completed it while we waited for the acknowledgement, and only
    # this attempt may record its outcome (not one that a sweep started again).
    changed = await rt.invocations.record(
        inv, status, output, outcome.error, now, attempt, retry_at, fallback=fallback is not None
    )
    if not changed:
        log.info("invocation=%s outcome=%s not recorded: it moved on meanwhile", inv.id, outcome.kind)
        return
    if outcome.kind == "awaiting":
        await best_effort("scheduling expiry", rt.queue.schedule_expiry(inv.id, inv.deadline))
    elif retry_at is None:  # the sweep queues a retry when it is due
        inv.status = status  # as recorded
        await after_final(rt, [inv])
    if outcome.failure is Failure.GONE:
        reason = f"the subscriber answered 410 Gone to invocation {inv.id} at {timestamp(now)}"
        await best_effort(
            "disabling a gone subscription", subscriptions.disable(rt, inv.subscription_id, reason)
        )
    log.info(
        "invocation=%s subscription=%s attempt=%d outcome=%s%s%s",
        inv.id,
        inv.subscription_id,
        inv.attempts,
        outcome.kind,
        f" error={outcome.error!r}" if outcome.error else "",
        f" retry_at={timestamp(retry_at)}" if retry_at else "",
    )


def _retry_at(rt: Runtime, inv: Invocation, outcome: Outcome, now: datetime) -> datetime | None:
    settings = rt.settings
    policy = retries.RetryPolicy(settings.retry_delays, settings.retry_jitter, settings.retry_after_max)
    return retries.next_attempt(
        policy,
        outcome,
        fire_and_forget=inv.trigger_type == TriggerType.FIRE_AND_FORGET,
        attempt=inv.attempts - inv.attempts_at_replay,
        deadline=inv.deadline,
        now=now,
        draw=random.random(),  # noqa: S311 (jitter, not a secret)
    )
