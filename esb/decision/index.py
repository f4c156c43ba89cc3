"""The index that answers a lookup without scanning the rules.

Each input column has an index from a value to the set of rules whose cell admits it, a set held as a
bit mask (an ``int``: bit *i* is rule *i*). A string or boolean column is a hash of value -> mask (the
wildcard rules already OR-ed in). A number column cuts the number line at every value and range end
the column names into points and the open intervals between them; each piece holds the mask of the
rules that cover it, and a lookup is one binary search. A lookup ANDs one mask per column: the bits
left are the matching rules, in rule order, so the first is the lowest bit. The cost grows with the
width of the masks (a machine word per 64 rules), not with a scan: see bench/decision_bench.py.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterator, Sequence
from typing import Any

from esb.decision.cells import Cell, Range


def bits(mask: int) -> Iterator[int]:
    """The indexes of the set bits of ``mask``, lowest first."""
    while mask:
        low = mask & -mask
        yield low.bit_length() - 1
        mask ^= low


class HashIndex:
    """One string or boolean column: value -> mask of the rules whose cell admits it."""

    def __init__(self, cells: Sequence[Cell]) -> None:
        self.wild = 0
        by_value: dict[Any, int] = {}
        for number, cell in enumerate(cells):
            bit = 1 << number
            if cell.any:
                self.wild |= bit
            for value in cell.values:
                by_value[value] = by_value.get(value, 0) | bit
        self.by_value = {value: mask | self.wild for value, mask in by_value.items()}

    def lookup(self, value: Any) -> int:
        """The mask of the rules admitting ``value`` (None: only the wildcards)."""
        return self.by_value.get(value, self.wild)


class IntervalIndex:
    """One number column: the pieces of the number line, each with the mask of the rules covering it.

    With the column's distinct bounds ``b0 < b1 < ...``, piece ``2i+1`` is the point ``bi`` and piece
    ``2i`` the open interval before it (piece ``2m`` is everything above the last bound).
    """

    def __init__(self, cells: Sequence[Cell]) -> None:
        self.wild = 0
        points: set[float] = set()
        for cell in cells:
            points.update(float(v) for v in cell.values)
            for r in cell.ranges:
                points.update(p for p in (r.low, r.high) if p is not None)
        self.bounds = sorted(points)
        self.pieces = self._sweep(cells)

    def _piece(self, value: float) -> int:
        i = bisect_left(self.bounds, value)
        return 2 * i + 1 if i < len(self.bounds) and self.bounds[i] == value else 2 * i

    def _span(self, r: Range) -> tuple[int, int]:
        """The first and last piece a range covers."""
        last = 2 * len(self.bounds)
        first = 0 if r.low is None else self._piece(r.low) + (0 if r.low_included else 1)
        end = last if r.high is None else self._piece(r.high) - (0 if r.high_included else 1)
        return first, end

    def _sweep(self, cells: Sequence[Cell]) -> list[int]:
        count = 2 * len(self.bounds) + 1
        start, stop = [0] * (count + 1), [0] * (count + 1)
        for number, cell in enumerate(cells):
            bit = 1 << number
            if cell.any:
                self.wild |= bit
                spans = [(0, count - 1)]
            else:
                spans = [(self._piece(float(v)),) * 2 for v in cell.values]
                spans += [self._span(r) for r in cell.ranges]
            for first, end in _merged(spans):
                start[first] |= bit
                stop[end + 1] |= bit
        pieces, running = [], 0
        for piece in range(count):
            running = (running | start[piece]) & ~stop[piece]
            pieces.append(running)
        return pieces

    def lookup(self, value: Any) -> int:
        """The mask of the rules admitting the number ``value`` (None: only the wildcards)."""
        if value is None:
            return self.wild
        return self.pieces[self._piece(value)]


def _merged(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Spans of pieces joined where they overlap or touch (a rule's bit is set once per piece)."""
    out: list[tuple[int, int]] = []
    for first, end in sorted(s for s in spans if s[0] <= s[1]):
        if out and first <= out[-1][1] + 1:
            out[-1] = (out[-1][0], max(out[-1][1], end))
        else:
            out.append((first, end))
    return out


ColumnIndex = HashIndex | IntervalIndex


def overlapping(index: ColumnIndex, cell: Cell, everything: int) -> int:
    """The mask of the rules whose cell in this column shares a value with ``cell`` (lint of unique)."""
    if cell.any:
        return everything
    if isinstance(index, HashIndex):
        mask = index.wild
        for value in cell.values:
            mask |= index.by_value.get(value, 0)
        return mask
    mask = index.wild
    spans = [(index._piece(float(v)),) * 2 for v in cell.values] + [index._span(r) for r in cell.ranges]
    for first, end in _merged(spans):
        for piece in range(first, end + 1):
            mask |= index.pieces[piece]
    return mask
