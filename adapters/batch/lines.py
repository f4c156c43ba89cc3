"""Reading a staged file line by line as bytes, with offsets, a line-length limit and encoding checks."""

from __future__ import annotations

from collections.abc import Iterator
from typing import BinaryIO

from adapters.batch.errors import BadFileError

LEGACY_CHINESE = {"gb18030", "gbk", "gb2312", "cp936"}


def iter_lines(stream: BinaryIO, offset: int, max_line_bytes: int) -> Iterator[tuple[int, bytes]]:
    """Yield ``(end_offset, line)`` from ``offset``: the line without its ending, the offset after it.

    A line longer than ``max_line_bytes`` refuses the file (a missing newline, a binary file) without
    ever holding more than that many bytes.
    """
    stream.seek(offset)
    readline = stream.readline
    limit = max_line_bytes + 2
    while True:
        line = readline(limit)
        if not line:
            return
        offset += len(line)
        if line[-1:] != b"\n":
            if len(line) >= limit:
                raise BadFileError(
                    f"over-long line ending at byte {offset}: more than {max_line_bytes} bytes "
                    "(max_line_bytes); wrong file or missing line breaks?"
                )
        elif line[-2:-1] == b"\r":
            line = line[:-2]
        else:
            line = line[:-1]
        yield offset, line


def iter_block_lines(stream: BinaryIO, offset: int, max_line_bytes: int) -> Iterator[tuple[int, bytes]]:
    """Like :func:`iter_lines`, reading 1 MB at a time (the parse pass: fewer calls per line)."""
    stream.seek(offset)
    rest = b""
    while chunk := stream.read(1 << 20):
        data = rest + chunk if rest else chunk
        cut = data.rfind(b"\n") + 1
        if not cut:
            if len(data) > max_line_bytes + 2:
                raise BadFileError(
                    f"over-long line ending at byte {offset + len(data)}: more than {max_line_bytes} bytes "
                    "(max_line_bytes); wrong file or missing line breaks?"
                )
            rest = data
            continue
        rest, block = data[cut:], data[:cut]
        if block.count(b"\r\n") == block.count(b"\n"):  # CRLF throughout (the usual case)
            for line in block.split(b"\r\n")[:-1]:
                offset += len(line) + 2
                yield offset, line
            continue
        for raw in block.split(b"\n")[:-1]:
            offset += len(raw) + 1
            yield offset, raw[:-1] if raw[-1:] == b"\r" else raw
    if rest:  # a last line without a line break
        if len(rest) >= max_line_bytes + 2:
            raise BadFileError(f"over-long last line: more than {max_line_bytes} bytes (max_line_bytes)")
        yield offset + len(rest), rest


def check_encoding(line: bytes, encoding: str, line_no: int) -> None:
    """Refuse the file when ``line`` is not text in ``encoding`` (or is UTF-8 where GBK is expected)."""
    if line.isascii():
        return
    try:
        line.decode(encoding)
    except UnicodeDecodeError as exc:
        raise BadFileError(
            f"wrong encoding: line {line_no}, byte {exc.start + 1} of the line is not valid {encoding} "
            f"({line[exc.start : exc.start + 4].hex(' ')})"
        ) from None
    if encoding.lower() in LEGACY_CHINESE:
        try:
            line.decode("utf-8")
        except UnicodeDecodeError:
            return
        raise BadFileError(
            f"wrong encoding: line {line_no} is UTF-8 text but the endpoint expects {encoding} (GBK family)"
        )
