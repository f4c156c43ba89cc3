"""The fast path of fixed-width records, compiled once per layout: what a hand-written parser would do.

A :class:`FixedPlan` slices every field of a record with one ``itemgetter`` of slices (C level), decodes
all of them with ONE ``decode`` call (the fields joined by NUL, which no GBK/GB18030/UTF-8 character
contains, so a field cut in the middle of a character still fails), strips them with ``map``, converts
only the fields that are not text, and builds the dict with ``zip``. Whenever that path cannot decide
(a decoding error, a bad number, an empty required field, a NUL in the data) it answers None and the
reader's field-by-field parse runs instead: it gives the same values and the precise error message.
:func:`block_totals` does the same for the amount totals of the check pass, one block of lines at a time.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from decimal import Decimal
from operator import itemgetter
from typing import Any

from adapters.batch.layouts import FieldSpec, RecordSpec

TextConverter = Callable[[str], Any]
_DATES: dict[str, str] = {}  # '20240531' -> '2024-05-31': charge dates repeat; bounded below
_MAX_DATES = 20_000


def _int(text: str) -> Any:
    if not text:
        return None
    if not text.isascii():
        raise ValueError("not an ASCII number")
    return int(text)


def _implied(scale: int) -> TextConverter:
    unit, pattern = 10**scale, f"%d.%0{scale}d"

    def convert(text: str) -> Any:
        if not text:
            return None
        if not text.isascii():
            raise ValueError("not an ASCII number")
        number = int(text)
        if not scale:
            return str(number)
        if number < 0:
            return "-" + pattern % divmod(-number, unit)
        return pattern % divmod(number, unit)

    return convert


def _ymd(text: str) -> Any:
    if not text:
        return None
    known = _DATES.get(text)
    if known is not None:
        return known
    if len(text) != 8 or not (text.isascii() and text.isdigit()):
        raise ValueError("not a date")
    value = date(int(text[:4]), int(text[4:6]), int(text[6:])).isoformat()
    if len(_DATES) < _MAX_DATES:
        _DATES[text] = value
    return value


def text_converter(spec: FieldSpec) -> TextConverter | None:
    """A converter from the field's stripped text, or None for a plain string field."""
    if spec.type == "string":
        return None
    if spec.type == "int":
        return _int
    if spec.type == "decimal" and spec.implied:
        return _implied(spec.scale)
    if spec.type == "date" and (spec.format or "%Y%m%d") == "%Y%m%d":
        return _ymd
    return spec.convert


class FixedPlan:
    """One kind of fixed-width record, compiled: ``parse(line)`` returns its dict, or None (slow path)."""

    def __init__(self, spec: RecordSpec, length: int, encoding: str) -> None:
        fields = [f for f in spec.fields if f.start is not None]
        self.length = length
        self.encoding = encoding
        self.names = tuple(f.name for f in fields)
        self.count = len(fields)
        slices = [slice(f.start - 1, f.end) for f in fields if f.start is not None]
        getter = itemgetter(*slices)
        self.get: Callable[[bytes], tuple[bytes, ...]] = getter if len(slices) > 1 else lambda b: (getter(b),)
        required = [n for n, f in enumerate(fields) if f.required]
        self.required: Callable[[list[str]], Any] | None = (
            None if not required else itemgetter(*required) if len(required) > 1 else _one(required[0])
        )
        self.conversions = tuple(
            (n, f.name, convert) for n, f in enumerate(fields) if (convert := text_converter(f)) is not None
        )

    def parse(self, line: bytes) -> dict[str, Any] | None:
        """The record's fields, or None when the careful parse must decide (and explain)."""
        if len(line) != self.length:
            return None
        try:
            texts = list(map(str.strip, b"\0".join(self.get(line)).decode(self.encoding).split("\0")))
        except UnicodeDecodeError:
            return None
        if len(texts) != self.count or (self.required is not None and not all(self.required(texts))):
            return None  # a NUL inside a field, or an empty required field
        body: dict[str, Any] = {name: text or None for name, text in zip(self.names, texts)}  # noqa: B905
        try:
            for n, name, convert in self.conversions:
                body[name] = convert(texts[n])
        except ValueError:
            return None
        return body


def _one(index: int) -> Callable[[list[str]], tuple[str]]:
    return lambda texts: (texts[index],)


def total_getters(
    fields: list[tuple[str, FieldSpec]],
) -> list[tuple[str, Callable[[bytes], bytes], int]] | None:
    """For the totals of the check pass: (name, slice getter, scale) per field; None if one is not an
    integer or an implied decimal (then totals are added line by line)."""
    out: list[tuple[str, Callable[[bytes], bytes], int]] = []
    for name, spec in fields:
        if spec.start is None or not (spec.type == "int" or (spec.type == "decimal" and spec.implied)):
            return None
        out.append(
            (name, itemgetter(slice(spec.start - 1, spec.end)), spec.scale if spec.type == "decimal" else 0)
        )
    return out


def block_totals(
    lines: list[bytes], getters: list[tuple[str, Callable[[bytes], bytes], int]]
) -> dict[str, Decimal] | None:
    """The sum of each amount field over ``lines``; None when a value is not a plain integer."""
    sums: dict[str, Decimal] = {}
    try:
        for name, get, scale in getters:
            sums[name] = Decimal(sum(map(int, map(get, lines)))).scaleb(-scale)
    except ValueError:
        return None
    return sums
