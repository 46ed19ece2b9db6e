"""a subscription's invocations by state and age (concurrency limits, replay)

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-02 05:30:00
"""

from __future__ import annotations

from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_invocations_subscription_status",
        "invocations",
        ["subscription_id", "status", "created"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_invocations_subscription_status", table_name="invocations")
