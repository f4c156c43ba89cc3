"""Streaming XML batch files: one record per ``record_tag`` element, with lxml ``iterparse``.

The parser is hardened like every XML parser of the hub (esb/xmlsafe.py): entities are never resolved,
the network is never used, DTDs are refused. Each record is cleared once read (``keep_tail=True``) and
its processed siblings dropped, so memory stays flat whatever the file size. A restart resumes by
skipping the records already settled (XML offsets are not resumable positions).
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from lxml import etree

from adapters.batch.blocks import Record, RecordBlock, blocks_of
from adapters.batch.errors import BadFileError
from adapters.batch.layouts import Layout, RecordSpec
from adapters.batch.parsers import FileSummary, check_trailer


def _iterparse(path: Path, tags: list[str]) -> Iterator[tuple[str, Any]]:
    try:
        yield from etree.iterparse(
            str(path),
            events=("end",),
            tag=tags,
            resolve_entities=False,
            no_network=True,
            load_dtd=False,
            huge_tree=False,
        )
    except etree.XMLSyntaxError as exc:
        raise BadFileError(f"malformed or truncated XML: {exc}") from None


def _release(elem: Any) -> None:
    elem.clear(keep_tail=True)
    parent = elem.getparent()
    while parent is not None and elem.getprevious() is not None:
        del parent[0]


class XMLReader:
    """XML files whose detail records are repeated elements; an optional trailer element."""

    def __init__(self, layout: Layout, encoding: str, max_line_bytes: int) -> None:
        self.layout = layout
        self.encoding = encoding
        assert layout.record_tag is not None
        self.record_tag = layout.record_tag
        self.trailer_tag = layout.trailer_tag

    def _values(self, elem: Any, spec: RecordSpec) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in spec.fields:
            path = f.path or f.name
            text = elem.get(path[1:]) if path.startswith("@") else elem.findtext(path)
            try:
                out[f.name] = f.convert(text or "")
            except ValueError as exc:
                raise ValueError(f"field {f.name} ({path}): {exc}") from None
        return out

    def scan(self, path: Path) -> FileSummary:
        """Check well-formedness, count and totals against the trailer element (streaming)."""
        if path.stat().st_size == 0:
            raise BadFileError("empty file (0 bytes)")
        with path.open("rb") as stream:
            head = stream.read(4096)
        if b"<!DOCTYPE" in head or b"<!ENTITY" in head:
            raise BadFileError("XML with a DTD or entity declarations is refused")
        summary = FileSummary(totals={n: Decimal(0) for n in self.layout.checks.totals})
        unreadable: list[int] = []
        tags = [self.record_tag] + ([self.trailer_tag] if self.trailer_tag else [])
        for _, elem in _iterparse(path, tags):
            if elem.tag == self.trailer_tag and self.layout.trailer is not None:
                try:
                    summary.trailer = self._values(elem, self.layout.trailer)
                except ValueError as exc:
                    raise BadFileError(f"unreadable trailer: {exc}") from None
            else:
                summary.records += 1
                if self.layout.checks.totals:
                    try:
                        values = self._values(elem, self.layout.detail)
                        for name in summary.totals:
                            summary.totals[name] += Decimal(values[name] or 0)
                    except (ValueError, InvalidOperation):
                        unreadable.append(summary.records)
            _release(elem)
        if summary.records == 0:
            raise BadFileError(f"no <{self.record_tag}> records in the file")
        if self.layout.trailer is not None:
            if not summary.trailer:
                raise BadFileError(f"missing trailer <{self.trailer_tag}>: truncated file?")
            check_trailer(self.layout, summary, unreadable)
        return summary

    def blocks(self, path: Path, offset: int, number: int) -> Iterator[RecordBlock]:
        """The records of :meth:`records`, a block at a time."""
        return blocks_of(self.records(path, offset, number))

    def records(self, path: Path, offset: int, number: int) -> Iterator[Record]:
        """Yield the records after the first ``number`` (``offset`` is unused for XML)."""
        for seen, (_, elem) in enumerate(_iterparse(path, [self.record_tag]), 1):
            if seen > number:
                raw = etree.tostring(elem, encoding="utf-8", with_tail=False)
                try:
                    yield Record(seen, 0, raw, self._values(elem, self.layout.detail))
                except ValueError as exc:
                    yield Record(seen, 0, raw, None, str(exc))
            _release(elem)
