"""WS-Security nonces used, shared by hub processes (a replayed digest token is refused after a restart).

Revision ID: 0002_wsse_nonces
Revises: 0001_initial
Create Date: 2026-02-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_wsse_nonces"
down_revision = "0001_initial"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create the nonce table and its expiry index."""
    op.create_table(
        "wsse_nonces",
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_wsse_nonces_expires_at", "wsse_nonces", ["expires_at"])


def downgrade() -> None:
    """Drop the nonce table."""
    op.drop_table("wsse_nonces")
