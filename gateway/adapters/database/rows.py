"""Reading one row or failing with NotFound, and taking a row's lock."""

from __future__ import annotations

from typing import Any, TypeVar

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import SQLModel

from gateway.domain.errors import NotFound
from gateway.domain.model import ApiClient, Invocation, Subscription, Trigger

Row = TypeVar("Row", bound=SQLModel)

# How an error message names a missing row of each table.
_NAMES: dict[type[SQLModel], str] = {
    Trigger: "trigger {!r}",
    Subscription: "subscription {}",
    Invocation: "invocation {}",
    ApiClient: "API client {!r}",
}


def missing(model: type[SQLModel], key: str, hint: str = "") -> NotFound:
    return NotFound(f"{_NAMES[model].format(key)} does not exist{hint}")


async def get_existing(session: AsyncSession, model: type[Row], key: str, hint: str = "") -> Row:
    """The row with primary key ``key``, or NotFound naming it (and ``hint``, what to do)."""
    row = await session.get(model, key)
    if row is None:
        raise missing(model, key, hint)
    return row


async def lock_row(session: AsyncSession, model: type[SQLModel], key: str) -> None:
    """Hold the row's lock until the transaction ends: a no-op write takes it on PostgreSQL
    (its row lock) and SQLite (the database's one write lock) alike, where SELECT ... FOR
    UPDATE would be ignored by SQLite. A missing row locks nothing."""
    column: Any = _primary_key(model)
    await session.execute(update(model).where(column == key).values({column.key: key}))


def _primary_key(model: type[SQLModel]) -> Any:
    [column] = model.__table__.primary_key.columns  # type: ignore[attr-defined]
    return column
