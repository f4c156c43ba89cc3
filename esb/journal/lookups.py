"""PostgreSQL: unpartitioned look-up tables for what is looked up without a bound on ``seq`` (issue 18).

A look-up by business key or by message id on the partitioned journal (esb/journal/partitions.py) has no
bound on ``seq``, so it probed the index of every weekly partition; read cold, each of those indexes'
upper pages came from the disk (98-133 ms median for ``esb trace`` at 10 M messages). Two plain tables
map what is looked up to the message row's ``seq``:

- ``lookup_ids (id, route) -> seq``, primary key ``(id, route)``: a message id once per route across
  every partition. The trigger ``journal_unique_id`` (``BEFORE INSERT`` on ``messages``) inserts the row
  here first, ``ON CONFLICT DO NOTHING``: the unique index arbitrates two inserts of one id (the second
  waits for the first's transaction), which replaces 0012's advisory lock and its probe of every
  partition; when the id is there already and its message exists, the new row is skipped (as ``DO
  NOTHING`` does). An entry whose message is gone (its partition dropped, the entry not yet forgotten)
  is taken over.
- ``lookup_keys (value, name, seq)``, primary key in that order (a trace looks up a value alone, a key
  search a name and value): one row per business-key row, added by an ``AFTER INSERT`` trigger on
  ``business_keys`` (once per statement, from its transition table).

Both have an index on ``seq``. A row deleted from ``messages`` or ``business_keys`` (the row prune, the
moves out of the default partition) takes its entry with it (``AFTER DELETE`` triggers). Dropping a
partition fires no trigger: the prune then forgets the period's entries whose message is gone
(:func:`forget`: batches by ``seq``, after the drop, outside its lock), so the drop stays instant.
Readers look the seqs up first, then read ``messages`` by ``seq IN (the seqs as parameters)``: one index
probe, then the message's one partition, pruned when the statement is planned. (A subquery, ``seq IN
(SELECT seq FROM lookup_ids ...)``, is pruned at run time only: read cold, planning it opened every
partition's indexes, 107 blocks and ~20 ms from the disk at 10 M, against 0.7 ms to execute; an array
of the seqs, ``seq = ANY((SELECT array_agg(seq) ...))``, is not pruned at all.) An entry without its
message (between a drop and its :func:`forget`) finds nothing. SQLite is not partitioned and has neither
table.

Since migration 0019 the journal's batched path (the route's batches) writes both tables' rows in its own
statements and its transactions skip the insert triggers (esb/journal/pgrows.py); the triggers keep the
tables for every other writer.
"""

from __future__ import annotations

from collections.abc import Callable

import sqlalchemy as sa

from esb.journal.schema import messages

#: The look-up tables' metadata: PostgreSQL only, so not in the journal's (esb/journal/schema.py).
metadata = sa.MetaData()

lookup_ids = sa.Table(
    "lookup_ids",
    metadata,
    sa.Column("id", sa.String(), primary_key=True),
    sa.Column("route", sa.String(), primary_key=True),
    sa.Column("seq", sa.BigInteger(), nullable=False),
    sa.Index("ix_lookup_ids_seq", "seq"),
)

lookup_keys = sa.Table(
    "lookup_keys",
    metadata,
    sa.Column("value", sa.String(), primary_key=True),
    sa.Column("name", sa.String(), primary_key=True),
    sa.Column("seq", sa.BigInteger(), primary_key=True),
    sa.Index("ix_lookup_keys_seq", "seq"),
)

#: Entries deleted per transaction by :func:`forget`.
BATCH = 20_000

#: ``journal_unique_id`` with the look-up table (0012's version: esb/journal/partitions.py).
UNIQUE_ID_FUNCTION = """
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

#: The other triggers' functions, created by migration 0017 and dropped by its downgrade.
FUNCTIONS = {
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

#: name -> (table, timing and event, function, level): triggers on the partitioned tables (a row trigger
#: is cloned to every partition, present and future). The keys are added once per statement from its
#: transition table (the journal writes a batch's keys in one statement): as a row trigger it cost the
#: server a plpgsql call per key, ~6 a message.
TRIGGERS = {
    "journal_lookup_ids_drop": ("messages", "AFTER DELETE", "journal_lookup_ids_drop", "FOR EACH ROW"),
    "journal_lookup_keys_add": (
        "business_keys",
        "AFTER INSERT",
        "journal_lookup_keys_add",
        "REFERENCING NEW TABLE AS new_keys FOR EACH STATEMENT",
    ),
    "journal_lookup_keys_drop": ("business_keys", "AFTER DELETE", "journal_lookup_keys_drop", "FOR EACH ROW"),
}


def install(conn: sa.Connection) -> None:
    """Create the triggers that keep the look-up tables, their functions and the new ``journal_unique_id``
    (the tables exist: ``metadata.create_all``)."""
    for function in FUNCTIONS.values():
        conn.exec_driver_sql(function)
    conn.exec_driver_sql(UNIQUE_ID_FUNCTION)
    for name, (table, when, function, level) in TRIGGERS.items():
        conn.exec_driver_sql(f"CREATE TRIGGER {name} {when} ON {table} {level} EXECUTE FUNCTION {function}()")


def fill(run: Callable[[str], object]) -> None:
    """Fill the empty look-up tables from the partitions (migration 0017, the bench's server-side fill),
    ``run`` executing one SQL statement: the indexes are built after the rows (a sort each, much faster
    than millions of random inserts)."""
    for index in ("lookup_ids_pkey", "lookup_keys_pkey"):
        run(f"ALTER TABLE {index.removesuffix('_pkey')} DROP CONSTRAINT {index}")
    for index in ("ix_lookup_ids_seq", "ix_lookup_keys_seq"):
        run(f"DROP INDEX {index}")
    run("INSERT INTO lookup_ids (id, route, seq) SELECT id, route, seq FROM messages")
    run("INSERT INTO lookup_keys (value, name, seq) SELECT value, name, message_seq FROM business_keys")
    run("ALTER TABLE lookup_ids ADD CONSTRAINT lookup_ids_pkey PRIMARY KEY (id, route)")
    run("ALTER TABLE lookup_keys ADD CONSTRAINT lookup_keys_pkey PRIMARY KEY (value, name, seq)")
    run("CREATE INDEX ix_lookup_ids_seq ON lookup_ids (seq)")
    run("CREATE INDEX ix_lookup_keys_seq ON lookup_keys (seq)")
    run("ANALYZE lookup_ids")
    run("ANALYZE lookup_keys")


def uninstall(conn: sa.Connection) -> None:
    """Drop the triggers, their functions and the look-up tables (``journal_unique_id`` is the caller's)."""
    for name, (table, _, _, _) in TRIGGERS.items():
        conn.exec_driver_sql(f"DROP TRIGGER {name} ON {table}")
    for name in FUNCTIONS:
        conn.exec_driver_sql(f"DROP FUNCTION {name}()")
    metadata.drop_all(conn)


def forget(engine: sa.Engine, low: int | None, high: int | None) -> dict[str, int]:
    """Delete the look-up entries with a ``seq`` in ``[low, high)`` (None: unbounded) whose message row is
    gone, :data:`BATCH` seqs a transaction, walking the ``seq`` index; return the entries deleted per
    table. Run by the prune after it dropped a partition (the entries of the rows it put back stay)."""
    gone = {}
    for table in (lookup_ids, lookup_keys):
        gone[str(table.name)] = _forget(engine, table, low, high)
    return gone


def _forget(engine: sa.Engine, table: sa.Table, low: int | None, high: int | None) -> int:
    seq = table.c.seq
    after = low - 1 if low is not None else None
    total = 0
    while True:
        with engine.begin() as conn:
            window = sa.select(seq).order_by(seq).limit(BATCH)
            if after is not None:
                window = window.where(seq > after)
            if high is not None:
                window = window.where(seq < high)
            upper = conn.execute(sa.select(sa.func.max(window.subquery().c.seq))).scalar()
            if upper is None:
                return total
            # the same span on messages' side: its partitions pruned when planned, not hashed whole
            span = [seq <= upper] if after is None else [seq > after, seq <= upper]
            rows = (
                [messages.c.seq <= upper]
                if after is None
                else [messages.c.seq > after, messages.c.seq <= upper]
            )
            orphan = ~sa.exists().where(messages.c.seq == seq, *rows)
            total += conn.execute(sa.delete(table).where(*span, orphan)).rowcount
            after = upper


def seqs_of_key(conn: sa.Connection, value: str, name: str | None = None) -> list[int]:
    """The seqs of the message rows with a business key ``value`` (and ``name`` unless None): one probe
    of ``lookup_keys``."""
    k = lookup_keys.c
    stmt = sa.select(k.seq).where(k.value == value)
    if name is not None:
        stmt = stmt.where(k.name == name)
    return sorted(set(conn.execute(stmt).scalars()))


def seqs_of_ids(conn: sa.Connection, ids: list[str]) -> list[int]:
    """The seqs of the message rows of ``ids`` on every route: one probe of ``lookup_ids`` an id."""
    if not ids:
        return []
    stmt = sa.select(lookup_ids.c.seq).where(lookup_ids.c.id.in_(ids))
    return sorted(conn.execute(stmt).scalars())


def ids_of_seqs(conn: sa.Connection, seqs: list[int]) -> list[str]:
    """The ids of the message rows ``seqs`` (each read in its partition: :func:`seqs_of_key`'s caller)."""
    if not seqs:
        return []
    return sorted(set(conn.execute(sa.select(messages.c.id).where(messages.c.seq.in_(seqs))).scalars()))
