"""``esb dlq list``'s count of dead letters per route on two copies of one filled journal, alternated.

    PYTHONPATH=. .venv/bin/python bench/dlq_count_bench.py URL BEFORE_URL [--rounds 15]
        [--evict [--pg-base BASE]]

``URL`` and ``BEFORE_URL`` are copies of one fill (``bench/journal_fill.py``; on PostgreSQL ``CREATE
DATABASE before TEMPLATE after``, on SQLite a copy of the file) whose schemas differ by a migration, e.g.
0020's ``ix_dead_letters_route`` on ``URL`` only. Each round runs, on each copy in turn (each first in turn),
the statement the cold ``esb dlq list`` runs (``dead_lettered_counts`` of esb/journal/sqltext.py, for the
project's routes with a dead-letter endpoint) on a connection opened beforehand, so the figure is the
statement's: wall and CPU ms of this process, median, min and max of ``--rounds``, and the plan's reads
(PostgreSQL: the buffers of ``EXPLAIN (ANALYZE, BUFFERS)``; SQLite: ``EXPLAIN QUERY PLAN``).
``--evict``: before every statement the journal's files leave the page cache (PostgreSQL: the kept server
in ``--pg-base`` restarted, bench/page_cache.py), as after a reboot. The one-minute load average is printed
beside each copy's figures.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.page_cache import evicter, journal_files  # noqa: E402
from esb.journal import pgread, sqliteread  # noqa: E402
from esb.journal.sqltext import POSTGRESQL, SQLITE  # noqa: E402
from esb.ops.dlq import routes_with_dead_letters  # noqa: E402
from esb.project import Project  # noqa: E402

NAME = "dead_lettered_counts"


def statement(url: str, routes: list[str]) -> tuple[str, list[Any]]:
    """The cold path's SQL of the count and its values, for the database of ``url``."""
    if journal_files(url):
        return sqliteread.DRIVER.expand(SQLITE[NAME], {"routes": routes})
    return pgread.DRIVER.expand(POSTGRESQL[NAME], {"routes": routes})


def connector(url: str) -> Callable[[], Any]:
    """A call that opens a read connection to the journal at ``url`` (sqlite3 or psycopg)."""
    files = journal_files(url)
    if files:
        return lambda: sqlite3.connect(f"file:{files[0]}?mode=ro", uri=True)
    import psycopg

    args = pgread.connect_args(url)
    assert args is not None, url
    return lambda: psycopg.connect(**args, autocommit=True)


def reads(url: str, conn: Any, sql: str, values: list[Any]) -> str:
    """What the plan reads: PostgreSQL's scan node and its buffers, SQLite's plan steps."""
    if journal_files(url):
        return " | ".join(row[3] for row in conn.execute("EXPLAIN QUERY PLAN " + sql, values))
    plan = conn.execute("EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + sql, values).fetchone()[0][0]["Plan"]
    node = plan
    while node.get("Plans") and "Scan" not in node["Node Type"]:
        node = node["Plans"][0]
    pages = node.get("Shared Hit Blocks", 0) + node.get("Shared Read Blocks", 0)
    return f"{node['Node Type']} {node.get('Index Name', node.get('Relation Name'))}: {pages} pages"


def timed(
    connect: Callable[[], Any], sql: str, values: list[Any], cold: Callable[[], None]
) -> tuple[float, float]:
    """Wall and CPU ms of the statement on a fresh connection (opened before the clock starts)."""
    cold()
    conn = connect()
    try:
        wall, cpu = time.perf_counter(), time.process_time()
        rows = conn.execute(sql, values).fetchall()
        took = (time.perf_counter() - wall) * 1000, (time.process_time() - cpu) * 1000
    finally:
        conn.close()
    assert rows, "no dead letters counted: not a filled journal"
    return took


def main() -> None:
    """Measure and print the table."""
    parser = argparse.ArgumentParser()
    parser.add_argument("url", help="the journal after the change")
    parser.add_argument("before_url", help="its copy before the change")
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--evict", action="store_true")
    parser.add_argument("--pg-base", type=Path)
    args = parser.parse_args()
    routes = [route.id for route, _ in routes_with_dead_letters(Project.load(ROOT))]
    urls = {"after": args.url, "before": args.before_url}
    colds: dict[str, Callable[[], None]] = {label: lambda: None for label in urls}
    if args.evict:
        if journal_files(args.url):
            colds = {label: evicter(url, None) for label, url in urls.items()}
        else:
            restart = evicter(args.url, args.pg_base)
            colds = {label: restart for label in urls}
    plans = {}
    for label, url in urls.items():
        conn = connector(url)()
        try:
            plans[label] = reads(url, conn, *statement(url, routes))
        finally:
            conn.close()
    figures: dict[str, list[tuple[float, float]]] = {label: [] for label in urls}
    loads: dict[str, list[float]] = {label: [] for label in urls}
    for n in range(args.rounds):
        order = list(urls) if n % 2 == 0 else list(reversed(urls))
        for label in order:
            url = urls[label]
            figures[label].append(timed(connector(url), *statement(url, routes), colds[label]))
            loads[label].append(os.getloadavg()[0])
    kind = "evicted" if args.evict else "warm"
    print(
        f"esb dlq list's count per route ({len(routes)} routes), {kind}, median of {args.rounds}, alternated"
    )
    print(f"{'copy':<7} {'wall ms':>8} {'min':>7} {'max':>7} {'CPU ms':>7}  load     plan")
    for label, got in figures.items():
        walls = [w for w, _ in got]
        print(
            f"{label:<7} {statistics.median(walls):>8.1f} {min(walls):>7.1f} {max(walls):>7.1f}"
            f" {statistics.median(c for _, c in got):>7.1f}  {min(loads[label]):.1f}-{max(loads[label]):.1f}"
            f"  {plans[label]}"
        )


if __name__ == "__main__":
    main()
