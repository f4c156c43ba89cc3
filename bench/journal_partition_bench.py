"""What day partitions cost and give on PostgreSQL: the same journal partitioned (migration 0012) and plain
(0010, the baseline), measured in one run on one throwaway server, alternated.

    .venv/bin/python bench/journal_partition_bench.py --messages 1000000 [--rounds 3]

Both are filled by ``bench/journal_fill.py`` (server-side, same rows; 35 days: 38 partitions with today's
and the next two). Then, alternated, ``--rounds`` times each:
- the hot path: ``received`` + ``mark_delivered`` + ``event(delivered)`` of 500 new messages (the
  partitioned journal's unique-id trigger and its probes of every day's index are on this path);
- the operator's queries of ``journal_scale_bench.py`` (trace, key search, replay selection, dead letters).
Printed: medians of wall and CPU (process) time, and the ratio partitioned / plain. The plain journal is
kept at 0010 by opening it without the migration step (this script only).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import sqlalchemy as sa  # noqa: E402
from alembic import command  # noqa: E402

from bench.journal_fill import fill  # noqa: E402
from bench.journal_scale_bench import measure  # noqa: E402
from esb.journal import Journal, migrate  # noqa: E402
from esb.message import Message  # noqa: E402

WRITES = 500


def plain_journal(url: str) -> None:
    """Migrate ``url`` to 0010 (the journal before partitions)."""
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        command.upgrade(migrate.alembic_config(conn), "0010_dead_letter_index_covering")
    engine.dispose()


def hot_path(url: str, tag: str) -> tuple[float, float]:
    """Wall and CPU microseconds per message of the hot path's three journal calls."""
    with Journal(url, pool_size=2) as journal:
        wall, cpu = time.perf_counter(), time.process_time()
        for i in range(WRITES):
            m = Message(body=b"<o/>" * 80, id=f"{tag}-{i}", business_keys={"order_id": f"HP{tag}{i}"})
            journal.received("orders", m)
            journal.mark_delivered("orders", m, "billing")
            journal.event("orders", m, "delivered")
        return (time.perf_counter() - wall) * 1e6 / WRITES, (time.process_time() - cpu) * 1e6 / WRITES


def _median_ms(lines: list[str]) -> dict[str, float]:
    """The median column of ``measure``'s lines, by label."""
    found = {}
    for line in lines[2:]:
        label, median, _p90, _max, _ok = line.rsplit(None, 4)
        found[label.strip()] = float(median)
    return found


def alternate(runs: dict[str, Callable[[int], Any]], rounds: int) -> dict[str, list[Any]]:
    """Run each callable ``rounds`` times, alternating between them; return their results by name."""
    results: dict[str, list[Any]] = {name: [] for name in runs}
    for r in range(rounds):
        for name, run in runs.items():
            results[name].append(run(r))
    return results


def main() -> None:
    """Fill both journals, then measure them alternated and print the medians and ratios."""
    from bench.servers import throwaway_postgres

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    at_head = migrate._at_head

    def keep_plain(conn: sa.Connection) -> bool:  # the baseline stays at 0010
        return str(conn.engine.url.database).startswith("plain_") or at_head(conn)

    migrate._at_head = keep_plain  # type: ignore[assignment]  # this script only
    with throwaway_postgres() as pg:
        plain_url, part_url = pg.create_database("plain"), pg.create_database("part")
        plain_journal(plain_url)
        keys = {"plain": fill(plain_url, args.messages, 35)["keys"]}
        keys["partitioned"] = fill(part_url, args.messages, 35)["keys"]
        urls = {"plain": plain_url, "partitioned": part_url}

        def opened(name: str) -> Callable[[int], Any]:
            def run(r: int) -> Any:
                writes = hot_path(urls[name], f"{name[0]}{r}")
                return writes, _median_ms(measure(urls[name], keys[name]))

            return run

        results = alternate({name: opened(name) for name in urls}, args.rounds)
    print(f"== {args.messages:,} messages, {args.rounds} rounds alternated (medians; partitioned / plain)")
    base, part = results["plain"], results["partitioned"]
    for label, index in (("hot path wall us/msg", 0), ("hot path CPU us/msg", 1)):
        b = statistics.median(w[0][index] for w in base)
        p = statistics.median(w[0][index] for w in part)
        print(f"  {label:46} {b:9.1f} {p:9.1f}  x{p / b:.2f}")
    for label in base[0][1]:
        b = statistics.median(w[1][label] for w in base)
        p = statistics.median(w[1][label] for w in part)
        print(f"  {label:46} {b:9.1f} {p:9.1f}  x{p / b:.2f}")


if __name__ == "__main__":
    main()
