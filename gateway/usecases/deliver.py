"""Delivering one invocation: claim it (PENDING -> DISPATCHING), send it, record the outcome.

Safe to run twice for one invocation (a queue delivers at least once): only the claim's
winner sends, and only the attempt that sent may record its outcome.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any

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
    # The claim returns the row; the subscription and trigger come from the catalog's cache.
    inv = await rt.invocations.claim(invocation_id, utcnow())
    if inv is None:
        return
    try:
        run = await runs.context(rt.invocations, inv)
        target = await _target(rt, inv)
    except BaseException:
        # Nothing was sent: give the claim back rather than leave it to the sweep's grace
        # and spend an attempt (if this fails too, the sweep still delivers it).
        with contextlib.suppress(Exception):
            await rt.invocations.release(inv)
        raise
    outcome = await _send(rt, inv, target, run)
    await _record(rt, inv, outcome)


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
    outcome = await http.send(
        rt.http, request, time_limit=settings.response_timeout, max_bytes=settings.max_response_bytes
    )
    if outcome.kind == "completed" and outcome.output is not None:
        problems = await json_schema.check(trigger.output_schema, outcome.output)
        if problems:
            return delivery.failed(
                "the output does not match the trigger's outputSchema: " + "; ".join(problems)
            )
    return outcome


_STATUS_OF = {"awaiting": Status.AWAITING_CALLBACK, "completed": Status.COMPLETED, "failed": Status.FAILED}


async def _record(rt: Runtime, inv: Invocation, outcome: Outcome) -> None:
    status = _STATUS_OF[outcome.kind]
    # A callback may have completed it while we waited for the acknowledgement, and only
    # this attempt may record its outcome (not one that a sweep started again).
    changed = await rt.invocations.record(inv, status, outcome.output, outcome.error, utcnow())
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
