"""PostgreSQL: the journal's ``messages``, ``events`` and ``business_keys`` range-partitioned by week.

Partition key: the message row's ``seq`` (``events.message_seq``, ``business_keys.message_seq``), so every
row of a message lives in one partition of each table, and a period's three partitions go together.
A message's ``seq`` is ``day * PER_DAY + n``: ``day`` counts UTC days since 1970-01-01 on the server's
clock when the row is inserted, ``n`` comes from the ``messages_seq_seq`` sequence (``journal_next_seq()``,
the column's default, moves the sequence to the day's block the first time a day sees a message). A
partition holds the blocks of :data:`SPAN` days (a week: why in the constant's comment), named by its
first day. So its bounds are known before it starts: partitions are created ahead (:data:`AHEAD` days, by
the migration, by every process that opens the journal, and by every prune: scheduled, leader-only) and
no table records them. Should a day come without its partition (a hub that neither restarted nor pruned
for a week), its rows go to the ``default`` partition and are moved to their own when it is created: an
insert is never refused for want of a partition.

Unique constraints. PostgreSQL enforces a unique index only when it holds the partition key:
- ``messages.seq`` (primary key) and ``business_keys (message_seq, name, value)`` hold it: unchanged.
- ``events`` has the primary key ``(message_seq, id)``; ``id`` comes from its sequence alone.
- ``(id, route)`` of a message is unique within each partition (a unique index on each leaf: the
  arbiter of ``INSERT ... ON CONFLICT DO NOTHING``, which the journal's hot path uses), and across days
  by the ``BEFORE INSERT`` trigger ``journal_unique_id``: it takes a transaction-scoped advisory lock on
  the hash of ``(route, id)`` (two inserts of one id wait for each other, so the second sees the first
  once committed) and skips the row (as ``DO NOTHING`` does) when a row of that id and route exists in
  any partition. Look-ups by id (the idempotent receiver's ``was_delivered``, ``outcome``, ``seq_of``)
  read each partition's unique index: one index probe per partition. Since migration 0017 the trigger
  de-duplicates by the unpartitioned ``lookup_ids`` instead, and the operators' look-ups by id or business
  key (trace, find, the console's searches) go through it and ``lookup_keys`` (esb/journal/lookups.py).

Rows that existed before the conversion (migration 0012) keep their ``seq`` in one ``*_legacy`` partition
(``MINVALUE`` up to their last seq), pruned like any other. Partitions live in the schema
:data:`SCHEMA` so that the default schema shows the three tables as the metadata declares them.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

import sqlalchemy as sa

#: Schema of the partitions (leaf tables).
SCHEMA = "journal_partitions"
#: Seqs per day: a day's block is ``[day * PER_DAY, (day + 1) * PER_DAY)``; ten billion messages a day.
PER_DAY = 10**10
#: Days per partition: a week. With a partition per day, the planner's work on a search by key or id
#: (which no partition bound can narrow) grew with the square of their number: 0.8 ms for 7 partitions,
#: 25-75 ms for 41, 1.2 s for 366 (PostgreSQL 15, bench/README.md "The journal at scale").
SPAN = 7
#: Days ahead of today whose partitions are kept ready (the next week's is made before it begins).
AHEAD = 7
#: The partitioned tables and their partition key, parents first (children are detached first: reversed).
TABLES = (("messages", "seq"), ("events", "message_seq"), ("business_keys", "message_seq"))
#: Advisory lock taken while creating or replacing partitions ("esbpart" in ASCII).
LOCK_KEY = 0x65736270617274
#: Advisory lock around the day's first jump of the sequence ("esbseqd" in ASCII).
SEQ_LOCK_KEY = 0x65736273657164
#: The unpartitioned look-up tables of migration 0017 (esb/journal/lookups.py).
LOOKUP_TABLES = ("lookup_ids", "lookup_keys")
LEGACY = "legacy"
#: The partition of rows whose day has none (a hub that neither restarted nor pruned for days): they are
#: moved to their day's partition when it is created (:func:`create`), so an insert is never refused.
DEFAULT = "default"
EPOCH = date(1970, 1, 1)

#: The column default of ``messages.seq``: the next seq in today's block (UTC, the server's clock).
NEXT_SEQ_FUNCTION = f"""
CREATE OR REPLACE FUNCTION journal_next_seq() RETURNS bigint LANGUAGE plpgsql VOLATILE AS $$
DECLARE
  floor bigint := ((now() AT TIME ZONE 'UTC')::date - DATE '1970-01-01')::bigint * {PER_DAY};
  got bigint := nextval('messages_seq_seq');
BEGIN
  IF got >= floor THEN
    RETURN got;
  END IF;
  PERFORM pg_advisory_xact_lock({SEQ_LOCK_KEY});
  got := nextval('messages_seq_seq');
  IF got < floor THEN
    PERFORM setval('messages_seq_seq', floor, true);
    got := floor;
  END IF;
  RETURN got;
END $$
"""

#: A message id once per route across every partition (the leaves' unique indexes see one day each).
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


@dataclasses.dataclass(frozen=True)
class Partition:
    """One day's partitions (or the legacy ones): the name suffix, the day, and the bound clause."""

    suffix: str
    day: date | None
    bound: str

    def leaf(self, table: str) -> str:
        """The qualified name of this day's partition of ``table``."""
        return f"{SCHEMA}.{table}_{self.suffix}"


def day_floor(day: date) -> int:
    """The first seq of ``day``'s block."""
    return (day - EPOCH).days * PER_DAY


def day_of(seq: int) -> date:
    """The day whose block holds ``seq`` (the legacy seqs give 1970-01-01)."""
    return EPOCH + timedelta(days=seq // PER_DAY)


def is_partitioned(conn: sa.Connection) -> bool:
    """True on a PostgreSQL journal whose ``messages`` is partitioned (migration 0012 ran)."""
    if conn.dialect.name != "postgresql":
        return False
    kind = conn.execute(sa.text("SELECT relkind FROM pg_class WHERE oid = to_regclass('messages')")).scalar()
    return kind == "p"


def period_start(day: date) -> date:
    """The first day of the partition that holds ``day`` (periods of :data:`SPAN` days from 1970-01-01)."""
    return EPOCH + timedelta(days=(day - EPOCH).days // SPAN * SPAN)


def period_of(seq: int) -> tuple[datetime, datetime]:
    """When the partition of ``seq`` begins and ends (UTC); the legacy seqs give 1970's first period."""
    start = period_start(day_of(seq))
    begins = datetime(start.year, start.month, start.day, tzinfo=UTC)
    return begins, begins + timedelta(days=SPAN)


def day_partition(day: date) -> Partition:
    """The partition that holds ``day`` (its period's): name suffix (the first day), first day, bounds."""
    start = period_start(day)
    low, high = day_floor(start), day_floor(start + timedelta(days=SPAN))
    return Partition(f"{start:%Y%m%d}", start, f"FOR VALUES FROM ({low}) TO ({high})")


def create(conn: sa.Connection, part: Partition) -> bool:
    """Create ``part``'s three partitions unless they exist (call under :func:`lock`); True if created.

    Rows of ``part``'s range in the default partition are moved into the new partitions (same ``seq``).
    """
    if _exists(conn, part.leaf("messages")):
        return False
    moving = _take_from_default(conn, part)
    for table, _ in TABLES:
        conn.exec_driver_sql(f"CREATE TABLE {part.leaf(table)} PARTITION OF {table} {part.bound}")
    unique = f"{part.leaf('messages').split('.')[1]}_id_route"
    conn.exec_driver_sql(f"CREATE UNIQUE INDEX {unique} ON {part.leaf('messages')} (id, route)")
    if moving:
        for table, _ in TABLES:  # parents first: the foreign keys hold
            conn.exec_driver_sql(f"INSERT INTO {table} SELECT * FROM moving_{table}")  # noqa: S608
            conn.exec_driver_sql(f"DROP TABLE moving_{table}")
    return True


def _exists(conn: sa.Connection, name: str) -> bool:
    return conn.execute(sa.text("SELECT to_regclass(:name)"), {"name": name}).scalar() is not None


def _take_from_default(conn: sa.Connection, part: Partition) -> bool:
    """Copy the rows of ``part``'s range from the default partition to temporary tables and delete them
    there; False (nothing done) when there is no default partition or none of its rows is in the range."""
    low, high = seq_range(part.bound)
    default = Partition(DEFAULT, None, "DEFAULT")
    if high is None or not _exists(conn, default.leaf("messages")):
        return False
    where = f"{{key}} < {high}" + ("" if low is None else f" AND {{key}} >= {low}")
    probe = f"SELECT 1 FROM {default.leaf('messages')} WHERE {where.format(key='seq')} LIMIT 1"  # noqa: S608
    if conn.exec_driver_sql(probe).first() is None:
        return False
    for table, key in TABLES:
        conn.exec_driver_sql(
            f"CREATE TEMP TABLE moving_{table} AS SELECT * FROM {default.leaf(table)}"  # noqa: S608
            f" WHERE {where.format(key=key)}"
        )
    for table, key in reversed(TABLES):
        conn.exec_driver_sql(f"DELETE FROM {default.leaf(table)} WHERE {where.format(key=key)}")  # noqa: S608
    return True


def seq_range(bound: str) -> tuple[int | None, int | None]:
    """The ``[low, high)`` seqs of a partition's bound clause (None for ``MINVALUE``, or both None for
    the default partition's ``DEFAULT``)."""
    found = re.search(r"FROM \('?(-?\d+|MINVALUE)'?\) TO \('?(-?\d+)'?\)", bound)
    if found is None:
        return None, None
    low = None if found.group(1) == "MINVALUE" else int(found.group(1))
    return low, int(found.group(2))


def lock(conn: sa.Connection) -> None:
    """Take the partition lock for the rest of ``conn``'s transaction (one creator or pruner at a time)."""
    conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": LOCK_KEY})


def ensure_ahead(conn: sa.Connection, today: date, ahead: int = AHEAD) -> list[str]:
    """Create the partitions of ``today`` and ``ahead`` days after it that are missing; return their days.

    A no-op (one catalog look-up per day) when they exist; nothing on SQLite or before migration 0012.
    """
    if not is_partitioned(conn):
        return []
    days = [today + timedelta(days=n) for n in range(ahead + 1)]
    wanted = list({part.suffix: part for part in map(day_partition, days)}.values())
    names = [part.leaf("messages") for part in wanted]
    query = sa.text("SELECT count(to_regclass(n)) FROM unnest(CAST(:n AS text[])) n")
    found = conn.execute(query, {"n": names})
    if found.scalar_one() == len(wanted):
        return []
    lock(conn)
    legacy = _legacy_end(conn)
    made = []
    for part in wanted:
        low, high = day_floor(part.day or EPOCH), day_floor((part.day or EPOCH) + timedelta(days=SPAN))
        if legacy is not None and legacy >= high:
            continue  # the legacy partition holds this day's block (a journal converted again)
        if legacy is not None and legacy > low:
            part = Partition(part.suffix, part.day, f"FOR VALUES FROM ({legacy}) TO ({high})")
        if create(conn, part):
            made.append(part.suffix)
    return made


def _legacy_end(conn: sa.Connection) -> int | None:
    """Where the legacy partition ends (its bound's ``TO``), None without one."""
    bound = conn.execute(
        sa.text("SELECT pg_get_expr(relpartbound, oid) FROM pg_class WHERE oid = to_regclass(:n)"),
        {"n": f"{SCHEMA}.messages_{LEGACY}"},
    ).scalar()
    found = re.search(r"TO \('?(-?\d+)'?\)", bound or "")
    return int(found.group(1)) if found else None


def existing(conn: sa.Connection) -> list[Partition]:
    """The partitions of ``messages``, oldest first (the legacy and default ones before every day)."""
    rows = conn.execute(
        sa.text(
            "SELECT c.relname, pg_get_expr(c.relpartbound, c.oid) FROM pg_inherits i"
            " JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = to_regclass('messages')"
        )
    )
    found = []
    for name, bound in rows:
        suffix = name.removeprefix("messages_")
        day = None
        if suffix not in (LEGACY, DEFAULT):
            day = date(int(suffix[:4]), int(suffix[4:6]), int(suffix[6:]))
        found.append(Partition(suffix, day, bound))
    return sorted(found, key=lambda part: part.day or date.min)


def drop(conn: sa.Connection, part: Partition) -> None:
    """Detach and drop ``part``'s three partitions, children first (the foreign keys check that no other
    partition refers to its messages). The rows of ``dead_letters`` (migration 0011) and ``in_flight``
    (0016) for its messages go first: their foreign keys would refuse the detach; dead letters kept are
    put back with their events."""
    for small in ("dead_letters", "in_flight"):
        conn.exec_driver_sql(
            f"DELETE FROM {small} AS d USING {part.leaf('messages')} AS m WHERE d.message_seq = m.seq"  # noqa: S608
        )
    for table, _ in reversed(TABLES):
        conn.exec_driver_sql(f"ALTER TABLE {table} DETACH PARTITION {part.leaf(table)}")
        conn.exec_driver_sql(f"DROP TABLE {part.leaf(table)}")


def comparable(conn: sa.Connection) -> Callable[..., bool] | None:
    """Alembic's ``include_object`` for comparing the tables in code with a partitioned journal (None when
    ``conn``'s is not): it leaves out what partitioning adds by design, the per-partition copies of the
    foreign keys (PostgreSQL shows them on the parent), the unique ``(id, route)``, which each
    partition holds instead of the parent, the look-up tables (esb/journal/lookups.py: PostgreSQL's
    alone, declared in their own metadata) and the index on ``business_keys.value`` they replace."""
    if not is_partitioned(conn):
        return None
    has_lookups = conn.execute(sa.text("SELECT to_regclass('lookup_ids')")).scalar() is not None

    def include(obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
        if type_ == "table" and reflected and name in LOOKUP_TABLES:
            return False
        if type_ == "index" and name == "ix_business_keys_value" and not reflected and compare_to is None:
            return not has_lookups  # migration 0017 dropped it: lookup_keys serves the look-ups by value
        if type_ == "foreign_key_constraint" and reflected:
            return bool(obj.referred_table.schema != SCHEMA)
        return not (type_ == "index" and name == "ux_messages_id_route" and compare_to is None)

    return include
