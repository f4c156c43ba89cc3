"""Migration 0012's functions, trigger and partitions, frozen as of 2026-12-07 (esb/journal/partitions.py).

0012 (``0012_postgres_partitions``) installs them; 0017's downgrade puts :data:`UNIQUE_ID_FUNCTION` back.
The live module keeps its own copies for the runtime (partition maintenance): this one never changes.
"""

from __future__ import annotations

from datetime import date, timedelta

import sqlalchemy as sa

#: Schema of the partitions (leaf tables).
SCHEMA = "journal_partitions"
#: Seqs per day (``day * PER_DAY + n``).
PER_DAY = 10**10
#: Days per partition.
SPAN = 7
#: Days ahead of today whose partitions the migration creates.
AHEAD = 7
#: The partitioned tables and their partition key, parents first.
TABLES = (("messages", "seq"), ("events", "message_seq"), ("business_keys", "message_seq"))
#: Advisory lock taken while creating partitions ("esbpart" in ASCII).
LOCK_KEY = 0x65736270617274
EPOCH = date(1970, 1, 1)

#: The column default of ``messages.seq``: the next seq in today's block (UTC, the server's clock).
NEXT_SEQ_FUNCTION = """
CREATE OR REPLACE FUNCTION journal_next_seq() RETURNS bigint LANGUAGE plpgsql VOLATILE AS $$
DECLARE
  floor bigint := ((now() AT TIME ZONE 'UTC')::date - DATE '1970-01-01')::bigint * 10000000000;
  got bigint := nextval('messages_seq_seq');
BEGIN
  IF got >= floor THEN
    RETURN got;
  END IF;
  PERFORM pg_advisory_xact_lock(28555839327793508);
  got := nextval('messages_seq_seq');
  IF got < floor THEN
    PERFORM setval('messages_seq_seq', floor, true);
    got := floor;
  END IF;
  RETURN got;
END $$
"""

#: A message id once per route across every partition (an advisory lock, then a probe of every partition).
UNIQUE_ID_FUNCTION = """
CREATE OR REPLACE FUNCTION journal_unique_id() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_advisory_xact_lock(hashtextextended(NEW.route || chr(31) || NEW.id, 0));
  IF EXISTS (SELECT 1 FROM messages WHERE id = NEW.id AND route = NEW.route) THEN
    RETURN NULL;
  END IF;
  RETURN NEW;
END $$
"""
UNIQUE_ID_TRIGGER = (
    "CREATE TRIGGER journal_unique_id BEFORE INSERT ON messages"
    " FOR EACH ROW EXECUTE FUNCTION journal_unique_id()"
)


def _create(conn: sa.Connection, suffix: str, bound: str) -> None:
    """One period's three partitions (or the default ones) and the unique ``(id, route)`` of its messages."""
    for table, _ in TABLES:
        conn.exec_driver_sql(f"CREATE TABLE {SCHEMA}.{table}_{suffix} PARTITION OF {table} {bound}")
    index = f"messages_{suffix}_id_route"
    conn.exec_driver_sql(f"CREATE UNIQUE INDEX {index} ON {SCHEMA}.messages_{suffix} (id, route)")


def _day_floor(day: date) -> int:
    return (day - EPOCH).days * PER_DAY


def create_partitions(conn: sa.Connection, today: date, legacy_end: int | None) -> None:
    """The default partition, then (under the partition lock) those of the periods holding ``today`` and
    the :data:`AHEAD` days after it, starting at ``legacy_end`` (the legacy partition's upper bound, None
    without one) when it falls inside a period and skipping a period the legacy partition covers. The
    default partition is new and empty, so no row moves into the periods' partitions."""
    _create(conn, "default", "DEFAULT")
    conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": LOCK_KEY})
    days = [today + timedelta(days=n) for n in range(AHEAD + 1)]
    starts = sorted({EPOCH + timedelta(days=(day - EPOCH).days // SPAN * SPAN) for day in days})
    for start in starts:
        low, high = _day_floor(start), _day_floor(start + timedelta(days=SPAN))
        if legacy_end is not None and legacy_end >= high:
            continue  # the legacy partition holds this period's block
        if legacy_end is not None and legacy_end > low:
            low = legacy_end
        _create(conn, f"{start:%Y%m%d}", f"FOR VALUES FROM ({low}) TO ({high})")
