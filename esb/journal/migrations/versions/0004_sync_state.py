"""Sync state (issue 17): what the hub last sent each target per key, beside the journal.

Revision ID: 0004_sync_state
Revises: 0003_processes
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from esb.journal.schema import UTCDateTime

revision = "0004_sync_state"
down_revision = "0003_processes"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create the sync state table (its primary key orders a sync's rows by key)."""
    op.create_table(
        "sync_state",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("key", sa.String(200), primary_key=True),
        sa.Column("hash", sa.String(32), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=True),
        sa.Column("deleted", sa.Boolean(), nullable=False),
        sa.Column("message_id", sa.String(), nullable=True),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.Column("body", sa.LargeBinary(), nullable=True),
        sa.Column("revision", sa.Integer(), nullable=False),
    )


def downgrade() -> None:
    """Drop the sync state table."""
    op.drop_table("sync_state")
