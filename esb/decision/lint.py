"""``esb lint`` on decision tables: each table loads, and its values fit what they feed.

- under ``unique``, two rules that can match the same input (found through the index, not pairwise);
- an input that names a ``codelist`` (with ``system``: that system's codes; else the canonical values):
  every value its cells name;
- an output of type ``endpoint``: every value names an endpoint of config/systems.yaml;
- an output with ``values``: every value is one of them; with ``target`` (``<schema>:<field path>``):
  every value lies within that field's enumeration (a message carrying it would be refused).

Each finding is ``file:line: ...``, the line of the rule (or of the column's declaration).
"""

from __future__ import annotations

from typing import Any

from esb.decision.index import bits, overlapping
from esb.decision.table import Column, Table
from esb.exceptions import ConfigError
from esb.model.codelists import UnknownCode, load_codelists
from esb.registry import did_you_mean
from esb.transforms.codelistcheck import target_enum

#: At most this many overlapping pairs are listed per table (then a count of the rest).
MAX_OVERLAPS = 20


def table_findings(project: Any) -> list[str]:
    """Every finding about the project's decision tables."""
    registry = project.tables
    findings: list[str] = registry.load_all()
    for name in registry.names():
        try:
            table = registry.get(name)
        except ConfigError:
            continue  # reported by load_all
        findings.extend(overlaps(table))
        findings.extend(_codelist_findings(project, table))
        findings.extend(_output_findings(project, table))
    return findings


def overlaps(table: Table) -> list[str]:
    """Pairs of rules of a ``unique`` table that some input matches both of."""
    if table.hit_policy != "unique" or not table.rules:
        return []
    everything = (1 << len(table.rules)) - 1
    pairs: list[str] = []
    total = 0
    for i, rule in enumerate(table.rules):
        mask = everything & ~((1 << (i + 1)) - 1)
        for position, index in enumerate(table.columns):
            mask &= overlapping(index, rule.cells[position], everything)
            if not mask:
                break
        for j in bits(mask):
            total += 1
            if len(pairs) < MAX_OVERLAPS:
                other = table.rules[j]
                pairs.append(
                    f"{rule.where}: rule {rule.number} overlaps rule {other.number} ({other.where}): "
                    "an input can match both under hit_policy unique; make them exclusive, or use first"
                )
    if total > len(pairs):
        pairs.append(f"{table.file}: ... and {total - len(pairs)} more overlapping pairs of rules")
    return pairs


def _allowed_codes(project: Any, column: Column) -> tuple[set[str] | None, str]:
    """The values a code-list input may use, or a problem with the list's name or system."""
    try:
        codes = load_codelists(project.root).get(str(column.codelist))
        if column.system is None:
            return set(codes.canonical), ""
        return set(codes._system(column.system)), ""
    except (UnknownCode, ConfigError) as exc:
        return None, str(exc).strip("'\"")


def _codelist_findings(project: Any, table: Table) -> list[str]:
    findings: list[str] = []
    for position, column in enumerate(table.inputs):
        if column.codelist is None:
            continue
        allowed, problem = _allowed_codes(project, column)
        if allowed is None:
            findings.append(f"{column.where}: input {column.name}: {problem}")
            continue
        side = f"{column.system}'s codes" if column.system else "its canonical values"
        for rule in table.rules:
            bad = sorted(str(v) for v in rule.cells[position].values if str(v) not in allowed)
            for value in bad:
                findings.append(
                    f"{rule.where}: rule {rule.number}: input {column.name}: {value!r} is not in code list "
                    f"{column.codelist!r} ({side}){did_you_mean(value, allowed)}; allowed: "
                    f"{', '.join(sorted(allowed))}"
                )
    return findings


def _output_findings(project: Any, table: Table) -> list[str]:
    findings: list[str] = []
    for column in table.outputs:
        allowed: list[Any] | None = list(column.values) or None
        what = "its declared values"
        if column.type == "endpoint":
            allowed, what = sorted(project.endpoints), "the endpoints of config/systems.yaml"
        if column.target is not None:
            enum, problem = target_enum(project, column.target)
            if problem:
                findings.append(f"{column.where}: output {column.name}: {problem}")
            elif enum is not None:
                allowed = [v for v in enum if allowed is None or v in allowed]
                what = f"the enumeration of {column.target}"
        if allowed is None:
            continue
        for rule in table.rules:
            value = rule.outputs.get(column.name)
            if value is not None and value not in allowed:
                findings.append(
                    f"{rule.where}: rule {rule.number}: output {column.name}: {value!r} is not in {what}"
                    f"{did_you_mean(str(value), [str(a) for a in allowed])}"
                )
    return findings
