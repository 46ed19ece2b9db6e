"""Conditions on an invocation's state, written for the partial indexes (domain/model.py).

Each sweep query and per-subscription count finds its rows through an index that holds only
the invocations in that state, so a delivery's insert, claim and record touch few indexes.
A partial index serves a query only if the planner can see that the query's rows satisfy
the index's predicate: on PostgreSQL a prepared statement's generic plan cannot see a
parameter's value, so the state is written into the statement as a literal."""

from __future__ import annotations

from sqlalchemy import ColumnElement, and_, literal_column
from sqlmodel import col

from gateway.domain.model import Invocation, Status


def in_state(*statuses: Status) -> ColumnElement[bool]:
    """The invocation is in one of ``statuses`` (the values are the enum's own names)."""
    values: list[ColumnElement[str]] = [literal_column(f"'{status.value}'") for status in statuses]
    status = col(Invocation.status)
    return status == values[0] if len(values) == 1 else status.in_(values)


def open_in_state(subscription_id: str, *statuses: Status) -> ColumnElement[bool]:
    """One subscription's unfinished invocations in one of ``statuses``: what its
    concurrency limit and its circuit count, through the index of unfinished invocations."""
    return and_(
        col(Invocation.subscription_id) == subscription_id,
        col(Invocation.completed).is_(None),
        in_state(*statuses),
    )
