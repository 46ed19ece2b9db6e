"""idempotent starts: the Idempotency-Key of each start, for a while

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02 04:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import gateway.domain.model

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "idempotency_keys",
        sa.Column("client_id", sa.String(length=128), nullable=False),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("invocation_ids", sa.JSON(), nullable=True),
        sa.Column("created", gateway.domain.model.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires", gateway.domain.model.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("client_id", "key"),
    )
    op.create_index("ix_idempotency_keys_expires", "idempotency_keys", ["expires"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_idempotency_keys_expires", table_name="idempotency_keys")
    op.drop_table("idempotency_keys")
