"""The fast paths of fixed-width files (check while downloading, compiled record parse, line splitting,
the records' envelope) agree with the careful line-by-line code on values and on every error message."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.batch import scan
from adapters.batch.errors import BadFileError
from adapters.batch.fixed import FixedPlan, dict_maker
from adapters.batch.layouts import load_layout
from adapters.batch.lines import split_lines
from adapters.batch.parsers import FixedWidthReader, LineReader
from esb.message import Message
from simulators.batch_files import charge_lines, header_line, trailer_line, write_charge_file
from tests.unit.batch_helpers import CHARGE_LAYOUT, PROJECT, drain, local_source

LAYOUT = load_layout(Path(CHARGE_LAYOUT), PROJECT)


def _reader() -> FixedWidthReader:
    return FixedWidthReader(LAYOUT, "gb18030", 1000)


def _careful(reader: FixedWidthReader, line: bytes) -> dict[str, object] | str:
    try:
        return reader.parse(line, LAYOUT.detail)
    except (ValueError, UnicodeDecodeError) as exc:
        return f"error: {exc}"


def _field(length: int) -> st.SearchStrategy[bytes]:
    text = st.text(alphabet="0123456789 -+AZaz国内通话费王五\x00\u3000\x1c\xa0", max_size=length)
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


@pytest.mark.parametrize("blank", ["\u3000", "\x1c", "\xa0"])
def test_numbers_padded_with_non_ascii_blanks_get_the_careful_error(blank: str) -> None:
    """An amount or date padded with an ideographic space (GBK A1A1) or another blank that only
    str.strip takes is refused by the compiled plan and its blocks, as the careful parse refuses it."""
    reader = _reader()
    line, _ = next(iter(charge_lines(1)))
    plan = FixedPlan(LAYOUT.detail, len(line), "gb18030")
    for spec in LAYOUT.detail.fields:
        if spec.type not in ("decimal", "date") or spec.start is None:
            continue
        start, end = spec.start - 1, spec.end
        pad = blank.encode("gb18030")
        padded = (pad + line[start:end].strip()[len(pad) :]).rjust(end - start)
        bad = line[:start] + padded + line[end:]
        assert isinstance(_careful(reader, bad), str), spec.name
        assert plan.parse(bad) is None, spec.name
        assert plan.parse_block([line, bad]) == [plan.parse(line), None], spec.name


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


def _plain_split(block: bytes) -> list[bytes]:
    """The plain split: CRLF throughout when every LF follows a CR, else LF with a CR before it dropped."""
    if block.count(b"\r\n") == block.count(b"\n"):
        lines = block.split(b"\r\n")
    else:
        lines = [line[:-1] if line[-1:] == b"\r" else line for line in block.split(b"\n")]
    if lines and not lines[-1] and block.endswith(b"\n"):
        lines.pop()
    return lines


@given(st.lists(st.sampled_from([b"a", b"\r", b"\n", b"\r\n", "张".encode("gb18030"), b" "]), max_size=30))
def test_split_lines_cuts_any_bytes_as_the_plain_split_does(parts: list[bytes]) -> None:
    """split_lines (one count fewer): the same lines as the plain split, whatever the line endings."""
    block = b"".join(parts)
    assert split_lines(block) == _plain_split(block)


def test_a_records_message_is_the_one_keyword_construction_gives(tmp_path: Path) -> None:
    """The positional Message of each record: every field as the keyword call of the envelope sets it."""
    file_name = "CHG_571_20240531_001.dat"
    (tmp_path / "inbox").mkdir()
    write_charge_file(tmp_path / "inbox" / file_name, 3)
    (tmp_path / "inbox" / f"{file_name}.ok").write_bytes(b"")
    with local_source(tmp_path) as source:
        source.poll_now()
        deliveries = drain(source)
    assert len(deliveries) == 3
    for number, delivery in enumerate(deliveries, 1):
        got = delivery.message
        sha = got.headers["batch-sha256"]
        expected = Message(
            body=got.body,
            id=f"{sha[:16]}:{number}",
            correlation_id=f"batch:{sha[:16]}",
            type="billing.charge_record",
            source=got.source,
            headers={"batch-file": file_name, "batch-record": number, "batch-sha256": sha},
            created_at=got.created_at,
        )
        assert got == expected
        for field in dataclasses.fields(Message):  # each field, the defaults (attempt, business keys) too
            assert getattr(got, field.name) == getattr(expected, field.name), field.name
            assert type(getattr(got, field.name)) is type(getattr(expected, field.name)), field.name
        assert got.correlation_id != got.id  # set for the file, not filled in from the id
        assert list(got.headers) == ["batch-file", "batch-record", "batch-sha256"]
        assert got.source == "billing"  # the system of endpoint billing.charges_in
    first, second = deliveries[0].message, deliveries[1].message
    assert first.headers is not second.headers
    assert first.business_keys is not second.business_keys
    first.headers["x"], first.business_keys["order"] = 1, "o-1"  # a route writing into one message
    assert "x" not in second.headers
    assert second.business_keys == {}
    assert all(m.replace(attempt=2) == dataclasses.replace(m, attempt=2) for m in (first, second))


@pytest.mark.parametrize(
    "names",
    [
        pytest.param(("a", "b", "c"), id="plain"),
        pytest.param(("it's", 'say "hi"', "a\\b", "名称"), id="quotes-backslash-chinese"),
        pytest.param(("a", "b", "a"), id="a-name-twice"),
        pytest.param(("__import__('os')",), id="code-like"),
    ],
)
def test_dict_maker_builds_what_dict_of_zip_builds(names: tuple[str, ...]) -> None:
    """The generated record builder: the same dict as dict(zip(names, fields)), names only ever data."""
    fields = [f"v{n}" for n in range(len(names))]
    assert dict_maker(names)(*fields) == dict(zip(names, fields, strict=True))
