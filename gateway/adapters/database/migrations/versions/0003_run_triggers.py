"""run triggers: sources, tenants, trigger options, schedules, webhooks, debounce, loop guard

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01 11:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import gateway.domain.model

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Rows made before this revision: invocations were raised through the API, subscriptions
    # neither debounce nor run on a schedule, triggers offer no options.
    false = sa.false()
    with op.batch_alter_table("invocations", schema=None) as batch_op:
        batch_op.add_column(sa.Column("source", sa.String(length=16), nullable=False, server_default="api"))
        batch_op.add_column(sa.Column("tenant_id", sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column("option", sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column("headers", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("chain", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("run_id", sa.String(length=64), nullable=True))
        lane = ["subscription_id", "tenant_id", "completed"]
        batch_op.create_index("ix_invocations_lane", lane, unique=False)
        batch_op.create_index("ix_invocations_run_id", ["run_id"], unique=False)

    with op.batch_alter_table("subscriptions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("options", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("debounce", sa.Boolean(), nullable=False, server_default=false))
        batch_op.add_column(sa.Column("schedule_name", sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column("schedule_cron", sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column("schedule_timezone", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("schedule_tenant_id", sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column("schedule_paused", sa.Boolean(), nullable=False, server_default=false))
        batch_op.add_column(
            sa.Column("next_fire_at", gateway.domain.model.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(sa.Column("webhook_nonce", sa.String(length=64), nullable=True))
        batch_op.create_index("ix_subscriptions_next_fire_at", ["next_fire_at"], unique=False)

    with op.batch_alter_table("triggers", schema=None) as batch_op:
        batch_op.add_column(sa.Column("options", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("tenant_id_path", sa.String(length=1024), nullable=True))
        batch_op.add_column(sa.Column("schedules", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("custom_schedules", sa.Boolean(), nullable=False, server_default=false))
        batch_op.add_column(
            sa.Column("schedules_paused_by_default", sa.Boolean(), nullable=False, server_default=false)
        )


def downgrade() -> None:
    with op.batch_alter_table("triggers", schema=None) as batch_op:
        for column in (
            "schedules_paused_by_default",
            "custom_schedules",
            "schedules",
            "tenant_id_path",
            "options",
        ):
            batch_op.drop_column(column)
    with op.batch_alter_table("subscriptions", schema=None) as batch_op:
        batch_op.drop_index("ix_subscriptions_next_fire_at")
        for column in (
            "webhook_nonce",
            "next_fire_at",
            "schedule_paused",
            "schedule_tenant_id",
            "schedule_timezone",
            "schedule_cron",
            "schedule_name",
            "debounce",
            "options",
        ):
            batch_op.drop_column(column)
    with op.batch_alter_table("invocations", schema=None) as batch_op:
        batch_op.drop_index("ix_invocations_run_id")
        batch_op.drop_index("ix_invocations_lane")
        for column in ("run_id", "chain", "headers", "option", "tenant_id", "source"):
            batch_op.drop_column(column)
