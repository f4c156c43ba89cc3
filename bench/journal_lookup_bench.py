"""The partitioned PostgreSQL journal's look-ups that read a whole table before issue 18's second pass,
old way against new, alternated, on one filled journal.

    .venv/bin/python bench/journal_lookup_bench.py URL --keys keys.json [--rounds 3] [--only stats,...]

The journal is one filled by ``bench/journal_fill.py`` (``keys.json``: its sample keys). Three pairs,
each run alternately ``--rounds`` times (old first, then new); ``event`` and ``dlq`` must give the same
answer both ways (else the bench fails), ``stats`` prints the new figures beside the old ones:

- ``stats``: ``esb journal stats`` (``Journal.usage``, estimated). Old: ``events`` from ranges of
  ``events.id`` and the outcomes from ranges of 512 event ids (the code before this pass, rebuilt here
  from ``esb.journal.usage``'s helpers): on the partitioned journal ``events`` has no index on ``id``
  alone. New: the planner's rows, the outcomes sampled by ``message_seq``.
- ``event``: the dry run's look-up of a sent body (``Journal.event_body``). Old: by the event's id alone;
  new: bounded by its message id.
- ``dlq``: ``esb dlq`` counting a route's journaled dead letters (``esb.ops.dlq.journaled``: ``find``
  with the route, state ``dead_lettered``, at most 100,000). Old: reading each record's business keys;
  new: ``with_keys=False``.

Printed per pair and round: wall and CPU (process) ms and the one-minute load average; then the medians
and the ratio new / old of both.
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

from esb.journal import Journal, usage  # noqa: E402
from esb.journal.schema import business_keys, dead_letters, dictionaries, events, messages  # noqa: E402

ROUTE = "crm-order-to-iom"
DLQ_LIMIT = 100_000


def old_usage(conn: sa.Connection) -> dict[str, Any]:
    """``Journal.usage()`` on the partitioned journal as it was before this pass (the figures compared)."""
    usage._ends(conn, messages.c.received_at)
    rows = {t.name: usage._count(conn, t) for t in (dictionaries, dead_letters)}
    for table in (messages, business_keys):
        rows[table.name] = usage._planner_rows(conn, table)
    found = usage.windows(conn, events.c.id)
    assert found is not None
    rows["events"] = usage._scale(found, usage._count_where(conn, usage._in(events.c.id, found)))
    outcomes = usage._estimated_outcomes(conn, rows["events"])
    usage._size(conn)
    return {"rows": rows, "outcomes": outcomes}


def new_usage(journal: Journal) -> dict[str, Any]:
    """``Journal.usage()`` now."""
    got = journal.usage()
    return {"rows": got.rows, "outcomes": got.outcomes}


def timed(call: Callable[[], Any]) -> tuple[float, float, Any]:
    """Wall ms, CPU ms and the result of ``call()``."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = call()
    return (time.perf_counter() - wall) * 1000, (time.process_time() - cpu) * 1000, result


def close(old: dict[str, Any], new: dict[str, Any]) -> str:
    """How far the new stats are from the old ones (relative, per figure)."""
    parts = []
    for kind in ("rows", "outcomes"):
        for name, value in old[kind].items():
            other = new[kind].get(name, 0)
            parts.append(
                f"{name} {other:,} vs {value:,} ({(other - value) / value * 100 if value else 0:+.2f} %)"
            )
    return "; ".join(parts)


def pairs(
    journal: Journal, keys: dict[str, list[str]]
) -> dict[str, tuple[Callable[[], Any], Callable[[], Any]]]:
    """The old and new call of each pair."""
    # an order mid-journal sent on with a body: the samples' (i % 100 == 0) were dead-lettered, not i + 10
    orders = [f"SO{int(o[2:]) + 10}" for o in keys["order_id"][len(keys["order_id"]) // 2 :]]
    sent = (e for o in orders for m in journal.find(key=("order_id", o)) for e in journal.history(m.id))
    event = next(e for e in sent if e.has_body)
    print(f"event {event.id} of {event.message_id} ({event.endpoint})")

    def old_stats() -> Any:
        with journal._read().connect() as conn:
            return old_usage(conn)

    return {
        "stats": (old_stats, lambda: new_usage(journal)),
        "event": (
            lambda: journal.event_body(event.id),
            lambda: journal.event_body(event.id, event.message_id),
        ),
        "dlq": (
            lambda: len(journal.find(route=ROUTE, state="dead_lettered", limit=DLQ_LIMIT)),
            lambda: len(journal.find(route=ROUTE, state="dead_lettered", limit=DLQ_LIMIT, with_keys=False)),
        ),
    }


def main() -> None:
    """Parse the arguments, run the pairs alternated and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url")
    parser.add_argument("--keys", type=Path, required=True)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--only", default="stats,event,dlq")
    args = parser.parse_args()
    keys = orjson.loads(args.keys.read_bytes())
    keys = keys.get("keys", keys)  # journal_fill.py's file: the sample keys under "keys"
    with Journal(args.url) as journal:
        found = pairs(journal, keys)
        for name in args.only.split(","):
            old_call, new_call = found[name]
            figures: dict[str, list[tuple[float, float]]] = {"old": [], "new": []}
            for round_ in range(args.rounds):
                answers = {}
                for label, call in (("old", old_call), ("new", new_call)):
                    load = os.getloadavg()[0]
                    wall, cpu, answers[label] = timed(call)
                    figures[label].append((wall, cpu))
                    figure = f"{wall:,.1f} ms wall, {cpu:,.1f} ms CPU, load {load:.1f}"
                    print(f"{name} {label} {round_ + 1}: {figure}", flush=True)
                if name == "stats":
                    print("  new vs old:", close(answers["old"], answers["new"]))
                elif answers["old"] != answers["new"]:
                    raise SystemExit(f"{name}: the answers differ: {answers['old']!r} / {answers['new']!r}")
            med = {
                k: (statistics.median(w for w, _ in v), statistics.median(c for _, c in v))
                for k, v in figures.items()
            }
            print(
                f"{name}: old {med['old'][0]:,.1f} / {med['old'][1]:,.1f} ms, new {med['new'][0]:,.1f} /"
                f" {med['new'][1]:,.1f} ms (wall / CPU, median of {args.rounds});"
                f" new / old wall x{med['new'][0] / med['old'][0]:.4f},"
                f" CPU x{med['new'][1] / max(med['old'][1], 0.001):.3f}"
            )


if __name__ == "__main__":
    main()
