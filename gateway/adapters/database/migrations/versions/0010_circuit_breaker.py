"""circuit breaking: each subscription's consecutive failures and circuit

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02 04:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import gateway.domain.model

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

_COLUMNS = ("probe_at", "circuit_since", "circuit_open", "failing_since", "consecutive_failures")


def upgrade() -> None:
    time = gateway.domain.model.UTCDateTime(timezone=True)
    with op.batch_alter_table("subscriptions", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("consecutive_failures", sa.Integer(), nullable=False, server_default="0")
        )
        batch_op.add_column(sa.Column("failing_since", time, nullable=True))
        batch_op.add_column(
            sa.Column("circuit_open", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch_op.add_column(sa.Column("circuit_since", time, nullable=True))
        batch_op.add_column(sa.Column("probe_at", time, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("subscriptions", schema=None) as batch_op:
        for column in _COLUMNS:
            batch_op.drop_column(column)
