"""The block pass of fixed-width files (records cut by Struct.iter_unpack, decoded and converted a block at
a time) gives exactly what the record-by-record pass gives: bodies, errors, numbers and offsets."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.batch import blocks as blocks_module
from adapters.batch import lines as lines_module
from adapters.batch.blocks import Record, RecordBlock
from adapters.batch.fixed import FixedPlan, column_converter, text_converter
from adapters.batch.layouts import FieldSpec, Layout, load_layout
from adapters.batch.parsers import FixedWidthReader
from simulators.batch_files import charge_lines, header_line, trailer_line
from tests.unit.batch_helpers import CHARGE_LAYOUT, PROJECT

LAYOUT = load_layout(Path(CHARGE_LAYOUT), PROJECT)
#: A layout like the independent baseline's: two-byte record codes, a signed amount, an int record number.
SIGNED = Layout.model_validate(
    {
        "name": "signed",
        "kind": "fixed_width",
        "record_type": {"start": 1, "length": 2},
        "header": {"code": "01", "fields": [{"name": "record_type", "start": 1, "length": 2}]},
        "detail": {
            "code": "02",
            "fields": [
                {"name": "record_type", "start": 1, "length": 2},
                {"name": "record_no", "start": 3, "length": 6, "type": "int", "required": True},
                {"name": "name", "start": 9, "length": 8},
                {"name": "amount", "start": 17, "length": 8, "type": "decimal", "scale": 2, "implied": True},
                {"name": "filler", "start": 25, "length": 4},
            ],
        },
        "trailer": {"code": "98", "fields": [{"name": "record_type", "start": 1, "length": 2}]},
    }
)


def _flatten(blocks: list[RecordBlock]) -> list[tuple[Any, ...]]:
    """Each record of the blocks as (number, end offset, body, error, original bytes of a rejected one)."""
    out = []
    for block in blocks:
        assert len(block.ends) == len(block.bodies)
        for n, (end, body) in enumerate(zip(block.ends, block.bodies, strict=True)):
            raw, error = block.errors.get(n, (None, None))
            assert (body is None) == (error is not None)
            out.append((block.before + n + 1, end, body, error, raw))
    return out


def _records(records: list[Record]) -> list[tuple[Any, ...]]:
    return [(r.number, r.end_offset, r.body, r.error, r.raw if r.error else None) for r in records]


def _both_ways(reader: FixedWidthReader, path: Path, offset: int, number: int = 0) -> None:
    blocks = _flatten(list(reader.blocks(path, offset, number)))
    assert blocks == _records(list(reader.records(path, offset, number)))


def _charge_file(tmp_path: Path, details: list[bytes], eol: bytes = b"\r\n", last_eol: bool = True) -> Path:
    path = tmp_path / "CHG.dat"
    body = eol.join([header_line(), *details, trailer_line(len(details), 0)])
    path.write_bytes(body + (eol if last_eol else b""))
    return path


GOOD = [line for line, _ in charge_lines(700)]
BAD = {
    3: GOOD[3][:60] + b"\xff\x20" + GOOD[3][62:],  # not GBK
    256: GOOD[256][:80] + b"12X4" + GOOD[256][84:],  # not a number in the amount
    257: GOOD[257][:50],  # short line
    511: GOOD[511][:21] + b" " * 16 + GOOD[511][37:],  # empty required account
    512: GOOD[512][:30] + b"\x00" + GOOD[512][31:],  # a NUL in a field
    600: GOOD[600][:97] + b"20240231" + GOOD[600][105:],  # no such day
    699: GOOD[699][:100] + "国".encode() + GOOD[699][103:],  # UTF-8 bytes cut by a field end
}


@pytest.mark.parametrize("chunk", [300, 4096, 1 << 20])
@pytest.mark.parametrize("per_block", [1, 7, 256])
@pytest.mark.parametrize(
    ("eol", "last_eol", "bad"),
    [
        pytest.param(b"\r\n", True, False, id="good-crlf"),
        pytest.param(b"\r\n", True, True, id="bad-records-crlf"),
        pytest.param(b"\n", True, True, id="bad-records-lf"),
        pytest.param(b"\r\n", False, False, id="no-last-line-break"),
    ],
)
def test_block_pass_gives_what_the_record_pass_gives(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    chunk: int,
    per_block: int,
    eol: bytes,
    last_eol: bool,
    bad: bool,
) -> None:
    """Good and bad records, CRLF or LF, any chunk and block size: same bodies, errors, numbers, offsets."""
    monkeypatch.setattr(lines_module, "CHUNK", chunk)
    monkeypatch.setattr(blocks_module, "BLOCK_RECORDS", per_block)
    details = [BAD.get(n, line) if bad else line for n, line in enumerate(GOOD)]
    path = _charge_file(tmp_path, details, eol, last_eol)
    reader = FixedWidthReader(LAYOUT, "gb18030", 1000)
    first = len(header_line()) + len(eol)
    _both_ways(reader, path, first)
    _both_ways(reader, path, first + 10 * (120 + len(eol)), 10)  # resumed at a checkpoint


def test_block_pass_of_mixed_line_endings_and_lines_after_the_trailer(tmp_path: Path) -> None:
    """CRLF and LF lines, and lines after the trailer: the block pass stops at the trailer too."""
    path = tmp_path / "CHG.dat"
    path.write_bytes(
        header_line() + b"\r\n" + GOOD[0] + b"\n" + GOOD[1] + b"\r\n" + trailer_line(2, 0) + b"\r\n" + GOOD[2]
    )
    reader = FixedWidthReader(LAYOUT, "gb18030", 1000)
    _both_ways(reader, path, len(header_line()) + 2)
    assert len(_flatten(list(reader.blocks(path, len(header_line()) + 2, 0)))) == 2


def _signed_line(number: int, name: str, fen: int) -> bytes:
    sign = b"-" if fen < 0 else b"+"
    return b"02" + b"%06d" % number + name.encode("gbk").ljust(8) + sign + b"%07d" % abs(fen) + b"    "


@pytest.mark.parametrize("chunk", [100, 1 << 20])
def test_two_byte_codes_and_signed_amounts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, chunk: int
) -> None:
    """Signed amounts (some negative), two-byte codes, a trailer found by its two bytes: same both ways."""
    monkeypatch.setattr(lines_module, "CHUNK", chunk)
    details = [_signed_line(n, "张三" if n % 3 else "李", (-1) ** n * n * 37) for n in range(1, 600)]
    details[40] = b"09" + details[40][2:]  # a first byte like the trailer's, not a trailer
    path = tmp_path / "S.dat"
    path.write_bytes(b"\r\n".join([b"01".ljust(28), *details, b"98".ljust(28)]) + b"\r\n")
    reader = FixedWidthReader(SIGNED, "gb18030", 1000)
    _both_ways(reader, path, 30)
    assert _flatten(list(reader.blocks(path, 30, 0)))[1][2]["amount"] == "0.74"


def _field(length: int) -> st.SearchStrategy[bytes]:
    text = st.text(alphabet="0123456789 -+AZaz国内通话费王五\x00\u3000", max_size=length)
    return st.one_of(
        text.map(lambda t: t.encode("gb18030")[:length].ljust(length)),
        st.binary(min_size=length, max_size=length).map(lambda b: b.replace(b"\n", b" ")),
        st.integers(-(10**8), 10**9).map(lambda n: str(n).rjust(length, "0").encode()[:length]),
    )


_LINE = st.tuples(*[_field(f.length or 1) for f in LAYOUT.detail.fields[1:]]).map(
    lambda t: b"D" + b"".join(t)
)


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(st.lists(st.one_of(_LINE, st.sampled_from(GOOD[:20])), min_size=1, max_size=12))
def test_parse_block_is_the_per_line_parse_on_any_bytes(lines: list[bytes]) -> None:
    """For any lines, the block parse (and the parse of their unpacked fields) equals the per-line parse."""
    plan = FixedPlan(LAYOUT.detail, 120, "gb18030")
    expected = [plan.parse(line) for line in lines]
    assert plan.parse_block(lines) == expected
    unpacked = plan.unpacker(b"\r\n")
    assert unpacked is not None
    if all(len(line) == 120 for line in lines):
        bodies = plan.parse_fields(list(unpacked[1](b"".join(line + b"\r\n" for line in lines))))
        assert bodies is None or bodies == expected


_NUMBER_TEXT = st.one_of(
    st.integers(-(10**15), 10**15).map(str),
    st.integers(0, 10**6).map(lambda n: f"{n:012d}"),
    st.integers(-(10**6), 10**6).map(lambda n: f"{'+' if n >= 0 else '-'}{abs(n):011d}"),
    st.text(alphabet="0123456789+-_ .x١", max_size=6),
)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(_NUMBER_TEXT, min_size=1, max_size=10),
    st.sampled_from(
        [
            FieldSpec(name="a", start=1, length=1, type="decimal", scale=2, implied=True),
            FieldSpec(name="a", start=1, length=1, type="decimal", scale=0, implied=True),
            FieldSpec(name="a", start=1, length=1, type="int"),
            FieldSpec(name="a", start=1, length=1, type="date", format="%Y%m%d"),
        ]
    ),
)
def test_column_conversion_is_the_value_by_value_conversion(texts: list[str], spec: FieldSpec) -> None:
    """A whole column converts to what each value converts to, or refuses (ValueError) like one of them."""
    one, column = text_converter(spec), column_converter(spec)
    assert one is not None
    assert column is not None
    try:
        expected: list[Any] | str = [one(text) for text in texts]
    except ValueError:
        expected = "refused"
    try:
        got: list[Any] | str = column(texts)
    except ValueError:
        got = "refused"
    assert got == expected


def test_unpacker_steps_aside_for_overlapping_fields() -> None:
    """Fields out of order or overlapping cannot be cut by one Struct: the plan says so (lines are used)."""
    layout = Layout.model_validate(
        {
            "name": "overlap",
            "kind": "fixed_width",
            "detail": {
                "fields": [{"name": "a", "start": 3, "length": 4}, {"name": "b", "start": 1, "length": 4}]
            },
        }
    )
    assert FixedPlan(layout.detail, 6, "gb18030").unpacker(b"\r\n") is None


@pytest.mark.parametrize("bad", [False, True], ids=["good", "bad-records"])
def test_lf_layout_takes_the_regular_path_with_the_same_results(tmp_path: Path, bad: bool) -> None:
    """A layout whose lines end in LF, on an LF file (and one with a CRLF line in it): same both ways."""
    layout = LAYOUT.model_copy(update={"line_ending": "\n"})
    details = [BAD.get(n, line) if bad else line for n, line in enumerate(GOOD)]
    if bad:
        details[100] = details[100][:-1] + b"\r"  # read as a 119-byte record by both passes
    path = _charge_file(tmp_path, details, b"\n")
    reader = FixedWidthReader(layout, "gb18030", 1000)
    assert reader.block_pass._unpacker is not None
    details_only = b"".join(line + b"\n" for line in details)
    assert (reader.block_pass.regular(details_only) is None) == bad  # LF path taken (not the trailer chunk)
    _both_ways(reader, path, len(header_line()) + 1)


def test_regular_crlf_chunk_is_cut_by_the_struct_and_finds_the_trailer() -> None:
    """A chunk of same-length CRLF records takes the Struct path; a trailer among them is found by index."""
    reader = FixedWidthReader(LAYOUT, "gb18030", 1000)
    chunk = b"".join(line + b"\r\n" for line in GOOD[:50])
    assert reader.block_pass.regular(chunk) == (50, None)
    with_trailer = chunk + trailer_line(50, 0).ljust(120) + b"\r\n" + GOOD[50] + b"\r\n"
    assert reader.block_pass.regular(with_trailer) == (50, 50)
