"""Layout files: the records of a batch file (header, detail, trailer), their fields and the file checks.

A layout is YAML under ``config/layouts/``. Fixed-width positions are 1-based and lengths are counted in
BYTES of the file's encoding (a Chinese character is 2 bytes in GBK, 3 in UTF-8): that is how Billing and
NCR specify their records, and it lets a parser slice bytes before decoding. See docs/batch.md.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from adapters.batch.errors import LayoutError
from esb.config.yamlpos import load_yaml

FieldType = Literal["string", "int", "decimal", "date", "datetime"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FieldSpec(_Strict):
    """One field: name, position (fixed-width) or path (xml), type and how to write it."""

    name: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    start: int | None = Field(default=None, ge=1, description="fixed-width: 1-based first byte")
    length: int | None = Field(default=None, ge=1, description="fixed-width: length in bytes")
    path: str | None = Field(default=None, description="xml: child tag or @attribute of the record")
    type: FieldType = "string"
    format: str | None = Field(default=None, description="date/datetime: strptime format, e.g. %Y%m%d")
    scale: int = Field(default=0, ge=0, le=12, description="decimal: digits after the point")
    implied: bool = Field(default=False, description="decimal: the point is implied (000012345 = 123.45)")
    required: bool = False
    value: str | None = Field(default=None, description="writing: a literal value")
    source: str | None = Field(
        default=None,
        description="writing header/trailer: file_date, sequence, file_name, record_count, total.<field>",
    )
    align: Literal["left", "right"] | None = None
    pad: str = Field(default=" ", min_length=1, max_length=1)

    @property
    def end(self) -> int:
        """The exclusive end byte (0-based) of a fixed-width field."""
        assert self.start is not None
        assert self.length is not None
        return self.start - 1 + self.length

    def convert(self, text: str) -> Any:
        """Convert the field's text to its value; ValueError with a reason when it cannot."""
        text = text.strip()
        if not text:
            if self.required:
                raise ValueError("is required but empty")
            return None
        if self.type == "string":
            return text
        if self.type == "int":
            return int(text)
        if self.type == "decimal":
            try:
                number = Decimal(text)
            except InvalidOperation:
                raise ValueError(f"{text!r} is not a decimal number") from None
            if self.implied:
                number = number.scaleb(-self.scale)
            return str(number.quantize(Decimal(1).scaleb(-self.scale)))
        fmt = self.format or ("%Y%m%d" if self.type == "date" else "%Y%m%d%H%M%S")
        parsed = datetime.strptime(text, fmt)
        return parsed.date().isoformat() if self.type == "date" else parsed.isoformat()


class RecordSpec(_Strict):
    """A kind of record: its code (value of the record-type field) and its fields."""

    code: str | None = None
    fields: list[FieldSpec] = Field(min_length=1)


class RecordType(_Strict):
    """Where the record code is: bytes ``start``/``length`` (fixed width) or ``column`` (delimited)."""

    start: int = Field(default=1, ge=1)
    length: int = Field(default=1, ge=1)
    column: int = Field(default=0, ge=0)


class Checks(_Strict):
    """File checks against the trailer: the detail count and the totals of amount fields."""

    record_count: str | None = Field(default=None, description="trailer field holding the detail count")
    totals: dict[str, str] = Field(
        default_factory=dict, description="detail field -> trailer field (its sum)"
    )


class Layout(_Strict):
    """A whole layout file."""

    name: str
    description: str | None = None
    kind: Literal["fixed_width", "delimited", "xml"]
    delimiter: str = Field(default=",", min_length=1, max_length=4)
    quote: str | None = Field(default=None, description="delimited: quote character (None: no quoting)")
    record_type: RecordType | None = Field(default=None, description="omit when every line is a detail")
    record_tag: str | None = Field(default=None, description="xml: the tag of one detail record")
    trailer_tag: str | None = Field(default=None, description="xml: the tag of the trailer element")
    line_ending: Literal["\n", "\r\n"] = "\r\n"
    header: RecordSpec | None = None
    detail: RecordSpec
    trailer: RecordSpec | None = None
    checks: Checks = Field(default_factory=Checks)

    @model_validator(mode="after")
    def _consistent(self) -> Layout:
        problems: list[str] = []
        for label, spec in (("header", self.header), ("detail", self.detail), ("trailer", self.trailer)):
            if spec is None:
                continue
            for f in spec.fields:
                if self.kind == "fixed_width" and (f.start is None or f.length is None):
                    problems.append(f"{label}.{f.name}: fixed_width fields need start and length (bytes)")
                if self.kind == "xml" and label == "detail" and f.path is None:
                    problems.append(f"{label}.{f.name}: xml fields need a path")
            if self.kind != "xml" and self.record_type is not None and spec.code is None:
                problems.append(f"{label}: needs a code (the record_type value that marks it)")
        if self.kind == "xml" and not self.record_tag:
            problems.append("xml layouts need record_tag")
        names = {f.name for f in self.trailer.fields} if self.trailer else set()
        wanted = [self.checks.record_count, *self.checks.totals.values()]
        problems += [f"checks: trailer has no field {w!r}" for w in wanted if w and w not in names]
        detail = {f.name for f in self.detail.fields}
        problems += [
            f"checks.totals: detail has no field {d!r}" for d in self.checks.totals if d not in detail
        ]
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def record_length(self, spec: RecordSpec) -> int:
        """Fixed width: the byte length of a record of kind ``spec``."""
        return max(f.end for f in spec.fields)


_CACHE: dict[Path, Layout] = {}


def _finding(where: str, loc: tuple[int | str, ...], msg: str) -> str:
    """``file:line: field.path: what is wrong`` (no path for a problem of the whole layout)."""
    path = ".".join(str(p) for p in loc)
    return f"{where}: {path}: {msg}" if path else f"{where}: {msg}"


def load_layout(path: Path, project_dir: Path | None = None) -> Layout:
    """Load and check the layout at ``path`` (relative to ``project_dir``); cached per file."""
    full = path if path.is_absolute() or project_dir is None else project_dir / path
    full = full.resolve()
    if full in _CACHE:
        return _CACHE[full]
    if not full.is_file():
        raise LayoutError(f"{path}: layout file not found")
    doc = load_yaml(full, display=str(path))
    try:
        layout = Layout.model_validate(doc.data or {})
    except ValidationError as exc:
        findings = [_finding(doc.where(e["loc"]), e["loc"], e["msg"]) for e in exc.errors()]
        raise LayoutError(f"{path}: invalid layout", findings=findings) from None
    _CACHE[full] = layout
    return layout
