"""Replay's selection by state over a window and ``esb dlq``'s count, before and after migration 0014.

    .venv/bin/python bench/replay_state_bench.py URL [--rounds 5] [--count-rounds 3]
    .venv/bin/python bench/replay_state_bench.py [URL] --write-cost 800 [--rounds 5]

The journal is one filled by ``bench/journal_fill.py`` (SQLite or PostgreSQL), opened with ``Journal``
(so migrated to head first: the time is printed; 0014 deletes the handled rows of ``dead_letters``). The
statements are ``esb.journal.queries``' for ``esb replay --route crm-order-to-iom --state dead_lettered
--since S --until U`` (at most 1,000), in three shapes, run alternately:

- ``window`` (the slow path): the window's messages newest first, each one's latest state checked, until
  1,000 are found; what ``find`` took for an old window before 0011;
- ``before``: the window's range of ``dead_letters`` (0011: every message row ever dead-lettered), each
  candidate's latest event read to check it is still ``dead_lettered``; what ``find`` took before 0014;
- ``now``: the window's range of ``dead_letters`` alone (0014: the rows whose latest state is
  ``dead_lettered``), no event read.

Windows: a day a month old, a day in the middle, ten minutes a month old, the last day. Printed per window
and shape: the median over ``--rounds`` rounds of wall and CPU (process) time in ms, the ratio of the wall
median to ``before``'s (measured in the same run), the rows found (the shapes must agree, else the bench
fails) and the one-minute load average at each round. Then ``esb dlq``'s count of the route's dead
letters (at most 100,000), ``before`` (``len(find(route, state))``, each message's latest event read) and
``now`` (``Journal.dead_lettered_count``), alternated ``--count-rounds`` times.

``--write-cost N`` measures what 0014's trigger adds to writing: N messages journaled as a delivered CRM
order is (received, three delivered events: each fires the trigger) into the journal at URL (default: a
fresh SQLite file) with the trigger and with it dropped, alternated, median of ``--rounds``: wall and CPU
microseconds per message.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from esb.journal import Journal  # noqa: E402
from esb.journal.queries import Filter, find_statement, latest_state  # noqa: E402
from esb.journal.schema import dead_letters, messages  # noqa: E402

ROUTE = "crm-order-to-iom"
LIMIT = 1000
BODY = b'{"order":"1-ABC"}' * 20  # 340 bytes, as journal_bench.py


def before_shape(flt: Filter) -> sa.Select[Any]:
    """0011-0013's statement: the window's range of ``dead_letters``, each candidate's latest state read
    (as a column and as a condition), newest first."""
    d = dead_letters.c
    columns = [c for c in messages.c if c.name not in ("body", "seq")]
    stmt = sa.select(
        messages.c.seq,
        *columns,
        messages.c.body.is_not(None).label("has_body"),
        latest_state().label("state"),
    ).select_from(dead_letters.join(messages, messages.c.seq == d.message_seq))
    return (
        stmt.where(
            d.received_at >= flt.since,
            d.received_at < flt.until,
            d.route == flt.route,
            messages.c.route == flt.route,
            latest_state() == "dead_lettered",
        )
        .order_by(d.received_at.desc(), messages.c.id)
        .limit(LIMIT)
    )


SHAPES: dict[str, Callable[[Filter], sa.Select[Any]]] = {
    "window": lambda flt: find_statement(flt, LIMIT),
    "before": before_shape,
    "now": lambda flt: find_statement(flt, LIMIT, dead_first=True),
}
#: ``esb dlq``'s count of a route's dead letters: before 0014 and now (the journal's calls).
COUNTS: dict[str, Callable[[Journal], int]] = {
    "before": lambda j: len(j.find(route=ROUTE, state="dead_lettered", limit=100_000, with_keys=False)),
    "now": lambda j: j.dead_lettered_count(ROUTE, 100_000),
}


def load() -> str:
    """The one-minute load average."""
    return f"{os.getloadavg()[0]:.1f}"


def run(conn: sa.Connection, statement: Any) -> tuple[float, float, list[str]]:
    """Run one selection; return wall ms, CPU ms and the ids found."""
    wall, cpu = time.perf_counter(), time.process_time()
    rows = [row.id for row in conn.execute(statement)]
    return (time.perf_counter() - wall) * 1000, (time.process_time() - cpu) * 1000, rows


#: 0014's trigger, dropped and made again by ``--write-cost``.
TRIGGER = "tr_events_dead_letters_handled"
_PG_TRIGGER = (
    f"CREATE TRIGGER {TRIGGER} AFTER INSERT ON events FOR EACH ROW"
    " WHEN (NEW.state <> 'dead_lettered') EXECUTE FUNCTION esb_dead_letters_handled()"
)
_SQLITE_TRIGGER = (
    f"CREATE TRIGGER {TRIGGER} AFTER INSERT ON events WHEN NEW.state <> 'dead_lettered'"
    " BEGIN DELETE FROM dead_letters WHERE message_seq = NEW.message_seq; END"
)


def _set_trigger(journal: Journal, on: bool) -> None:
    postgres = journal._read().dialect.name == "postgresql"
    with journal._read().begin() as conn:
        conn.exec_driver_sql(f"DROP TRIGGER IF EXISTS {TRIGGER}" + (" ON events" if postgres else ""))
        if on:
            conn.exec_driver_sql(_PG_TRIGGER if postgres else _SQLITE_TRIGGER)


def write_cost(url: str | None, n: int, rounds: int) -> None:
    """Print the cost per delivered message of the trigger removing handled rows of ``dead_letters``."""
    from esb.message import Message

    samples: dict[bool, list[tuple[float, float]]] = {True: [], False: []}
    loads: list[str] = []
    with tempfile.TemporaryDirectory() as tmp, Journal(url or f"sqlite:///{tmp}/journal.db") as journal:
        tag = f"{time.time_ns()}"
        for round_ in range(rounds):
            for trigger in (False, True):
                _set_trigger(journal, trigger)
                wall, cpu = time.perf_counter(), time.process_time()
                for i in range(n):
                    m = Message(body=BODY, id=f"w{tag}-{round_}-{trigger}-{i}", business_keys={"o": f"{i}"})
                    journal.received(ROUTE, m)
                    journal.event(ROUTE, m, "delivered", endpoint="iom.orders_in")
                    journal.event(ROUTE, m, "delivered", endpoint="hub.product_orders")
                    journal.event(ROUTE, m, "delivered")
                samples[trigger].append(
                    ((time.perf_counter() - wall) * 1e6 / n, (time.process_time() - cpu) * 1e6 / n)
                )
                loads.append(load())
        _set_trigger(journal, True)
    for trigger, found in samples.items():
        wall = statistics.median(s[0] for s in found)
        cpu = statistics.median(s[1] for s in found)
        print(f"trigger {'on ' if trigger else 'off'}: {wall:8.0f} us wall {cpu:8.0f} us CPU per message")
    print(f"loads: {','.join(loads)}")


def main() -> None:
    """Open (migrate) the journal, time the shapes alternately over each window, print the medians."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url", nargs="?", help="a journal filled by journal_fill.py")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--count-rounds", type=int, default=3, help="rounds of the dlq count (0: none)")
    parser.add_argument("--write-cost", type=int, default=0, help="time N messages with/without 0014")
    args = parser.parse_args()
    if args.write_cost:
        write_cost(args.url, args.write_cost, args.rounds)
        return
    if not args.url:
        parser.error("a journal URL is needed (or --write-cost N)")
    started = time.perf_counter()
    with Journal(args.url, pool_size=1) as journal:
        print(f"opened (migrated to head if behind) in {time.perf_counter() - started:.1f} s (load {load()})")
        with journal._read().connect() as conn:
            measure(conn, args.rounds)
        count(journal, args.count_rounds)


def measure(conn: sa.Connection, rounds: int) -> None:
    """Time the shapes alternately over each window; print the medians."""
    oldest = conn.execute(sa.select(sa.func.min(messages.c.received_at))).scalar_one()
    newest = conn.execute(sa.select(sa.func.max(messages.c.received_at))).scalar_one()
    dead = conn.exec_driver_sql("SELECT count(*) FROM dead_letters").scalar_one()
    print(f"journal: {oldest:%Y-%m-%d} .. {newest:%Y-%m-%d}, {dead:,} dead letters unhandled")
    middle = oldest + (newest - oldest) / 2
    windows: dict[str, tuple[datetime, timedelta]] = {
        "1 day, a month old": (oldest + timedelta(days=1), timedelta(days=1)),
        "1 day, mid-journal": (middle, timedelta(days=1)),
        "10 min, a month old": (oldest + timedelta(days=1), timedelta(minutes=10)),
        "last day": (newest - timedelta(days=1), timedelta(days=1)),
    }
    print(f"{'window':22} {'shape':12} {'wall ms':>9} {'cpu ms':>9} {'ratio':>6} {'rows':>6}  loads")
    for label, (since, length) in windows.items():
        flt = Filter(route=ROUTE, since=since, until=since + length, state="dead_lettered")
        samples: dict[str, list[tuple[float, float, list[str], str]]] = {name: [] for name in SHAPES}
        for _ in range(rounds):
            for name, shape in SHAPES.items():  # alternated: window, before, now, window...
                wall, cpu, rows = run(conn, shape(flt))
                samples[name].append((wall, cpu, rows, load()))
        base = statistics.median(s[0] for s in samples["before"])
        for name, found in samples.items():
            wall = statistics.median(s[0] for s in found)
            cpu = statistics.median(s[1] for s in found)
            loads = ",".join(s[3] for s in found)
            count = len(found[0][2])
            print(f"{label:22} {name:12} {wall:9.1f} {cpu:9.1f} {wall / base:6.3f} {count:>6}  {loads}")
        if len({tuple(s[2]) for found in samples.values() for s in found}) != 1:
            raise SystemExit(f"{label}: the shapes found different rows")


def count(journal: Journal, rounds: int) -> None:
    """Time ``esb dlq``'s count of the route, before and now alternated; print the medians."""
    samples: dict[str, list[tuple[float, float, int, str]]] = {name: [] for name in COUNTS}
    for _ in range(rounds):
        for name, counted in COUNTS.items():
            wall, cpu = time.perf_counter(), time.process_time()
            number = counted(journal)
            samples[name].append(
                ((time.perf_counter() - wall) * 1000, (time.process_time() - cpu) * 1000, number, load())
            )
    if not rounds:
        return
    base = statistics.median(s[0] for s in samples["before"])
    for name, found in samples.items():
        wall = statistics.median(s[0] for s in found)
        cpu = statistics.median(s[1] for s in found)
        loads = ",".join(s[3] for s in found)
        print(
            f"{'dlq count':22} {name:12} {wall:9.1f} {cpu:9.1f} {wall / base:6.3f} {found[0][2]:>6}  {loads}"
        )
    if len({s[2] for found in samples.values() for s in found}) != 1:
        raise SystemExit("dlq count: before and now differ")


if __name__ == "__main__":
    main()
