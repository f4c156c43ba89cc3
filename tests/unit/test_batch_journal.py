"""The batch adapter in a hub: each finished file journaled with its reconciliation; one leader polls."""

from __future__ import annotations

from pathlib import Path

import pytest

from adapters.batch import BatchSink, BatchSource, scheduling
from adapters.batch.journaling import FileJournal
from esb.journal import Journal
from esb.message import Message
from simulators.batch_files import charge_lines, header_line, trailer_line, write_charge_file
from tests.unit.batch_helpers import context, drain, drop, inbound_endpoint, local_sink, local_source

NAME = "CHG_571_20240531_001.dat"
ROUTE = "batch:billing.charges_in"


def _journal(tmp: Path) -> Journal:
    journal = Journal(f"sqlite:///{tmp / 'var' / 'journal.db'}")
    journal.connect()
    return journal


def _file_with_a_bad_record(inbox: Path) -> None:
    lines = [line for line, _ in charge_lines(5)]
    bad = lines[2][:76] + b"0000000X2345" + lines[2][88:]
    total = sum(fen for n, (_, fen) in enumerate(charge_lines(5)) if n != 2)
    drop(inbox, NAME, b"\r\n".join([header_line(), *lines[:2], bad, *lines[3:], trailer_line(5, total)]))


def test_processed_file_is_journaled_with_its_reconciliation(tmp_path: Path) -> None:
    """A finished file becomes a file-level message, delivered, with received/delivered/rejected."""
    (tmp_path / "inbox").mkdir()
    _file_with_a_bad_record(tmp_path / "inbox")
    with local_source(tmp_path) as source:
        source.poll_now()
        deliveries = drain(source)
        source.poll_now()
    prefix = deliveries[0].message.id.split(":")[0]
    with _journal(tmp_path) as journal:
        assert journal.outcome(ROUTE, f"batch:{prefix}") == "delivered"
        events = journal.history(f"batch:{prefix}")
        assert [e.state for e in events] == ["received", "delivered"]
        detail = events[-1].detail or {}
        assert {k: detail[k] for k in ("file", "received", "delivered", "rejected", "balanced")} == {
            "file": NAME,
            "received": 5,
            "delivered": 4,
            "rejected": 1,
            "balanced": True,
        }
        assert detail["sha256"].startswith(prefix)
        assert [m.id for m in journal.find(key=("batch_file", NAME))] == [f"batch:{prefix}"]


def test_refused_file_is_journaled_as_dead_lettered_with_the_reason(tmp_path: Path) -> None:
    """A file refused by the whole-file check is journaled dead-lettered, with why."""
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    write_charge_file(inbox / NAME, 20, count_delta=1)
    (inbox / f"{NAME}.ok").write_bytes(b"")
    with local_source(tmp_path) as source:
        source.poll_now()
        assert drain(source) == []
    assert (inbox / "error" / NAME).exists()
    with _journal(tmp_path) as journal:
        [record] = journal.find(key=("batch_file", NAME))
        assert journal.outcome(ROUTE, record.id) == "dead_lettered"
        last = journal.history(record.id)[-1]
        assert "record count mismatch" in (last.error_text or "")
        assert (last.detail or {})["delivered"] == 0


def test_a_file_is_journaled_once(tmp_path: Path) -> None:
    """Settling the same file again (a poll that stopped before moving it) adds nothing to the journal."""
    row = {"name": NAME, "sha256": "ab" * 32, "size": 10, "status": "processed", "records": 1}
    row["reconciliation"] = '{"received": 1, "delivered": 1, "rejected": 0, "balanced": true}'
    files = FileJournal(context(tmp_path / "var"))
    try:
        assert files.record(row) is True
        assert files.record(row) is False
    finally:
        files.close()
    with _journal(tmp_path) as journal:
        assert [e.state for e in journal.history("batch:" + "ab" * 8)] == ["received", "delivered"]


def test_journaling_can_be_switched_off(tmp_path: Path) -> None:
    """With inbound.journal false the endpoint never opens the hub's journal."""
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    write_charge_file(inbox / NAME, 3)
    (inbox / f"{NAME}.ok").write_bytes(b"")
    with local_source(tmp_path, journal=False) as source:
        source.poll_now()
        assert len(drain(source)) == 3
        source.poll_now()
    assert (inbox / "done" / NAME).exists()
    assert not (tmp_path / "var" / "journal.db").exists()


def _scheduled_source(tmp: Path) -> BatchSource:
    endpoint = inbound_endpoint({"protocol": "local", "path": str(tmp / "inbox")}, poll={"interval": 3600})
    return BatchSource(endpoint, context(tmp / "var"), schedule=True)


def test_only_the_leading_process_polls_and_reads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two sources of one endpoint: the leader stages and hands out records; the other waits, then leads."""
    monkeypatch.setattr(scheduling, "FIRST_ELECTION_WAIT", 0.3)
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    write_charge_file(inbox / NAME, 30)
    (inbox / f"{NAME}.ok").write_bytes(b"")
    leader, follower = _scheduled_source(tmp_path), _scheduled_source(tmp_path)
    leader.connect()
    try:
        follower.connect()
        assert leader.election.is_leader
        assert not follower.election.is_leader
        first = leader.read(10.0)  # the leader's scheduler polls at once
        assert first is not None
        assert follower.read(0.05) is None  # the file is staged, but only the leader reads it
        first.ack()
        assert len(drain(leader, 10)) == 10
    finally:
        leader.close()
    write_charge_file(inbox / "CHG_571_20240531_002.dat", 5)
    (inbox / "CHG_571_20240531_002.dat.ok").write_bytes(b"")
    try:
        assert follower.election.elected.wait(10.0)  # the lock died with the leader: the follower leads
        files: dict[str, int] = {}
        while sum(files.values()) < 19 + 5 and (delivery := follower.read(10.0)) is not None:
            delivery.ack()  # the rest of the first file (shared state), then the new one, polled at once
            name = delivery.message.headers["batch-file"]
            files[name] = files.get(name, 0) + 1
        assert files == {NAME: 19, "CHG_571_20240531_002.dat": 5}
    finally:
        follower.close()


def test_a_following_sink_leaves_the_flush_to_the_leader(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """max_records reached in a process that does not lead spools only; the leader's flush writes all."""
    monkeypatch.setattr(scheduling, "FIRST_ELECTION_WAIT", 0.3)
    layout = "config/layouts/ncr_customer_extract.yaml"
    leader = local_sink(tmp_path, layout, max_records=2, file_name="571_CUST_{date:%Y%m%d}_{seq:03d}.dat")
    follower = local_sink(tmp_path, layout, max_records=2, file_name="571_CUST_{date:%Y%m%d}_{seq:03d}.dat")
    leader.schedule = follower.schedule = True
    with leader, follower:
        assert leader.election.is_leader
        assert not follower.election.is_leader
        for n in range(3):
            follower.write(Message(body={"customer_id": f"F{n}", "customer_name": "赵六"}, id=f"f{n}"))
        assert [p.name for p in (tmp_path / "outbox_remote").iterdir()] == []
        leader.write(Message(body={"customer_id": "L1", "customer_name": "王五"}, id="l1"))
        data = next((tmp_path / "outbox_remote").glob("*.dat")).read_bytes()
    assert data.count(b"\r\n") == 6  # header, 4 records, trailer


def test_sink_helper_is_unscheduled_by_default(tmp_path: Path) -> None:
    """Sinks made for tests run no schedule and no election."""
    sink: BatchSink = local_sink(
        tmp_path, "config/layouts/ncr_customer_extract.yaml", file_name="x_{seq:03d}.dat"
    )
    with sink:
        assert sink.election is None
