"""Replay's selection by state over a window: the ways of selecting dead letters, on one filled journal.

    .venv/bin/python bench/replay_state_bench.py sqlite:////tmp/j/journal.db [--rounds 5]
    .venv/bin/python bench/replay_state_bench.py --write-cost 1500 [--rounds 5]

The journal is one filled by ``bench/journal_fill.py``, opened with ``Journal`` (so migrated to head
first: the time is printed; migration 0011 fills ``dead_letters`` from the dead-letter events). The
statements are ``esb.journal.queries.find_statement``'s for ``esb replay --route crm-order-to-iom --state
dead_lettered --since S --until U`` (at most 1,000), in three shapes, run alternately:

- ``window`` (the baseline): the window's messages newest first, each one's latest state checked, until
  1,000 are found; what ``find`` took for an old window before 0011;
- ``since``: the messages dead-lettered *since the window's start* (``ix_events_dead_lettered``, 0010),
  what ``find`` took for a recent window before 0011 (built here: ``find`` no longer has it);
- ``dead_letters``: the messages ever dead-lettered that arrived in the window (``dead_letters``, 0011),
  what ``find`` takes now unless the window holds more than 5,000 of them.

Windows: a day a month old, a day in the middle, ten minutes a month old, the last day. Printed per window
and shape: the median over ``--rounds`` rounds of wall and CPU (process) time in ms, the ratio of the wall
median to ``window``'s (measured in the same run), the rows found (the shapes must agree, else the bench
fails) and the one-minute load average at each round.

``--write-cost N`` measures what 0011 adds to writing: N messages journaled as dead-lettered (received,
failed, dead_lettered) into a fresh SQLite journal with the trigger that keeps ``dead_letters`` and
with it dropped, alternated, median of ``--rounds``: wall and CPU microseconds per message.
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

from esb.journal import Journal, queries  # noqa: E402
from esb.journal.queries import Filter, find_statement  # noqa: E402
from esb.journal.schema import events, messages  # noqa: E402

ROUTE = "crm-order-to-iom"
LIMIT = 1000
BODY = b'{"order":"1-ABC"}' * 20  # 340 bytes, as journal_bench.py


def since_shape(flt: Filter) -> sa.Select[Any]:
    """0010's way: ``seq IN`` the dead-letter events since the window's start on the route."""
    e = events.c
    dead = sa.select(e.message_seq).where(e.state == "dead_lettered", e.at >= flt.since, e.route == flt.route)
    return find_statement(flt, LIMIT, [messages.c.seq.in_(dead)])


SHAPES: dict[str, Callable[[Filter], sa.Select[Any]]] = {
    "window": lambda flt: find_statement(flt, LIMIT),
    "since": since_shape,
    "dead_letters": lambda flt: find_statement(flt, LIMIT, dead_first=True),
}


def load() -> str:
    """The one-minute load average."""
    return f"{os.getloadavg()[0]:.1f}"


def run(conn: sa.Connection, statement: Any) -> tuple[float, float, list[str]]:
    """Run one selection; return wall ms, CPU ms and the ids found."""
    wall, cpu = time.perf_counter(), time.process_time()
    rows = [row.id for row in conn.execute(statement)]
    return (time.perf_counter() - wall) * 1000, (time.process_time() - cpu) * 1000, rows


def write_cost(n: int, rounds: int) -> None:
    """Print the cost per dead-lettered message of the trigger keeping ``dead_letters``."""
    from esb.message import Message

    samples: dict[bool, list[tuple[float, float]]] = {True: [], False: []}
    loads: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        for round_ in range(rounds):
            for trigger in (False, True):
                url = f"sqlite:///{tmp}/{round_}-{trigger}.db"
                with Journal(url) as journal:
                    if not trigger:
                        with journal._read().begin() as conn:
                            conn.exec_driver_sql("DROP TRIGGER tr_events_dead_letters")
                    wall, cpu = time.perf_counter(), time.process_time()
                    for i in range(n):
                        m = Message(body=BODY, id=f"dead-{i}", business_keys={"o": f"{i}"})
                        journal.received(ROUTE, m)
                        journal.event(ROUTE, m, "failed", error="refused")
                        journal.event(ROUTE, m, "dead_lettered", endpoint="dlq.orders", error="refused")
                    samples[trigger].append(
                        ((time.perf_counter() - wall) * 1e6 / n, (time.process_time() - cpu) * 1e6 / n)
                    )
                loads.append(load())
    for trigger, found in samples.items():
        wall = statistics.median(s[0] for s in found)
        cpu = statistics.median(s[1] for s in found)
        print(f"trigger {'on ' if trigger else 'off'}: {wall:8.0f} us wall {cpu:8.0f} us CPU per dead letter")
    print(f"loads: {','.join(loads)}")


def main() -> None:
    """Open (migrate) the journal, time the shapes alternately over each window, print the medians."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url", nargs="?", help="a journal filled by journal_fill.py")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--write-cost", type=int, default=0, help="time N dead letters with/without 0011")
    args = parser.parse_args()
    if args.write_cost:
        write_cost(args.write_cost, args.rounds)
        return
    if not args.url:
        parser.error("a journal URL is needed (or --write-cost N)")
    started = time.perf_counter()
    with Journal(args.url, pool_size=1) as journal:
        print(f"opened (migrated to head if behind) in {time.perf_counter() - started:.1f} s (load {load()})")
        with journal._read().connect() as conn:
            measure(conn, args.rounds)


def measure(conn: sa.Connection, rounds: int) -> None:
    """Time the shapes alternately over each window; print the medians."""
    oldest = conn.execute(sa.select(sa.func.min(messages.c.received_at))).scalar_one()
    newest = conn.execute(sa.select(sa.func.max(messages.c.received_at))).scalar_one()
    dead = conn.exec_driver_sql("SELECT count(*) FROM dead_letters").scalar_one()
    print(f"journal: {oldest:%Y-%m-%d} .. {newest:%Y-%m-%d}, {dead:,} messages ever dead-lettered")
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
            for name, shape in SHAPES.items():  # alternated: window, since, dead_letters, window...
                wall, cpu, rows = run(conn, shape(flt))
                samples[name].append((wall, cpu, rows, load()))
        takes = "dead_letters" if queries._few_dead_letters(conn, flt) else "window"
        print(f"{label}: find() takes {takes!r}")
        base = statistics.median(s[0] for s in samples["window"])
        for name, found in samples.items():
            wall = statistics.median(s[0] for s in found)
            cpu = statistics.median(s[1] for s in found)
            loads = ",".join(s[3] for s in found)
            count = len(found[0][2])
            print(f"{label:22} {name:12} {wall:9.1f} {cpu:9.1f} {wall / base:6.3f} {count:>6}  {loads}")
        if len({tuple(s[2]) for found in samples.values() for s in found}) != 1:
            raise SystemExit(f"{label}: the shapes found different rows")


if __name__ == "__main__":
    main()
