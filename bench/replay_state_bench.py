"""Replay's selection by state over a window, before and after migration 0009, on one filled journal.

    .venv/bin/python bench/replay_state_bench.py /tmp/j/journal.db [--rounds 3]

The journal is a SQLite file filled by ``bench/journal_fill.py``, opened with the bare ``sqlite3`` module
(no migration). The dead-letter index as it was before 0009 (on ``at``) and as 0009 makes it are built
under names of the bench's own (the time each takes is printed; both are dropped at the end), then the
shapes run alternately, each pinned to its index with ``INDEXED BY``:

- ``before``: ``id IN`` the dead letters since the window's start, read through the index on ``at``
  (an event row per dead letter), the query of ``esb replay --state dead_lettered`` before 0009;
- ``after``: ``(id, route) IN`` the dead letters since then on the route, read from the covering index;
- ``window``: the window's messages newest first, each one's latest state checked, until 1,000 are found.

``Journal.find`` now takes ``after`` when fewer dead letters since the window's start than messages in the
window are counted (each up to 5,000 index entries), else ``window``: printed per window as "takes".

Windows: a day a month old, a day in the middle, ten minutes a month old, the last day. Printed per
window and shape: the median over ``--rounds`` rounds of wall and CPU (process) time in ms, the ratio
after/before (the baseline of the same run), the rows found (the two must agree) and the load average
beside each round.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import statistics
import time
from datetime import datetime, timedelta

ROUTE = "crm-order-to-iom"
COVERING = "ix_bench_dead_lettered_covering"
BEFORE = "ix_bench_dead_lettered_at"
INDEXES = {
    BEFORE: "events (at) WHERE state = 'dead_lettered'",  # ix_events_dead_lettered before 0009
    COVERING: "events (at, id, message_id, route, state) WHERE state = 'dead_lettered'",  # after 0009
}
LATEST = (
    "(SELECT e.state FROM events AS e WHERE e.message_id = m.id AND e.route = m.route"
    " ORDER BY e.id DESC LIMIT 1)"
)
SELECT = (
    f"SELECT m.id, m.route, {LATEST} AS state FROM messages AS m"
    f" WHERE m.route = :route AND m.received_at >= :since AND m.received_at < :until"
    f" AND {LATEST} = 'dead_lettered' AND "
)
SHAPES = {
    "before": SELECT + f"m.id IN (SELECT message_id FROM events INDEXED BY {BEFORE}"
    " WHERE state = 'dead_lettered' AND at >= :since)"
    " ORDER BY m.received_at DESC, m.id LIMIT 1000",
    "after": SELECT + f"(m.id, m.route) IN (SELECT message_id, route FROM events INDEXED BY {COVERING}"
    " WHERE state = 'dead_lettered' AND at >= :since AND route = :route)"
    " ORDER BY m.received_at DESC, m.id LIMIT 1000",
    "window": SELECT + "1 = 1 ORDER BY m.received_at DESC, m.id LIMIT 1000",
}
PROBE = 5_000  # esb.journal.queries.PROBE
COUNT_DEAD = (
    f"SELECT count(*) FROM (SELECT 1 FROM events INDEXED BY {COVERING}"
    " WHERE state = 'dead_lettered' AND at >= :since AND route = :route LIMIT :probe)"
)
COUNT_WINDOW = (
    "SELECT count(*) FROM (SELECT 1 FROM messages WHERE received_at >= :since AND received_at < :until"
    " LIMIT :probe)"
)


def chosen(db: sqlite3.Connection, since: datetime, until: datetime) -> str:
    """The shape ``Journal.find`` takes for this window (``queries._few_dead_letters``)."""
    params = {"route": ROUTE, "since": str(since), "until": str(until), "probe": PROBE}
    dead = db.execute(COUNT_DEAD, params).fetchone()[0]
    window = db.execute(COUNT_WINDOW, params).fetchone()[0]
    return "after" if dead < PROBE and dead < window else "window"


def load() -> str:
    """The one-minute load average."""
    return f"{os.getloadavg()[0]:.1f}"


def run(db: sqlite3.Connection, sql: str, since: datetime, until: datetime) -> tuple[float, float, int]:
    """Run one selection; return wall ms, CPU ms and the rows found."""
    params = {"route": ROUTE, "since": str(since), "until": str(until)}
    wall, cpu = time.perf_counter(), time.process_time()
    rows = db.execute(sql, params).fetchall()
    return (time.perf_counter() - wall) * 1000, (time.process_time() - cpu) * 1000, len(rows)


def main() -> None:
    """Build the dead-letter indexes of before and after 0009, time the shapes alternately, drop them."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path", help="a SQLite journal filled by journal_fill.py")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    db = sqlite3.connect(args.path)
    for name, definition in INDEXES.items():
        started = time.perf_counter()
        db.execute(f"CREATE INDEX IF NOT EXISTS {name} ON {definition}")
        print(f"{name} ready in {time.perf_counter() - started:.0f} s (load {load()})")
    try:
        measure(db, args.rounds)
    finally:
        for name in INDEXES:
            db.execute(f"DROP INDEX IF EXISTS {name}")
        db.close()


def measure(db: sqlite3.Connection, rounds: int) -> None:
    """Time the shapes alternately over each window; print the medians."""
    dead = db.execute("SELECT count(*) FROM events WHERE state = 'dead_lettered'").fetchone()[0]
    oldest, newest = (
        datetime.fromisoformat(v)
        for v in db.execute("SELECT min(received_at), max(received_at) FROM messages").fetchone()
    )
    print(f"journal: {oldest:%Y-%m-%d} .. {newest:%Y-%m-%d}, {dead:,} dead-letter events")
    middle = oldest + (newest - oldest) / 2
    windows = {
        "1 day, a month old": (oldest + timedelta(days=1), timedelta(days=1)),
        "1 day, mid-journal": (middle, timedelta(days=1)),
        "10 min, a month old": (oldest + timedelta(days=1), timedelta(minutes=10)),
        "last day": (newest - timedelta(days=1), timedelta(days=1)),
    }
    print(f"{'window':22} {'shape':7} {'wall ms':>9} {'cpu ms':>9} {'ratio':>6} {'rows':>6}  loads")
    for label, (since, length) in windows.items():
        samples: dict[str, list[tuple[float, float, int, str]]] = {name: [] for name in SHAPES}
        for _ in range(rounds):
            for name, sql in SHAPES.items():  # alternated: before, after, before, after...
                wall, cpu, rows = run(db, sql, since, since + length)
                samples[name].append((wall, cpu, rows, load()))
        print(f"{label}: find() takes {chosen(db, since, since + length)!r}")
        base = statistics.median(s[0] for s in samples["before"])
        for name, found in samples.items():
            wall = statistics.median(s[0] for s in found)
            cpu = statistics.median(s[1] for s in found)
            rows = {s[2] for s in found}
            loads = ",".join(s[3] for s in found)
            print(f"{label:22} {name:7} {wall:9.1f} {cpu:9.1f} {wall / base:6.2f} {rows.pop():>6}  {loads}")
        if len({frozenset(s[2] for s in found) for found in samples.values()}) != 1:
            raise SystemExit(f"{label}: the two shapes found different rows")


if __name__ == "__main__":
    main()
