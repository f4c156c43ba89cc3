"""The targets' own ids of synced keys (issue 17): Billing's account id per CRM billing account.

Revision ID: 0008_sync_target_ids
Revises: 0007_message_seq
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from esb.journal.schema import UTCDateTime

revision = "0008_sync_target_ids"
down_revision = "0007_message_seq"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create the target-id table."""
    op.create_table(
        "sync_target_ids",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("key", sa.String(200), primary_key=True),
        sa.Column("target_id", sa.String(200), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
    )


def downgrade() -> None:
    """Drop the target-id table."""
    op.drop_table("sync_target_ids")
