"""PostgreSQL: unpartitioned look-up tables by message id and by business key (issue 18).

The design is in esb/journal/lookups.py; the SQL below is frozen from it as of 2026-12-07 (the live module
keeps its own for the runtime). On SQLite this revision does nothing.

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

from esb.journal.migrations._frozen import r0012

revision = "0017_lookup_tables"
down_revision = "0016_in_flight"
branch_labels = None
depends_on = None

#: The two tables (with their primary keys and ``seq`` indexes), as the live module's metadata made them.
_TABLES = (
    "CREATE TABLE lookup_ids (id VARCHAR NOT NULL, route VARCHAR NOT NULL, seq BIGINT NOT NULL,"
    " PRIMARY KEY (id, route))",
    "CREATE INDEX ix_lookup_ids_seq ON lookup_ids (seq)",
    "CREATE TABLE lookup_keys (value VARCHAR NOT NULL, name VARCHAR NOT NULL, seq BIGINT NOT NULL,"
    " PRIMARY KEY (value, name, seq))",
    "CREATE INDEX ix_lookup_keys_seq ON lookup_keys (seq)",
)

#: The fill from the partitions: the indexes are built after the rows (a sort each).
_FILL = (
    "ALTER TABLE lookup_ids DROP CONSTRAINT lookup_ids_pkey",
    "ALTER TABLE lookup_keys DROP CONSTRAINT lookup_keys_pkey",
    "DROP INDEX ix_lookup_ids_seq",
    "DROP INDEX ix_lookup_keys_seq",
    "INSERT INTO lookup_ids (id, route, seq) SELECT id, route, seq FROM messages",
    "INSERT INTO lookup_keys (value, name, seq) SELECT value, name, message_seq FROM business_keys",
    "ALTER TABLE lookup_ids ADD CONSTRAINT lookup_ids_pkey PRIMARY KEY (id, route)",
    "ALTER TABLE lookup_keys ADD CONSTRAINT lookup_keys_pkey PRIMARY KEY (value, name, seq)",
    "CREATE INDEX ix_lookup_ids_seq ON lookup_ids (seq)",
    "CREATE INDEX ix_lookup_keys_seq ON lookup_keys (seq)",
    "ANALYZE lookup_ids",
    "ANALYZE lookup_keys",
)

#: ``journal_unique_id`` with the look-up table (0012's version: _frozen/r0012.py).
_UNIQUE_ID_FUNCTION = """
CREATE OR REPLACE FUNCTION journal_unique_id() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  known bigint;
BEGIN
  INSERT INTO lookup_ids (id, route, seq) VALUES (NEW.id, NEW.route, NEW.seq)
    ON CONFLICT (id, route) DO NOTHING;
  IF FOUND THEN
    RETURN NEW;
  END IF;
  SELECT seq INTO known FROM lookup_ids WHERE id = NEW.id AND route = NEW.route FOR UPDATE;
  IF known IS NOT NULL AND EXISTS (SELECT 1 FROM messages WHERE seq = known) THEN
    RETURN NULL;
  END IF;
  INSERT INTO lookup_ids (id, route, seq) VALUES (NEW.id, NEW.route, NEW.seq)
    ON CONFLICT (id, route) DO UPDATE SET seq = EXCLUDED.seq;
  RETURN NEW;
END $$
"""

#: The other triggers' functions, created by the upgrade and dropped by the downgrade.
_FUNCTIONS = {
    "journal_lookup_ids_drop": """
CREATE OR REPLACE FUNCTION journal_lookup_ids_drop() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  DELETE FROM lookup_ids WHERE id = OLD.id AND route = OLD.route AND seq = OLD.seq;
  RETURN NULL;
END $$
""",
    "journal_lookup_keys_add": """
CREATE OR REPLACE FUNCTION journal_lookup_keys_add() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO lookup_keys (value, name, seq) SELECT value, name, message_seq FROM new_keys
    ON CONFLICT DO NOTHING;
  RETURN NULL;
END $$
""",
    "journal_lookup_keys_drop": """
CREATE OR REPLACE FUNCTION journal_lookup_keys_drop() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  DELETE FROM lookup_keys WHERE value = OLD.value AND name = OLD.name AND seq = OLD.message_seq;
  RETURN NULL;
END $$
""",
}

#: name -> (table, timing and event, function, level): triggers on the partitioned tables.
_TRIGGERS = {
    "journal_lookup_ids_drop": ("messages", "AFTER DELETE", "journal_lookup_ids_drop", "FOR EACH ROW"),
    "journal_lookup_keys_add": (
        "business_keys",
        "AFTER INSERT",
        "journal_lookup_keys_add",
        "REFERENCING NEW TABLE AS new_keys FOR EACH STATEMENT",
    ),
    "journal_lookup_keys_drop": ("business_keys", "AFTER DELETE", "journal_lookup_keys_drop", "FOR EACH ROW"),
}


def upgrade() -> None:
    """Create, fill and keep the look-up tables (PostgreSQL)."""
    conn = op.get_bind()
    if conn.dialect.name != "postgresql":
        return
    conn.exec_driver_sql("LOCK TABLE messages, business_keys IN SHARE MODE")
    for sql in (*_TABLES, *_FILL, *_FUNCTIONS.values(), _UNIQUE_ID_FUNCTION):
        conn.exec_driver_sql(sql)
    for name, (table, when, function, level) in _TRIGGERS.items():
        conn.exec_driver_sql(f"CREATE TRIGGER {name} {when} ON {table} {level} EXECUTE FUNCTION {function}()")
    op.drop_index("ix_business_keys_value", table_name="business_keys")


def downgrade() -> None:
    """Drop the look-up tables and their triggers; 0012's ``journal_unique_id`` again."""
    conn = op.get_bind()
    if conn.dialect.name != "postgresql":
        return
    for name, (table, _, _, _) in _TRIGGERS.items():
        conn.exec_driver_sql(f"DROP TRIGGER {name} ON {table}")
    for name in _FUNCTIONS:
        conn.exec_driver_sql(f"DROP FUNCTION {name}()")
    conn.exec_driver_sql("DROP TABLE lookup_keys")
    conn.exec_driver_sql("DROP TABLE lookup_ids")
    conn.exec_driver_sql(r0012.UNIQUE_ID_FUNCTION)
    op.create_index("ix_business_keys_value", "business_keys", ["value"])
