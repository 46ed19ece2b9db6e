"""invocations keep the trackingId and the trace of the request that raised them

Their delivery's log lines name the trackingId, and its span joins the start's trace.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-02 08:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("invocations") as batch_op:
        batch_op.add_column(sa.Column("tracking_id", sa.String(length=128), nullable=True))
        batch_op.add_column(sa.Column("traceparent", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("invocations") as batch_op:
        batch_op.drop_column("traceparent")
        batch_op.drop_column("tracking_id")
