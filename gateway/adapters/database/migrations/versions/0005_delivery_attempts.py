"""delivery that survives real subscribers: retries, the attempt log, replay, disabling

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02 04:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import gateway.domain.model

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "delivery_attempts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("invocation_id", sa.String(length=64), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("started", gateway.domain.model.UTCDateTime(timezone=True), nullable=False),
        sa.Column("duration_ms", sa.Integer(), nullable=True),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("error", sa.String(), nullable=True),
        sa.Column("response_excerpt", sa.String(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_delivery_attempts_invocation_id", "delivery_attempts", ["invocation_id"], unique=False
    )
    with op.batch_alter_table("invocations", schema=None) as batch_op:
        batch_op.add_column(sa.Column("attempts_at_replay", sa.Integer(), nullable=False, server_default="0"))
        batch_op.add_column(
            sa.Column("next_attempt", gateway.domain.model.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.create_index("ix_invocations_status_next_attempt", ["status", "next_attempt"], unique=False)
    with op.batch_alter_table("subscriptions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("disabled_reason", sa.String(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("subscriptions", schema=None) as batch_op:
        batch_op.drop_column("disabled_reason")
    with op.batch_alter_table("invocations", schema=None) as batch_op:
        batch_op.drop_index("ix_invocations_status_next_attempt")
        batch_op.drop_column("next_attempt")
        batch_op.drop_column("attempts_at_replay")
    op.drop_index("ix_delivery_attempts_invocation_id", table_name="delivery_attempts")
    op.drop_table("delivery_attempts")
