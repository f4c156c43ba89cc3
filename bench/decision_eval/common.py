"""Shared by the decision-engine evaluation scripts: one table shape at several sizes, and a timer.

The table is a dispatch table: three string inputs (region, product, fault type), one output (team).
Every combination of ``regions x products x faults`` is one rule, so under ``unique`` each lookup hits
exactly one rule; a last catch-all rule (all wildcards) is added for ``first``. Lookups are drawn at
random (seeded) from the whole table, so a linear scan stops on average halfway.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable
from typing import Any

#: rules -> (regions, products, fault types)
SHAPES = {1_000: (10, 10, 10), 10_000: (20, 25, 20), 50_000: (50, 50, 20)}


def rules(size: int) -> list[tuple[str, str, str, str]]:
    """The rules of a ``size``-rule table: (region, product, fault, team), in rule order."""
    regions, products, faults = SHAPES[size]
    out = []
    for r in range(regions):
        for p in range(products):
            for f in range(faults):
                out.append((f"r{r}", f"p{p}", f"f{f}", f"team{(r * 7 + p * 3 + f) % 97}"))
    return out


def lookups(size: int, count: int, seed: int = 16) -> list[dict[str, str]]:
    """``count`` inputs that each match one rule of the ``size``-rule table."""
    rng = random.Random(seed)
    table = rules(size)
    picks = [table[rng.randrange(len(table))] for _ in range(count)]
    return [{"region": r, "product": p, "fault": f} for r, p, f, _ in picks]


def per_call_us(
    call: Callable[[dict[str, str]], Any], inputs: list[dict[str, str]], rounds: int = 3
) -> float:
    """Best of ``rounds`` mean microseconds per ``call(input)`` over ``inputs``."""
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        for item in inputs:
            call(item)
        best = min(best, (time.perf_counter() - start) / len(inputs) * 1e6)
    return best


def linear_first(table: list[tuple[str, str, str, str]]) -> Callable[[dict[str, str]], Any]:
    """The baseline: a plain Python scan of the rules, stopping at the first match."""

    def call(item: dict[str, str]) -> Any:
        region, product, fault = item["region"], item["product"], item["fault"]
        for r, p, f, team in table:
            if r == region and p == product and f == fault:
                return team
        return None

    return call


def header() -> str:
    """The load average, printed at the head of each result (the machine is shared)."""
    return f"load average {os.getloadavg()[0]:.1f} {os.getloadavg()[1]:.1f}"


def dmn_xml(table: list[tuple[str, str, str, str]], hit_policy: str, catch_all: bool = False) -> str:
    """A DMN 1.3 document with one decision table over region, product, fault -> team."""
    inputs = "".join(
        f'<input id="in_{k}" label="{k}"><inputExpression id="ie_{k}" typeRef="string">'
        f"<text>{k}</text></inputExpression></input>"
        for k in ("region", "product", "fault")
    )
    body = [(r, p, f, t) for r, p, f, t in table]
    rows = []
    for i, (r, p, f, t) in enumerate(body):
        cells = "".join(
            f'<inputEntry id="e{i}_{j}"><text>"{v}"</text></inputEntry>' for j, v in enumerate((r, p, f))
        )
        rows.append(
            f'<rule id="rule{i}">{cells}<outputEntry id="o{i}"><text>"{t}"</text></outputEntry></rule>'
        )
    if catch_all:
        cells = "".join(f'<inputEntry id="any_{j}"><text>-</text></inputEntry>' for j in range(3))
        rows.append(
            f'<rule id="any">{cells}<outputEntry id="oany"><text>"triage"</text></outputEntry></rule>'
        )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<definitions xmlns="https://www.omg.org/spec/DMN/20191111/MODEL/" id="defs" name="defs" '
        'namespace="http://esb.example/dmn">'
        '<decision id="dispatch" name="dispatch">'
        f'<decisionTable id="table" hitPolicy="{hit_policy}">{inputs}'
        '<output id="out_team" label="team" name="team" typeRef="string"/>'
        f"{''.join(rows)}</decisionTable></decision></definitions>"
    )
