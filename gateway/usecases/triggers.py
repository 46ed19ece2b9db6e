"""The trigger catalog: define, read, list, change, remove, and load a catalog file."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import yaml
from pydantic import ValidationError
from sqlalchemy import func
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from gateway.adapters.database import listing
from gateway.adapters.database.rows import get_existing, lock_row
from gateway.domain import cron, json_schema
from gateway.domain.clock import utcnow
from gateway.domain.documents import TriggerIn
from gateway.domain.errors import Conflict, Invalid, describe_validation_error
from gateway.domain.jsonpath_filter import FilterSyntaxError, tenant_path
from gateway.domain.list_query import Listable, ListQuery
from gateway.domain.model import ANY_OPTION, Subscription, Trigger, TriggerType
from gateway.runtime import Runtime
from gateway.usecases import catalog

LISTABLE = Listable(
    filterable={"id": frozenset({"eq", "in", "sw"}), "type": frozenset({"eq"})}, sortable=("id", "name")
)
_COLUMNS = {"id": Trigger.id, "type": Trigger.type, "name": Trigger.name}


async def check(spec: TriggerIn) -> None:
    """The schemas must be JSON Schemas and the examples must satisfy them."""
    problems: list[str] = []
    for field, schema in (("inputSchema", spec.inputSchema), ("outputSchema", spec.outputSchema)):
        if schema is not None:
            problems += [f"{field} {p}" for p in await json_schema.check_schema(schema)]
    if problems:
        raise Invalid("a schema is not a valid JSON Schema", causes=problems)
    if spec.fallbackOutput is not None and spec.type != TriggerType.REQUEST_RESPONSE:
        raise Invalid("fallbackOutput is for REQUEST_RESPONSE triggers: a fire-and-forget one has no output")
    for field, schema, example in (
        ("exampleInput", spec.inputSchema, spec.exampleInput),
        ("exampleOutput", spec.outputSchema, spec.exampleOutput),
        ("fallbackOutput", spec.outputSchema, spec.fallbackOutput),
    ):
        if schema is not None and example is not None:
            problems += [f"{field} {p}" for p in await json_schema.check(schema, example)]
    if problems:
        raise Invalid("an example does not match its schema", causes=problems)
    _check_run_options(spec)


def _check_run_options(spec: TriggerIn) -> None:
    options = spec.options or []
    if len(set(options)) != len(options) or ANY_OPTION in options:
        raise Invalid(
            f"options must be distinct and must not include {ANY_OPTION}, which every trigger offers"
        )
    if spec.tenantIdPath is not None:
        try:
            tenant_path(spec.tenantIdPath)
        except FilterSyntaxError as exc:
            raise Invalid(f"tenantIdPath is not a JSONPath such as $.tenant.id: {exc}") from None
    names = [schedule.name for schedule in spec.schedules or []]
    if len(set(names)) != len(names):
        raise Invalid("schedules must have distinct names")
    for i, schedule in enumerate(spec.schedules or []):
        cron.check(schedule.cron, schedule.timezone, f"schedules[{i}]")


def apply(trigger: Trigger, spec: TriggerIn) -> None:
    trigger.name = spec.name
    trigger.type = spec.type
    trigger.description = spec.description
    trigger.input_schema = spec.inputSchema
    trigger.example_input = spec.exampleInput
    trigger.output_schema = spec.outputSchema
    trigger.example_output = spec.exampleOutput
    trigger.options = spec.options
    trigger.tenant_id_path = spec.tenantIdPath
    trigger.schedules = [s.model_dump() for s in spec.schedules] if spec.schedules is not None else None
    trigger.custom_schedules = spec.customSchedules
    trigger.schedules_paused_by_default = spec.schedulesPausedByDefault
    trigger.fallback_output = spec.fallbackOutput


async def _follow(session: AsyncSession, trigger: Trigger, spec: TriggerIn) -> None:
    """Subscriptions keep what the trigger now offers: an option or schedule they use cannot
    be removed, and a schedule whose cron or time zone changed moves them to its new ticks."""
    query = select(Subscription).where(col(Subscription.trigger_id) == trigger.id)
    schedules = {s.name: s for s in spec.schedules or []}
    options = {ANY_OPTION, *(spec.options or [])}
    now = utcnow()
    for sub in (await session.execute(query)).scalars():
        unknown = set(sub.options or [ANY_OPTION]) - options
        if unknown:
            raise Conflict(
                f"subscription {sub.id} uses the option(s) {', '.join(sorted(unknown))}; change it first"
            )
        if sub.schedule_name is None:
            continue
        schedule = schedules.get(sub.schedule_name)
        if schedule is None:
            raise Conflict(
                f"subscription {sub.id} runs on the schedule {sub.schedule_name!r}; give it another first"
            )
        if (schedule.cron, schedule.timezone) != (sub.schedule_cron, sub.schedule_timezone):
            sub.schedule_cron, sub.schedule_timezone = schedule.cron, schedule.timezone
            if sub.next_fire_at is not None:
                sub.next_fire_at = cron.next_tick(schedule.cron, schedule.timezone, now)


async def get(rt: Runtime, trigger_id: str) -> Trigger:
    async with rt.sessions() as session:
        return await get_existing(session, Trigger, trigger_id)


async def list_page(rt: Runtime, query: ListQuery) -> tuple[Sequence[Trigger], int | None]:
    async with rt.sessions() as session:
        return await listing.page(session, select(Trigger), query, _COLUMNS, [Trigger.id])


async def create(rt: Runtime, spec: TriggerIn) -> Trigger:
    await check(spec)
    async with rt.sessions() as session:
        if await session.get(Trigger, spec.id) is not None:
            raise Conflict(f"trigger {spec.id!r} already exists; PUT /triggers/{spec.id} changes it")
        trigger = Trigger(id=spec.id, name=spec.name, type=spec.type, created=utcnow())
        apply(trigger, spec)
        session.add(trigger)
        await session.commit()
    await catalog.changed(rt)
    return trigger


async def replace(rt: Runtime, spec: TriggerIn) -> Trigger:
    await check(spec)
    async with rt.sessions() as session:
        trigger = await locked(session, spec.id)
        if spec.type == TriggerType.REQUEST_RESPONSE and await _subscription_count(session, spec.id) > 1:
            raise Conflict(
                "a REQUEST_RESPONSE trigger has at most one subscription; "
                "delete the others before changing its type"
            )
        await _follow(session, trigger, spec)
        apply(trigger, spec)
        await session.commit()
    await catalog.changed(rt)
    return trigger


async def delete(rt: Runtime, trigger_id: str) -> None:
    async with rt.sessions() as session:
        trigger = await locked(session, trigger_id)
        count = await _subscription_count(session, trigger_id)
        if count:
            raise Conflict(f"trigger {trigger_id!r} has {count} subscription(s); delete them first")
        await session.delete(trigger)
        await session.commit()
    await catalog.changed(rt)


async def locked(session: AsyncSession, trigger_id: str, hint: str = "") -> Trigger:
    """The trigger, holding its row lock until the transaction ends, so subscribing and
    changing subscriptions wait for this change, and it for them."""
    await lock_row(session, Trigger, trigger_id)
    return await get_existing(session, Trigger, trigger_id, hint)


async def _subscription_count(session: AsyncSession, trigger_id: str) -> int:
    query = select(func.count()).where(col(Subscription.trigger_id) == trigger_id)
    return int((await session.execute(query)).scalar_one())


async def read_catalog(path: Path) -> list[TriggerIn]:
    """A JSON or YAML file holding a list of triggers (or {"triggers": [...]})."""
    try:
        data = yaml.safe_load(path.read_text())  # noqa: ASYNC240 - at start-up; YAML is a superset of JSON
    except (OSError, yaml.YAMLError) as exc:
        raise ValueError(f"cannot read the triggers file {path}: {exc}") from None
    if isinstance(data, dict) and "triggers" in data:
        data = data["triggers"]
    if not isinstance(data, list):
        raise ValueError(f"the triggers file {path} must hold a list of triggers")
    try:  # YAML also has NaN, infinities and dates, none of which JSON can carry
        json.dumps(data, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"the triggers file {path} holds a value that is not JSON: {exc}") from None
    specs = []
    for i, item in enumerate(data):
        try:
            spec = TriggerIn.model_validate(item)
            await check(spec)
        except ValidationError as exc:
            raise ValueError(
                f"{path}: trigger #{i + 1}: " + "; ".join(describe_validation_error(exc))
            ) from None
        except Invalid as exc:
            raise ValueError(f"{path}: trigger #{i + 1}: {exc.message}: {'; '.join(exc.causes)}") from None
        specs.append(spec)
    return specs


async def load_catalog(rt: Runtime, path: Path) -> int:
    """Create or update every trigger of the file; triggers not in it are left alone."""
    specs = await read_catalog(path)
    async with rt.sessions() as session:
        for spec in specs:
            trigger = await session.get(Trigger, spec.id)
            if trigger is None:
                trigger = Trigger(id=spec.id, name=spec.name, type=spec.type, created=utcnow())
                session.add(trigger)
            else:
                await _check_catalog_change(session, path, trigger, spec)
            apply(trigger, spec)
        await session.commit()
    await catalog.changed(rt)
    return len(specs)


async def _check_catalog_change(session: AsyncSession, path: Path, trigger: Trigger, spec: TriggerIn) -> None:
    if spec.type == TriggerType.REQUEST_RESPONSE:
        count = await _subscription_count(session, spec.id)
        if count > 1:
            raise ValueError(
                f"{path}: trigger {spec.id!r} is REQUEST_RESPONSE there but has {count} "
                "subscriptions, and a REQUEST_RESPONSE trigger has at most one; "
                "delete the others first"
            )
    try:
        await _follow(session, trigger, spec)
    except Conflict as exc:
        raise ValueError(f"{path}: trigger {spec.id!r}: {exc.message}") from None
