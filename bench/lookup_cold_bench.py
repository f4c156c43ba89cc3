"""Cold look-ups by key and id on a partitioned PostgreSQL journal: the partitions' own indexes against the
look-up tables of migration 0017 (esb/journal/lookups.py), alternated on one journal.

    .venv/bin/python bench/lookup_cold_bench.py URL --keys keys.json --pg-base BASE [--rounds 6]

``URL`` a journal filled by ``bench/journal_fill.py`` and migrated to 0017 (``keys.json`` its sample keys),
``BASE`` the folder of its server kept by ``bench/servers.py postgres start BASE``. Each round, for each
look-up (``esb trace`` of an old order id, of an MSISDN, of a message id; ``find`` by order id) and each
shape (``partitions``: the statements before 0017, a probe of every week's index; ``lookups``: now),
alternated, on a key never read before: the server is stopped, its files evicted from the page cache
(bench/page_cache.py) and started again, a new engine connects, then

- ``wall``: the look-up is timed (ms; the process's CPU beside it);
- ``read``: after another eviction, on another new key, each statement is run under ``EXPLAIN (ANALYZE,
  BUFFERS)`` first (then again for its rows, warm): the blocks PostgreSQL read from outside its buffers,
  planning and execution, and its own time reading them (``track_io_timing``), summed over the look-up.

Printed per look-up and shape: median (min-max) of each, with the load average. The read figures do not
depend on the machine's load; on this VM the host's cache may serve a "disk" read in well under a ms.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.journal_scale_bench import message_id  # noqa: E402
from bench.page_cache import evicter  # noqa: E402
from esb.journal import conversation as walk  # noqa: E402
from esb.journal import queries  # noqa: E402
from esb.journal.engine import create_journal_engine  # noqa: E402

SHAPES = ("partitions", "lookups")
Run = Callable[[str, dict[str, Any]], list[dict[str, Any]]]


def runner(conn: sa.Connection, shape: str) -> Run:
    """The trace's statements on ``conn`` in ``shape``."""
    if shape == "lookups":
        return queries.lookup_runner(conn)
    statements = queries.cold_statements()
    return lambda name, params: [dict(r) for r in conn.execute(statements[name], params).mappings()]


def trace(conn: sa.Connection, shape: str, key: str) -> int:
    """``esb trace``'s walk of ``key``: the number of events found."""
    run = runner(conn, shape)
    return len(walk.history(run, walk.conversation(run, key)))


def find(conn: sa.Connection, shape: str, order: str) -> int:
    """``find(key=("order_id", order))``'s statement: the number of rows."""
    flt = queries.Filter(key=("order_id", order))
    seqs = queries.seqs_for(conn, flt) if shape == "lookups" else None
    return len(conn.execute(queries.find_statement(flt, 100, seqs=seqs)).all())


class Reads:
    """Runs every statement under ``EXPLAIN (ANALYZE, BUFFERS)`` first and sums the blocks read."""

    def __init__(self, conn: sa.Connection) -> None:
        self.conn = conn
        self.blocks = 0
        self.io_ms = 0.0
        conn.exec_driver_sql("SET track_io_timing = on")
        sa.event.listen(conn, "before_cursor_execute", self.explain)

    def explain(self, conn: Any, cursor: Any, sql: str, params: Any, *_: object) -> None:
        """Explain ``sql`` (executing it) before it runs for its rows."""
        if not sql.lstrip().upper().startswith(("SELECT", "(SELECT")):
            return
        cursor.execute("EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + sql, params)
        plan = cursor.fetchone()[0][0]
        for part in (plan.get("Planning", {}), plan["Plan"]):
            self.blocks += int(part.get("Shared Read Blocks", 0))
            self.io_ms += float(part.get("I/O Read Time", 0.0))


def main() -> None:
    """Alternate the shapes on cold look-ups and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url")
    parser.add_argument("--keys", type=Path, required=True)
    parser.add_argument("--pg-base", type=Path, required=True)
    parser.add_argument("--rounds", type=int, default=6)
    args = parser.parse_args()
    keys = orjson.loads(args.keys.read_bytes())["keys"]
    orders, msisdns = keys["order_id"], keys["msisdn"]
    lookups: dict[str, Callable[[sa.Connection, str, int], int]] = {
        "esb trace ORDER_ID (old)": lambda c, s, n: trace(c, s, orders[n]),
        "esb trace MSISDN": lambda c, s, n: trace(c, s, msisdns[n]),
        "esb trace MESSAGE_ID": lambda c, s, n: trace(c, s, message_id(orders[-1 - n])),
        "find(key=order_id)": lambda c, s, n: find(c, s, orders[len(orders) // 2 + n]),
    }
    make_cold = evicter(args.url, args.pg_base)
    figures: dict[tuple[str, str], dict[str, list[float]]] = {}
    key_no = 0
    for _ in range(args.rounds):
        for label, call in lookups.items():
            for shape in SHAPES:
                got = figures.setdefault((label, shape), {"wall": [], "cpu": [], "blocks": [], "io": []})
                for measure in ("wall", "read"):
                    make_cold()
                    engine = create_journal_engine(args.url, pool_size=1)
                    with engine.connect() as conn:
                        conn.exec_driver_sql("SELECT 1")  # the connection's own start apart
                        reads = Reads(conn) if measure == "read" else None
                        started, cpu = time.perf_counter(), time.process_time()
                        found = call(conn, shape, key_no % len(orders))
                        if reads is None:
                            got["wall"].append((time.perf_counter() - started) * 1000)
                            got["cpu"].append((time.process_time() - cpu) * 1000)
                        else:
                            got["blocks"].append(reads.blocks)
                            got["io"].append(reads.io_ms)
                    engine.dispose()
                    if not found:
                        sys.exit(f"{label}: nothing found")
                    key_no += 1
    print(f"{args.rounds} rounds, shapes alternated, load {os.getloadavg()[0]:.1f} at the end")
    print(f"{'look-up':28} {'shape':11} {'wall ms':>22} {'cpu ms':>7} {'blocks read':>20} {'read ms':>18}")
    for (label, shape), got in figures.items():
        print(
            f"{label:28} {shape:11} {_spread(got['wall'])} {statistics.median(got['cpu']):7.1f}"
            f" {_spread(got['blocks'], '.0f')} {_spread(got['io'])}"
        )


def _spread(values: list[float], fmt: str = ".1f") -> str:
    """``median (min-max)``."""
    return f"{statistics.median(values):8{fmt}} ({min(values):{fmt}}-{max(values):{fmt}})".rjust(22)


if __name__ == "__main__":
    main()
