"""Typed values and the cell syntax of decision tables.

An input cell is one of::

    -  (or empty)     any value (a wildcard)
    hz                equal to hz
    hz, nb, wz        one of a list (quote a value that holds a comma: "a, b")
    [1..5]            a range, ends included; (1..5) or ]1..5[ leave an end out; [1..5) mixes
    >=3  >3  <=3  <3  a comparison
    1, [3..5], >9     a list may mix values, ranges and comparisons

Ranges and comparisons are for ``integer`` and ``number`` inputs only. Every value is read with the
input's type (``string``, ``integer``, ``number``, ``boolean``); a value that does not fit is a
:class:`CellError` saying what was expected and what came.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

TYPES = ("string", "integer", "number", "boolean")
NUMERIC = ("integer", "number")
_RANGE = re.compile(r"^([\[\](])\s*(.+?)\s*\.\.\s*(.+?)\s*([\[\])])$")
_COMPARE = re.compile(r"^(>=|<=|>|<)\s*(.+)$")
_ITEM = re.compile(r'\s*(?:"((?:[^"]|"")*)"|([^,]+))\s*(?:,|$)')


class CellError(ValueError):
    """A cell or a value that does not fit its column's type or the cell syntax."""


def coerce(value: Any, kind: str) -> Any:
    """Return ``value`` read as ``kind`` (``"3"`` as the integer 3); CellError when it does not fit."""
    if kind == "string":
        if isinstance(value, str):
            return value
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)
    elif kind == "boolean":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in ("true", "false"):
            return value.strip().lower() == "true"
    elif kind in NUMERIC:
        number = _number(value)
        if number is not None and (kind == "number" or float(number).is_integer()):
            return int(number) if kind == "integer" else number
    else:
        raise CellError(f"unknown type {kind!r}: use one of {', '.join(TYPES)}")
    raise CellError(f"expected {_article(kind)}, got {value!r} ({type(value).__name__})")


def _article(kind: str) -> str:
    return f"an {kind}" if kind[0] in "aeiou" else f"a {kind}"


def _number(value: Any) -> float | int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float | Decimal):
        number = float(value)
        return number if math.isfinite(number) else None
    if isinstance(value, str):
        try:
            parsed = Decimal(value.strip())
        except InvalidOperation:
            return None
        if not parsed.is_finite():
            return None
        return int(parsed) if parsed == parsed.to_integral_value() else float(parsed)
    return None


@dataclass(frozen=True)
class Range:
    """An interval of numbers; ``None`` for an open end."""

    low: float | None
    low_included: bool
    high: float | None
    high_included: bool

    def __contains__(self, value: object) -> bool:
        """True when the number ``value`` lies within the interval."""
        if not isinstance(value, int | float):
            return False
        if self.low is not None and (value < self.low or (value == self.low and not self.low_included)):
            return False
        return not (
            self.high is not None and (value > self.high or (value == self.high and not self.high_included))
        )


@dataclass(frozen=True)
class Cell:
    """One input cell: a wildcard, or values and ranges any of which a value must meet."""

    any: bool = False
    values: frozenset[Any] = frozenset()
    ranges: tuple[Range, ...] = ()

    def matches(self, value: Any) -> bool:
        """True when ``value`` (already of the column's type, or None) meets the cell."""
        if self.any:
            return True
        if value is None:
            return False
        return value in self.values or any(value in r for r in self.ranges)


ANY = Cell(any=True)


def parse_cell(raw: Any, kind: str) -> Cell:
    """Read one input cell (text from a file, or a YAML scalar or list) for a column of type ``kind``."""
    if raw is None:
        return ANY
    if isinstance(raw, list):
        if len(raw) == 1 and isinstance(raw[0], str) and ".." in raw[0]:
            raise CellError(f"YAML read [{raw[0]}] as a list: quote a range in YAML ('[{raw[0]}]')")
        parts = [parse_cell(item, kind) for item in raw]
        return Cell(
            any=any(p.any for p in parts),
            values=frozenset().union(*(p.values for p in parts)),
            ranges=tuple(r for p in parts for r in p.ranges),
        )
    if not isinstance(raw, str):
        return Cell(values=frozenset([coerce(raw, kind)]))
    text = raw.strip()
    if text in ("", "-"):
        return ANY
    values: set[Any] = set()
    ranges: list[Range] = []
    for item in split_list(text):
        found = _range(item, kind)
        if found is None:
            values.add(coerce(item, kind))
        else:
            ranges.append(found)
    return Cell(values=frozenset(values), ranges=tuple(ranges))


def split_list(text: str) -> list[str]:
    """Split ``a, b, "c, d"`` into its items (a quoted item keeps its commas; ``""`` is one quote)."""
    items: list[str] = []
    position = 0
    while position < len(text):
        match = _ITEM.match(text, position)
        if match is None or match.end() == position:
            raise CellError(f"cannot read {text!r} as a list of values: check the quotes and commas")
        quoted, plain = match.groups()
        items.append(quoted.replace('""', '"') if quoted is not None else plain.strip())
        position = match.end()
    return items


def _range(item: str, kind: str) -> Range | None:
    """The range or comparison ``item`` stands for, or None when it is a plain value."""
    compare = _COMPARE.match(item)
    bounds = _RANGE.match(item) if compare is None else None
    if compare is None and bounds is None:
        if item[:1] in "[](" and ".." in item:
            raise CellError(f"cannot read range {item!r}: write [1..5], (1..5), ]1..5[ or [1..5)")
        return None
    if kind not in NUMERIC:
        raise CellError(f"{item!r}: ranges and comparisons are for integer and number inputs, not {kind}")
    if compare is not None:
        op, limit = compare.groups()
        number = float(coerce(limit, "number"))
        if op.startswith(">"):
            return Range(number, op == ">=", None, False)
        return Range(None, False, number, op == "<=")
    assert bounds is not None
    opening, low, high, closing = bounds.groups()
    lo, hi = float(coerce(low, "number")), float(coerce(high, "number"))
    if lo > hi:
        raise CellError(f"range {item!r} is empty: its low end {low} is above its high end {high}")
    return Range(lo, opening == "[", hi, closing == "]")
