"""retention: finished invocations found by status and age

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02 04:10:00
"""

from __future__ import annotations

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_invocations_status_completed", "invocations", ["status", "completed"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_invocations_status_completed", table_name="invocations")
