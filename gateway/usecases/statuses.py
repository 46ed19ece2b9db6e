"""Reading invocation statuses: one (long-polled until it is final, if asked), or a page."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from datetime import UTC, datetime

from sqlalchemy import func
from sqlmodel import col, select

from gateway.adapters.database import listing
from gateway.adapters.database.rows import missing
from gateway.domain.list_query import Listable, ListQuery
from gateway.domain.model import DeliveryAttempt, Invocation, Status
from gateway.runtime import Runtime

LISTABLE = Listable(
    filterable={
        "triggerId": frozenset({"eq", "in"}),
        "subscriptionId": frozenset({"eq", "in"}),
        "id": frozenset({"eq", "in"}),
        "type": frozenset({"eq"}),
        "status": frozenset({"eq", "in"}),
        "source": frozenset({"eq", "in"}),
        "tenantId": frozenset({"eq", "in"}),
        "runId": frozenset({"eq"}),
    },
    sortable=("triggerId", "subscriptionName", "created", "completed"),
)
_COLUMNS = {
    "id": Invocation.id,
    "triggerId": Invocation.trigger_id,
    "subscriptionId": Invocation.subscription_id,
    "subscriptionName": Invocation.subscription_name,
    "type": Invocation.type,
    "status": Invocation.status,
    "source": Invocation.source,
    "tenantId": Invocation.tenant_id,
    "runId": Invocation.run_id,
    "created": Invocation.created,
    "completed": Invocation.completed,
}


async def get(rt: Runtime, invocation_id: str, wait: float = 0.0) -> Invocation:
    """The invocation; if it is not final yet, wait up to ``wait`` seconds for it to be."""
    loop = asyncio.get_running_loop()
    give_up_at = loop.time() + wait
    with rt.notifier.watch(invocation_id) as changed:
        while True:
            changed.clear()
            inv = await rt.invocations.read(invocation_id)
            if inv is None:
                raise missing(Invocation, invocation_id)
            remaining = give_up_at - loop.time()
            if Status(inv.status).terminal or remaining <= 0:
                return inv
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), timeout=remaining)


async def get_all(rt: Runtime, invocation_ids: Sequence[str], wait: float) -> list[Invocation]:
    """The invocations, once all are final or ``wait`` seconds have passed."""
    give_up_at = asyncio.get_running_loop().time() + wait
    ended = []
    for invocation_id in invocation_ids:
        remaining = max(0.0, give_up_at - asyncio.get_running_loop().time())
        ended.append(await get(rt, invocation_id, remaining))
    return ended


# The attempt log pages, oldest attempt first; nothing to filter or sort on.
ATTEMPTS_LISTABLE = Listable(filterable={}, sortable=())


async def attempts(
    rt: Runtime, invocation_id: str, query: ListQuery
) -> tuple[Sequence[DeliveryAttempt], int | None]:
    """An invocation's attempt log."""
    if await rt.invocations.read(invocation_id) is None:
        raise missing(Invocation, invocation_id)
    logged = select(DeliveryAttempt).where(DeliveryAttempt.invocation_id == invocation_id)
    order = [DeliveryAttempt.attempt, DeliveryAttempt.id]
    async with rt.sessions() as session:
        return await listing.page(session, logged, query, {}, order)


async def list_page(rt: Runtime, query: ListQuery) -> tuple[Sequence[Invocation], int | None]:
    order = [Invocation.created, Invocation.id]
    async with rt.sessions() as session:
        return await listing.page(session, select(Invocation), query, _COLUMNS, order)


async def recent_outcomes(rt: Runtime, since: datetime) -> Sequence[tuple[datetime, str, int]]:
    """How many invocations created since ``since`` are in each status, per minute of their
    creation (the console's chart): counted by the database, at most a row per minute and
    status, whatever the traffic (it read every row into Python, 50,000 at most, each refresh)."""
    async with rt.sessions() as session:
        sqlite = session.get_bind().dialect.name == "sqlite"
        created = col(Invocation.created)
        # SQLite keeps times as "YYYY-MM-DD HH:MM:SS.ffffff" (UTC, see model.UTCDateTime).
        minute = func.substr(created, 1, 16) if sqlite else func.date_trunc("minute", created)
        query = (
            select(minute, col(Invocation.status), func.count())
            .where(created >= since)
            .group_by(minute, col(Invocation.status))
        )
        rows = (await session.execute(query)).all()
    return [(_minute(at), status, count) for at, status, count in rows]


def _minute(value: datetime | str) -> datetime:
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
