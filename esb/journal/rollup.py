"""Per-minute figures of each route, kept in ``route_minutes`` by the journal's write paths.

A row is ``(minute, route, figure, count)``: how many events of one kind a route had in one minute (UTC,
the minute of the event's ``at``). The figures are the ones ``esb stats`` and the console show:

- ``received``, ``replayed``, ``redelivered``: arrivals (a replay starts a new journey);
- ``delivered`` (the route-level event, no endpoint), ``filtered``, ``dead_lettered``: journeys ended;
- ``error:<reason>``: the reason of a ``redelivered``, ``failed`` or ``dead_lettered`` event;
- ``ms:<bucket>``: the latency of a journey that ended (from its latest ``received`` or ``replayed`` to
  its route-level final event), counted in one of :data:`UPPER_US`'s log-spaced buckets: bucket ``b``
  holds ``UPPER_US[b - 1] < µs <= UPPER_US[b]``, four buckets per doubling (each 19 % wide).

Every write path adds its increments in the transaction of the events it writes (:func:`write`: one
upsert ``count = count + excluded.count`` of a batch's increments summed in Python, in key order, so two
processes never lose an increment nor deadlock). :func:`backfill` fills the table from the events already
there, counting exactly as the write path does (the benches' fills; migration 0015 runs its own frozen
copy of it, as of the day it was written; tests compare both with the write path).
"""

from __future__ import annotations

import bisect
from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from esb.journal.minutes import minute_of as minute_of  # re-exported (its home has no SQLAlchemy)
from esb.journal.schema import events, route_minutes

#: States counted when they happen (any endpoint).
ARRIVALS = ("received", "replayed", "redelivered")
#: States that end a journey on the route (``delivered`` only without an endpoint).
ENDINGS = ("delivered", "filtered", "dead_lettered")
#: States whose error reason is counted.
WITH_REASON = ("redelivered", "failed", "dead_lettered")
#: States that start a journey: a latency runs from the latest of them.
STARTS = ("received", "replayed")
#: Buckets per doubling of the latency.
PER_DOUBLING = 4
#: Upper bound (µs, inclusive) of each latency bucket: 1 ms, 1.19 ms, 1.41 ms ... 2^30 ms (12 days); a
#: latency above the last falls in the overflow bucket ``len(UPPER_US)``.
UPPER_US = tuple(round(1000 * 2 ** (b / PER_DOUBLING)) for b in range(30 * PER_DOUBLING + 1))
#: States counted as a figure of their own name (``delivered`` only without an endpoint).
COUNTED = frozenset(ARRIVALS + ENDINGS)
_US = timedelta(microseconds=1)
#: Columns of a ``route_minutes`` row in the order :func:`write` gives them.
COLUMNS = ("minute", "route", "figure", "count")

Key = tuple[datetime, str, str]


def bucket(latency: timedelta) -> int:
    """Return the latency bucket of ``latency`` (exact: whole microseconds against integer bounds)."""
    return bisect.bisect_left(UPPER_US, latency // _US)


def bucket_upper_ms(index: int) -> float:
    """Return the upper bound of bucket ``index`` in ms (the overflow bucket: the last bound)."""
    return UPPER_US[min(index, len(UPPER_US) - 1)] / 1000


def is_ending(state: str, endpoint: str | None) -> bool:
    """True when an event of ``state`` naming ``endpoint`` ends a journey on the route."""
    return state in ("filtered", "dead_lettered") or (state == "delivered" and endpoint is None)


class Increments:
    """The figures one transaction adds, summed per ``(minute, route, figure)``."""

    def __init__(self) -> None:
        self.counts: dict[Key, int] = {}

    def __bool__(self) -> bool:
        return bool(self.counts)

    def add(
        self,
        route: str,
        at: datetime,
        state: str,
        *,
        endpoint: str | None = None,
        reason: str | None = None,
        start: datetime | None = None,
    ) -> None:
        """Count one event (nothing for states no figure counts); ``start`` is the journey's start, for
        the latency of an ending event."""
        minute = minute_of(at)
        counts = self.counts
        if state in ARRIVALS or is_ending(state, endpoint):
            key = (minute, route, state)
            counts[key] = counts.get(key, 0) + 1
            if start is not None and state in ENDINGS:
                key = (minute, route, f"ms:{bucket(at - start)}")
                counts[key] = counts.get(key, 0) + 1
        if reason and state in WITH_REASON:
            key = (minute, route, f"error:{reason}")
            counts[key] = counts.get(key, 0) + 1

    def add_many(
        self, route: str, at: datetime, states: Iterable[str], starts: Iterable[datetime] = ()
    ) -> None:
        """Count a batch's route-level events (no endpoint, no error) written at ``at``, and the latencies
        of the journeys that started at ``starts`` and ended then (the hot path: :meth:`add`'s figures,
        summed by :class:`~collections.Counter` first)."""
        minute, counts = minute_of(at), self.counts
        for state, n in Counter(states).items():
            if state in COUNTED:
                key = (minute, route, state)
                counts[key] = counts.get(key, 0) + n
        spans = Counter(bisect.bisect_left(UPPER_US, (at - start) // _US) for start in starts)
        for index, n in spans.items():
            key = (minute, route, f"ms:{index}")
            counts[key] = counts.get(key, 0) + n

    def rows(self) -> list[tuple[datetime, str, str, int]]:
        """Return the rows to upsert, in key order (two writers lock the same rows in the same order)."""
        return [(*key, count) for key, count in sorted(self.counts.items())]


def upsert(dialect: str) -> Any:
    """Return ``INSERT INTO route_minutes ... ON CONFLICT DO UPDATE SET count = count + excluded.count``."""
    insert = postgresql.insert(route_minutes) if dialect == "postgresql" else sqlite.insert(route_minutes)
    return insert.on_conflict_do_update(
        index_elements=[route_minutes.c.minute, route_minutes.c.route, route_minutes.c.figure],
        set_={"count": route_minutes.c.count + insert.excluded["count"]},
    )


def starts(conn: sa.Connection, seqs: Iterable[int]) -> dict[int, datetime]:
    """Return the start of the latest journey (``received`` or ``replayed``) of each message row."""
    wanted = sorted(set(seqs))
    if not wanted:
        return {}
    stmt = (
        sa.select(events.c.message_seq, sa.func.max(events.c.at))
        .where(events.c.message_seq.in_(wanted), events.c.state.in_(STARTS))
        .group_by(events.c.message_seq)
    )
    return {int(seq): at for seq, at in conn.execute(stmt)}


def read(
    conn: sa.Connection,
    since: datetime,
    until: datetime,
    routes: Sequence[str] | None = None,
    *,
    by_minute: bool = False,
) -> list[tuple[Any, ...]]:
    """Return ``(route, figure, count)`` summed over the minutes in ``[minute_of(since), until)`` (with
    ``by_minute``: ``(minute, route, figure, count)`` per minute)."""
    total = sa.func.sum(route_minutes.c.count)
    columns: list[Any] = [route_minutes.c.route, route_minutes.c.figure]
    if by_minute:
        columns.insert(0, route_minutes.c.minute)
    stmt = (
        sa.select(*columns, total)
        .where(route_minutes.c.minute >= minute_of(since), route_minutes.c.minute < until)
        .group_by(*columns)
    )
    if routes is not None:
        stmt = stmt.where(route_minutes.c.route.in_(list(routes)))
    return [tuple(row) for row in conn.execute(stmt)]


# -- the backfill of bench/journal_fill.py (migration 0015 runs a frozen copy) ---------------------------

# The statements are constants of this module (no value from outside): formatted with the dialect's
# expressions of _SQLITE or _POSTGRES alone. Rows go in minute order, so that on PostgreSQL (a heap) a
# window's rows sit on a few pages (in group order, a 5-minute window read 85 pages for 90 rows).
_ENDING = "(state IN ('filtered', 'dead_lettered') OR (state = 'delivered' AND endpoint IS NULL))"
_COUNTS = (
    "INSERT INTO route_minutes (minute, route, figure, count)"  # noqa: S608  # constants only (above)
    " SELECT {minute} AS m, route, state, count(*) FROM events"
    f" WHERE state IN ('received', 'replayed', 'redelivered') OR {_ENDING}"
    " GROUP BY m, route, state ORDER BY m"
)
_ERRORS = (
    "INSERT INTO route_minutes (minute, route, figure, count)"
    " SELECT {minute} AS m, route, 'error:' || error_reason AS f, count(*) FROM events"
    " WHERE error_reason IS NOT NULL AND error_reason <> ''"
    " AND state IN ('redelivered', 'failed', 'dead_lettered')"
    " GROUP BY m, route, f ORDER BY m"
)
#: Each ending event with the start of its journey: the latest ``received``/``replayed`` event of its
#: message row before it (a window over the row's events in id order, as the write path looks it up).
_LATENCIES = (
    "INSERT INTO route_minutes (minute, route, figure, count)"  # noqa: S608  # constants only
    " SELECT {minute} AS m, route, 'ms:' || {bucket} AS f, count(*) FROM ("
    "  SELECT route, state, endpoint, at, max(CASE WHEN state IN ('received', 'replayed') THEN at END)"
    "   OVER (PARTITION BY message_seq ORDER BY id ROWS UNBOUNDED PRECEDING) AS started FROM events"
    " ) AS e"
    f" WHERE started IS NOT NULL AND {_ENDING}"
    " GROUP BY m, route, f ORDER BY m"
)
_SQLITE = {"minute": "substr(at, 1, 16) || ':00.000000'", "bucket": "esb_latency_bucket(started, at)"}
_POSTGRES = {
    "minute": "date_trunc('minute', at)",
    "bucket": "width_bucket((extract(epoch FROM at - started) * 1000000)::bigint - 1,"
    " ARRAY[{bounds}]::bigint[])".format(bounds=", ".join(map(str, UPPER_US))),
}


def _sqlite_bucket(started: str, at: str) -> int:
    """SQLite's ``esb_latency_bucket(started, at)``: :func:`bucket` of two stored timestamps."""
    return bucket(datetime.fromisoformat(at) - datetime.fromisoformat(started))


def backfill(conn: sa.Connection) -> None:
    """Fill ``route_minutes`` from every event (an empty table: run once, by a fill)."""
    if conn.dialect.name == "postgresql":
        parts = _POSTGRES
    else:
        driver = conn.connection.driver_connection
        assert driver is not None
        driver.create_function("esb_latency_bucket", 2, _sqlite_bucket, deterministic=True)
        parts = _SQLITE
    for sql in (_COUNTS, _ERRORS, _LATENCIES):
        conn.exec_driver_sql(sql.format(**parts))
