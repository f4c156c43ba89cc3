"""Load a decision table from ``transforms/tables/<name>.yaml``, its rules inline or in a CSV file.

::

    description: Team for a 112 fault by region, product and fault type
    hit_policy: first                  # unique (default) | first | priority | collect
    aggregation: count                 # collect only: sum | min | max | count
    inputs:
      - {name: region, type: string}
      - {name: severity, type: string, codelist: trouble_ticket_severity}   # system: fault112
    outputs:
      - {name: team, type: string}
      - {name: endpoint, type: endpoint}                   # lint: a declared endpoint
      - {name: level, type: string, values: [high, low]}   # allowed values; priority order
      - {name: severity, type: string, target: "trouble_ticket.v1:severity"}   # lint: the enum
    rules:                             # a row per rule: the inputs' cells, then the outputs
      - [hz, broadband, "-", team-hz-fbb]
      - {region: nb, team: team-nb}    # or by name (an input left out is "-")
    # or: rules: fault112_dispatch.csv (beside this file; a header row naming every column)

Every mistake is a :class:`ConfigError` finding ``file:line: path: problem``, the line of the YAML
key or of the CSV row.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

from esb.config.yamlpos import Located, PathKey, format_path, load_yaml
from esb.decision.cells import TYPES, Cell, CellError, coerce, parse_cell
from esb.decision.table import AGGREGATIONS, HIT_POLICIES, OUTPUT_TYPES, Column, Rule, Table
from esb.exceptions import ConfigError
from esb.registry import did_you_mean

TABLE_KEYS = ("description", "hit_policy", "aggregation", "inputs", "outputs", "rules")
INPUT_KEYS = ("name", "type", "codelist", "system")
OUTPUT_KEYS = ("name", "type", "values", "target")


class _Findings:
    """Collects ``file:line: path: problem`` lines for one table."""

    def __init__(self, doc: Located) -> None:
        self.doc = doc
        self.lines: list[str] = []

    def add(self, path: PathKey, problem: str) -> None:
        self.lines.append(f"{self.doc.where(path)}: {format_path(path)}: {problem}")


def load_table(name: str, path: Path, display: str) -> Table:
    """Load the table ``name`` from ``path`` (``display``: its name in findings)."""
    doc = load_yaml(path, display=display)
    found = _Findings(doc)
    data = doc.data
    if not isinstance(data, dict):
        raise ConfigError(f"{display}:1: a decision table is a mapping ({', '.join(TABLE_KEYS)})")
    for key in data:
        if key not in TABLE_KEYS:
            found.add((key,), f"unknown key {key!r}{did_you_mean(key, TABLE_KEYS)}: remove it or fix it")
    policy = str(data.get("hit_policy", "unique"))
    if policy not in HIT_POLICIES:
        found.add(("hit_policy",), f"unknown hit policy {policy!r}: use one of {', '.join(HIT_POLICIES)}")
    aggregation = data.get("aggregation")
    inputs = _columns(data, "inputs", INPUT_KEYS, TYPES, found)
    outputs = _columns(data, "outputs", OUTPUT_KEYS, OUTPUT_TYPES, found)
    _check_aggregation(aggregation, policy, outputs, found)
    rules: list[Rule] = []
    if inputs is not None and outputs is not None:
        rules = _rules(data.get("rules"), path, display, inputs, outputs, found)
    if found.lines:
        raise ConfigError(f"decision table {name!r} is invalid", findings=found.lines)
    assert inputs is not None
    assert outputs is not None
    return Table(
        name,
        display,
        tuple(inputs),
        tuple(outputs),
        tuple(rules),
        policy,
        None if aggregation is None else str(aggregation),
        str(data.get("description", "")),
    )


def _check_aggregation(aggregation: Any, policy: str, outputs: list[Column] | None, found: _Findings) -> None:
    if aggregation is None:
        return
    if aggregation not in AGGREGATIONS:
        found.add(
            ("aggregation",), f"unknown aggregation {aggregation!r}: use one of {', '.join(AGGREGATIONS)}"
        )
    elif policy != "collect":
        found.add(("aggregation",), f"aggregation is for hit_policy collect, not {policy}: remove it")
    elif outputs is not None and len(outputs) != 1:
        found.add(("aggregation",), f"an aggregation needs exactly one output, not {len(outputs)}")
    elif outputs and aggregation != "count" and outputs[0].type not in ("integer", "number"):
        found.add(("aggregation",), f"{aggregation} needs an integer or number output, not {outputs[0].type}")


def _columns(
    data: dict[str, Any], key: str, keys: tuple[str, ...], types: tuple[str, ...], found: _Findings
) -> list[Column] | None:
    """The declared inputs or outputs; None when they are missing or broken."""
    specs = data.get(key)
    if not isinstance(specs, list) or not specs:
        found.add((key,), f"{key}: a list of columns ({{name: ..., type: ...}}), at least one")
        return None
    columns: list[Column] = []
    seen: set[str] = set()
    for index, spec in enumerate(specs):
        path = (key, index)
        if not isinstance(spec, dict) or not isinstance(spec.get("name"), str):
            found.add(path, f"a column is a mapping with a name and a type, got {spec!r}")
            continue
        for extra in sorted(set(spec) - set(keys)):
            found.add(
                (*path, extra), f"unknown key {extra!r}{did_you_mean(extra, keys)}: use {', '.join(keys)}"
            )
        kind = str(spec.get("type", "string"))
        if kind not in types:
            found.add((*path, "type"), f"unknown type {kind!r}: use one of {', '.join(types)}")
            continue
        if spec["name"] in seen:
            found.add((*path, "name"), f"column {spec['name']!r} is declared twice")
        seen.add(spec["name"])
        values: tuple[Any, ...] = ()
        if not isinstance(spec.get("values") or [], list):
            found.add((*path, "values"), f"values: a list of the allowed values, got {spec['values']!r}")
            continue
        try:
            values = tuple(
                coerce(v, "string" if kind == "endpoint" else kind) for v in spec.get("values") or []
            )
        except CellError as exc:
            found.add((*path, "values"), str(exc))
        columns.append(
            Column(
                spec["name"],
                kind,
                _opt(spec, "codelist"),
                _opt(spec, "system"),
                values,
                _opt(spec, "target"),
                found.doc.where(path),
            )
        )
    return columns if len(columns) == len(specs) else None


def _opt(spec: dict[str, Any], key: str) -> str | None:
    value = spec.get(key)
    return None if value is None else str(value)


def _rules(
    raw: Any, path: Path, display: str, inputs: list[Column], outputs: list[Column], found: _Findings
) -> list[Rule]:
    """The rules, inline or from the CSV file the table names."""
    if isinstance(raw, str):
        return _csv_rules(path.parent / raw, str(Path(display).parent / raw), inputs, outputs, found)
    if not isinstance(raw, list):
        found.add(("rules",), "rules: a list of rows, or the name of a CSV file beside the table")
        return []
    names = [c.name for c in (*inputs, *outputs)]
    rules: list[Rule] = []
    for index, row in enumerate(raw):
        where = found.doc.where(("rules", index))
        if isinstance(row, list):
            if len(row) != len(names):
                found.add(
                    ("rules", index), f"expected {len(names)} cells ({', '.join(names)}), got {len(row)}"
                )
                continue
            row = dict(zip(names, row, strict=True))
        if not isinstance(row, dict):
            found.add(("rules", index), f"a rule is a list of cells or a mapping by column, got {row!r}")
            continue
        rule, problems = _rule(len(rules) + 1, row, where, inputs, outputs)
        found.lines.extend(f"{where}: {p}" for p in problems)
        if rule is not None:
            rules.append(rule)
    return rules


def _csv_rules(
    file: Path, display: str, inputs: list[Column], outputs: list[Column], found: _Findings
) -> list[Rule]:
    """The rules of a CSV file: a header row naming the columns, then a row per rule (``#`` comments)."""
    try:
        text = file.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        found.add(("rules",), f"rules file {display} does not exist")
        return []
    except UnicodeDecodeError as exc:
        found.add(("rules",), f"rules file {display} is not UTF-8: {exc}")
        return []
    reader = csv.reader(io.StringIO(text, newline=""))
    header: list[str] | None = None
    names = [c.name for c in (*inputs, *outputs)]
    rules: list[Rule] = []
    for row in reader:
        line = reader.line_num
        if not row or not "".join(row).strip() or row[0].lstrip().startswith("#"):
            continue
        if header is None:
            header = [h.strip() for h in row]
            problems = _header_problems(header, names)
            for problem in problems:
                found.lines.append(f"{display}:{line}: header: {problem}")
            if problems:
                return []
            continue
        if len(row) != len(header):
            found.lines.append(
                f"{display}:{line}: expected {len(header)} cells ({', '.join(header)}), got {len(row)}"
            )
            continue
        where = f"{display}:{line}"
        rule, problems = _rule(len(rules) + 1, dict(zip(header, row, strict=True)), where, inputs, outputs)
        found.lines.extend(f"{where}: {p}" for p in problems)
        if rule is not None:
            rules.append(rule)
    if header is None:
        found.lines.append(f"{display}:1: empty: a header row naming {', '.join(names)}, then the rules")
    return rules


def _header_problems(header: list[str], names: list[str]) -> list[str]:
    problems = [f"unknown column {h!r}{did_you_mean(h, names)}" for h in header if h not in names]
    problems += [f"column {n!r} is missing" for n in names if n not in header]
    problems += [f"column {h!r} appears twice" for h in sorted({h for h in header if header.count(h) > 1})]
    return problems


def _rule(
    number: int, row: dict[str, Any], where: str, inputs: list[Column], outputs: list[Column]
) -> tuple[Rule | None, list[str]]:
    """One rule from a mapping of column name -> raw cell, or None and what is wrong with its cells."""
    problems: list[str] = []
    known = [c.name for c in (*inputs, *outputs)]
    for key in row:
        if key not in known:
            problems.append(f"rule {number}: unknown column {key!r}{did_you_mean(str(key), known)}")
    cells: list[Cell] = []
    for column in inputs:
        try:
            cells.append(parse_cell(row.get(column.name), column.type))
        except CellError as exc:
            problems.append(f"rule {number}: input {column.name}: {exc}")
    values: dict[str, Any] = {}
    for column in outputs:
        raw = row.get(column.name)
        if raw is None or (isinstance(raw, str) and raw.strip() in ("", "-")):
            values[column.name] = None
            continue
        try:
            kind = "string" if column.type == "endpoint" else column.type
            values[column.name] = coerce(raw.strip() if isinstance(raw, str) else raw, kind)
        except CellError as exc:
            problems.append(f"rule {number}: output {column.name}: {exc}")
    return (None if problems else Rule(number, tuple(cells), values, where)), problems
