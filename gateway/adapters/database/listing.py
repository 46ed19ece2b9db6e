"""List queries: a parsed ``filters``/``sorters``/paging request (domain/list_query.py) applied
to a SELECT, with the filtered rows counted when asked."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel.sql.expression import SelectOfScalar

from gateway.domain.list_query import Condition, ListQuery

T = TypeVar("T")


def where(condition: Condition, column: Any) -> ColumnElement[bool]:
    value = condition.values[0] if condition.values else None
    clauses: dict[str, Callable[[], ColumnElement[bool]]] = {
        "eq": lambda: column == value,
        "ne": lambda: column != value,
        "in": lambda: column.in_(condition.values),
        "sw": lambda: column.startswith(value, autoescape=True),
        "co": lambda: column.contains(value, autoescape=True),
        "gt": lambda: column > value,
        "ge": lambda: column >= value,
        "lt": lambda: column < value,
        "le": lambda: column <= value,
        "isnull": lambda: column.is_(None),
    }
    return clauses[condition.op]()


async def page(
    session: AsyncSession,
    query: SelectOfScalar[T],
    spec: ListQuery,
    columns: Mapping[str, Any],
    default_order: Sequence[Any],
) -> tuple[Sequence[T], int | None]:
    """Apply filters, sorters and paging; also count the filtered rows when asked."""
    for condition in spec.conditions:
        query = query.where(where(condition, columns[condition.field]))
    total = None
    if spec.count:
        total = (await session.execute(select(func.count()).select_from(query.subquery()))).scalar_one()
    order = [columns[s.field].desc() if s.descending else columns[s.field].asc() for s in spec.sorters]
    query = query.order_by(*order, *default_order).limit(spec.limit).offset(spec.offset)
    rows = (await session.execute(query)).scalars().all()
    return rows, total
