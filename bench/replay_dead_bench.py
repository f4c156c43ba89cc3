"""Replay's selection of a day of dead letters a month old, since 0018 and before, alternated, warm and cold.

    .venv/bin/python bench/replay_dead_bench.py URL [--rounds 5] [--cold 5] [--pg-base BASE]

The journal is one filled by ``bench/journal_fill.py`` (SQLite or PostgreSQL), opened with ``Journal`` (so
migrated to head first). ``esb replay --route crm-order-to-iom --since D --until D+1day --state
dead_lettered`` (1,000 rows) over a day in the journal's first week, in four shapes (bench/
journal_scale_bench.py's ``dead_letters_in``), each round in turn, a new day each round:

- ``select``: :func:`esb.ops.replay.select`: the count and ids (what esb replay has before its
  confirmation and its first page; since 0018 ``dead_letters``' index alone);
- ``first``: and the first page of 100 records (what the first re-publish waits for, its body apart);
- ``all``: every record, page by page (the replay's reads, bodies apart);
- ``find``: every record up front by ``find`` (the selection before 0018: the baseline of the run).

Printed per shape: wall and CPU (process) ms, median and range, warm (in-process, ``--rounds`` rounds) and
cold (``--cold`` rounds, the journal's files evicted before each call: bench/page_cache.py; PostgreSQL
needs the kept server's ``--pg-base``), the ratio of the wall and CPU medians to ``find``'s, and the load.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.journal_scale_bench import dead_letters_in  # noqa: E402
from bench.page_cache import evicter  # noqa: E402
from esb.journal import Journal  # noqa: E402
from esb.journal.schema import dead_letters  # noqa: E402

SHAPES = ("select", "first", "all", "find")


def days(journal: Journal, rounds: int) -> list[Any]:
    """The first ``rounds`` days of the journal's second to sixth day (a month old on a 35-day fill)."""
    with journal._read().connect() as conn:
        oldest = conn.execute(sa.select(sa.func.min(dead_letters.c.received_at))).scalar_one()
    return [oldest + timedelta(days=1 + r % 5, hours=r // 5) for r in range(rounds)]


def timed(call: Callable[[], Any]) -> tuple[float, float]:
    """Wall and CPU milliseconds of one call."""
    wall, cpu = time.perf_counter(), time.process_time()
    call()
    return (time.perf_counter() - wall) * 1000, (time.process_time() - cpu) * 1000


def report(label: str, samples: dict[str, list[tuple[float, float]]], loads: list[float]) -> None:
    """One line per shape: wall and CPU medians and ranges, ratios to ``find``'s medians."""
    base = {k: statistics.median(s[k] for s in samples["find"]) for k in (0, 1)}
    print(f"{label} (load {min(loads):.1f}-{max(loads):.1f})")
    header = f"{'wall median [range]':>26} {'cpu median [range]':>24} {'wall/find':>9} {'cpu/find':>8}"
    print(f"  {'shape':8} {header}")
    for shape in SHAPES:
        walls, cpus = [s[0] for s in samples[shape]], [s[1] for s in samples[shape]]
        wall, cpu = statistics.median(walls), statistics.median(cpus)
        print(
            f"  {shape:8} {wall:9.1f} [{min(walls):6.1f}-{max(walls):7.1f}]"
            f" {cpu:7.1f} [{min(cpus):5.1f}-{max(cpus):6.1f}] {wall / base[0]:9.2f} {cpu / base[1]:8.2f}"
        )


def main() -> None:
    """Time the four shapes, alternated, warm then cold."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--cold", type=int, default=5)
    parser.add_argument("--pg-base", type=Path)
    args = parser.parse_args()
    started = time.perf_counter()
    with Journal(args.url, pool_size=2) as journal:
        print(f"opened (migrated to head if behind) in {time.perf_counter() - started:.1f} s")
        windows = days(journal, max(args.rounds, args.cold))
        rows = len(dead_letters_in(journal, windows[0], 1)())
        print(f"rows a day: {rows}")
        warm: dict[str, list[tuple[float, float]]] = {shape: [] for shape in SHAPES}
        loads = []
        for r in range(args.rounds):
            for n in range(len(SHAPES)):  # each shape first in turn
                shape = SHAPES[(r + n) % len(SHAPES)]
                warm[shape].append(timed(dead_letters_in(journal, windows[r], 1, shape)))
            loads.append(os.getloadavg()[0])
        report(f"warm, {args.rounds} rounds", warm, loads)
    if not args.cold:
        return
    make_cold = evicter(args.url, args.pg_base)
    cold: dict[str, list[tuple[float, float]]] = {shape: [] for shape in SHAPES}
    loads = []
    for r in range(args.cold):
        for n in range(len(SHAPES)):
            shape = SHAPES[(r + n) % len(SHAPES)]
            make_cold()
            with Journal(args.url, pool_size=2) as journal:  # opened apart: engine, schema check
                cold[shape].append(timed(dead_letters_in(journal, windows[r], 1, shape)))
        loads.append(os.getloadavg()[0])
    report(f"cold (journal evicted before each call), {args.cold} rounds", cold, loads)


if __name__ == "__main__":
    main()
