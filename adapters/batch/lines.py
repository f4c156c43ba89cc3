"""Reading a staged file line by line as bytes, with offsets, a line-length limit and encoding checks."""

from __future__ import annotations

from collections.abc import Iterator
from itertools import accumulate
from typing import BinaryIO

from adapters.batch.errors import BadFileError

LEGACY_CHINESE = {"gb18030", "gbk", "gb2312", "cp936"}
CHUNK = 1 << 20  # bytes read at a time by the parse pass


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


def iter_line_chunks(stream: BinaryIO, offset: int, max_line_bytes: int) -> Iterator[tuple[int, bytes]]:
    """Yield ``(start offset, chunk)`` from ``offset``, about 1 MB at a time: each chunk holds whole lines
    with their endings (only the file's last line may lack one). An over-long line refuses the file."""
    stream.seek(offset)
    rest = b""
    while chunk := stream.read(CHUNK):
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
        rest = data[cut:]
        yield offset, data[:cut]
        offset += cut
    if rest:  # a last line without a line break
        if len(rest) >= max_line_bytes + 2:
            raise BadFileError(f"over-long last line: more than {max_line_bytes} bytes (max_line_bytes)")
        yield offset, rest


def chunk_lines(start: int, chunk: bytes) -> tuple[list[bytes], list[int]]:
    """The lines of a chunk from :func:`iter_line_chunks` without their endings, and the offset after each."""
    if not chunk.endswith(b"\n"):  # the file's last line, without a line break: as it is
        return [chunk], [start + len(chunk)]
    if chunk.count(b"\r\n") == chunk.count(b"\n"):  # CRLF throughout (the usual case)
        lines = chunk.split(b"\r\n")[:-1]
        sizes = [len(line) + 2 for line in lines]
    else:
        raws = chunk.split(b"\n")[:-1]
        lines = [raw[:-1] if raw[-1:] == b"\r" else raw for raw in raws]
        sizes = [len(raw) + 1 for raw in raws]
    return lines, list(accumulate(sizes, initial=start))[1:]


def split_lines(block: bytes) -> list[bytes]:
    """The lines of ``block`` without their endings (CRLF or LF; a last line may lack one)."""
    lines = block.split(b"\r\n")
    if len(lines) - 1 != block.count(b"\n"):  # a line ends with a bare LF: not CRLF throughout
        lines = [line[:-1] if line[-1:] == b"\r" else line for line in block.split(b"\n")]
    if lines and not lines[-1] and block.endswith(b"\n"):
        lines.pop()
    return lines


def iter_block_lines(stream: BinaryIO, offset: int, max_line_bytes: int) -> Iterator[tuple[int, bytes]]:
    """Like :func:`iter_lines`, reading 1 MB at a time (fewer calls per line)."""
    for start, chunk in iter_line_chunks(stream, offset, max_line_bytes):
        lines, ends = chunk_lines(start, chunk)
        yield from zip(ends, lines, strict=True)


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
