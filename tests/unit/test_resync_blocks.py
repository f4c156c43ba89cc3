"""A full resync a block of records at a time: each faster path against the record-by-record one.

The extract's blocks (adapters/batch/extracts.py), the fingerprint lookups of a block
(``LineIndex.take_block``), where chunks close (``Resync._take``), the fingerprint load over the
driver's cursor (esb/sync/rawrows.py) and the delimited check pass that counts plain detail lines.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

import adapters.batch.lines
import esb.resync.resync
from adapters.batch.errors import BadFileError
from adapters.batch.layouts import load_layout
from adapters.batch.parsers import FileSummary, LineReader, reader_for
from esb.project import Project
from esb.resync.extract import extract_blocks
from esb.resync.skip import LineIndex
from esb.sync.rawrows import raw_pages
from esb.sync.runs import Run
from tests.sync_project import REPO, SYNC, crm_record, make_sync_project, write_crm_extract
from tests.unit.test_sync_resync import V2, keys_sent, resync


class _Prints:
    """What LineIndex needs of Fingerprints: the rules' digest."""

    digest = b"rules"


def _index(raws: list[bytes]) -> LineIndex:
    index = LineIndex(_Prints(), track=False)  # type: ignore[arg-type]
    for raw in raws:
        assert not index.take(raw)  # not loaded yet: computes nothing but the hash
        index.pending.add(_short(raw))
    return index


def _short(raw: bytes) -> int:
    from esb.sync.fingerprints import Fingerprints

    return int(Fingerprints(None, SYNC, _Prints.digest).of(raw)[:16], 16)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "block",
    [
        pytest.param([b"a", b"x", b"b", "改".encode("gb18030"), b"y"], id="hits-and-misses"),
        pytest.param([b"a", b"a", b"b", b"x"], id="one-record-twice"),
        pytest.param([], id="empty"),
    ],
)
def test_take_block_takes_what_take_does_record_by_record(block: list[bytes]) -> None:
    """take_block: the same records recognised, and the same fingerprints left, as take() per record."""
    loaded = [b"a", b"b", "改".encode("gb18030"), b"z"]
    slow, fast = _index(loaded), _index(loaded)
    misses = [n for n, raw in enumerate(block) if not slow.take(raw)]
    assert fast.take_block(block) == misses
    assert fast.pending == slow.pending


def test_extract_blocks_hold_the_records_between_header_and_trailer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Blocks of small chunks: every detail record once, in order, numbered from 1, trailer left out."""
    monkeypatch.setattr(adapters.batch.lines, "CHUNK", 300)
    project = make_sync_project(tmp_path / "p", f"sqlite:///{tmp_path / 'j.db'}")
    path = tmp_path / "full.dat"
    write_crm_extract(path, [crm_record(i, name="张三" if i % 3 else None) for i in range(1, 41)])
    expected = path.read_bytes().split(b"\r\n")[1:-2]  # no header, no trailer, no empty last piece
    blocks, _ = extract_blocks(project, project.settings.sync.resync[SYNC].extract, path)
    got = [(first, raws) for first, raws in blocks]
    assert len(got) > 5
    assert [(n, raw) for first, raws in got for n, raw in enumerate(raws, first)] == list(
        enumerate(expected, 1)
    )


def _closes(changed: set[int], n: int, chunk: int, span: int) -> list[int]:
    """Where the record-by-record rule closes chunks: ``chunk`` records to judge or ``span`` read."""
    closes, todo, read = [], 0, 0
    for number in range(1, n + 1):
        read += 1
        todo += number in changed
        if todo >= chunk or read >= span:
            closes.append(number)
            todo, read = 0, 0
    return closes + ([n] if read else [])


def test_chunks_close_where_the_record_by_record_rule_closes_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Blocks straddling chunk ends: checkpoints at exactly the records the per-record loop used."""
    monkeypatch.setattr(adapters.batch.lines, "CHUNK", 700)
    monkeypatch.setattr(esb.resync.resync, "SPAN", 3)  # a chunk also closes at 30 records read
    project = make_sync_project(tmp_path / "p", f"sqlite:///{tmp_path / 'j.db'}", chunk=10)
    checkpoints: list[int] = []

    def note(run: Run) -> None:
        checkpoints.append(run.checkpoint)

    first = resync(project, [crm_record(i) for i in range(1, 101)], progress=note)
    assert checkpoints == _closes(set(range(1, 101)), 100, 10, 30)
    assert first.counts["sent"] == 100
    keys_sent(project)
    changed = {3, 4, 5, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 77, 99}
    records = [
        crm_record(i, name=f"改{i}", version=V2) if i in changed else crm_record(i)
        for i in range(1, 101)
    ]
    checkpoints.clear()
    second = resync(project, records, "full2.dat", progress=note)
    assert checkpoints == _closes(changed, 100, 10, 30)
    assert (second.counts["sent"], second.counts["unchanged"]) == (len(changed), 100 - len(changed))
    assert sorted(key for key, _ in keys_sent(project)) == [f"C{i:07d}" for i in sorted(changed)]


def test_raw_pages_read_the_rows_sqlalchemy_reads(tmp_path: Path) -> None:
    """The driver's cursor, a page at a time: the rows (and their order) of the same query executed."""
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'r.db'}")
    table = sa.Table("t", sa.MetaData(), sa.Column("k", sa.String), sa.Column("v", sa.String, nullable=True))
    table.create(engine)
    with engine.begin() as conn:
        conn.execute(table.insert(), [{"k": f"k{i}", "v": None if i % 4 else f"张{i}"} for i in range(25)])
    query = sa.select(table.c.k, table.c.v).where(table.c.k != "k7").order_by(table.c.k)
    with engine.connect() as conn:
        expected = [tuple(row) for row in conn.execute(query)]
        pages = list(raw_pages(conn, query, 10, name="test"))
    engine.dispose()
    assert [len(page) for page in pages] == [10, 10, 4]
    assert [tuple(row) for page in pages for row in page] == expected


def _reader(project: Project) -> Any:
    layout = load_layout(Path("config/layouts/crm_customer_full.yaml"), REPO)
    return reader_for(layout, "gb18030", 65536)


@pytest.mark.parametrize(
    "lines",
    [
        pytest.param([b"D|1|a", "D|2|张三".encode("gb18030"), b"D|3|"], id="plain"),
        pytest.param([b"D|1|a", b" D |2|b", b"D|3|c"], id="a-padded-code"),
        pytest.param([b"D|1|a", b"T|2", b"D|3|c"], id="a-trailer-inside"),
        pytest.param([b"D|1|a", b"H |CRM|20261206|1", b"D|3|c"], id="a-padded-header-inside"),
    ],
)
def test_the_delimited_check_counts_and_refuses_as_line_by_line(lines: list[bytes], project: Project) -> None:
    """The block count of plain detail lines: the same count, or the same refusal, as line by line."""
    outcomes = []
    for scan in (type(_reader(project)).scan_details, LineReader.scan_details):
        summary = FileSummary()
        try:
            scan(_reader(project), lines, 2, summary, [])
            outcomes.append(("counted", summary.records))
        except BadFileError as exc:
            outcomes.append(("refused", str(exc)))
    assert outcomes[0] == outcomes[1]


@pytest.fixture
def project(tmp_path: Path) -> Project:
    """The sync project (tests/sync_project.py)."""
    return make_sync_project(tmp_path / "p", f"sqlite:///{tmp_path / 'j.db'}")
