"""One-time keys (e.g. WS-Security nonces) used, shared by hub processes: a replay is refused after a restart.

Revision ID: 0002_one_time_keys
Revises: 0001_initial
Create Date: 2026-02-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_one_time_keys"
down_revision = "0001_initial"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create the one-time key table and its expiry index."""
    op.create_table(
        "one_time_keys",
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_one_time_keys_expires_at", "one_time_keys", ["expires_at"])


def downgrade() -> None:
    """Drop the one-time key table."""
    op.drop_table("one_time_keys")
