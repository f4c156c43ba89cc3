"""SpiffWorkflow 3.2.0's DMN engine: per-lookup cost on 1k/10k-rule tables and its hit policies.

Run: ``python bench/decision_eval/spiff_eval.py``. The engine evaluates a decision table for a task
(its ``data`` and its workflow's script engine); a stand-in task carries both.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from SpiffWorkflow.bpmn.script_engine import PythonScriptEngine
from SpiffWorkflow.dmn.parser.BpmnDmnParser import BpmnDmnParser

from esb.xmlsafe import hardened_parser, parse_xml

sys.path.insert(0, str(Path(__file__).parent))
from common import dmn_xml, header, linear_first, lookups, per_call_us, rules

SCRIPT = PythonScriptEngine()


def engine(xml: str) -> Any:
    """The DMNEngine of the one decision in ``xml``."""
    parser = BpmnDmnParser()
    parser.add_dmn_xml(parse_xml(xml.encode(), max_bytes=1 << 30) if len(xml) < 10_000_000 else _big(xml))
    return parser.get_engine("dispatch", None)


def _big(xml: str) -> Any:
    from lxml import etree  # through the hardened parser, only for documents over esb's size limit

    return etree.fromstring(xml.encode(), hardened_parser(huge_tree=True))


def decide(dmn: Any) -> Any:
    """A lookup: the engine's result for a stand-in task carrying the input."""

    def call(item: dict[str, str]) -> Any:
        task = SimpleNamespace(data=dict(item), workflow=SimpleNamespace(script_engine=SCRIPT))
        return dmn.result(task)

    return call


def main() -> None:
    """Print the figures."""
    print(f"SpiffWorkflow 3.2.0 DMN; {header()}")
    small = rules(1_000)[:3]
    for policy in ("UNIQUE", "FIRST", "PRIORITY", "COLLECT"):
        try:
            out = decide(engine(dmn_xml(small, policy)))({"region": "r0", "product": "p0", "fault": "f0"})
            print(f"hit policy {policy}: result {out}")
        except Exception as exc:
            print(f"hit policy {policy}: refused {type(exc).__name__}: {str(exc)[:100]}")
    overlap = decide(engine(dmn_xml([*small, ("r0", "p0", "f0", "other")], "UNIQUE")))
    print(f"unique, two rules match: {overlap({'region': 'r0', 'product': 'p0', 'fault': 'f0'})}")
    for size in (1_000, 10_000):
        table = rules(size)
        inputs = lookups(size, 20 if size == 1_000 else 5)
        start = time.perf_counter()
        dmn = engine(dmn_xml(table, "UNIQUE"))
        built = time.perf_counter() - start
        lib = per_call_us(decide(dmn), inputs, rounds=1)
        scan = per_call_us(linear_first(table), inputs)
        print(
            f"{size:>6} rules unique: Spiff {lib:11.1f} us/lookup, python linear scan {scan:8.1f} us "
            f"(parse {built:.1f} s)"
        )


if __name__ == "__main__":
    main()
