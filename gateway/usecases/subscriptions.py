"""Subscriptions: subscribe, read, list, change, rotate the signing secret, unsubscribe.
Credentials are write-only: stored encrypted, never shown."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import jsonpatch
from pydantic import ValidationError
from sqlalchemy import func, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from gateway.adapters.database import listing
from gateway.adapters.database.rows import get_existing, lock_row
from gateway.domain import cron, rotation, signing, urls
from gateway.domain.clock import parse_deadline, timestamp, utcnow
from gateway.domain.documents import ScheduleIn, SubscriptionIn, subscription_out
from gateway.domain.errors import Conflict, Invalid, describe_validation_error
from gateway.domain.jsonpath_filter import FilterSyntaxError, compile_filter
from gateway.domain.list_query import Listable, ListQuery
from gateway.domain.model import ANY_OPTION, AuthType, Subscription, Trigger, TriggerType
from gateway.runtime import Runtime, best_effort
from gateway.usecases import catalog, raise_trigger
from gateway.usecases.builtin import SUBSCRIPTION_DISABLED

log = logging.getLogger("gateway.subscriptions")

MAX_SUBSCRIPTIONS = {TriggerType.REQUEST_RESPONSE: 1, TriggerType.FIRE_AND_FORGET: 50}
IMMUTABLE_PATHS = ("/id", "/triggerId", "/triggerName", "/type", "/created", "/modified")
MAX_PATCH_OPERATIONS = 50
LISTABLE = Listable(
    filterable={
        "id": frozenset({"eq", "in"}),
        "triggerId": frozenset({"eq", "in"}),
        "type": frozenset({"eq"}),
    },
    sortable=("name", "triggerId", "triggerName", "created"),
)
_COLUMNS = {
    "id": Subscription.id,
    "triggerId": Subscription.trigger_id,
    "type": Subscription.type,
    "name": Subscription.name,
    "triggerName": Trigger.name,
    "created": Subscription.created,
}
# A subscription with the name of its trigger (None if the trigger is gone), as documents show it.
Named = tuple[Subscription, str | None]


async def create(rt: Runtime, spec: SubscriptionIn) -> tuple[Subscription, str, str]:
    """Save a new subscription; also return its signing secret, which is shown only now."""
    if spec.triggerId is None:
        raise Invalid("triggerId is required; GET /triggers lists the triggers")
    # Before the transaction: resolving the host may take seconds, and the trigger's lock
    # (SQLite: the database's one write lock) must not wait on DNS.
    await rt.targets.check_url(spec.httpConfig.url)
    async with rt.sessions() as session:
        trigger = await _lock_trigger(session, spec.triggerId)
        limit = MAX_SUBSCRIPTIONS[TriggerType(trigger.type)]
        count_query = select(func.count()).where(col(Subscription.trigger_id) == trigger.id)
        if (await session.execute(count_query)).scalar_one() >= limit:
            raise Invalid(
                f"trigger {trigger.id!r} is {trigger.type} and already has {limit} subscription(s), "
                "its maximum; delete one or change it with PUT"
            )
        now = utcnow()
        sub = Subscription(
            id=str(uuid.uuid4()),
            trigger_id=trigger.id,
            created=now,
            modified=now,
            name="",
            url="",
            dispatch_mode="",
        )
        _apply(rt, sub, spec, trigger)
        secret = signing.new_secret()
        sub.signing_secret = rt.keys.encrypt(secret)
        session.add(sub)
        await session.commit()
    await catalog.changed(rt)
    return sub, trigger.name, secret


async def _lock_trigger(session: AsyncSession, trigger_id: str) -> Trigger:
    # The trigger's row lock, so two concurrent subscribes cannot both pass the count check.
    await lock_row(session, Trigger, trigger_id)
    trigger = await session.get(Trigger, trigger_id)
    if trigger is None:  # a 400, not a 404: the request names it in its body
        raise Invalid(f"trigger {trigger_id!r} does not exist; GET /triggers lists the triggers")
    return trigger


def _apply(rt: Runtime, sub: Subscription, spec: SubscriptionIn, trigger: Trigger) -> None:
    try:
        parse_deadline(spec.responseDeadline, rt.settings.max_response_deadline)
    except ValueError as exc:
        raise Invalid(str(exc)) from None
    if spec.filter is not None:
        try:
            compile_filter(spec.filter)
        except FilterSyntaxError as exc:
            raise Invalid(f"filter is not a valid JSONPath expression: {exc}") from None
    http = spec.httpConfig
    credential, user = _credential(rt, sub, spec)
    offered = {ANY_OPTION, *(trigger.options or [])}
    unknown = [option for option in spec.options if option not in offered]
    if unknown:
        raise Invalid(
            f"trigger {trigger.id!r} has no option(s) {', '.join(unknown)}; "
            f"choose from {', '.join(sorted(offered))}"
        )
    _apply_schedule(sub, spec, trigger)
    sub.options = list(dict.fromkeys(spec.options))
    sub.debounce = spec.debounce
    sub.name = spec.name
    sub.description = spec.description
    if spec.enabled and not sub.enabled:
        # Enabled again: the gateway's reason no longer holds, and its failures start afresh
        # (else the first failure after days disabled would disable it again at once).
        sub.disabled_reason = None
        sub.consecutive_failures, sub.failing_since = 0, None
        sub.circuit_open, sub.probe_at = False, None
    sub.enabled = spec.enabled
    sub.response_deadline = spec.responseDeadline
    sub.filter = spec.filter
    sub.url, sub.url_query = _url(rt, sub, http.url)
    sub.dispatch_mode = http.httpDispatchMode
    sub.auth_type = http.httpAuthenticationType
    sub.max_concurrency = http.maxConcurrency
    sub.basic_user = user
    sub.credential = credential
    sub.modified = utcnow()


def _apply_schedule(sub: Subscription, spec: SubscriptionIn, trigger: Trigger) -> None:
    """Set the schedule; its next tick moves only when the schedule, its pause or the
    subscription's enabling changes, so a document sent back unchanged keeps its ticks."""
    schedule = spec.schedule
    if schedule is None:
        sub.schedule_name = sub.schedule_cron = sub.schedule_timezone = sub.schedule_tenant_id = None
        sub.schedule_paused, sub.next_fire_at = False, None
        return
    if schedule.option is not None:
        cron_string, timezone = _offered_schedule(sub, schedule, trigger)
    elif schedule.cron is None:
        raise Invalid("schedule needs an option (one of the trigger's schedules) or, where allowed, a cron")
    elif not trigger.custom_schedules:
        offered = ", ".join(s["name"] for s in trigger.schedules or []) or "none"
        raise Invalid(
            f"trigger {trigger.id!r} does not allow custom schedules; give schedule.option, one of: {offered}"
        )
    else:
        cron_string, timezone = schedule.cron, schedule.timezone or "UTC"
        cron.check(cron_string, timezone, "schedule")
    new = sub.schedule_cron is None
    paused = schedule.paused
    if paused is None:
        paused = trigger.schedules_paused_by_default if new else sub.schedule_paused
    moved = (cron_string, timezone) != (sub.schedule_cron, sub.schedule_timezone)
    enabled_now = spec.enabled and not sub.enabled
    if paused:
        sub.next_fire_at = None
    elif moved or enabled_now or sub.next_fire_at is None:
        sub.next_fire_at = cron.next_tick(cron_string, timezone, utcnow())
    sub.schedule_name = schedule.option
    sub.schedule_cron, sub.schedule_timezone = cron_string, timezone
    sub.schedule_tenant_id = schedule.tenantId
    sub.schedule_paused = paused


def _offered_schedule(sub: Subscription, schedule: ScheduleIn, trigger: Trigger) -> tuple[str, str]:
    offered = {s["name"]: s for s in trigger.schedules or []}
    chosen = offered.get(schedule.option or "")
    if chosen is None:
        names = ", ".join(offered) or "none"
        raise Invalid(f"trigger {trigger.id!r} has no schedule {schedule.option!r}; its schedules: {names}")
    # The option sets cron and time zone. Given ones may only repeat the option's or the
    # current ones (a document read, edited and sent back), so a changed cron is not lost.
    for field, given, current in (
        ("cron", schedule.cron, sub.schedule_cron),
        ("timezone", schedule.timezone, sub.schedule_timezone),
    ):
        if given is not None and given not in (chosen[field], current):
            raise Invalid(
                f"schedule.{field} is set by the option {schedule.option!r}; leave it out, "
                "or leave out the option to give a custom cron"
            )
    return chosen["cron"], chosen["timezone"]


def _url(rt: Runtime, sub: Subscription, url: str) -> tuple[str, str | None]:
    """The URL to store as shown, and its query encrypted. The URL as GET shows it (values
    masked) keeps the stored query, so a document read, edited and sent back loses nothing."""
    if url == sub.url:
        return sub.url, sub.url_query
    shown, query = urls.split(url)
    return shown, None if query is None else rt.keys.encrypt(query)


async def seal_url_queries(rt: Runtime) -> int:
    """Move the query strings that URLs saved before they were kept encrypted still hold in
    plain text out of the url column (at start-up, where the key is known). Safe to run in
    many processes at once: each row changes only while it still holds its plain query."""
    query = select(Subscription.id, Subscription.url).where(
        col(Subscription.url).contains("?"), col(Subscription.url_query).is_(None)
    )
    sealed = 0
    async with rt.sessions() as session:
        for subscription_id, url in (await session.execute(query)).all():
            shown, plain = urls.split(url)
            if plain is None:
                continue
            change = (
                update(Subscription)
                .where(col(Subscription.id) == subscription_id, col(Subscription.url) == url)
                .values(url=shown, url_query=rt.keys.encrypt(plain))
            )
            sealed += (await (await session.connection()).execute(change)).rowcount
        await session.commit()
    if sealed:
        await catalog.changed(rt)
    return sealed


def _credential(rt: Runtime, sub: Subscription, spec: SubscriptionIn) -> tuple[str | None, str | None]:
    """The encrypted secret and user name to store. A secret left out (as GET shows it: null)
    keeps the stored one, so a document read, edited and sent back loses nothing."""
    http = spec.httpConfig
    keep = sub.auth_type == http.httpAuthenticationType and sub.credential is not None
    if http.httpAuthenticationType == AuthType.BASIC_AUTH:
        basic = http.basicAuthConfig
        if basic is None:
            raise Invalid("httpConfig.basicAuthConfig {userName, password} is required for BASIC_AUTH")
        if basic.password:
            return rt.keys.encrypt(basic.password), basic.userName
        if keep:
            return sub.credential, basic.userName
        raise Invalid("httpConfig.basicAuthConfig.password is required for BASIC_AUTH")
    if http.httpAuthenticationType == AuthType.BEARER_TOKEN:
        bearer = http.bearerTokenAuthConfig
        if bearer is not None and bearer.bearerToken:
            return rt.keys.encrypt(bearer.bearerToken), None
        if keep:
            return sub.credential, None
        raise Invalid("httpConfig.bearerTokenAuthConfig.bearerToken is required for BEARER_TOKEN")
    return None, None


async def get(rt: Runtime, subscription_id: str) -> Named:
    async with rt.sessions() as session:
        return await _named(session, await get_existing(session, Subscription, subscription_id))


async def _named(session: AsyncSession, sub: Subscription) -> Named:
    trigger = await session.get(Trigger, sub.trigger_id)
    return sub, trigger.name if trigger else None


async def list_page(rt: Runtime, query: ListQuery) -> tuple[list[Named], int | None]:
    rows = select(Subscription).join(Trigger, col(Trigger.id) == col(Subscription.trigger_id), isouter=True)
    async with rt.sessions() as session:
        subs, total = await listing.page(session, rows, query, _COLUMNS, [Subscription.created])
        trigger_ids = {s.trigger_id for s in subs}
        names_query = select(Trigger.id, Trigger.name).where(col(Trigger.id).in_(trigger_ids))
        names = {trigger_id: name for trigger_id, name in (await session.execute(names_query)).all()}
    return [(sub, names.get(sub.trigger_id)) for sub in subs], total


async def replace(rt: Runtime, subscription_id: str, spec: SubscriptionIn) -> Named:
    return await _change(rt, subscription_id, lambda _sub, _name: spec)


async def patch(rt: Runtime, subscription_id: str, operations: Any) -> Named:
    """RFC 6902 JSON Patch applied to the subscription's document, then saved as a PUT."""
    if not isinstance(operations, list) or not operations:
        raise Invalid("send a JSON Patch: a non-empty array of operations")
    if len(operations) > MAX_PATCH_OPERATIONS:
        raise Invalid(f"a patch may hold at most {MAX_PATCH_OPERATIONS} operations")
    for op in operations:
        path = op.get("path", "") if isinstance(op, dict) else ""
        if not isinstance(path, str):
            raise Invalid(f"a patch operation's path must be a JSON Pointer string, not {path!r}")
        if any(path == p or path.startswith(p + "/") for p in IMMUTABLE_PATHS):
            raise Invalid(f"{path} cannot be changed")

    def patched(sub: Subscription, trigger_name: str | None) -> SubscriptionIn:
        document = subscription_out(sub, trigger_name)
        try:
            result = jsonpatch.apply_patch(document, operations)
        except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException, TypeError, ValueError) as exc:
            raise Invalid(f"the patch cannot be applied: {exc}") from None
        try:
            return SubscriptionIn.model_validate(result)
        except ValidationError as exc:
            causes = describe_validation_error(exc)
            raise Invalid("the patched subscription is invalid", causes=causes) from None

    return await _change(rt, subscription_id, patched)


async def _change(
    rt: Runtime, subscription_id: str, new_spec: Callable[[Subscription, str | None], SubscriptionIn]
) -> Named:
    """Read, change and save in one transaction, holding the row's lock, so concurrent PUTs
    and PATCHes never lose each other."""
    # A new URL is checked first, without the lock: resolving its host may take seconds, and
    # the lock (SQLite: the database's one write lock) must not wait on DNS. An unchanged URL
    # was checked when saved, and every delivery checks the address it connects to anyway.
    current, current_trigger_name = await get(rt, subscription_id)
    checked_url = new_spec(current, current_trigger_name).httpConfig.url
    if checked_url != current.url:
        await rt.targets.check_url(checked_url)
    async with rt.sessions() as session:
        # The trigger's lock first, as a trigger's change takes it before its subscriptions'
        # rows: the options and schedules checked here cannot be removed meanwhile.
        trigger = await _lock_trigger(session, current.trigger_id)
        sub, trigger_name = await _locked(session, subscription_id)
        spec = new_spec(sub, trigger_name)
        if spec.httpConfig.url not in (sub.url, checked_url):
            # Only a patch whose URL depends on a field changed meanwhile (a copy or move) gets
            # here; checking under the lock is what the first read avoids.
            raise Conflict("the subscription changed while its new URL was checked; send the patch again")
        if spec.triggerId is not None and spec.triggerId != sub.trigger_id:
            raise Invalid("triggerId cannot change; delete this subscription and create another")
        _apply(rt, sub, spec, trigger)
        await session.commit()
    await catalog.changed(rt)
    return sub, trigger_name


async def rotate_secret(rt: Runtime, subscription_id: str) -> tuple[Subscription, str | None, str]:
    """A new signing secret; the current one keeps signing for the grace period (every
    delivery carries both signatures), so a subscriber can deploy the new one without
    missing a delivery."""
    async with rt.sessions() as session:
        sub, trigger_name = await _locked(session, subscription_id)
        secret = signing.new_secret()
        now = utcnow()
        grace = timedelta(seconds=rt.settings.rotation_grace)
        rotated = rotation.rotate(sub.signing_secret, rt.keys.encrypt(secret), now, grace)
        sub.signing_secret, sub.previous_signing_secret, sub.previous_signing_secret_expires = rotated
        sub.modified = now
        await session.commit()
    await catalog.changed(rt)
    return sub, trigger_name, secret


async def disable(rt: Runtime, subscription_id: str, reason: str) -> None:
    """The gateway's own disabling (a subscriber that answered 410 Gone, or that has failed
    for too long), saying why; operators hear of it through the built-in fire-and-forget
    trigger gateway:subscription-disabled."""
    now = utcnow()
    async with rt.sessions() as session:
        result = await session.execute(
            update(Subscription)
            .where(col(Subscription.id) == subscription_id, col(Subscription.enabled))
            .values(enabled=False, disabled_reason=reason, modified=now)
            .returning(col(Subscription.name), col(Subscription.trigger_id))
        )
        disabled = result.one_or_none()
        await session.commit()
    if disabled is None:
        return
    log.warning("subscription=%s disabled: %s", subscription_id, reason)
    await catalog.changed(rt)
    name, trigger_id = disabled
    notice = {
        "subscriptionId": subscription_id,
        "subscriptionName": name,
        "triggerId": trigger_id,
        "reason": reason,
        "disabledAt": timestamp(now),
    }
    await best_effort(
        "raising gateway:subscription-disabled", raise_trigger.start(rt, SUBSCRIPTION_DISABLED, notice, {})
    )


async def _locked(session: AsyncSession, subscription_id: str) -> Named:
    """The subscription and its trigger's name, holding the row's lock until the transaction ends."""
    await lock_row(session, Subscription, subscription_id)
    return await _named(session, await get_existing(session, Subscription, subscription_id))


async def delete(rt: Runtime, subscription_id: str) -> None:
    async with rt.sessions() as session:
        await session.delete(await get_existing(session, Subscription, subscription_id))
        await session.commit()
    await catalog.changed(rt)
