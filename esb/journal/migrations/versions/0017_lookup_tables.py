"""PostgreSQL: unpartitioned look-up tables by message id and by business key (issue 18).

The design is in esb/journal/lookups.py. On SQLite this revision does nothing.

Upgrade creates ``lookup_ids`` and ``lookup_keys``, fills them from the partitions (two
``INSERT ... SELECT``, the indexes built after the rows), then installs the triggers that keep them and
the new ``journal_unique_id`` (de-duplication by ``lookup_ids``' primary key instead of an advisory lock
and a probe of every partition), and drops ``ix_business_keys_value`` from the partitions (nothing reads
``business_keys`` by value on PostgreSQL now: one index insert fewer per key row). The journal's tables
are locked against writes meanwhile (170-200 s at ten million messages: bench/README.md "Look-up tables
by key and id on PostgreSQL").

Downgrade drops them, puts 0012's ``journal_unique_id`` back and builds ``ix_business_keys_value`` again
(a sort of every key: ~30 s at 10 M).

Revision ID: 0017_lookup_tables
Revises: 0016_in_flight
Create Date: 2026-12-07
"""

from __future__ import annotations

from alembic import op

from esb.journal import lookups, partitions

revision = "0017_lookup_tables"
down_revision = "0016_in_flight"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create, fill and keep the look-up tables (PostgreSQL)."""
    conn = op.get_bind()
    if conn.dialect.name != "postgresql":
        return
    conn.exec_driver_sql("LOCK TABLE messages, business_keys IN SHARE MODE")
    lookups.metadata.create_all(conn)
    lookups.fill(conn.exec_driver_sql)
    lookups.install(conn)
    op.drop_index("ix_business_keys_value", table_name="business_keys")


def downgrade() -> None:
    """Drop the look-up tables and their triggers; 0012's ``journal_unique_id`` again."""
    conn = op.get_bind()
    if conn.dialect.name != "postgresql":
        return
    lookups.uninstall(conn)
    conn.exec_driver_sql(partitions.UNIQUE_ID_FUNCTION)
    op.create_index("ix_business_keys_value", "business_keys", ["value"])
