"""The invocation state machine's writes: every transition is a conditional UPDATE
(... WHERE status IN <expected>), so a retry, a second worker and a late callback can never
all win. The use cases say which transition; this is the one place that writes it, but for
a delivery's claim and record, which invocation_store.py runs without the ORM."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import ColumnElement, Update, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from gateway.domain.model import Invocation, Status

# What a final transition returns (RETURNING) for what follows it: waking long-polls,
# starting a lane's next run, counting the outcome.
ENDED_COLUMNS = (
    col(Invocation.id),
    col(Invocation.subscription_id),
    col(Invocation.tenant_id),
    col(Invocation.run_id),
    col(Invocation.trigger_id),
    col(Invocation.dispatch_mode),
    col(Invocation.status),
)


def _transition_query(
    invocation_id: str, expected: Iterable[Status], *conditions: ColumnElement[bool]
) -> Update:
    return (
        update(Invocation)
        .where(col(Invocation.id) == invocation_id)
        .where(col(Invocation.status).in_([s.value for s in expected]), *conditions)
    )


async def transition(
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
