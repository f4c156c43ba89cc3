"""Whole-file extracts for ``esb sync`` (resync, reconciliation): read in place, nothing staged or moved.

The file is checked whole first (header, trailer, record count: a bad extract is refused before any
record is used); then the detail records are handed out as their raw bytes, a block of lines (about
1 MB) at a time, parsed only when asked. A resync recognises a record unchanged since its last run by
those bytes alone, so most are never parsed. The check counted the detail records: the read takes that
many lines after the header, with no look at each line's record code.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from adapters.batch.config import BatchEndpoint
from adapters.batch.errors import BadFileError
from adapters.batch.layouts import load_layout
from adapters.batch.lines import iter_line_chunks, split_lines
from adapters.batch.parsers import LineReader, reader_for

#: The longest record line when the endpoint has no inbound limits.
MAX_LINE_BYTES = 65536
Parse = Callable[[int, bytes], tuple[dict[str, Any] | None, str | None]]


def extract_blocks(
    endpoint: BatchEndpoint, context: Any, path: Path
) -> tuple[Iterator[tuple[int, list[bytes]]], Parse]:
    """The detail records of ``path`` in blocks ``(number of the first, raw lines)``, and their parser."""
    layout = load_layout(endpoint.layout, context.project_dir)
    max_line = endpoint.inbound.max_line_bytes if endpoint.inbound is not None else MAX_LINE_BYTES
    reader = reader_for(layout, endpoint.read_encoding, max_line)
    summary = reader.scan(path)
    if not isinstance(reader, LineReader):
        raise BadFileError(
            f"{path.name}: an extract must be a line layout (delimited or fixed width), not XML"
        )
    return _blocks(reader, path, summary.first_offset, summary.records), _parser(reader)


def _blocks(reader: LineReader, path: Path, offset: int, records: int) -> Iterator[tuple[int, list[bytes]]]:
    """The ``records`` detail lines after ``offset`` (what the check counted: the trailer follows them),
    numbered from 1, a chunk of lines at a time."""
    number = 0
    with path.open("rb") as stream:
        for _, chunk in iter_line_chunks(stream, offset, reader.max_line_bytes):
            lines = split_lines(chunk)[: records - number]
            if lines:
                yield number + 1, lines
            number += len(lines)
            if number >= records:
                return


def _parser(reader: LineReader) -> Parse:
    """Parse one detail line: ``(fields, None)``, or ``(None, why)`` when it cannot be read."""

    def parse(number: int, line: bytes) -> tuple[dict[str, Any] | None, str | None]:
        fields = reader.fast_detail(line)
        if fields is not None:
            return fields, None
        record = reader._careful(number, 0, line)  # the same package's reader
        return record.body, record.error

    return parse
