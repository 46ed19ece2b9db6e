"""signing secrets for deliveries, rotatable client secrets

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import gateway.domain.model

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Subscriptions made before this revision have no signing secret: their deliveries go
    # unsigned until POST /trigger-subscriptions/{id}/rotate-secret gives them one.
    expires = gateway.domain.model.UTCDateTime(timezone=True)
    with op.batch_alter_table("subscriptions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("signing_secret", sa.String(), nullable=True))
        batch_op.add_column(sa.Column("previous_signing_secret", sa.String(), nullable=True))
        batch_op.add_column(sa.Column("previous_signing_secret_expires", expires, nullable=True))
    with op.batch_alter_table("api_clients", schema=None) as batch_op:
        batch_op.add_column(sa.Column("previous_secret_hash", sa.String(), nullable=True))
        batch_op.add_column(sa.Column("previous_secret_expires", expires, nullable=True))
    # Clients that had every scope (the admin) also get the new clients:manage scope.
    op.execute(
        "UPDATE api_clients SET scopes = scopes || ' clients:manage' "
        "WHERE scopes = 'triggers:manage invocations:start invocations:read'"
    )


def downgrade() -> None:
    with op.batch_alter_table("api_clients", schema=None) as batch_op:
        batch_op.drop_column("previous_secret_expires")
        batch_op.drop_column("previous_secret_hash")
    with op.batch_alter_table("subscriptions", schema=None) as batch_op:
        batch_op.drop_column("previous_signing_secret_expires")
        batch_op.drop_column("previous_signing_secret")
        batch_op.drop_column("signing_secret")
