"""pyDMNrules 1.4.5: per-lookup cost on 1k/10k-rule tables, hit policies, overlap under unique.

Run: ``python bench/decision_eval/pydmnrules_eval.py``. The table is loaded from DMN XML (``useXML``);
its Excel form (``load``) builds the same structures.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import pyDMNrules

sys.path.insert(0, str(Path(__file__).parent))
from common import dmn_xml, header, linear_first, lookups, per_call_us, rules


def load(xml: str) -> Any:
    """A loaded DMN object (the load errors printed if any)."""
    dmn = pyDMNrules.DMN()
    status = dmn.useXML(xml)
    if status.get("errors"):
        print("  load errors:", status["errors"][:3])
    return dmn


def policies() -> None:
    """Which DMN hit policies it accepts, and what unique does with two matching rules."""
    table = rules(1_000)[:3]
    for policy in ("UNIQUE", "FIRST", "PRIORITY", "COLLECT"):
        dmn = load(dmn_xml(table, policy, catch_all=True))
        _, result = dmn.decide({"region": "r0", "product": "p0", "fault": "f0"})
        shown = result if isinstance(result, dict) else result[-1]
        print(f"hit policy {policy}: result {shown.get('Result')} errors {shown.get('errors', '')}")
    overlap = [*table, ("r0", "p0", "f0", "other")]
    dmn = load(dmn_xml(overlap, "UNIQUE"))
    found = dmn.decide({"region": "r0", "product": "p0", "fault": "f0"})
    print(f"unique, two rules match at run time: {str(found)[:200]}")


def main() -> None:
    """Print the figures."""
    print(
        f"pyDMNrules {pyDMNrules.__version__ if hasattr(pyDMNrules, '__version__') else '1.4.5'}; {header()}"
    )
    policies()
    for size in (1_000, 10_000):
        table = rules(size)
        inputs = lookups(size, 20 if size == 1_000 else 3)
        start = time.perf_counter()
        dmn = load(dmn_xml(table, "FIRST", catch_all=True))
        built = time.perf_counter() - start
        lib = per_call_us(dmn.decide, inputs, rounds=1)
        scan = per_call_us(linear_first(table), inputs)
        print(
            f"{size:>6} rules first: pyDMNrules {lib:11.1f} us/lookup, python linear scan {scan:8.1f} us "
            f"(useXML {built:.1f} s)"
        )
        early = [{"region": "r0", "product": "p0", "fault": "f0"}] * 3
        print(f"{size:>6} rules first: hit on rule 1 {per_call_us(dmn.decide, early, rounds=1):11.1f} us")


if __name__ == "__main__":
    main()
