"""Streaming record readers for fixed-width and delimited files (XML lives in xml_records.py).

Each reader makes two passes over the staged file, both streaming: ``scan`` checks the whole file
(encoding, header, trailer, record count, amount totals) before a single record is delivered, so a bad
file is refused whole; ``records`` then yields one :class:`Record` at a time from a byte offset, which is
what a restart resumes from.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal, InvalidOperation
from itertools import repeat
from operator import itemgetter
from pathlib import Path
from typing import Any, Protocol

from adapters.batch.blocks import FixedBlockPass, Record, RecordBlock, blocks_of
from adapters.batch.errors import BadFileError
from adapters.batch.fixed import FixedPlan, block_totals, total_getters
from adapters.batch.layouts import FieldSpec, Layout, RecordSpec
from adapters.batch.lines import iter_block_lines
from adapters.batch.scan import BLOCK, Scanner


@dataclass
class FileSummary:
    """What ``scan`` found: detail count, totals, header and trailer values, offset of the first record."""

    records: int = 0
    totals: dict[str, Decimal] = field(default_factory=dict)
    header: dict[str, Any] = field(default_factory=dict)
    trailer: dict[str, Any] = field(default_factory=dict)
    first_offset: int = 0


class RecordReader(Protocol):
    """Reads one file format."""

    def scan(self, path: Path) -> FileSummary:
        """Check the whole file; raise BadFileError when it must be refused."""
        ...

    def records(self, path: Path, offset: int, number: int) -> Iterator[Record]:
        """Yield the detail records after byte ``offset``, numbered from ``number + 1``."""
        ...

    def blocks(self, path: Path, offset: int, number: int) -> Iterator[RecordBlock]:
        """The same records as ``records``, a block at a time."""
        ...


Converter = Callable[[bytes], Any]


def _implied(scale: int, required: bool) -> Converter:
    def convert(raw: bytes) -> Any:
        if not raw.strip():
            if required:
                raise ValueError("is required but empty")
            return None
        digits = str(int(raw))  # ValueError for anything but an integer
        sign = "-" if digits[0] == "-" else ""
        digits = digits.lstrip("-").rjust(scale + 1, "0")
        return f"{sign}{digits[:-scale]}.{digits[-scale:]}" if scale else sign + digits

    return convert


def _ymd(required: bool) -> Converter:
    def convert(raw: bytes) -> Any:
        text = raw.strip()
        if not text:
            if required:
                raise ValueError("is required but empty")
            return None
        if len(text) != 8 or not text.isdigit():
            raise ValueError(f"{text.decode('latin-1')!r} is not a date in %Y%m%d")
        day = date(int(text[:4]), int(text[4:6]), int(text[6:]))  # ValueError for 20240231
        return day.isoformat()

    return convert


def _converter(spec: FieldSpec, encoding: str) -> Converter:
    """Return a fast bytes -> value function for ``spec`` (the common cases avoid the generic path)."""
    required = spec.required
    if spec.type == "string":

        def as_text(raw: bytes) -> Any:
            text = raw.decode(encoding).strip()
            if not text and required:
                raise ValueError("is required but empty")
            return text or None

        return as_text
    if spec.type == "int" and not required:

        def as_int(raw: bytes) -> Any:
            return int(raw) if raw.strip() else None

        return as_int
    if spec.type == "decimal" and spec.implied:
        return _implied(spec.scale, required)
    if spec.type == "date" and (spec.format or "%Y%m%d") == "%Y%m%d":
        return _ymd(required)

    def generic(raw: bytes) -> Any:
        return spec.convert(raw.decode(encoding))

    return generic


class LineReader:
    """What fixed-width and delimited readers share: the passes, the checks; subclasses split a line."""

    def __init__(self, layout: Layout, encoding: str, max_line_bytes: int) -> None:
        self.layout = layout
        self.encoding = encoding
        self.max_line_bytes = max_line_bytes
        self.header_code = layout.header.code if layout.header else None
        self.trailer_code = layout.trailer.code if layout.trailer else None
        self.detail_code = layout.detail.code

    # -- what subclasses provide ---------------------------------------------------------------------
    def code_of(self, line: bytes) -> str | None:
        """Return the record code of ``line`` (None when the layout has no record types)."""
        raise NotImplementedError

    def parse(self, line: bytes, spec: RecordSpec) -> dict[str, Any]:
        """Return the fields of ``line``; ValueError with a reason when it cannot."""
        raise NotImplementedError

    def totals_of(self, line: bytes, totals: list[tuple[str, FieldSpec]]) -> dict[str, Any]:
        """Return the amount fields of a detail line (the scan pass needs nothing else)."""
        return self.parse(line, self.layout.detail)

    # -- pass 1 (see scan.py: it runs while the file downloads) --------------------------------------
    def scanner(self) -> Scanner:
        """A new whole-file check to feed with the file's bytes."""
        return Scanner(self)

    def scan(self, path: Path) -> FileSummary:
        """Check encoding, header, trailer, count and totals of the whole file (streaming)."""
        scanner = self.scanner()
        with path.open("rb") as stream:
            while chunk := stream.read(BLOCK):
                scanner.feed(chunk)
        return scanner.finish()

    def empty_totals(self) -> dict[str, Decimal]:
        """The totals to add the detail records' amounts to."""
        return {name: Decimal(0) for name in self.layout.checks.totals}

    def header_of(self, line: bytes) -> dict[str, Any]:
        """Check that line 1 is the header; return its fields."""
        code = self.code_of(line)
        if code != self.header_code:
            raise BadFileError(
                f"missing header: line 1 has record type {code!r}, expected {self.header_code!r}"
            )
        return self._parse_control(line, self.layout.header, "header")

    def scan_details(
        self, lines: list[bytes], first_no: int, summary: FileSummary, unreadable: list[int]
    ) -> None:
        """Count detail lines ``first_no``... and add up their amounts; refuse a control record among them."""
        totals = self._total_specs()
        for line_no, line in enumerate(lines, first_no):
            self._detail_in_scan((line_no, line), summary, totals, unreadable)

    def check_trailer_line(
        self, line: bytes, line_no: int, summary: FileSummary, unreadable: list[int]
    ) -> None:
        """Check that the last line is the trailer, then its count and totals."""
        code = self.code_of(line)
        if code != self.trailer_code:
            raise BadFileError(
                f"missing trailer: the last line ({line_no}) has record type {code!r}, "
                f"expected {self.trailer_code!r}: truncated file?"
            )
        summary.trailer = self._parse_control(line, self.layout.trailer, "trailer")
        check_trailer(self.layout, summary, unreadable)

    def _total_specs(self) -> list[tuple[str, FieldSpec]]:
        return [(n, _spec(self.layout.detail, n)) for n in self.layout.checks.totals]

    def _detail_in_scan(
        self,
        item: tuple[int, bytes],
        summary: FileSummary,
        totals: list[tuple[str, FieldSpec]],
        unreadable: list[int],
    ) -> None:
        line_no, line = item
        code = self.code_of(line)
        if code is not None and code in (self.header_code, self.trailer_code):
            raise BadFileError(f"line {line_no}: a {code!r} control record in the middle of the file")
        summary.records += 1
        if not totals:
            return
        try:
            values = self.totals_of(line, totals)
            for name, _ in totals:
                summary.totals[name] += Decimal(values[name] or 0)
        except (ValueError, KeyError, IndexError, InvalidOperation, UnicodeDecodeError):
            unreadable.append(line_no)

    def _parse_control(self, line: bytes, spec: RecordSpec | None, label: str) -> dict[str, Any]:
        assert spec is not None
        try:
            return self.parse(line, spec)
        except (ValueError, UnicodeDecodeError) as exc:
            raise BadFileError(f"unreadable {label} record: {exc}") from None

    # -- pass 2 -------------------------------------------------------------------------------------
    def fast_detail(self, line: bytes) -> dict[str, Any] | None:
        """A detail record's fields by a fast path, or None to use :meth:`parse` (the default)."""
        return None

    def is_trailer(self, line: bytes) -> bool:
        """True when ``line`` is the trailer record."""
        return self.trailer_code is not None and self.code_of(line) == self.trailer_code

    def records(self, path: Path, offset: int, number: int) -> Iterator[Record]:
        """Yield detail records after ``offset``; records that cannot be parsed carry their error."""
        is_trailer = self.is_trailer if self.trailer_code is not None else None
        fast, careful = self.fast_detail, self._careful
        with path.open("rb") as stream:
            for end, line in iter_block_lines(stream, offset, self.max_line_bytes):
                if is_trailer is not None and is_trailer(line):
                    return
                number += 1
                body = fast(line)
                yield Record(number, end, line, body) if body is not None else careful(number, end, line)

    def blocks(self, path: Path, offset: int, number: int) -> Iterator[RecordBlock]:
        """The records of :meth:`records`, a block at a time."""
        return blocks_of(iter(self.records(path, offset, number)))

    def _careful(self, number: int, end: int, line: bytes) -> Record:
        try:
            return Record(number, end, line, self.parse(line, self.layout.detail))
        except (ValueError, UnicodeDecodeError) as exc:
            return Record(number, end, line, None, str(exc))


def _spec(record: RecordSpec, name: str) -> FieldSpec:
    return next(f for f in record.fields if f.name == name)


def check_trailer(layout: Layout, summary: FileSummary, unreadable: list[int]) -> None:
    """Compare the trailer's count and totals with what the details hold; BadFileError on a mismatch."""
    checks = layout.checks
    if checks.record_count is not None:
        claimed = summary.trailer.get(checks.record_count)
        if claimed is None or int(claimed) != summary.records:
            raise BadFileError(
                f"record count mismatch: the trailer says {claimed}, the file holds "
                f"{summary.records} detail records"
            )
    for detail_field, trailer_field in checks.totals.items():
        claimed = Decimal(str(summary.trailer.get(trailer_field) or 0))
        if claimed != summary.totals[detail_field]:
            note = (
                f" ({len(unreadable)} records have an unreadable {detail_field}: lines {unreadable[:5]})"
                if unreadable
                else ""
            )
            raise BadFileError(
                f"{detail_field} total mismatch: the trailer says {claimed}, the detail records "
                f"sum to {summary.totals[detail_field]}{note}"
            )


class FixedWidthReader(LineReader):
    """Fixed-width records; positions and lengths in bytes of the encoding."""

    def __init__(self, layout: Layout, encoding: str, max_line_bytes: int) -> None:
        super().__init__(layout, encoding, max_line_bytes)
        rt = layout.record_type
        self._code = (rt.start - 1, rt.start - 1 + rt.length) if rt else None
        self._plans: dict[int, tuple[int, list[tuple[str, int, int, Converter]]]] = {}
        self._totals_plan: list[tuple[str, int, int, Converter]] | None = None
        self._fast = FixedPlan(layout.detail, layout.record_length(layout.detail), encoding)
        self.fast_detail = self._fast.parse  # type: ignore[method-assign] # the compiled plan
        self._code_of = itemgetter(slice(*self._code) if self._code else slice(0, 0))
        self._controls = {c.encode("latin-1") for c in (self.header_code, self.trailer_code) if c is not None}
        self._trailer = self.trailer_code.encode("latin-1") if self.trailer_code is not None else None
        self._fast_totals = total_getters(self._total_specs())
        self.block_pass = FixedBlockPass(
            self._fast,
            layout.line_ending.encode(),
            self._code,
            self._trailer,
            is_trailer=self.is_trailer,
            careful=self._careful,
            max_line_bytes=max_line_bytes,
        )

    def blocks(self, path: Path, offset: int, number: int) -> Iterator[RecordBlock]:
        """The records of :meth:`records`, a block at a time (see :class:`FixedBlockPass`)."""
        return self.block_pass.blocks(path, offset, number)

    def is_trailer(self, line: bytes) -> bool:
        """True when the record code bytes are the trailer's."""
        return self._code is not None and self._code_of(line) == self._trailer

    def scan_details(
        self, lines: list[bytes], first_no: int, summary: FileSummary, unreadable: list[int]
    ) -> None:
        """A block at a time: record codes as a set, amounts summed with ``map`` (see fixed.py)."""
        if self._code is not None and not self._controls.isdisjoint(map(self._code_of, lines)):
            super().scan_details(lines, first_no, FileSummary(totals=self.empty_totals()), [])
        sums = block_totals(lines, self._fast_totals) if self._fast_totals is not None else None
        if sums is None:
            super().scan_details(lines, first_no, summary, unreadable)
            return
        summary.records += len(lines)
        for name, value in sums.items():
            summary.totals[name] += value

    def _plan(self, spec: RecordSpec) -> tuple[int, list[tuple[str, int, int, Converter]]]:
        plan = self._plans.get(id(spec))
        if plan is None:
            fields = [
                (f.name, f.start - 1, f.end, _converter(f, self.encoding))
                for f in spec.fields
                if f.start is not None
            ]
            plan = self._plans[id(spec)] = (self.layout.record_length(spec), fields)
        return plan

    def totals_of(self, line: bytes, totals: list[tuple[str, FieldSpec]]) -> dict[str, Any]:
        """Slice and convert only the amount fields."""
        plan = self._totals_plan
        if plan is None:
            plan = self._totals_plan = [
                (n, f.start - 1, f.end, _converter(f, self.encoding))
                for n, f in totals
                if f.start is not None
            ]
        return {name: convert(line[start:end]) for name, start, end, convert in plan}

    def code_of(self, line: bytes) -> str | None:
        """The record code bytes, as ASCII text."""
        if self._code is None:
            return None
        return line[self._code[0] : self._code[1]].decode("latin-1")

    def parse(self, line: bytes, spec: RecordSpec) -> dict[str, Any]:
        """Slice the line's bytes into fields, then decode and convert each."""
        length, fields = self._plan(spec)
        if len(line) != length:
            raise ValueError(f"record is {len(line)} bytes, the layout says {length}")
        out: dict[str, Any] = {}
        for name, start, end, convert in fields:
            try:
                out[name] = convert(line[start:end])
            except UnicodeDecodeError:
                raise ValueError(
                    f"field {name} (bytes {start + 1}-{end}): not valid {self.encoding} "
                    "(a character cut by the field boundary?)"
                ) from None
            except ValueError as exc:
                raise ValueError(f"field {name} (bytes {start + 1}-{end}): {exc}") from None
        return out


class DelimitedReader(LineReader):
    """Delimited records (CSV, '|', any separator); one record per line, optional quoting."""

    def __init__(self, layout: Layout, encoding: str, max_line_bytes: int) -> None:
        super().__init__(layout, encoding, max_line_bytes)
        self._column = layout.record_type.column if layout.record_type else None
        self._sep = layout.delimiter
        self._detail_prefix = self._plain_detail_prefix()

    def _plain_detail_prefix(self) -> bytes | None:
        """The bytes every plain detail line starts with (its code in column 0, then the delimiter), when
        the check pass may count such lines without splitting them: no totals to add, a detail code
        unlike the control ones. None otherwise."""
        code = self.detail_code
        if self._column != 0 or not code or self.layout.checks.totals or code != code.strip():
            return None
        if code in (self.header_code, self.trailer_code):
            return None
        return (code + self._sep).encode(self.encoding)

    def scan_details(
        self, lines: list[bytes], first_no: int, summary: FileSummary, unreadable: list[int]
    ) -> None:
        """A block at a time when nothing but the count is checked: with no record types, or when every
        line starts with the detail code and the delimiter (its code is the detail one, so no control
        record is among them); else line by line."""
        if not self.layout.checks.totals and (
            self._column is None
            or (
                self._detail_prefix is not None
                and sum(map(bytes.startswith, lines, repeat(self._detail_prefix))) == len(lines)
            )
        ):
            summary.records += len(lines)
            return
        super().scan_details(lines, first_no, summary, unreadable)

    def _split(self, line: bytes) -> list[str]:
        text = line.decode(self.encoding)
        if self.layout.quote is None:
            return text.split(self._sep)
        return next(csv.reader([text], delimiter=self._sep, quotechar=self.layout.quote))

    def totals_of(self, line: bytes, totals: list[tuple[str, FieldSpec]]) -> dict[str, Any]:
        """Convert only the amount columns."""
        parts = self._split(line)
        index = {f.name: n for n, f in enumerate(self.layout.detail.fields)}
        return {name: spec.convert(parts[index[name]]) for name, spec in totals}

    def code_of(self, line: bytes) -> str | None:
        """The record code column."""
        if self._column is None:
            return None
        parts = self._split(line)
        return parts[self._column].strip() if len(parts) > self._column else None

    def parse(self, line: bytes, spec: RecordSpec) -> dict[str, Any]:
        """Split the line and convert each column."""
        parts = self._split(line)
        if len(parts) != len(spec.fields):
            raise ValueError(f"record has {len(parts)} fields, the layout says {len(spec.fields)}")
        out: dict[str, Any] = {}
        for f, text in zip(spec.fields, parts, strict=True):
            try:
                out[f.name] = f.convert(text)
            except ValueError as exc:
                raise ValueError(f"field {f.name}: {exc}") from None
        return out


def reader_for(layout: Layout, encoding: str, max_line_bytes: int) -> RecordReader:
    """Return the reader of ``layout.kind``."""
    if layout.kind == "fixed_width":
        return FixedWidthReader(layout, encoding, max_line_bytes)
    if layout.kind == "delimited":
        return DelimitedReader(layout, encoding, max_line_bytes)
    from adapters.batch.xml_records import XMLReader

    return XMLReader(layout, encoding, max_line_bytes)
