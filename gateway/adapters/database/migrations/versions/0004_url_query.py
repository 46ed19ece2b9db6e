"""subscriber URLs' query strings kept encrypted

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01 21:00:00

The query strings of URLs saved before this revision are moved out of the url column at
start-up, where the key that encrypts them is known (usecases/subscriptions.seal_url_queries).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("subscriptions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("url_query", sa.String(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("subscriptions", schema=None) as batch_op:
        batch_op.drop_column("url_query")
