"""The batch source over a local folder: pick-up, checks, per-record deliveries, rejects, resume."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from adapters.batch.errors import BadFileError
from simulators.batch_files import charge_lines, header_line, trailer_line, write_charge_file
from tests.unit.batch_helpers import drain, drop, local_source

NAME = "CHG_571_20240531_001.dat"


def _status(tmp: Path) -> list[tuple[str, str]]:
    db = sqlite3.connect(tmp / "var" / "batch" / "billing.charges_in" / "state.db")
    try:
        return db.execute("select name, status from batch_files order by created").fetchall()
    finally:
        db.close()


def test_file_is_parsed_into_one_delivery_per_record_and_moved_to_done(tmp_path: Path) -> None:
    """Every record becomes a message with a deterministic id; the file moves to done/ after the last ack."""
    total = write_charge_file(
        tmp_path / "inbox" / NAME if (tmp_path / "inbox").mkdir() is None else None, 250
    )
    (tmp_path / "inbox" / f"{NAME}.ok").write_bytes(b"")
    with local_source(tmp_path) as source:
        source.poll_now()
        deliveries = drain(source)
        assert len(deliveries) == 250
        first = deliveries[0].message
        assert first.id.endswith(":1")
        assert deliveries[-1].message.id.endswith(":250")
        assert first.body["charge_name"] == "国内通话费"
        assert first.body["amount"] == "376.05"
        assert first.type == "billing.charge_record"
        assert first.headers["batch-file"] == NAME
        # created when the file was opened for handing out: one time for all its records
        assert {d.message.created_at for d in deliveries} == {first.created_at}
        assert sum(float(d.message.body["amount"]) for d in deliveries) == pytest.approx(float(total))
        assert (tmp_path / "inbox" / NAME).exists()  # not moved before the poller settles it
        source.poll_now()
    assert (tmp_path / "inbox" / "done" / NAME).exists()
    assert (tmp_path / "inbox" / "done" / f"{NAME}.ok").exists()
    assert not (tmp_path / "inbox" / NAME).exists()
    assert _status(tmp_path) == [(NAME, "done")]


def test_file_without_done_file_is_not_taken(tmp_path: Path) -> None:
    """A file whose done file has not arrived yet is left alone."""
    with local_source(tmp_path) as source:
        write_charge_file(tmp_path / "inbox" / NAME, 3)
        source.poll_now()
        assert drain(source) == []
        (tmp_path / "inbox" / f"{NAME}.ok").write_bytes(b"")
        source.poll_now()
        assert len(drain(source)) == 3


def test_stable_mode_needs_two_polls_with_same_size_and_mtime(tmp_path: Path) -> None:
    """In stable mode a file is taken only once two polls saw the same size and mtime."""
    with local_source(tmp_path, complete={"mode": "stable"}) as source:
        write_charge_file(tmp_path / "inbox" / NAME, 3)
        source.poll_now()
        assert drain(source) == []
        source.poll_now()
        assert len(drain(source)) == 3


def test_bad_records_go_to_the_reject_file_and_the_rest_go_on(tmp_path: Path) -> None:
    """A record that cannot be parsed is written (line and reason) to the reject file; others delivered."""
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    lines = [line for line, _ in charge_lines(5)]
    bad = lines[2][:76] + b"0000000X2345" + lines[2][88:]
    total = sum(fen for n, (_, fen) in enumerate(charge_lines(5)) if n != 2)
    body = b"\r\n".join([header_line(), lines[0], lines[1], bad, lines[3], lines[4], trailer_line(5, total)])
    drop(inbox, NAME, body + b"\r\n")
    with local_source(tmp_path, reply={"enabled": True}) as source:
        source.poll_now()
        deliveries = drain(source)
        source.poll_now()
    assert [d.message.headers["batch-record"] for d in deliveries] == [1, 2, 4, 5]
    rejects = next((tmp_path / "var").rglob("*.rej")).read_bytes()
    assert rejects.startswith(b"3|field amount (bytes 77-88):")
    assert rejects.endswith(bad + b"\n")
    reply = (inbox / "reply" / f"{NAME}.rec").read_text("gb18030")
    assert "RECEIVED|5" in reply
    assert "DELIVERED|4" in reply
    assert "REJECTED|1" in reply
    assert (inbox / "reply" / f"{NAME}.rej").read_bytes() == rejects
    assert (inbox / "done" / NAME).exists()


def test_nacked_record_comes_again_and_holds_the_file(tmp_path: Path) -> None:
    """A record given back is handed out again (delivery_count 2); the file is done only after its ack."""
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    write_charge_file(inbox / NAME, 3)
    (inbox / f"{NAME}.ok").write_bytes(b"")
    with local_source(tmp_path) as source:
        source.poll_now()
        first = source.read(0.1)
        assert first is not None
        first.ack(RuntimeError("sink down"))
        again = source.read(0.1)
        assert again is not None
        assert again.message.id == first.message.id
        assert again.delivery_count == 2
        assert len(drain(source)) == 2
        source.poll_now()
        assert not (inbox / "done" / NAME).exists()
        again.ack()
        assert source.read(0.05) is None
        source.poll_now()
    assert (inbox / "done" / NAME).exists()


def test_restart_resumes_after_the_last_checkpoint_with_the_same_ids(tmp_path: Path) -> None:
    """After a crash mid-file, records resume from the checkpoint; nothing is skipped, ids are stable."""
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    write_charge_file(inbox / NAME, 1000, bad_records={150: b"D short"}, total_delta=0)
    (inbox / f"{NAME}.ok").write_bytes(b"")
    source = local_source(tmp_path)
    source.connect()
    source.poll_now()
    before = drain(source, 420)
    assert source.run is not None
    source.run.blocks.close()  # type: ignore[attr-defined]  # a crash: no final checkpoint
    source.run.close()
    source.run = None
    source.store.close()
    with local_source(tmp_path) as again:
        after = drain(again)
        again.poll_now()
    ids_before = [d.message.id for d in before]
    ids_after = [d.message.id for d in after]
    assert ids_after[0] == ids_before[399]  # checkpoint every 100 records: records 401.. come again
    assert sorted(set(ids_before) | set(ids_after), key=lambda i: int(i.split(":")[1])) == [
        f"{ids_before[0].split(':')[0]}:{n}" for n in range(1, 1001) if n != 150
    ]
    rejects = next((tmp_path / "var").rglob("*.rej")).read_bytes()
    assert rejects.count(b"\n") == 1  # the rejected record was not written twice
    assert (inbox / "done" / NAME).exists()


def test_same_file_again_is_not_processed_twice(tmp_path: Path) -> None:
    """A file with the same name, size and SHA-256 as a processed one is not processed again."""
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    write_charge_file(tmp_path / "copy.dat", 4)
    drop(inbox, NAME, (tmp_path / "copy.dat").read_bytes())
    with local_source(tmp_path) as source:
        source.poll_now()
        assert len(drain(source)) == 4
        source.poll_now()
        drop(inbox, NAME, (tmp_path / "copy.dat").read_bytes())
        source.poll_now()
        assert drain(source) == []
        source.poll_now()
    assert not (inbox / NAME).exists()
    assert len(list((inbox / "done").glob(f"{NAME}*"))) >= 2


def _utf8_file(path: Path) -> None:
    line = next(iter(charge_lines(1, encoding="gbk")))[0].replace(
        "国内通话费".encode("gbk"), "国内通话".encode()
    )
    path.write_bytes(b"\r\n".join([header_line(), line, trailer_line(1, 37605)]) + b"\r\n")


BAD_FILES = [
    pytest.param(lambda p: p.write_bytes(b""), "empty file", id="empty"),
    pytest.param(lambda p: write_charge_file(p, 20, trailer=False), "missing trailer", id="truncated"),
    pytest.param(lambda p: write_charge_file(p, 20, count_delta=1), "record count mismatch", id="count"),
    pytest.param(lambda p: write_charge_file(p, 20, total_delta=-1), "amount total mismatch", id="total"),
    pytest.param(_utf8_file, "wrong encoding", id="utf8-in-gbk"),
    pytest.param(
        lambda p: p.write_bytes(header_line() + b"\r\n" + b"D" * 70000), "over-long line", id="over-long-line"
    ),
    pytest.param(
        lambda p: p.write_bytes(b"\r\n".join([b"D" * 120, trailer_line(0, 0)])),
        "missing header",
        id="no-header",
    ),
    pytest.param(lambda p: p.write_bytes(b"\xff\xfe\x00\x00garbage\r\n" * 3), "wrong encoding", id="binary"),
]


@pytest.mark.parametrize(("make", "reason"), BAD_FILES)
def test_bad_file_goes_to_error_with_a_clear_reason(tmp_path: Path, make: object, reason: str) -> None:
    """A bad file is refused whole: nothing delivered, file and .err note moved to error/."""
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    make(inbox / NAME)  # type: ignore[operator]
    (inbox / f"{NAME}.ok").write_bytes(b"")
    with local_source(tmp_path) as source:
        source.poll_now()
        assert drain(source) == []
        source.poll_now()
    assert (inbox / "error" / NAME).exists()
    assert reason in (inbox / "error" / f"{NAME}.err").read_text()
    assert _status(tmp_path) == [(NAME, "error")]


def test_unsafe_file_name_is_refused_and_moved_to_error(tmp_path: Path) -> None:
    """A name with control characters or backslashes is never staged; it and its done file go to error/."""
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    evil = "CHG_..\\..\\etc\x07.dat"
    write_charge_file(inbox / evil, 2)
    (inbox / f"{evil}.ok").write_bytes(b"")
    with local_source(tmp_path) as source:
        source.poll_now()
        assert drain(source) == []
    assert not (inbox / evil).exists()
    moved = sorted(p.name for p in (inbox / "error").iterdir())
    assert moved == ["CHG_____etc_.dat", "CHG_____etc_.dat.err", "CHG_____etc_.dat.ok"]
    assert sorted(p.name for p in inbox.iterdir()) == ["done", "error"]  # no done file left behind
    assert _status(tmp_path) == []


def test_scan_refuses_a_record_type_in_the_middle(tmp_path: Path) -> None:
    """A header or trailer record in the middle of the file refuses the whole file."""
    from adapters.batch.layouts import load_layout
    from adapters.batch.parsers import FixedWidthReader
    from tests.unit.batch_helpers import CHARGE_LAYOUT, PROJECT

    line = next(iter(charge_lines(1)))[0]
    path = tmp_path / "f.dat"
    path.write_bytes(b"\r\n".join([header_line(), line, header_line(), trailer_line(1, 37605)]))
    reader = FixedWidthReader(load_layout(Path(CHARGE_LAYOUT), PROJECT), "gb18030", 1000)
    with pytest.raises(BadFileError, match="in the middle"):
        reader.scan(path)
