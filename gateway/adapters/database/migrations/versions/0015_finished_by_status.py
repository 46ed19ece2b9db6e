"""retention finds finished invocations by status and completion, among the finished only

0013's index of finished rows by completion alone made each retention purge read every
finished row of the other kind in its range (a failed one kept 30 days is in the completed
purge's 7-day range, every sweep). Led by status, each purge reads only its own kind.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-02 08:05:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

FINISHED = sa.text("completed IS NOT NULL")


def upgrade() -> None:
    op.drop_index("ix_invocations_finished", table_name="invocations")
    op.create_index(
        "ix_invocations_finished",
        "invocations",
        ["status", "completed"],
        sqlite_where=FINISHED,
        postgresql_where=FINISHED,
    )


def downgrade() -> None:
    op.drop_index("ix_invocations_finished", table_name="invocations")
    op.create_index(
        "ix_invocations_finished",
        "invocations",
        ["completed"],
        sqlite_where=FINISHED,
        postgresql_where=FINISHED,
    )
