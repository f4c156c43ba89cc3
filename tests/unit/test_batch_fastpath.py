"""The fast paths of fixed-width files (check while downloading, compiled record parse) agree with the
careful line-by-line code on values and on every error message."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.batch import scan
from adapters.batch.errors import BadFileError
from adapters.batch.fixed import FixedPlan
from adapters.batch.layouts import load_layout
from adapters.batch.parsers import FixedWidthReader, LineReader
from simulators.batch_files import charge_lines, header_line, trailer_line, write_charge_file
from tests.unit.batch_helpers import CHARGE_LAYOUT, PROJECT

LAYOUT = load_layout(Path(CHARGE_LAYOUT), PROJECT)


def _reader() -> FixedWidthReader:
    return FixedWidthReader(LAYOUT, "gb18030", 1000)


def _careful(reader: FixedWidthReader, line: bytes) -> dict[str, object] | str:
    try:
        return reader.parse(line, LAYOUT.detail)
    except (ValueError, UnicodeDecodeError) as exc:
        return f"error: {exc}"


def _field(length: int) -> st.SearchStrategy[bytes]:
    text = st.text(alphabet="0123456789 -+AZaz国内通话费王五\x00", max_size=length)
    return st.one_of(
        text.map(lambda t: t.encode("gb18030")[:length].ljust(length)),
        st.binary(min_size=length, max_size=length).map(
            lambda b: b.replace(b"\n", b" ").replace(b"\r", b"_")
        ),
        st.integers(-(10**8), 10**9).map(lambda n: str(n).rjust(length, "0").encode()[:length]),
    )


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(st.tuples(*[_field(f.length or 1) for f in LAYOUT.detail.fields]))
def test_compiled_parse_gives_the_careful_parse_values_or_steps_aside(fields: tuple[bytes, ...]) -> None:
    """For any bytes, the compiled plan returns exactly what the careful parse returns, or None."""
    reader = _reader()
    line = b"D" + b"".join(fields[1:])
    fast = FixedPlan(LAYOUT.detail, 120, "gb18030").parse(line)
    careful = _careful(reader, line)
    if fast is not None:
        assert fast == careful
    # what the records pass hands out is always the careful answer
    record = next(iter(_records(reader, line)))
    assert (record.body if record.error is None else f"error: {record.error}") == careful


def _records(reader: FixedWidthReader, line: bytes) -> list[object]:
    import io

    class _Path:
        def open(self, mode: str) -> io.BytesIO:
            return io.BytesIO(header_line() + b"\r\n" + line + b"\r\n")

    return list(reader.records(_Path(), len(header_line()) + 2, 0))  # type: ignore[arg-type]


def test_generated_file_parses_identically_both_ways() -> None:
    """Every record of a generated GBK file gets the same dict from the plan as from the careful parse."""
    reader = _reader()
    plan = FixedPlan(LAYOUT.detail, 120, "gb18030")
    for line, _ in charge_lines(2_000):
        assert plan.parse(line) == reader.parse(line, LAYOUT.detail)


def _scan_in_chunks(reader: LineReader, data: bytes, size: int) -> object:
    scanner = reader.scanner()
    for start in range(0, len(data), size):
        scanner.feed(data[start : start + size])
    try:
        return scanner.finish()
    except BadFileError as exc:
        return f"refused: {exc}"


def _line_by_line(reader: LineReader, data: bytes) -> object:
    """The same checks with one line per block (what the careful path does)."""
    return _scan_in_chunks(reader, data, 1)


GOOD = [line for line, _ in charge_lines(40)]
TOTAL = sum(fen for _, fen in charge_lines(40))
FILES = [
    pytest.param(b"\r\n".join([header_line(), *GOOD, trailer_line(40, TOTAL)]) + b"\r\n", id="good"),
    pytest.param(b"\n".join([header_line(), *GOOD, trailer_line(40, TOTAL)]), id="lf-no-last-newline"),
    pytest.param(b"\r\n".join([header_line(), *GOOD, trailer_line(41, TOTAL)]) + b"\r\n", id="count"),
    pytest.param(b"\r\n".join([header_line(), *GOOD, trailer_line(40, TOTAL + 1)]) + b"\r\n", id="total"),
    pytest.param(b"\r\n".join([header_line(), *GOOD]) + b"\r\n", id="no-trailer"),
    pytest.param(b"\r\n".join([*GOOD, trailer_line(40, TOTAL)]) + b"\r\n", id="no-header"),
    pytest.param(
        b"\r\n".join([header_line(), *GOOD[:20], header_line(), *GOOD[20:], trailer_line(40, TOTAL)]),
        id="header-in-the-middle",
    ),
    pytest.param(
        b"\r\n".join([header_line(), *GOOD[:7], GOOD[7][:76] + b"00000000X000" + GOOD[7][88:], *GOOD[8:]])
        + b"\r\n"
        + trailer_line(40, TOTAL),
        id="unreadable-amount",
    ),
    pytest.param(
        b"\r\n".join([header_line(), *GOOD[:30], "国内通话".encode().ljust(120), trailer_line(40, TOTAL)]),
        id="utf8-line-in-gbk",
    ),
    pytest.param(b"\r\n".join([header_line(), *GOOD[:3], b"\xff\xff" * 10, trailer_line(3, 0)]), id="binary"),
    pytest.param(b"\r\n".join([header_line(), b"D" * 1500, trailer_line(1, 0)]), id="over-long"),
    pytest.param(b"", id="empty"),
]


@pytest.mark.parametrize("data", FILES)
@pytest.mark.parametrize("block", [64, 1000, 1 << 20])
def test_check_while_downloading_agrees_with_the_line_by_line_check(
    data: bytes, block: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Fed in chunks of any size, worked in blocks of any size, the check finds what it finds line by line."""
    reader = _reader()
    expected = _line_by_line(reader, data)
    monkeypatch.setattr(scan, "BLOCK", block)
    for size in (7, 4096, len(data) or 1):
        assert _scan_in_chunks(reader, data, size) == expected


def test_check_reports_the_line_of_a_control_record_in_the_middle() -> None:
    """The block check names the line that holds a header in the middle of the file."""
    data = b"\r\n".join([header_line(), *GOOD[:20], header_line(), *GOOD[20:], trailer_line(40, TOTAL)])
    assert _scan_in_chunks(_reader(), data, 1 << 20) == (
        "refused: line 22: a 'H' control record in the middle of the file"
    )


def test_scan_of_a_staged_file_counts_records_and_first_offset(tmp_path: Path) -> None:
    """The summary of a good file has its detail count and the offset after the header."""
    path = tmp_path / "f.dat"
    write_charge_file(path, 3_000)
    summary = _reader().scan(path)
    assert summary.records == 3_000
    assert summary.first_offset == len(header_line()) + 2
