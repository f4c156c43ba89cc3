"""A decision table: typed inputs and outputs, rules in order, a hit policy, and the lookup.

Hit policies (DMN's): ``unique`` (at most one rule may match: two are an error, and lint looks for
rules that could), ``first`` (the first matching rule in table order; the lookup stops there),
``priority`` (the matching rule whose outputs rank highest in their declared ``values`` order),
``collect`` (every matching rule's outputs, in rule order; with ``aggregation`` sum, min, max or count
of the one output, a number). A lookup reads each input with its type first (:func:`coerce`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from esb.decision.cells import NUMERIC, Cell, CellError, coerce
from esb.decision.index import ColumnIndex, HashIndex, IntervalIndex, bits
from esb.exceptions import DecisionError

HIT_POLICIES = ("unique", "first", "priority", "collect")
AGGREGATIONS = ("sum", "min", "max", "count")
OUTPUT_TYPES = ("string", "integer", "number", "boolean", "endpoint")


@dataclass(frozen=True)
class Column:
    """An input or output column: its name, type and what lint checks its values against."""

    name: str
    type: str
    codelist: str | None = None
    """Inputs: the code list whose values the cells must use (its canonical values, or ``system``'s)."""
    system: str | None = None
    values: tuple[Any, ...] = ()
    """Outputs: the allowed values; under ``priority`` their order is the priority (first wins)."""
    target: str | None = None
    """Outputs: ``<schema>:<field path>`` whose enumeration the values must lie within."""
    where: str = ""


@dataclass(frozen=True)
class Rule:
    """One row: a cell per input and a value per output, with where it was written."""

    number: int
    cells: tuple[Cell, ...]
    outputs: dict[str, Any]
    where: str


@dataclass(frozen=True)
class Decision:
    """The outcome of a lookup: the value to write and the rules that gave it."""

    value: Any
    rules: tuple[Rule, ...] = ()

    def as_json(self) -> dict[str, Any]:
        """The decision as ``esb decide`` prints it."""
        return {"decision": self.value, "rules": [f"{r.where} (rule {r.number})" for r in self.rules]}


@dataclass
class Table:
    """A loaded decision table (see the module docstring for the hit policies)."""

    name: str
    file: str
    inputs: tuple[Column, ...]
    outputs: tuple[Column, ...]
    rules: tuple[Rule, ...]
    hit_policy: str = "unique"
    aggregation: str | None = None
    description: str = ""

    @cached_property
    def _names(self) -> frozenset[str]:
        return frozenset(c.name for c in self.inputs)

    @cached_property
    def _all(self) -> int:
        return (1 << len(self.rules)) - 1

    @cached_property
    def columns(self) -> tuple[ColumnIndex, ...]:
        """One index per input (built on first use)."""
        out: list[ColumnIndex] = []
        for position, column in enumerate(self.inputs):
            cells = [rule.cells[position] for rule in self.rules]
            out.append(IntervalIndex(cells) if column.type in NUMERIC else HashIndex(cells))
        return tuple(out)

    def read_inputs(self, data: Mapping[str, Any]) -> list[Any]:
        """The input values of ``data`` in column order, each read with its type (missing: None)."""
        if not isinstance(data, Mapping):
            raise DecisionError(self.name, f"expected the inputs as an object, got {type(data).__name__}")
        if not self._names.issuperset(data):
            unknown = sorted(set(data) - self._names)
            raise DecisionError(
                self.name,
                f"unknown input(s) {', '.join(map(str, unknown))}; the inputs are {self.input_names()}",
            )
        values = []
        for column in self.inputs:
            raw = data.get(column.name)
            try:
                values.append(None if raw is None else coerce(raw, column.type))
            except CellError as exc:
                raise DecisionError(self.name, f"input {column.name!r}: {exc}") from None
        return values

    def input_names(self) -> str:
        """The input names, comma-separated (for messages)."""
        return ", ".join(c.name for c in self.inputs)

    def matches(self, data: Mapping[str, Any]) -> int:
        """The mask of the rules matching ``data`` (bit i: rule i), from the index."""
        mask = self._all
        for column, value in zip(self.columns, self.read_inputs(data), strict=True):
            mask &= column.lookup(value)
            if not mask:
                return 0
        return mask

    def scan(self, data: Mapping[str, Any]) -> int:
        """The same mask as :meth:`matches`, by testing every rule (the reference the index is held to)."""
        values = self.read_inputs(data)
        mask = 0
        for index, rule in enumerate(self.rules):
            if all(cell.matches(v) for cell, v in zip(rule.cells, values, strict=True)):
                mask |= 1 << index
                if self.hit_policy == "first":
                    break
        return mask

    def decide(self, data: Mapping[str, Any], *, indexed: bool = True) -> Decision:
        """Apply the hit policy to the rules matching ``data``; DecisionError for a unique conflict."""
        mask = self.matches(data) if indexed else self.scan(data)
        if self.hit_policy == "first":
            if not mask:
                return Decision(None)
            rule = self.rules[(mask & -mask).bit_length() - 1]
            return Decision(dict(rule.outputs), (rule,))
        hits = [self.rules[i] for i in bits(mask)]
        if self.hit_policy == "collect":
            return Decision(self._collect(hits), tuple(hits))
        if not hits:
            return Decision(None)
        if self.hit_policy == "unique" and len(hits) > 1:
            shown = "; ".join(f"rule {r.number} ({r.where})" for r in hits[:5])
            raise DecisionError(
                self.name,
                f"hit policy unique, but {len(hits)} rules match {dict(data)}: {shown}: "
                "make the rules exclusive (esb lint shows overlaps) or use hit_policy first",
            )
        best = min(hits, key=self._rank) if self.hit_policy == "priority" else hits[0]
        return Decision(dict(best.outputs), (best,))

    def _rank(self, rule: Rule) -> tuple[int, ...]:
        ranks = []
        for column in self.outputs:
            if column.values:
                value = rule.outputs.get(column.name)
                ranks.append(column.values.index(value) if value in column.values else len(column.values))
        return (*ranks, rule.number)

    def _collect(self, hits: list[Rule]) -> Any:
        if self.aggregation is None:
            return [dict(r.outputs) for r in hits]
        if self.aggregation == "count":
            return len(hits)
        name = self.outputs[0].name
        numbers = [r.outputs[name] for r in hits if r.outputs.get(name) is not None]
        if self.aggregation == "sum":
            return sum(numbers)
        if not numbers:
            return None
        return min(numbers) if self.aggregation == "min" else max(numbers)
