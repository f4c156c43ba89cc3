"""``route_minutes``: each route's figures per minute, so ``esb stats`` and the console read routes x minutes
rows instead of every event of their window (issue 18).

The table is kept by the journal's write paths from now on (esb/journal/rollup.py); the upgrade creates it
and fills it from the events already there (:func:`esb.journal.rollup.backfill`: three
``INSERT ... SELECT ... GROUP BY`` run by the server; the latencies take one window over the events in
message order). Not partitioned: routes x minutes rows (docs/journal.md "Retention"). The downgrade drops it.

Revision ID: 0015_route_minutes
Revises: 0014_dead_letters_unhandled
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from esb.journal.rollup import backfill
from esb.journal.schema import UTCDateTime

revision = "0015_route_minutes"
down_revision = "0014_dead_letters_unhandled"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create ``route_minutes`` and fill it from the events."""
    op.create_table(
        "route_minutes",
        sa.Column("minute", UTCDateTime(), primary_key=True),
        sa.Column("route", sa.String(), primary_key=True),
        sa.Column("figure", sa.String(), primary_key=True),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sqlite_with_rowid=False,
    )
    backfill(op.get_bind())


def downgrade() -> None:
    """Drop ``route_minutes``."""
    op.drop_table("route_minutes")
