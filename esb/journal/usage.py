"""What the journal holds and what it costs (``esb journal stats``): rows, bytes, bytes per message, age.

Bytes are the database's own figures: on SQLite the file's pages (and how many are free, reusable after
a prune), on PostgreSQL ``pg_total_relation_size`` of each journal table (table, indexes and TOAST), summed
over its partitions (esb/journal/partitions.py).

Counting every row scans each table's smallest index (37 s on a SQLite journal of 10 million messages),
so by default the big tables are *estimated*: :data:`WINDOWS` ranges of :data:`WIDTH` keys spread evenly
between the first and last key of ``messages`` (``seq``) and ``events`` (``id``) are counted exactly (a
range of the primary key each, milliseconds in all) and scaled to the whole span, which holds the gaps a
prune leaves; business keys per message are those of the sampled ranges; the route-level outcomes those of
ranges of :data:`OUTCOME_WIDTH` events (but ``dead_lettered``, counted in its partial index), scaled
the same way. A table whose keys span fewer than ``WINDOWS * WIDTH`` is counted exactly, and so are
the small tables. On a partitioned PostgreSQL journal (esb/journal/partitions.py) ``seq`` jumps by
10^10 a day and ``events`` has no index on ``id`` alone (its primary key is ``(message_seq, id)``: a
range of ``id`` is a scan of every event, 95 s at 10 M), so messages, events and business keys are the
planner's statistics of each partition (``reltuples``), and the outcomes those of the events of
:data:`WINDOWS` ranges of :data:`OUTCOME_MESSAGES` messages spread over the days' seqs (each day's first
and last seq read from the primary key: two index probes a day), a range of the events' primary key each.
``exact=True`` (``esb journal stats --exact``) counts everything.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from esb.journal import partitions
from esb.journal.schema import (
    FINAL_STATES,
    business_keys,
    dead_letters,
    dictionaries,
    events,
    in_flight,
    messages,
)

TABLES = (messages, events, business_keys, dictionaries, dead_letters, in_flight)
#: The tables whose rows are estimated (unless exact); the others are small and always counted.
SAMPLED = frozenset({"messages", "events", "business_keys"})
#: Key ranges counted, and keys in each, when estimating a big table's rows.
WINDOWS = 64
WIDTH = 64
#: Events in each range sampled for the outcomes (``filtered``, a few per cent of them, needs more).
OUTCOME_WIDTH = 512
#: Messages in each range sampled for the outcomes on a partitioned journal (~4 events each).
OUTCOME_MESSAGES = 128


@dataclasses.dataclass
class Usage:
    """Rows per table, bytes, bytes per message, the oldest message and route-level outcomes."""

    rows: dict[str, int]
    bytes: int
    free_bytes: int
    messages: int
    bytes_per_message: float | None
    oldest: datetime | None
    newest: datetime | None
    outcomes: dict[str, int]
    auto_vacuum: str | None = None
    #: whether ``rows`` (messages, events, business keys) and ``outcomes`` are estimates (see the module)
    estimated: bool = False

    def as_dict(self) -> dict[str, Any]:
        """Return the figures for ``--json``."""
        return dataclasses.asdict(self)


def usage(conn: sa.Connection, *, exact: bool = False) -> Usage:
    """Return the journal's usage figures (one read transaction); rows and outcomes of the big tables
    estimated from samples of their keys unless ``exact`` (see the module)."""
    oldest, newest = _ends(conn, messages.c.received_at)
    rows = {t.name: _count(conn, t) for t in (dictionaries, dead_letters, in_flight)}
    if exact:
        for table in (messages, events, business_keys):
            rows[table.name] = _count(conn, table)
        outcomes = {state: int(n) for state, n in conn.execute(_route_finals().group_by(events.c.state))}
        estimated = False
    else:
        estimated = _estimate(conn, rows)
        if partitions.is_partitioned(conn):
            outcomes = _partitioned_outcomes(conn, rows["events"])
        else:
            outcomes = _estimated_outcomes(conn, rows["events"])
    rows = {t.name: rows[t.name] for t in TABLES}
    size, free, vacuum = _size(conn)
    count = rows["messages"]
    per_message = round(size / count, 1) if count else None
    return Usage(rows, size, free, count, per_message, oldest, newest, outcomes, vacuum, estimated)


def _ends(conn: sa.Connection, column: sa.Column[Any]) -> tuple[Any, Any]:
    """The smallest and largest value of an indexed ``column``: two queries, as SQLite reads one end of
    the index for a lone ``min()`` or ``max()`` but scans all of it for both in one select."""
    low = conn.execute(sa.select(sa.func.min(column))).scalar()
    return low, conn.execute(sa.select(sa.func.max(column))).scalar()


def _count(conn: sa.Connection, table: sa.Table) -> int:
    return int(conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())


def _route_finals() -> sa.Select[Any]:
    """The route-level final events (a fan-out's per-endpoint ``delivered`` is not one), by state."""
    return sa.select(events.c.state, sa.func.count()).where(
        events.c.state.in_(FINAL_STATES), sa.or_(events.c.endpoint.is_(None), events.c.state != "delivered")
    )


def windows(
    conn: sa.Connection, key: sa.Column[Any], width: int | None = None
) -> list[tuple[int, int]] | None:
    """The ``[start, end)`` ranges of ``key`` to count: the whole span when it is short (an exact count),
    else :data:`WINDOWS` of ``width`` (:data:`WIDTH`) spread evenly over it; None for an empty table."""
    width = width or WIDTH
    low, high = _ends(conn, key)
    if low is None:
        return None
    span = int(high) - int(low) + 1
    if span <= WINDOWS * width:
        return [(int(low), int(high) + 1)]
    step = (span - width) / (WINDOWS - 1)
    return [(int(low) + int(i * step), int(low) + int(i * step) + width) for i in range(WINDOWS)]


def _scale(found: list[tuple[int, int]], counted: int) -> int:
    """``counted`` rows in the ranges ``found``, scaled to the span from the first range to the last."""
    width = sum(end - start for start, end in found)
    span = found[-1][1] - found[0][0]
    return counted if width >= span else round(counted * span / width)


def _in(key: sa.Column[Any], found: list[tuple[int, int]]) -> Any:
    """The condition: ``key`` in one of the ranges (one statement for all: a range search each)."""
    return sa.or_(*(sa.and_(key >= start, key < end) for start, end in found))


def _estimate(conn: sa.Connection, rows: dict[str, int]) -> bool:
    """Put the estimated rows of messages, events and business keys in ``rows``; whether any is an
    estimate (not when every span is short enough to be counted whole)."""
    estimated = False
    if partitions.is_partitioned(conn):
        # seq is day * 10^10 + n there (esb/journal/partitions.py): its span is mostly gaps, so the
        # planner's own figures stand in for the samples (exact counts when a partition has none yet)
        for table in (messages, events, business_keys):
            rows[table.name] = _planner_rows(conn, table)
        return True
    for table, key in ((messages, messages.c.seq), (events, events.c.id)):
        found = windows(conn, key)
        if found is None:
            rows[table.name] = 0
            if table is messages:
                rows[business_keys.name] = 0
            continue
        counted = _count_where(conn, _in(key, found))
        rows[table.name] = _scale(found, counted)
        estimated = estimated or len(found) > 1
        if table is messages:  # keys per message: those of the sampled messages
            keys = _count_where(conn, _in(business_keys.c.message_seq, found))
            rows[business_keys.name] = round(rows[table.name] * keys / counted) if counted else 0
    return estimated


def _planner_rows(conn: sa.Connection, table: sa.Table) -> int:
    """PostgreSQL's estimate of ``table``'s rows: ``reltuples`` of each partition (kept by autovacuum and
    ANALYZE), a partition never analysed yet (``reltuples`` -1: a new week, the default one) counted."""
    leaves = conn.execute(
        sa.text(
            "SELECT c.oid::regclass::text, c.reltuples FROM pg_partition_tree(:t) AS p"
            " JOIN pg_class AS c ON c.oid = p.relid WHERE p.isleaf"
        ),
        {"t": table.name},
    ).all()
    total = 0
    for name, tuples in leaves:
        if tuples >= 0:
            total += round(tuples)
        else:  # a name from the catalogue, not from input
            total += int(conn.exec_driver_sql(f"SELECT count(*) FROM {name}").scalar_one())  # noqa: S608
    return total


def _count_where(conn: sa.Connection, condition: Any) -> int:
    return int(conn.execute(sa.select(sa.func.count()).where(condition)).scalar_one())


def _estimated_outcomes(conn: sa.Connection, total_events: int) -> dict[str, int]:
    """The route-level outcomes among the events of ranges :data:`OUTCOME_WIDTH` wide, scaled to
    ``total_events``; ``dead_lettered`` counted exactly (its partial index: ~1 % of the messages, too
    rare for a sample of this size)."""
    found = windows(conn, events.c.id, OUTCOME_WIDTH)
    if found is None:
        return {}
    inside = _in(events.c.id, found)
    seen = _count_where(conn, inside)
    counted = conn.execute(_route_finals().where(inside).group_by(events.c.state)).all()
    out = {state: round(int(n) * total_events / seen) for state, n in counted} if seen else {}
    if len(found) > 1:
        dead = _count_where(conn, events.c.state == "dead_lettered")
        out.pop("dead_lettered", None)
        if dead:
            out["dead_lettered"] = dead
    return out


def day_spans(conn: sa.Connection) -> list[tuple[int, int]]:
    """The ``[first, last + 1)`` seqs of each day holding messages on a partitioned journal, oldest first
    (a day's seqs are one block, esb/journal/partitions.py): two probes of the primary key a day."""
    spans: list[tuple[int, int]] = []
    floor: int | None = None
    while True:
        first = sa.select(sa.func.min(messages.c.seq))
        if floor is not None:
            first = first.where(messages.c.seq >= floor)
        low = conn.execute(first).scalar()
        if low is None:
            return spans
        floor = (int(low) // partitions.PER_DAY + 1) * partitions.PER_DAY
        last = sa.select(sa.func.max(messages.c.seq)).where(messages.c.seq < floor)
        spans.append((int(low), int(conn.execute(last).scalar_one()) + 1))


def spread(spans: list[tuple[int, int]], width: int) -> list[tuple[int, int]]:
    """:data:`WINDOWS` ranges of ``width`` keys spread evenly over the keys of ``spans`` laid end to end
    (a range ends with its span); the spans themselves when they hold fewer than ``WINDOWS * width``."""
    total = sum(end - start for start, end in spans)
    if total <= WINDOWS * width:
        return list(spans)
    step = (total - width) / (WINDOWS - 1)
    found = []
    for i in range(WINDOWS):
        offset = int(i * step)
        for start, end in spans:
            if offset < end - start:
                found.append((start + offset, min(start + offset + width, end)))
                break
            offset -= end - start
    return found


def _partitioned_outcomes(conn: sa.Connection, total_events: int) -> dict[str, int]:
    """The route-level outcomes among the events of ranges of :data:`OUTCOME_MESSAGES` messages spread
    over the days' seqs (ranges of the events' primary key), scaled to ``total_events``; ``dead_lettered``
    counted exactly in its partial index, as :func:`_estimated_outcomes` does."""
    spans = day_spans(conn)
    if not spans:
        return {}
    ranges = [  # a SELECT per range, UNION ALL: each pruned to its partition when planned, one index range
        sa.select(events.c.state, events.c.endpoint.is_(None).label("routed")).where(
            events.c.message_seq >= start, events.c.message_seq < end
        )
        for start, end in spread(spans, OUTCOME_MESSAGES)
    ]
    sample = sa.union_all(*ranges).subquery()
    counted = conn.execute(
        sa.select(sample.c.state, sample.c.routed, sa.func.count()).group_by(sample.c.state, sample.c.routed)
    ).all()
    seen = sum(int(n) for _, _, n in counted)
    finals: dict[str, int] = {}
    for state, routed, n in counted:  # the route-level finals, as _route_finals selects them
        if state in FINAL_STATES and (routed or state != "delivered"):
            finals[state] = finals.get(state, 0) + int(n)
    out = {state: round(n * total_events / seen) for state, n in finals.items()} if seen else {}
    out.pop("dead_lettered", None)
    dead = _count_where(conn, events.c.state == "dead_lettered")
    if dead:
        out["dead_lettered"] = dead
    return out


def _size(conn: sa.Connection) -> tuple[int, int, str | None]:
    if conn.dialect.name == "sqlite":
        page = int(conn.exec_driver_sql("PRAGMA page_size").scalar_one())
        pages = int(conn.exec_driver_sql("PRAGMA page_count").scalar_one())
        free = int(conn.exec_driver_sql("PRAGMA freelist_count").scalar_one())
        mode = int(conn.exec_driver_sql("PRAGMA auto_vacuum").scalar_one())
        return page * pages, page * free, {0: "none", 1: "full", 2: "incremental"}.get(mode, str(mode))
    total = 0
    for table in TABLES:
        size = conn.execute(  # every partition of a partitioned table (issue 18), or the table itself
            sa.text("SELECT coalesce(sum(pg_total_relation_size(relid)), 0) FROM pg_partition_tree(:t)"),
            {"t": table.name},
        )
        total += int(size.scalar_one())
    return total, 0, None
