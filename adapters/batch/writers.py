"""Rendering outgoing files from a layout: header, detail records, trailer with count and totals.

Fixed-width fields are padded or cut in BYTES of the receiver's encoding, never in the middle of a
character; numbers are right-aligned and zero-padded, text left-aligned and space-padded (``align`` and
``pad`` override). A value that does not fit a numeric field is an error, never silently cut.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from decimal import Decimal
from typing import Any, BinaryIO

from adapters.batch.layouts import FieldSpec, Layout, RecordSpec
from esb.exceptions import MappingError

_NUMERIC = {"int", "decimal"}


def _text(spec: FieldSpec, value: Any) -> str:
    if value is None:
        return ""
    if spec.type == "decimal":
        number = Decimal(str(value))
        if spec.implied:
            return str(int(number.scaleb(spec.scale).to_integral_value()))
        return f"{number:.{spec.scale}f}"
    if spec.type == "int":
        return str(int(value))
    if spec.type in ("date", "datetime") and spec.format and hasattr(value, "strftime"):
        return str(value.strftime(spec.format))
    if spec.type == "date" and isinstance(value, str) and spec.format == "%Y%m%d":
        return value.replace("-", "")[:8]
    return str(value)


def _fit(spec: FieldSpec, text: str, encoding: str, layout: str) -> bytes:
    assert spec.length is not None
    raw = text.encode(encoding)
    numeric = spec.type in _NUMERIC
    if len(raw) > spec.length:
        if numeric:
            raise MappingError(layout, spec.name, spec.name, f"{text!r} does not fit in {spec.length} bytes")
        cut = text
        while len(raw) > spec.length:  # drop whole characters, never half of one
            cut = cut[:-1]
            raw = cut.encode(encoding)
    pad = (spec.pad if spec.pad != " " or not numeric else "0").encode(encoding)
    room = pad * (spec.length - len(raw))
    right = spec.align == "right" or (spec.align is None and numeric)
    return room + raw if right else raw + room


class RecordWriter:
    """Writes records of one layout to a binary stream, counting and totalling as it goes."""

    def __init__(self, layout: Layout, encoding: str, out: BinaryIO) -> None:
        self.layout = layout
        self.encoding = encoding
        self.out = out
        self.eol = layout.line_ending.encode("ascii")
        self.count = 0
        self.totals: dict[str, Decimal] = {name: Decimal(0) for name in layout.checks.totals}

    def _values(self, spec: RecordSpec, body: dict[str, Any], control: dict[str, Any] | None) -> list[str]:
        out = []
        for f in spec.fields:
            if f.value is not None:
                value: Any = f.value
            elif control is not None and f.source is not None:
                value = control.get(f.source)
            else:
                value = body.get(f.name)
                if value is None and f.required:
                    raise MappingError(self.layout.name, f.name, f.name, "is required but missing")
            out.append(_text(f, value))
        return out

    def _line(self, spec: RecordSpec, texts: list[str]) -> bytes:
        if self.layout.kind == "fixed_width":
            return b"".join(
                _fit(f, t, self.encoding, self.layout.name) for f, t in zip(spec.fields, texts, strict=True)
            )
        if self.layout.quote is None:
            return self.layout.delimiter.join(texts).encode(self.encoding)
        buffer = io.StringIO()
        csv.writer(
            buffer, delimiter=self.layout.delimiter, quotechar=self.layout.quote, lineterminator=""
        ).writerow(texts)
        return buffer.getvalue().encode(self.encoding)

    def header(self, control: dict[str, Any]) -> None:
        """Write the header record (values from the layout's ``value``/``source``)."""
        if self.layout.header is not None:
            self.out.write(
                self._line(self.layout.header, self._values(self.layout.header, {}, control)) + self.eol
            )

    def detail(self, body: dict[str, Any]) -> None:
        """Write one detail record from a flat body (field name -> value)."""
        line = self._line(self.layout.detail, self._values(self.layout.detail, body, None))
        self.out.write(line + self.eol)
        self.count += 1
        for name in self.totals:
            self.totals[name] += Decimal(str(body.get(name) or 0))

    def trailer(self, control: dict[str, Any]) -> None:
        """Write the trailer with the record count and totals."""
        if self.layout.trailer is None:
            return
        control = {
            **control,
            "record_count": self.count,
            **{f"total.{name}": total for name, total in self.totals.items()},
        }
        self.out.write(
            self._line(self.layout.trailer, self._values(self.layout.trailer, {}, control)) + self.eol
        )


def render(
    layout: Layout, encoding: str, out: BinaryIO, bodies: Iterable[dict[str, Any]], control: dict[str, Any]
) -> int:
    """Write a whole file (header, details, trailer); return the number of detail records."""
    writer = RecordWriter(layout, encoding, out)
    writer.header(control)
    for body in bodies:
        writer.detail(body)
    writer.trailer(control)
    return writer.count
