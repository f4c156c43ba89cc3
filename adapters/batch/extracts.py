"""Whole-file extracts for ``esb sync`` (resync, reconciliation): read in place, nothing staged or moved.

The file is checked whole first (header, trailer, record count: a bad extract is refused before any
record is used); then each detail record is handed out as its raw bytes, parsed only when asked. A resync
recognises a record unchanged since its last run by those bytes alone, so most are never parsed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from adapters.batch.config import BatchEndpoint
from adapters.batch.errors import BadFileError
from adapters.batch.layouts import load_layout
from adapters.batch.lines import iter_block_lines
from adapters.batch.parsers import LineReader, reader_for

#: The longest record line when the endpoint has no inbound limits.
MAX_LINE_BYTES = 65536
Parse = Callable[[int, bytes], tuple[dict[str, Any] | None, str | None]]


def extract_lines(
    endpoint: BatchEndpoint, context: Any, path: Path
) -> tuple[Iterator[tuple[int, bytes]], Parse]:
    """Return the detail records of ``path`` as ``(number, raw bytes)`` and their parser."""
    layout = load_layout(endpoint.layout, context.project_dir)
    max_line = endpoint.inbound.max_line_bytes if endpoint.inbound is not None else MAX_LINE_BYTES
    reader = reader_for(layout, endpoint.read_encoding, max_line)
    summary = reader.scan(path)
    if not isinstance(reader, LineReader):
        raise BadFileError(
            f"{path.name}: an extract must be a line layout (delimited or fixed width), not XML"
        )
    return _lines(reader, path, summary.first_offset), _parser(reader)


def _lines(reader: LineReader, path: Path, offset: int) -> Iterator[tuple[int, bytes]]:
    """The detail lines after ``offset`` up to the trailer, numbered from 1."""
    is_trailer = reader.is_trailer if reader.trailer_code is not None else None
    number = 0
    with path.open("rb") as stream:
        for _, line in iter_block_lines(stream, offset, reader.max_line_bytes):
            if is_trailer is not None and is_trailer(line):
                return
            number += 1
            yield number, line


def _parser(reader: LineReader) -> Parse:
    """Parse one detail line: ``(fields, None)``, or ``(None, why)`` when it cannot be read."""

    def parse(number: int, line: bytes) -> tuple[dict[str, Any] | None, str | None]:
        fields = reader.fast_detail(line)
        if fields is not None:
            return fields, None
        record = reader._careful(number, 0, line)  # the same package's reader
        return record.body, record.error

    return parse
