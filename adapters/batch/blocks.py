"""The parse pass of fixed-width files a block of records at a time (what ``FileRun`` hands out).

The pass reads ~1 MB chunks of whole lines. A chunk whose lines all have the detail length and the
layout's line ending (checked with two extended slices and one count) is cut into every record's field
bytes by ONE ``Struct.iter_unpack`` and parsed :data:`BLOCK_RECORDS` records at a time by
:meth:`FixedPlan.parse_fields`. Anything irregular (the chunk holding the trailer, another line length or
ending, a record the block parse refuses) goes through the lines as ``LineReader.records`` does, record by
record and, for a record in question, through the careful field-by-field parse: the bodies and error
messages are exactly the record-by-record pass's (``tests/unit/test_batch_blocks.py``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from adapters.batch.fixed import FixedPlan
from adapters.batch.lines import chunk_lines, iter_line_chunks


@dataclass(slots=True)
class Record:
    """One detail record: its number (1-based), the offset after it, its original bytes, body or error."""

    number: int
    end_offset: int
    raw: bytes
    body: dict[str, Any] | None
    error: str | None = None


@dataclass(slots=True)
class RecordBlock:
    """Consecutive detail records as parallel lists: record ``i`` is number ``before + i + 1``, ends at
    byte ``ends[i]``, and has ``bodies[i]``, or None with ``errors[i]`` = (original bytes, reason)."""

    before: int
    ends: list[int]
    bodies: list[dict[str, Any] | None]
    errors: dict[int, tuple[bytes, str]] = field(default_factory=dict)


#: Records per block of the parse pass: small enough that a block's strings stay in the CPU cache
#: (measured: 256 records per block is the fastest; 8,000 is no faster than one record at a time).
BLOCK_RECORDS = 256


def blocks_of(records: Iterator[Record], size: int = BLOCK_RECORDS) -> Iterator[RecordBlock]:
    """Group the records of a reader that has no block pass of its own (delimited, XML) into blocks."""
    block: RecordBlock | None = None
    for record in records:
        if block is None:
            block = RecordBlock(record.number - 1, [], [])
        if record.error is not None:
            block.errors[len(block.bodies)] = (record.raw, record.error)
        block.ends.append(record.end_offset)
        block.bodies.append(record.body)
        if len(block.bodies) >= size:
            yield block
            block = None
    if block is not None:
        yield block


class FixedBlockPass:
    """The block pass of one fixed-width layout (see the module docstring)."""

    def __init__(
        self,
        plan: FixedPlan,
        eol: bytes,
        code: tuple[int, int] | None,
        trailer: bytes | None,
        *,
        is_trailer: Callable[[bytes], bool],
        careful: Callable[[int, int, bytes], Record],
        max_line_bytes: int,
    ) -> None:
        self.plan = plan
        self._eol = eol
        self._code = code
        self._trailer = trailer
        self.is_trailer = is_trailer
        self.careful = careful
        self.max_line_bytes = max_line_bytes
        self._unpacker = plan.unpacker(eol)

    def blocks(self, path: Path, offset: int, number: int) -> Iterator[RecordBlock]:
        """The detail records after byte ``offset``, numbered from ``number + 1``, a block at a time."""
        with path.open("rb") as stream:
            for start, chunk in iter_line_chunks(stream, offset, self.max_line_bytes):
                regular = self.regular(chunk)
                if regular is None:
                    lines, ends = chunk_lines(start, chunk)
                    trailer = self._trailer_index(lines)
                    yield from self._line_blocks(lines[:trailer], ends[:trailer], number)
                    number += len(lines[:trailer])
                else:
                    records, trailer = regular
                    yield from self._regular_blocks(chunk, records, start, number)
                    number += records
                if trailer is not None:
                    return

    def regular(self, chunk: bytes) -> tuple[int, int | None] | None:
        """(records before the trailer, the trailer's index or None) when every line of ``chunk`` has
        the detail length and the layout's line ending; None otherwise."""
        if self._unpacker is None:
            return None
        size = self._unpacker[0]
        count, rest = divmod(len(chunk), size)
        eol, length = self._eol, size - len(self._eol)
        if rest or not count or chunk.count(b"\n") != count:
            return None
        if eol == b"\r\n":
            if chunk[length::size] != b"\r" * count or chunk[length + 1 :: size] != b"\n" * count:
                return None
        elif chunk[length::size] != b"\n" * count or b"\r\n" in chunk:
            return None
        has_trailer = self._trailer is not None and self._code is not None
        trailer = self._regular_trailer(chunk, size) if has_trailer else None
        return (count if trailer is None else trailer), trailer

    def _regular_trailer(self, chunk: bytes, size: int) -> int | None:
        """The index of the first trailer record of a regular chunk, or None."""
        assert self._code is not None
        assert self._trailer is not None
        first, code = self._code[0], self._trailer
        column = chunk[first::size]  # the first byte of every record's code
        at = column.find(code[:1])
        while at >= 0:
            if chunk[at * size + first : at * size + first + len(code)] == code:
                return at
            at = column.find(code[:1], at + 1)
        return None

    def _trailer_index(self, lines: list[bytes]) -> int | None:
        if self._trailer is None:
            return None
        return next((n for n, line in enumerate(lines) if self.is_trailer(line)), None)

    def _regular_blocks(self, chunk: bytes, records: int, start: int, number: int) -> Iterator[RecordBlock]:
        assert self._unpacker is not None
        size, unpack = self._unpacker
        step = BLOCK_RECORDS * size
        view = memoryview(chunk)[: records * size]
        for at in range(0, records * size, step):
            piece = view[at : at + step]
            count = len(piece) // size
            ends = list(range(start + at + size, start + at + size * count + 1, size))
            bodies = self.plan.parse_fields(list(unpack(piece)))
            if bodies is None:  # something in this block needs the careful parse: line by line
                lines = bytes(piece).split(self._eol)[:-1]
                yield from self._line_blocks(lines, ends, number)
            else:
                yield RecordBlock(number, ends, bodies)
            number += count

    def _line_blocks(self, lines: list[bytes], ends: list[int], number: int) -> Iterator[RecordBlock]:
        for at in range(0, len(lines), BLOCK_RECORDS):
            part = lines[at : at + BLOCK_RECORDS]
            block = RecordBlock(number + at, ends[at : at + BLOCK_RECORDS], self.plan.parse_block(part))
            for n, body in enumerate(block.bodies):
                if body is None:
                    record = self.careful(number + at + n + 1, block.ends[n], part[n])
                    block.bodies[n] = record.body
                    if record.error is not None:
                        block.errors[n] = (part[n], record.error)
            yield block
