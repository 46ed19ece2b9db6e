"""Raising a trigger: the invocations that a start, a test, a manual run, a webhook or a
schedule creates. Each is committed before anything is queued; what is PENDING is then queued for
delivery, and what a debounced subscription holds WAITING may start its tenant's next run.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from gateway.adapters.database.rows import missing
from gateway.adapters.queue import DispatchJob
from gateway.domain import json_schema
from gateway.domain.clock import parse_deadline, utcnow
from gateway.domain.errors import Conflict, Invalid
from gateway.domain.jsonpath_filter import FilterSyntaxError, compile_filter, tenant_path
from gateway.domain.model import (
    ANY_OPTION,
    Invocation,
    InvocationType,
    NewInvocation,
    Source,
    Status,
    Subscription,
    Trigger,
)
from gateway.runtime import Runtime, best_effort
from gateway.telemetry import logs, metrics, traces
from gateway.usecases import catalog, concurrency, runs

log = logging.getLogger("gateway.start")


async def start(
    rt: Runtime,
    trigger_id: str,
    input: dict[str, Any] | None,
    content_json: dict[str, Any],
    *,
    test: bool = False,
    subscription_ids: Sequence[str] | None = None,
    tenant_id: str | None = None,
    option: str | None = None,
    caused_by: str | None = None,
) -> list[Started]:
    """Create one invocation per matching subscription, commit, then queue their delivery.
    Reads (the trigger and its subscriptions from the catalog's cache), then checks the input
    with no session open (a check too costly for the event loop runs in a thread, and must
    not hold SQLite's one connection meanwhile), then writes."""
    with traces.span("gateway.start") as span:
        span.set_attribute("gateway.trigger.id", trigger_id)
        entry = await rt.catalog.trigger(trigger_id)
        if entry is not None and not set(subscription_ids or ()) <= {sub.id for sub in entry.subscriptions}:
            entry = await rt.catalog.trigger(trigger_id, fresh=True)  # one may have just been created
        if entry is None:
            raise missing(Trigger, trigger_id, "; GET /triggers lists them")
        trigger = entry.trigger
        subscriptions = _subscriptions_for(entry, test, subscription_ids)
        chain = await _chain(rt, caused_by)
        if input is None:
            if trigger.example_input is None:
                raise Invalid(f"give an input: trigger {trigger_id!r} has no exampleInput")
            input = trigger.example_input
        problems = await json_schema.check(trigger.input_schema, input)
        if problems:
            raise Invalid("input does not match the trigger's inputSchema", causes=problems)
        if option is not None and option not in (trigger.options or []):
            offered = ", ".join(trigger.options or []) or "none"
            raise Invalid(f"trigger {trigger_id!r} has no option {option!r}; its options: {offered}")
        tenant = tenant_id if tenant_id is not None else tenant_of(trigger, input)
        origin = Origin(Source.API, tenant, option, chain)
        now = utcnow()
        rows = [
            _row(rt, trigger, sub, input, content_json, origin, now, test=test)
            for sub in subscriptions
            if _matches(sub, input, option)
        ]
        if rows:
            await rt.invocations.insert(rows)
        await queue(rt, rows)
        return [Started(row["id"], trigger.id, content_json) for row in rows]


async def raise_run(
    rt: Runtime,
    subscription_id: str,
    source: Source,
    payload: Any,
    *,
    headers: dict[str, str] | None = None,
    tenant_id: str | None = None,
    caused_by: str | None = None,
) -> Started:
    """One invocation for one subscription, raised by a webhook or a manual run: no filter
    or option applies."""
    with traces.span("gateway.run") as span:
        span.set_attribute("gateway.subscription.id", subscription_id)
        chain = await _chain(rt, caused_by)  # before the session: the store uses its connection
        async with rt.sessions() as session:
            target = (
                await session.execute(
                    select(Subscription, Trigger)
                    .join(Trigger, col(Trigger.id) == col(Subscription.trigger_id))
                    .where(col(Subscription.id) == subscription_id)
                )
            ).one_or_none()
            if target is None:
                raise missing(Subscription, subscription_id)
            sub, trigger = target
            if not sub.enabled:
                raise Conflict(
                    f"subscription {subscription_id} is disabled; enable it first (PATCH /enabled)"
                )
            origin = Origin(source, tenant_id, None, chain, headers)
            row = run_row(rt, trigger, sub, payload, origin, utcnow())
            await insert_invocations(session, [row])
            await session.commit()
        await queue(rt, [row])
        return Started(row["id"], trigger.id, {})


async def insert_invocations(session: AsyncSession, rows: Sequence[NewInvocation]) -> None:
    # Rows as plain dicts (see NewInvocation): nothing reads them back as ORM objects.
    await (await session.connection()).execute(insert(Invocation), list(rows))


def run_row(
    rt: Runtime, trigger: Trigger, sub: Subscription, payload: Any, origin: Origin, now: datetime
) -> NewInvocation:
    """The invocation of a run of one subscription (webhook, cron, manual). Its tenant, if
    not given, is what the trigger's tenantIdPath finds in the payload."""
    # The body a subscriber gets is a JSON object: other payloads arrive under "body".
    input = payload if isinstance(payload, dict) else {} if payload is None else {"body": payload}
    if origin.tenant_id is None:
        origin = origin._replace(tenant_id=tenant_of(trigger, input))
    return _row(rt, trigger, sub, input, {}, origin, now)


class Origin(NamedTuple):
    """How and for whom a trigger was raised: the same for all its invocations."""

    source: Source
    tenant_id: str | None
    option: str | None
    # The invocations whose deliveries caused this start (the loop guard), or None.
    chain: list[str] | None
    headers: dict[str, str] | None = None


def _row(
    rt: Runtime,
    trigger: Trigger,
    sub: Subscription,
    input: dict[str, Any],
    content_json: dict[str, Any],
    origin: Origin,
    now: datetime,
    *,
    test: bool = False,
) -> NewInvocation:
    row: NewInvocation = {
        "id": str(uuid.uuid4()),
        "trigger_id": trigger.id,
        "trigger_type": trigger.type,
        "subscription_id": sub.id,
        "subscription_name": sub.name,
        "dispatch_mode": sub.dispatch_mode,
        "type": InvocationType.TEST if test else InvocationType.REAL_TIME,
        "status": Status.PENDING,
        "input": input,
        "content_json": content_json,
        "attempts": 0,
        "created": now,
        "deadline": now + parse_deadline(sub.response_deadline),
        "queued_at": now,
        "source": origin.source,
        "tenant_id": origin.tenant_id,
        "option": origin.option,
        "headers": origin.headers,
        "chain": origin.chain,
        "tracking_id": logs.tracking_id(),
        "traceparent": traces.current_traceparent(),
    }
    chain, limit = origin.chain or [], rt.settings.max_trigger_depth
    if len(chain) > limit:
        row["status"] = Status.SUPPRESSED
        row["completed"] = now
        row["error"] = (
            f"suppressed: raised by the delivery of invocation {chain[-1]} "
            f"({len(chain)} deep; GATEWAY_MAX_TRIGGER_DEPTH is {limit})"
        )
    elif sub.debounce and not test:
        row["status"] = Status.WAITING
    elif sub.max_concurrency is not None:
        row["status"] = Status.QUEUED  # it goes when a slot is free (usecases/concurrency)
    return row


async def queue(rt: Runtime, rows: Sequence[NewInvocation]) -> None:
    """After the commit: deliver what is pending, and start runs for what now waits."""
    metrics.started((row["trigger_id"], row["dispatch_mode"], row["status"]) for row in rows)
    pending = [DispatchJob(row["id"]) for row in rows if row["status"] == Status.PENDING]
    await best_effort("queueing deliveries", rt.queue.enqueue(pending))
    capped = {row["subscription_id"] for row in rows if row["status"] == Status.QUEUED}
    await best_effort("queueing deliveries in turn", concurrency.promote(rt, capped))
    waiting = [
        runs.Lane(row["subscription_id"], row["tenant_id"]) for row in rows if row["status"] == Status.WAITING
    ]
    await runs.promote_after(rt, waiting)


def tenant_of(trigger: Trigger, input: dict[str, Any]) -> str | None:
    """The tenant the trigger's tenantIdPath finds in the input: a string or number, or None."""
    path = trigger.tenant_id_path
    if path is None:
        return None
    try:
        found = tenant_path(path).findall(input)
    except FilterSyntaxError as exc:  # saved before the gateway ran regexes on RE2
        raise Invalid(
            f"trigger {trigger.id!r} has a tenantIdPath this gateway cannot run ({exc}); "
            f"change it with PUT /triggers/{trigger.id}"
        ) from None
    if not found:
        return None
    value = found[0]
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise Invalid(f"tenantIdPath {path} must find a string or an integer in the input, not {value!r}")
    tenant = str(value)
    if not 1 <= len(tenant) <= 255:
        raise Invalid(f"the tenant id that tenantIdPath {path} finds must be 1 to 255 characters")
    return tenant


async def _chain(rt: Runtime, caused_by: str | None) -> list[str] | None:
    """The invocations behind a start whose request carried the X-Invocation-Id header."""
    if caused_by is None:
        return None
    parent = await rt.invocations.read(caused_by)
    return [*(parent.chain or []), caused_by] if parent is not None else [caused_by]


class Started(NamedTuple):
    """What the producer is told of each invocation it raised."""

    id: str
    trigger_id: str
    content_json: dict[str, Any] | None


def _subscriptions_for(entry: catalog.Entry, test: bool, ids: Sequence[str] | None) -> list[Subscription]:
    """The subscriptions a start goes to: the enabled ones (a test: any), or those named."""
    subscriptions = [sub for sub in entry.subscriptions if test or sub.enabled]
    if ids is not None:
        subscriptions = [sub for sub in subscriptions if sub.id in ids]
        missing = set(ids) - {sub.id for sub in subscriptions}
        if missing:
            raise Invalid(
                f"no subscription of trigger {entry.trigger.id!r} has the id(s) {', '.join(sorted(missing))}"
            )
    return subscriptions


def _matches(sub: Subscription, input: dict[str, Any], option: str | None) -> bool:
    """The trigger option (ANY takes every one, and starts that name none), then the filter."""
    options = sub.options or [ANY_OPTION]
    if ANY_OPTION not in options and option not in options:
        return False
    if sub.filter is None:
        return True
    try:
        return compile_filter(sub.filter).matches(input)
    except FilterSyntaxError as exc:
        # Saved before the gateway ran regexes on RE2 (a lookaround, say): it matches nothing
        # rather than failing every start of the trigger; the log says what to change.
        log.warning("subscription %s has a filter this gateway cannot run (%s); change it", sub.id, exc)
        return False
