"""PostgreSQL: ``events.id`` a 64-bit integer (it was ``integer``, 4 bytes).

A CRM order writes four events; a province's hub moving three million messages a day writes ~12 million
events a day, which would run ``events_id_seq`` past 2,147,483,647 in about six months and stop every
write with "integer out of range". ``bigint`` for the column and its sequence (partitions follow their
parent). On SQLite an ``INTEGER PRIMARY KEY`` is already 64 bits: nothing to do.

The change rewrites ``events`` (every partition) and its indexes: minutes on a journal of tens of
millions of events, under an exclusive lock; run it in a quiet hour (docs/journal.md, "Migrations").

Revision ID: 0013_events_id_bigint
Revises: 0012_postgres_partitions
Create Date: 2026-12-07
"""

from __future__ import annotations

from alembic import op

revision = "0013_events_id_bigint"
down_revision = "0012_postgres_partitions"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Widen the events' id and its sequence to bigint on PostgreSQL."""
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("ALTER TABLE events ALTER COLUMN id TYPE bigint")
    op.execute("ALTER SEQUENCE events_id_seq AS bigint")


def downgrade() -> None:
    """Back to integer (fails if an id is already past the 32-bit range, as it must)."""
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("ALTER SEQUENCE events_id_seq AS integer")
    op.execute("ALTER TABLE events ALTER COLUMN id TYPE integer")
