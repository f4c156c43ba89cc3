"""The whole-file check, fed in chunks: it runs while the file downloads, so the file is read once for
its SHA-256 and its checks.

:class:`Scanner` takes the bytes as they arrive (``feed``), works on blocks of whole lines (about 1 MB),
and ``finish`` returns the :class:`~adapters.batch.parsers.FileSummary` or raises the first
:class:`BadFileError` met: empty file, over-long line, wrong encoding (or UTF-8 where GBK is expected),
missing header, a control record in the middle, missing trailer, count and totals that disagree with the
trailer. Per block, the work is done by a few C-level calls (split, decode, ``map``); a block where one of
them fails is looked at line by line to name the line, so the errors read exactly as before.
"""

from __future__ import annotations

from itertools import repeat
from operator import contains
from typing import TYPE_CHECKING

from adapters.batch.errors import BadFileError
from adapters.batch.lines import LEGACY_CHINESE, check_encoding, split_lines

if TYPE_CHECKING:
    from adapters.batch.parsers import FileSummary, LineReader

BLOCK = 1 << 20


class Scanner:
    """Checks one file fed in chunks; the same checks and messages as ``LineReader.scan``."""

    def __init__(self, reader: LineReader) -> None:
        from adapters.batch.parsers import FileSummary

        self.reader = reader
        self.summary: FileSummary = FileSummary(totals=reader.empty_totals())
        self.unreadable: list[int] = []
        self.error: BadFileError | None = None
        self.size = 0
        self.lines = 0  # lines checked so far
        self._buf = bytearray()
        self._last: bytes | None = None  # held back: it may be the trailer
        self._legacy = reader.encoding.lower() in LEGACY_CHINESE

    def feed(self, data: bytes) -> None:
        """Take the next chunk of the file (never raises: the first error is kept for ``finish``)."""
        self.size += len(data)
        if self.error is not None:
            return
        self._buf += data
        if len(self._buf) >= BLOCK:
            self._drain(final=False)

    def finish(self) -> FileSummary:
        """Check what is left and the trailer; return the summary or raise BadFileError."""
        if self.error is None:
            self._drain(final=True)
        if self.error is None:
            try:
                self._end()
            except BadFileError as exc:
                self.error = exc
        if self.error is not None:
            raise self.error
        return self.summary

    # -- blocks -------------------------------------------------------------------------------------
    def _drain(self, *, final: bool) -> None:
        end = len(self._buf) if final else self._buf.rfind(b"\n") + 1
        limit = self.reader.max_line_bytes
        if end == 0:
            if len(self._buf) > limit + 2:
                self.error = self._over_long(self.lines + 1)
            return
        block = bytes(self._buf[:end])
        del self._buf[:end]
        try:
            self._block(block)
        except BadFileError as exc:
            self.error = exc
            self._buf.clear()

    def _block(self, block: bytes) -> None:
        lines = split_lines(block)
        if not lines:
            return
        if max(map(len, lines)) > self.reader.max_line_bytes:
            first = next(n for n, line in enumerate(lines) if len(line) > self.reader.max_line_bytes)
            raise self._over_long(self.lines + first + 1)
        if not block.isascii():
            self._check_encoding(block, lines)
        base = self.lines  # lines[0] is line base + 1
        self.lines += len(lines)
        if base == 0 and self.reader.header_code is not None:
            self.summary.header = self.reader.header_of(lines[0])
            self.summary.first_offset = block.find(b"\n") + 1 or len(block)
            lines, base = lines[1:], 1
        if not lines:
            return
        if self._last is not None:  # the line held back is line ``base``
            middle, first_no = [self._last, *lines[:-1]], base
        else:
            middle, first_no = lines[:-1], base + 1
        self._last = lines[-1]
        if middle:
            self.reader.scan_details(middle, first_no, self.summary, self.unreadable)

    def _check_encoding(self, block: bytes, lines: list[bytes]) -> None:
        encoding = self.reader.encoding
        try:
            block.decode(encoding)
        except UnicodeDecodeError:
            for n, line in enumerate(lines, self.lines + 1):
                check_encoding(line, encoding, n)
        if not self._legacy:
            return
        # every line with a non-ASCII byte must be invalid UTF-8 (show U+FFFD when decoded with replace)
        invalid = sum(map(contains, block.decode("utf-8", "replace").split("\n"), repeat("\ufffd")))
        if invalid != len(lines) - sum(map(bytes.isascii, lines)):
            for n, line in enumerate(lines, self.lines + 1):
                check_encoding(line, encoding, n)

    def _over_long(self, line_no: int) -> BadFileError:
        return BadFileError(
            f"over-long line {line_no}: more than {self.reader.max_line_bytes} bytes "
            "(max_line_bytes); wrong file or missing line breaks?"
        )

    def _end(self) -> None:
        reader = self.reader
        if self.size == 0:
            raise BadFileError("empty file (0 bytes)")
        if self._last is None:
            raise BadFileError("the file has a header but no records and no trailer (truncated?)")
        if reader.trailer_code is None:
            reader.scan_details([self._last], self.lines, self.summary, self.unreadable)
            return
        reader.check_trailer_line(self._last, self.lines, self.summary, self.unreadable)

