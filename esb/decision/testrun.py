"""Tests beside a decision table: ``transforms/tables/<name>_test.yaml``, run by ``esb test``.

::

    table: fault112_dispatch          # optional: the file name without _test.yaml
    cases:
      - name: a broadband outage in Hangzhou goes to the Hangzhou fixed-network team
        input: {region: hz, product: broadband, fault_type: no_service}
        expect: {team: hz-fixed, skill: fiber}      # the decision: an object, a list, a number or null
        rule: 3                                      # optional: the rule that decided (single hit)
      - name: two severities at once are refused
        input: {region: hz, severity: 7}
        error: expected an integer                   # text the DecisionError contains

Each case runs through the index and through a plain scan of the rules: both must give the decision
(the scan is the reference the index is held to).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from esb.config.yamlpos import Located, load_yaml
from esb.decision.registry import TABLES_DIR, TEST_SUFFIX, TableRegistry
from esb.decision.table import Decision, Table
from esb.exceptions import DecisionError
from esb.transforms.testrun import CaseResult, case_error, diff, dump, is_test_of

CASE_KEYS = {"name", "input", "expect", "rule", "error"}


def is_table_test(path: Path, project_dir: Path) -> bool:
    """True when ``path`` tests a decision table: it lies under transforms/tables/ or names a ``table:``."""
    return is_test_of(path, project_dir / TABLES_DIR, "table")


class TableTestFile:
    """One loaded table test file: its table and its cases (ConfigError with file:line if broken)."""

    def __init__(self, path: Path, registry: TableRegistry) -> None:
        self.path = path
        self.registry = registry
        try:
            self.display = path.resolve().relative_to(registry.project_dir.resolve()).as_posix()
        except ValueError:
            self.display = str(path)
        self.doc: Located = load_yaml(path, display=self.display)
        data = self.doc.data
        if not isinstance(data, dict) or not isinstance(data.get("cases"), list) or not data["cases"]:
            raise case_error(self.doc, (), "a table test file needs 'cases:', a non-empty list")
        unknown = sorted(set(data) - {"table", "cases"})
        if unknown:
            raise case_error(self.doc, (unknown[0],), f"unknown key {unknown[0]!r}: use table and cases")
        self.table_name = str(data.get("table") or path.name[: -len(TEST_SUFFIX)])
        self.cases: list[dict[str, Any]] = data["cases"]
        for index, case in enumerate(self.cases):
            self._check_case(index, case)

    def _check_case(self, index: int, case: Any) -> None:
        where = ("cases", index)
        if not isinstance(case, dict):
            raise case_error(self.doc, where, f"a case is a mapping ({', '.join(sorted(CASE_KEYS))})")
        extra = sorted(set(case) - CASE_KEYS)
        if extra:
            raise case_error(
                self.doc, (*where, extra[0]), f"unknown key {extra[0]!r}: use {', '.join(sorted(CASE_KEYS))}"
            )
        if not isinstance(case.get("name"), str) or not isinstance(case.get("input"), dict):
            raise case_error(self.doc, where, "a case needs a name and an input (an object of input values)")
        if ("expect" in case) == ("error" in case):
            raise case_error(self.doc, where, "a case needs exactly one of expect (the decision) and error")

    def run(self) -> list[CaseResult]:
        """Run every case; a table that does not load is a ConfigError (a broken file)."""
        table = self.registry.get(self.table_name)
        return [self._run(table, case) for case in self.cases]

    def _run(self, table: Table, case: dict[str, Any]) -> CaseResult:
        problems: list[str] = []
        results: list[Decision] = []
        for indexed in (True, False):
            try:
                results.append(table.decide(case["input"], indexed=indexed))
            except DecisionError as exc:
                if "error" not in case:
                    problems.append(f"expected a decision, got DecisionError: {exc.detail}")
                elif str(case["error"]) not in str(exc):
                    problems.append(f"expected an error containing {case['error']!r}, got: {exc.detail}")
                break
        if results and "error" in case:
            problems.append(
                f"expected an error containing {case['error']!r}, got the decision {dump(results[0].value)}"
            )
        elif results and "expect" in case:
            decision = results[0]
            if decision.value != case["expect"]:
                problems.append("decision differs:\n" + diff(case["expect"], decision.value))
            if len(results) == 2 and results[1].value != decision.value:
                problems.append(
                    f"the index and a scan disagree: scan gave {dump(results[1].value)} (a bug in esb)"
                )
            if "rule" in case and [r.number for r in decision.rules] != [case["rule"]]:
                problems.append(
                    f"expected rule {case['rule']} to decide, got {[r.number for r in decision.rules]}"
                )
        return CaseResult(self.display, str(case["name"]), not problems, "\n".join(problems))
