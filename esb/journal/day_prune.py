"""Retention on the partitioned PostgreSQL journal: a week whose messages may (nearly) all go is dropped
whole instead of deleted row by row (esb/journal/partitions.py).

A partition is a candidate once its period has ended before the oldest cutoff (the longest retention:
then every finished message in it may go; the legacy and default partitions once their newest message
is that old). Its messages are split by the rule of esb/journal/retention.py (latest state and age):
- none may go: left alone;
- more must stay than may go: left to the row-by-row prune (copying would cost more);
- otherwise the ones that go are archived first (batches, as the row prune does, outside any lock), then
  in one transaction, under a lock on the three tables: the split is made again (an event written since
  may have changed it; a message that may go now and was not archived is archived then), the rows that
  stay (unhandled dead letters, failures, messages still in flight) are copied aside, the period's three
  partitions are detached and dropped, and when rows stay the partitions are created again and those rows
  put back, with their ``seq`` and event ids: they are *moved*, so the space is given back at once (no
  dead rows for VACUUM) whatever stays.

The row prune leaves alone the messages of the longest retention in partitions whose period has not
ended before it (:func:`waits_for_drop`): they go with their partition, up to :data:`SPAN` days after
their own cutoff, instead of being deleted row by row day after day.

The transaction waits at most :data:`LOCK_TIMEOUT` for its locks (a writer mid-transaction holds them):
shorter than PostgreSQL's ``deadlock_timeout``, so when a writer and the drop wait for each other it is
the drop that gives up; that day is then left to the row prune and the next run.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from esb.journal import partitions
from esb.journal.partitions import Partition

#: How long the drop's transaction waits for its locks before giving the day up until the next run.
LOCK_TIMEOUT = "500ms"


def split(
    conn: sa.Connection, part: Partition, cutoffs: dict[str, datetime], prunable: dict[str, str]
) -> tuple[list[int], list[int]]:
    """Return the seqs of ``part``'s messages that may go and those that must stay, oldest first."""
    leaf_m, leaf_e = part.leaf("messages"), part.leaf("events")
    rows = conn.exec_driver_sql(
        f"SELECT m.seq, m.received_at, (SELECT e.state FROM {leaf_e} e WHERE e.message_seq = m.seq"  # noqa: S608
        f" ORDER BY e.id DESC LIMIT 1) FROM {leaf_m} m ORDER BY m.seq"
    )
    go: list[int] = []
    stay: list[int] = []
    for seq, received_at, state in rows:
        outcome = prunable.get(state or "")
        (go if outcome in cutoffs and received_at < cutoffs[outcome] else stay).append(seq)
    return go, stay


def _newest(conn: sa.Connection, part: Partition) -> datetime | None:
    found = conn.exec_driver_sql(f"SELECT max(received_at) FROM {part.leaf('messages')}")  # noqa: S608
    value = found.scalar()
    return value if isinstance(value, datetime) else None


def _counts(conn: sa.Connection, part: Partition) -> dict[str, int]:
    return {
        table: int(conn.exec_driver_sql(f"SELECT count(*) FROM {part.leaf(table)}").scalar_one())  # noqa: S608
        for table, _ in partitions.TABLES
    }


def _move_aside(conn: sa.Connection, part: Partition, stay: list[int]) -> None:
    """Copy the rows of the messages in ``stay`` to temporary tables (dropped at commit)."""
    for table, key in partitions.TABLES:
        conn.execute(
            sa.text(
                f"CREATE TEMP TABLE keep_{table} ON COMMIT DROP AS"  # noqa: S608 - constant names
                f" SELECT * FROM {part.leaf(table)} WHERE {key} = ANY(:seqs)"
            ),
            {"seqs": stay},
        )


def _put_back(conn: sa.Connection) -> None:
    for table, _ in partitions.TABLES:  # parents first: the foreign keys hold
        # events in their order: their triggers put back dead_letters and in_flight (0011, 0014, 0016) as
        # each message's latest event says
        order = " ORDER BY id" if table == "events" else ""
        conn.exec_driver_sql(f"INSERT INTO {table} SELECT * FROM keep_{table}{order}")  # noqa: S608


def replace_day(
    engine: sa.Engine,
    part: Partition,
    cutoffs: dict[str, datetime],
    prunable: dict[str, str],
    archived: set[int],
    archive: Callable[[sa.Connection, list[int]], object],
) -> tuple[int, dict[str, int]] | None:
    """Drop ``part`` (moving the rows that stay into a new partition of the same day); return the number of
    messages gone and rows gone per table, or None when the locks were not had in time."""
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
            partitions.lock(conn)
            conn.exec_driver_sql("LOCK TABLE messages, events, business_keys IN EXCLUSIVE MODE")
            go, stay = split(conn, part, cutoffs, prunable)
            late = [seq for seq in go if seq not in archived]
            if late:
                archive(conn, late)
            before = _counts(conn, part)
            if stay:
                _move_aside(conn, part, stay)
            partitions.drop(conn, part)
            kept = {table: 0 for table, _ in partitions.TABLES}
            if stay:
                partitions.create(conn, part)
                _put_back(conn)
                kept = _counts(conn, part)
    except sa.exc.OperationalError as error:
        if "lock timeout" in str(error):
            return None
        raise
    return len(go), {table: before[table] - kept[table] for table in before}


def candidates(engine: sa.Engine, oldest_cutoff: datetime) -> list[Partition]:
    """The partitions whose period ended before ``oldest_cutoff`` (legacy, default: whose newest message
    arrived before it), oldest first."""
    with engine.connect() as conn:
        found = []
        for part in partitions.existing(conn):
            if part.day is not None:
                ended = partitions.period_of(partitions.day_floor(part.day))[1] <= oldest_cutoff
                if ended and _newest(conn, part) is not None:
                    found.append(part)
                continue
            newest = _newest(conn, part)
            if newest is not None and newest < oldest_cutoff:
                found.append(part)
        return found


def waits_for_drop(seq: int, received_at: datetime, cutoff: datetime, oldest_cutoff: datetime) -> bool:
    """Whether the row prune leaves a message (past its ``cutoff``) to the drop of its partition: its
    outcome has the longest retention and its period has not ended before that cutoff. Not the legacy
    rows, nor a row older than its period (written with another clock): those are pruned row by row."""
    begins, ends = partitions.period_of(seq)
    return cutoff == oldest_cutoff and seq >= partitions.PER_DAY and ends > cutoff and received_at >= begins


def plan(engine: sa.Engine, part: Partition, cutoffs: dict[str, datetime], prunable: dict[str, str]) -> Any:
    """Return the seqs that may go when dropping ``part`` pays (fewer must stay than may go), else None."""
    with engine.connect() as conn:
        go, stay = split(conn, part, cutoffs, prunable)
    if not go or len(stay) > len(go):
        return None
    return go
