"""The fast path of fixed-width records, compiled once per layout: what a hand-written parser would do.

A :class:`FixedPlan` slices every field of a record with one ``itemgetter`` of slices (C level), decodes
all of them with ONE ``decode`` call (the fields joined by NUL, which no GBK/GB18030/UTF-8 character
contains, so a field cut in the middle of a character still fails), strips them with ``map``, converts
only the fields that are not text, and builds the dict with ``zip``. Whenever that path cannot decide
(a decoding error, a bad number, an empty required field, a NUL in the data) it answers None and the
reader's field-by-field parse runs instead: it gives the same values and the precise error message.

:meth:`FixedPlan.parse_block` does the same for a whole block of lines (256 at a time) with a few
C-level calls per block instead of per record: the fields of every line joined by NUL and decoded ONCE,
stripped with ``map``, each field handled as one column (a slice of the flat list), the dicts built by
one generated dict display per record (:func:`dict_maker`). When anything in the block is not plain (a
length, a decoding error, a NUL, an empty required field, a value a column conversion refuses) the block
goes line by line through :meth:`FixedPlan.parse`, so the result is always exactly the per-line one (a
property test checks it on any bytes). :func:`block_totals` does the same for the amount totals of the
check pass.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import date
from decimal import Decimal
from itertools import compress, repeat
from operator import itemgetter
from struct import Struct
from typing import Any

from adapters.batch.layouts import FieldSpec, RecordSpec

TextConverter = Callable[[str], Any]
ColumnConverter = Callable[[list[str]], list[Any]]
_NONE_IF_EMPTY: dict[str, str | None] = {"": None}  # map(get, texts, texts): '' -> None, any other text kept
_DATES: dict[str, str] = {}  # '20240531' -> '2024-05-31': charge dates repeat; bounded below
_MAX_DATES = 20_000
# What ``bytes.strip()`` and ``int(bytes)`` take as blanks, which the careful parse uses for numbers and
# dates: ``str.strip()`` would also take the ideographic space U+3000 (GBK A1A1), NBSP and \x1c-\x1f.
ASCII_BLANKS = " \t\n\r\x0b\x0c"


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


def column_converter(spec: FieldSpec) -> ColumnConverter | None:
    """A converter of a whole column of stripped texts (one field of every line of a block) that gives
    what ``text_converter(spec)`` gives value by value, mostly in C-level ``map`` calls; None for a plain
    string field. Raises ValueError when one value cannot be converted."""
    convert = text_converter(spec)
    if convert is None:
        return None
    if convert is _int:
        return _int_column
    if convert is _ymd:
        return _ymd_column
    if spec.type == "decimal" and spec.implied:
        return _implied_column(spec.scale, convert)
    return lambda texts: list(map(convert, texts))


def _plain_ints(texts: list[str]) -> list[int] | None:
    """The column as ints when every value is a non-empty ASCII number (else None: value by value)."""
    if not all(texts) or not "".join(texts).isascii():
        return None
    return list(map(int, texts))


def _int_column(texts: list[str]) -> list[Any]:
    numbers = _plain_ints(texts)
    return list(map(_int, texts)) if numbers is None else numbers


def _implied_column(scale: int, convert: TextConverter) -> ColumnConverter:
    unit, pattern = 10**scale, f"%d.%0{scale}d"

    def column(texts: list[str]) -> list[Any]:
        numbers = _plain_ints(texts)
        if numbers is None or not scale:
            return list(map(convert, texts))
        if min(numbers) >= 0:
            return list(map(pattern.__mod__, map(divmod, numbers, repeat(unit))))
        out = list(map(pattern.__mod__, map(divmod, map(abs, numbers), repeat(unit))))
        for n in compress(range(len(numbers)), map(int.__lt__, numbers, repeat(0))):
            out[n] = "-" + out[n]  # the few negative amounts
        return out

    return column


def _ymd_column(texts: list[str]) -> list[Any]:
    values = list(map(_DATES.get, texts))
    return list(map(_ymd, texts)) if None in values else values


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
        self.required_columns = tuple(required)
        self.spans = tuple((f.start - 1, f.end) for f in fields if f.start is not None)
        self.text_columns = tuple(n for n, f in enumerate(fields) if text_converter(f) is None)
        self.columns = tuple(
            (n, column) for n, f in enumerate(fields) if (column := column_converter(f)) is not None
        )
        self.record_dict = dict_maker(self.names)

    def parse(self, line: bytes) -> dict[str, Any] | None:
        """The record's fields, or None when the careful parse must decide (and explain)."""
        if len(line) != self.length:
            return None
        try:
            raw = b"\0".join(self.get(line)).decode(self.encoding).split("\0")
        except UnicodeDecodeError:
            return None
        texts = list(map(str.strip, raw))
        if len(texts) != self.count or (self.required is not None and not all(self.required(texts))):
            return None  # a NUL inside a field, or an empty required field
        body: dict[str, Any] = {name: text or None for name, text in zip(self.names, texts)}  # noqa: B905
        try:
            for n, name, convert in self.conversions:
                body[name] = convert(raw[n].strip(ASCII_BLANKS))  # numbers: ASCII blanks only
        except ValueError:
            return None
        return body

    def parse_block(self, lines: list[bytes]) -> list[dict[str, Any] | None]:
        """``[self.parse(line) for line in lines]``, a block at a time (see the module docstring)."""
        if not lines:
            return []
        if min(map(len, lines)) == self.length == max(map(len, lines)):
            bodies = self.parse_fields(list(map(self.get, lines)))
            if bodies is not None:
                return bodies
        return list(map(self.parse, lines))

    def parse_fields(self, records: list[tuple[bytes, ...]]) -> list[dict[str, Any] | None] | None:
        """The bodies of records already cut into their fields' bytes (``self.get`` of each line, or
        ``unpacker``), or None when one of them needs :meth:`parse` (the caller goes line by line)."""
        try:
            joined = b"\0".join(map(b"\0".join, records)).decode(self.encoding).split("\0")
        except UnicodeDecodeError:
            return None
        step = self.count
        if len(joined) != len(records) * step:  # a NUL inside a field
            return None
        columns: list[list[Any]] = [joined[n::step] for n in range(step)]  # then column by column
        for n in self.text_columns:
            columns[n] = list(map(str.strip, columns[n]))
        for n, _ in self.columns:  # numbers and dates: stripped of ASCII blanks only, as the careful parse
            columns[n] = list(map(str.strip, columns[n], repeat(ASCII_BLANKS)))
        if not all(all(columns[n]) for n in self.required_columns):
            return None
        try:
            for n, convert in self.columns:
                columns[n] = convert(columns[n])
        except ValueError:
            return None
        for n in self.text_columns:  # '' -> None, only in the columns that hold an empty text
            column = columns[n]
            if not all(column):
                columns[n] = list(map(_NONE_IF_EMPTY.get, column, column))
        return list(map(self.record_dict, *columns))

    def unpacker(
        self, line_end: bytes
    ) -> tuple[int, Callable[[bytes | memoryview], Iterator[tuple[Any, ...]]]] | None:
        """For blocks of whole records each followed by ``line_end``: (bytes per record, a function that
        cuts a block into every record's field bytes in one C-level ``Struct.iter_unpack``); None when the
        fields overlap or are out of order."""
        parts, at = [], 0
        for start, end in self.spans:
            if start < at:
                return None
            parts.append(f"{start - at}x{end - start}s" if start > at else f"{end - start}s")
            at = end
        parts.append(f"{self.length - at + len(line_end)}x")
        record = Struct("".join(parts))
        return record.size, record.iter_unpack


def dict_maker(names: tuple[str, ...]) -> Callable[..., dict[str, Any]]:
    """``lambda _0, _1, ...: {names[0]: _0, names[1]: _1, ...}``: one record's dict from its fields by
    one dict display, as a hand-written parser builds it (about a third faster than
    ``dict(zip(names, fields))``; the later of two equal names wins in both). The names are written as
    ``repr`` literals, so nothing of the layout is ever code."""
    params = ", ".join(f"_{n}" for n in range(len(names)))
    items = ", ".join(f"{name!r}: _{n}" for n, name in enumerate(names))
    maker: Callable[..., dict[str, Any]] = eval(f"lambda {params}: {{{items}}}", {"__builtins__": {}})  # noqa: S307
    return maker


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
