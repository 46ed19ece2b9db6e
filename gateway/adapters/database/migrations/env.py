"""Alembic environment: runs on the connection engine.migrate() hands over."""

from __future__ import annotations

from alembic import context
from sqlmodel import SQLModel

from gateway.domain import model  # noqa: F401  (registers the tables)

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=SQLModel.metadata,
    render_as_batch=connection.dialect.name == "sqlite",  # SQLite cannot ALTER most things
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
