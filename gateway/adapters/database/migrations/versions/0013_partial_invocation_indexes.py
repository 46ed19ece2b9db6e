"""partial indexes: each sweep query's state in an index of its own

The indexes led by status took a delete and an insert at every state change of every
invocation: a SYNC delivery's insert, claim and record updated 33 index entries. Partial
indexes hold only the rows in one state (or unfinished, or finished), so a delivery now
touches the few it passes through.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-02 07:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

# name, columns, predicate
PARTIAL = (
    ("ix_invocations_awaiting", ["deadline"], "status = 'AWAITING_CALLBACK'"),
    ("ix_invocations_pending", ["queued_at"], "status = 'PENDING'"),
    ("ix_invocations_dispatching", ["dispatched_at"], "status = 'DISPATCHING'"),
    ("ix_invocations_retrying", ["next_attempt"], "status = 'RETRYING'"),
    ("ix_invocations_queued", ["subscription_id", "created", "id"], "status = 'QUEUED'"),
    ("ix_invocations_waiting", ["subscription_id", "tenant_id"], "status = 'WAITING'"),
    ("ix_invocations_open", ["subscription_id", "status"], "completed IS NULL"),
    ("ix_invocations_finished", ["completed"], "completed IS NOT NULL"),
)
# name, columns: what the partial ones replace
FULL = (
    ("ix_invocations_status_deadline", ["status", "deadline"]),
    ("ix_invocations_status_queued", ["status", "queued_at"]),
    ("ix_invocations_status_next_attempt", ["status", "next_attempt"]),
    ("ix_invocations_status_completed", ["status", "completed"]),
    ("ix_invocations_subscription_status", ["subscription_id", "status", "created"]),
    ("ix_invocations_subscription_id", ["subscription_id"]),
)


def upgrade() -> None:
    for name, _ in FULL:
        op.drop_index(name, table_name="invocations")
    for name, columns, where in PARTIAL:
        predicate = sa.text(where)
        op.create_index(name, "invocations", columns, sqlite_where=predicate, postgresql_where=predicate)
    op.create_index("ix_invocations_subscription", "invocations", ["subscription_id", "created"])


def downgrade() -> None:
    op.drop_index("ix_invocations_subscription", table_name="invocations")
    for name, _, _ in PARTIAL:
        op.drop_index(name, table_name="invocations")
    for name, columns in FULL:
        op.create_index(name, "invocations", columns)
