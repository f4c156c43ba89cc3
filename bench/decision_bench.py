"""Decision tables: µs per lookup through the index (esb.decision) against a linear scan, same run.

Run: .venv/bin/python bench/decision_bench.py [--lookups 2000] [--rounds 5]

Tables of 1k, 10k and 50k rules: three string inputs (region x product x fault type, every
combination one rule) and a number input whose cells alternate ``[1..5]`` and ``>=3``, one output.
Per hit policy: ``unique`` (each lookup matches one rule), ``first`` (the same rules and a catch-all
last rule), ``collect`` (the same, so each lookup gathers two rules). Lookups are drawn at random
(seeded) over the whole table, so a scan stops on average halfway under ``first``; the scan is
``Table.decide(indexed=False)``, which tests each rule's cells in order, stopping at the first match
under ``first``. Both answers are checked equal on every lookup before timing; rounds are
interleaved and the best of each kept. Building the index is timed apart (it happens once, on load).
"""

from __future__ import annotations

import argparse
import os
import random
import time
from typing import Any

from esb.decision.cells import ANY, parse_cell
from esb.decision.table import Column, Rule, Table

SHAPES = {1_000: (10, 10, 10), 10_000: (20, 25, 20), 50_000: (50, 50, 20)}


def table(size: int, policy: str) -> Table:
    """A ``size``-rule dispatch table under ``policy`` (a catch-all last rule unless unique)."""
    regions, products, faults = SHAPES[size]
    low, high = parse_cell("[1..5]", "number"), parse_cell(">=3", "number")
    rules = []
    for r in range(regions):
        for p in range(products):
            for f in range(faults):
                cells = (*(parse_cell(v, "string") for v in (f"r{r}", f"p{p}", f"f{f}")), (low, high)[f % 2])
                rules.append(
                    Rule(len(rules) + 1, cells, {"team": f"team{(r * 7 + p * 3 + f) % 97}"}, "bench")
                )
    if policy != "unique":
        rules.append(Rule(len(rules) + 1, (ANY, ANY, ANY, ANY), {"team": "triage"}, "bench"))
    inputs = (*(Column(n, "string") for n in ("region", "product", "fault")), Column("level", "number"))
    return Table(f"bench{size}", "bench", inputs, (Column("team", "string"),), tuple(rules), policy)


def lookups(size: int, count: int) -> list[dict[str, Any]]:
    """``count`` inputs each matching one rule of the table (level 4 meets both number cells)."""
    regions, products, faults = SHAPES[size]
    rng = random.Random(16)
    return [
        {
            "region": f"r{rng.randrange(regions)}",
            "product": f"p{rng.randrange(products)}",
            "fault": f"f{rng.randrange(faults)}",
            "level": 4,
        }
        for _ in range(count)
    ]


def timed(call: Any, inputs: list[dict[str, Any]]) -> float:
    """Mean µs per call over ``inputs``."""
    start = time.perf_counter()
    for item in inputs:
        call(item)
    return (time.perf_counter() - start) / len(inputs) * 1e6


def run(size: int, policy: str, count: int, rounds: int) -> tuple[float, float, float]:
    """(build ms, indexed µs, scan µs) for one table."""
    t = table(size, policy)
    start = time.perf_counter()
    _ = t.columns
    build = (time.perf_counter() - start) * 1000
    inputs = lookups(size, count)
    scan_inputs = inputs[: max(20, count // (size // 500))]
    for item in scan_inputs:
        assert t.decide(item).value == t.decide(item, indexed=False).value, item
    indexed, scan = float("inf"), float("inf")
    for _ in range(rounds):
        indexed = min(indexed, timed(t.decide, inputs))
        scan = min(scan, timed(lambda d: t.decide(d, indexed=False), scan_inputs))
    return build, indexed, scan


def main() -> None:
    """Print one row per table size and hit policy."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lookups", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    print(f"load average {os.getloadavg()[0]:.1f}")
    print(
        "| rules | hit policy | index build ms | indexed µs/lookup | linear scan µs/lookup | scan / indexed |"
    )
    print("|---:|---|---:|---:|---:|---:|")
    for size in SHAPES:
        for policy in ("unique", "first", "collect"):
            build, indexed, scan = run(size, policy, args.lookups, args.rounds)
            ratio = scan / indexed
            print(f"| {size:,} | {policy} | {build:,.0f} | {indexed:.1f} | {scan:,.0f} | {ratio:,.0f}x |")


if __name__ == "__main__":
    main()
