"""zen-engine (GoRules JDM): per-lookup cost on 1k/10k/50k-rule tables, hit policies, cell syntax.

Run: ``python bench/decision_eval/zen_eval.py``. Prints one line per check.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import zen

sys.path.insert(0, str(Path(__file__).parent))
from common import header, linear_first, lookups, per_call_us, rules


def jdm(table: list[tuple[str, str, str, str]], hit_policy: str, catch_all: bool) -> str:
    """A one-table JDM graph: input -> decision table -> output."""
    inputs = [{"id": k, "name": k, "field": k} for k in ("region", "product", "fault")]
    body = [
        {"_id": f"r{i}", "region": f'"{r}"', "product": f'"{p}"', "fault": f'"{f}"', "team": f'"{t}"'}
        for i, (r, p, f, t) in enumerate(table)
    ]
    if catch_all:
        body.append({"_id": "any", "region": "", "product": "", "fault": "", "team": '"triage"'})
    node = {
        "id": "dt",
        "name": "dispatch",
        "type": "decisionTableNode",
        "position": {"x": 0, "y": 0},
        "content": {
            "hitPolicy": hit_policy,
            "inputs": inputs,
            "outputs": [{"id": "team", "name": "team", "field": "team"}],
            "rules": body,
        },
    }
    graph = {
        "nodes": [
            {"id": "in", "name": "in", "type": "inputNode", "position": {"x": 0, "y": 0}},
            node,
            {"id": "out", "name": "out", "type": "outputNode", "position": {"x": 0, "y": 0}},
        ],
        "edges": [
            {"id": "e1", "sourceId": "in", "targetId": "dt", "type": "edge"},
            {"id": "e2", "sourceId": "dt", "targetId": "out", "type": "edge"},
        ],
    }
    return json.dumps(graph)


def check_policy(engine: Any, policy: str) -> str:
    """Whether the engine accepts a hit policy at all."""
    try:
        decision = engine.create_decision(jdm(rules(1_000)[:3], policy, False))
        result = decision.evaluate({"region": "r0", "product": "p0", "fault": "f0"})
        return f"accepted, result {result['result']}"
    except Exception as exc:
        return f"refused: {type(exc).__name__}: {str(exc)[:120]}"


def cell(engine: Any, expr: str, value: Any) -> str:
    """Whether a one-rule table with ``expr`` in its cell matches ``value``."""
    graph = json.loads(jdm([("x", "x", "x", "hit")], "first", False))
    rule = graph["nodes"][1]["content"]["rules"][0]
    rule.update(region=expr, product="", fault="")
    try:
        out = engine.create_decision(json.dumps(graph)).evaluate({"region": value})["result"]
        return "match" if out.get("team") == "hit" else "no match"
    except Exception as exc:
        return f"error {type(exc).__name__}: {str(exc)[:80]}"


def main() -> None:
    """Print the figures."""
    print(f"zen-engine {zen.__version__ if hasattr(zen, '__version__') else '2.1.3'}; {header()}")
    engine = zen.ZenEngine()
    for policy in ("first", "collect", "unique", "priority"):
        print(f"hit policy {policy}: {check_policy(engine, policy)}")
    for expr, value in (('"a", "b"', "b"), ("[1..5]", 3), (">= 3", 4), ("", "anything"), ("-", "x")):
        print(f"cell {expr!r} with {value!r}: {cell(engine, expr, value)}")
    for size in (1_000, 10_000, 50_000):
        table = rules(size)
        inputs = lookups(size, 200 if size <= 10_000 else 50)
        start = time.perf_counter()
        decision = engine.create_decision(jdm(table, "first", True))
        built = time.perf_counter() - start
        zen_us = per_call_us(decision.evaluate, inputs)
        scan_us = per_call_us(linear_first(table), inputs)
        print(
            f"{size:>6} rules first: zen {zen_us:9.1f} us/lookup, python linear scan {scan_us:8.1f} us "
            f"(create_decision {built * 1000:.0f} ms)"
        )
        # FIRST short-circuit: a hit on rule 0 against a hit on the last rule
        early = [{"region": table[0][0], "product": table[0][1], "fault": table[0][2]}] * 50
        late = [{"region": table[-1][0], "product": table[-1][1], "fault": table[-1][2]}] * 50
        print(
            f"{size:>6} rules first: hit on rule 1 {per_call_us(decision.evaluate, early):9.1f} us, "
            f"on rule {size} {per_call_us(decision.evaluate, late):9.1f} us"
        )
        if size <= 10_000:
            collect = engine.create_decision(jdm(table, "collect", True))
            print(f"{size:>6} rules collect: zen {per_call_us(collect.evaluate, inputs):9.1f} us/lookup")


if __name__ == "__main__":
    main()
