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
    # After 0004 a subscriber URL's query string exists only encrypted in url_query (url holds
    # it masked): dropping the column would lose it.
    raise RuntimeError(
        "0004 cannot be downgraded: subscriber URL query strings live only in url_query; "
        "restore the backup taken before upgrading instead"
    )
