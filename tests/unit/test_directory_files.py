"""The directories' files: 114's fixed-width and the phone directory's comma-separated GBK listing files
(header, counts, byte positions, quoting), the simulated directories' acks, and the hub reading them."""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from adapters.batch import BatchSink, BatchSource
from esb.journal import Journal
from simulators.directories import DirectorySystem
from tests.unit.batch_helpers import PROJECT, context, drain
from tests.unit.directory_helpers import endpoint, load_project, numbers, record, subscriber

DAY = datetime(2024, 6, 1, 1, 0, tzinfo=ZoneInfo("Asia/Shanghai"))
LONG_NAME = "杭州西湖区某某信息科技有限公司第一分公司营业部门市部"  # 26 characters: 52 bytes in GBK


def _sink(tmp: Path, name: str) -> BatchSink:
    project = load_project()
    (tmp / "remote").mkdir(parents=True, exist_ok=True)
    config = endpoint(project, name, {"protocol": "local", "path": str(tmp / "remote")})
    return BatchSink(config, context(tmp / "var", name), schedule=False)


def _write(tmp: Path, name: str, directory: str, subscribers: list[dict[str, object]]) -> Path:
    project = load_project()
    with _sink(tmp, name) as sink:
        for body in subscribers:
            sink.write(record(project, body, directory))
        written = sink.flush(DAY)
    assert written is not None
    return tmp / "remote" / written


def test_114_delta_file_has_header_trailer_count_and_gbk_fields_at_their_byte_positions(
    tmp_path: Path,
) -> None:
    """The 114 delta file: header 01 with area, date, sequence and D; details at fixed byte positions with
    GBK names; trailer 99 with the record count; named LST114_<area>_<date>_<seq>_D.dat with a done file."""
    subscribers = [
        subscriber("13900000001"),
        subscriber("13900000002", name=LONG_NAME),
        subscriber("13900000003"),
    ]
    path = _write(tmp_path, "dir114.listings_out", "dir114", subscribers)
    assert path.name == "LST114_0571_20240601_001_D.dat"
    assert (path.parent / f"{path.name}.ok").exists()
    lines = path.read_bytes().split(b"\r\n")
    assert lines[0] == b"01ESBHUB  0571" + b"20240601" + b"000001" + b"D"
    assert [line[:3] for line in lines[1:4]] == [b"10C"] * 3
    assert lines[2][3:23] == b"13900000002".ljust(20)
    assert lines[2][23:83].decode("gbk").rstrip() == LONG_NAME
    assert lines[2][104:124].decode("gbk").rstrip() == "杭州市"
    assert {len(line) for line in lines[1:4]} == {219}
    assert lines[4] == b"9900000003"
    assert lines[5] == b""


def test_phonebook_delta_file_quotes_a_name_with_a_comma_and_counts_in_its_trailer(tmp_path: Path) -> None:
    """The phone directory's delta file: HDR with date, sequence and DELTA, quoted fields, TRL count."""
    path = _write(tmp_path, "phonebook.listings_out", "phonebook", [
        subscriber("13900000001", name="张伟,李娜工作室"), subscriber("13900000002")])  # fmt: skip
    assert path.name == "HB_20240601_0001_DELTA.csv"
    lines = path.read_bytes().decode("gbk").split("\r\n")
    assert lines[0] == "HDR,ESB,2024-06-01,1,DELTA"
    assert lines[1].startswith('DTL,UPD,13900000001,"张伟,李娜工作室",住宅,,杭州市,文三路90号,')
    assert lines[3] == "TRL,2"


def test_full_file_endpoints_mark_their_header_full(tmp_path: Path) -> None:
    """The weekly full file has the same layout and the full flag: F for 114, FULL for the phone directory."""
    path = _write(tmp_path / "a", "dir114.full_out", "dir114", [subscriber("13900000001")])
    assert path.name == "LST114_0571_20240601_001_F.dat"
    assert path.read_bytes().split(b"\r\n")[0].endswith(b"F")
    path = _write(tmp_path / "b", "phonebook.full_out", "phonebook", [subscriber("13900000001")])
    assert path.read_bytes().decode("gbk").split("\r\n")[0] == "HDR,ESB,2024-06-01,1,FULL"


def test_a_delete_carries_the_number_only(tmp_path: Path) -> None:
    """A withdrawn listing is written as a delete with the number only: no name, no address."""
    project = load_project()
    body = subscriber("13900000009", name="李娜")
    body["status"] = "terminated"
    assert record(project, body, "dir114").body == {
        "action": "D", "access_number": "13900000009", "updated_at": "20260105100000"}  # fmt: skip
    assert record(project, body, "phonebook").body == {
        "op": "DEL", "phone": "13900000009", "changed": "2026-01-05 10:00:00"}  # fmt: skip


def test_simulated_114_acks_each_file_and_the_hub_reads_each_rejected_record(tmp_path: Path) -> None:
    """114 answers a listing file with an ack (counts, one A2 line per rejected record); the hub's ack
    endpoint reads one record per reject, with 114's reason code, moves the ack to done/ and journals the
    ack file with its header: the listing file and its received, accepted and rejected counts."""
    good, bad = numbers(3, rejected=False), numbers(1, rejected=True)
    path = _write(tmp_path, "dir114.listings_out", "dir114", [subscriber(n) for n in [*good, *bad]])
    ack_dir = tmp_path / "ack"
    directory = DirectorySystem("dir114", path.parent, ack_dir)
    assert directory.poll() == [path.name]
    ack = (ack_dir / f"ACK_{path.name}").read_bytes().split(b"\r\n")
    assert ack[0] == b"A1" + path.name.encode().ljust(40) + b"000000040000000300000001"
    assert ack[1][:31] == b"A2" + b"00000004" + bad[0].encode().ljust(20) + b"E"
    assert ack[2] == b"A900000001"
    assert set(directory.listed) == set(good)
    project = load_project()
    config = endpoint(project, "dir114.acks_in", {"protocol": "local", "path": str(ack_dir)})
    with BatchSource(config, context(tmp_path / "hub", "dir114.acks_in"), schedule=False) as source:
        source.poll_now()
        deliveries = drain(source)
        source.poll_now()
    assert [d.message.body["access_number"] for d in deliveries] == bad
    assert deliveries[0].message.body["reason_code"] == "E01"
    assert deliveries[0].message.headers["batch-file"] == f"ACK_{path.name}"
    assert (ack_dir / "done" / f"ACK_{path.name}").exists()
    with Journal(f"sqlite:///{tmp_path / 'hub' / 'journal.db'}") as journal:
        [ack_file] = journal.find(key=("batch_file", f"ACK_{path.name}"))
        detail = journal.history(ack_file.id)[-1].detail
    assert detail is not None
    assert detail["header"] == {"listing_file": path.name, "received": 4, "accepted": 3, "rejected": 1}
    assert (detail["received"], detail["delivered"]) == (1, 1)


def test_simulated_phonebook_acks_and_the_hub_reads_its_rejects(tmp_path: Path) -> None:
    """The phone directory's ack ('|'-delimited) is read by the hub: one record per rejected listing."""
    good, bad = numbers(2, rejected=False), numbers(2, rejected=True)
    path = _write(tmp_path, "phonebook.listings_out", "phonebook", [subscriber(n) for n in [*bad, *good]])
    ack_dir = tmp_path / "ack"
    DirectorySystem("phonebook", path.parent, ack_dir).poll()
    lines = (ack_dir / f"{path.name}.ack").read_bytes().decode("gbk").split("\r\n")
    assert lines[0] == f"ACKH|{path.name}|4|2|2"
    config = endpoint(load_project(), "phonebook.acks_in", {"protocol": "local", "path": str(ack_dir)})
    with BatchSource(config, context(tmp_path / "hub", "phonebook.acks_in"), schedule=False) as source:
        source.poll_now()
        deliveries = drain(source)
    assert [(d.message.body["line_no"], d.message.body["phone"]) for d in deliveries] == [
        (1, bad[0]),
        (2, bad[1]),
    ]


def test_a_file_whose_trailer_count_is_wrong_is_rejected_whole(tmp_path: Path) -> None:
    """A directory that finds the trailer count wrong rejects every record of the file (E99)."""
    path = _write(
        tmp_path, "dir114.listings_out", "dir114", [subscriber(n) for n in numbers(2, rejected=False)]
    )
    path.write_bytes(path.read_bytes().replace(b"9900000002", b"9900000003"))
    directory = DirectorySystem("dir114", path.parent, tmp_path / "ack")
    directory.poll()
    listing = directory.files[path.name]
    assert not listing.count_ok
    assert [code for *_, code, _text in listing.rejected] == ["E99", "E99"]
    assert directory.listed == {}


def test_a_sent_file_without_its_ack_is_late_until_the_ack_is_picked_up(tmp_path: Path) -> None:
    """outbound.ack: a file sent more than `within` ago whose ack the ack endpoint never staged is late, and
    esb health shows the endpoint degraded naming it; once the ack is picked up it is not."""
    from adapters.batch.acks import late_acks
    from adapters.batch.health import endpoint_health

    path = _write(tmp_path, "dir114.listings_out", "dir114", [subscriber("13900000001")])
    project = load_project()
    config = endpoint(project, "dir114.listings_out", {"protocol": "local", "path": str(path.parent)})
    out_context = context(tmp_path / "var", "dir114.listings_out")
    later = time.time() + 27 * 3600
    assert [f.name for f in late_acks(config, out_context, now=later)] == [path.name]
    assert late_acks(config, out_context) == []  # not late yet: within 26 h
    ack_dir = tmp_path / "ack"
    DirectorySystem("dir114", path.parent, ack_dir).poll()
    acks = endpoint(project, "dir114.acks_in", {"protocol": "local", "path": str(ack_dir)})
    with BatchSource(acks, context(tmp_path / "var", "dir114.acks_in"), schedule=False) as source:
        source.poll_now()
        drain(source)
    assert late_acks(config, out_context, now=later) == []
    status, detail = endpoint_health(config, out_context)
    assert status == "ok", detail


def test_health_names_the_sent_files_whose_ack_is_late(tmp_path: Path) -> None:
    """esb health: an outbound endpoint with a late ack is degraded, the file and the ack endpoint named."""
    from adapters.batch.health import endpoint_health

    path = _write(tmp_path, "phonebook.listings_out", "phonebook", [subscriber("13900000001")])
    spec = endpoint(load_project(), "phonebook.listings_out", {"protocol": "local", "path": str(path.parent)})
    outbound = spec.outbound
    assert outbound is not None
    assert outbound.ack is not None
    quick = spec.model_copy(update={"outbound": outbound.model_copy(update={"ack": outbound.ack.model_copy(
        update={"within": 0.0})})})  # fmt: skip
    status, detail = endpoint_health(quick, context(tmp_path / "var", "phonebook.listings_out"))
    assert status == "degraded"
    assert f"({{file}}.ack, picked up by phonebook.acks_in) after 0 h: {path.name}" in detail
    assert "1 sent file(s)" in detail


def test_an_ack_that_counts_other_than_what_was_sent_is_flagged(tmp_path: Path) -> None:
    """outbound.ack.count_field: an ack whose header says fewer records received than the file sent makes
    esb health show the listing endpoint degraded, naming the ack and both counts; a right count does not."""
    from adapters.batch.acks import miscounted_acks
    from adapters.batch.health import endpoint_health

    path = _write(
        tmp_path, "dir114.listings_out", "dir114", [subscriber(n) for n in numbers(2, rejected=False)]
    )
    project = load_project()
    config = endpoint(project, "dir114.listings_out", {"protocol": "local", "path": str(path.parent)})
    out_context = context(tmp_path / "var", "dir114.listings_out")
    ack_dir = tmp_path / "ack"
    DirectorySystem("dir114", path.parent, ack_dir).poll()
    ack = ack_dir / f"ACK_{path.name}"
    ack.write_bytes(ack.read_bytes().replace(b"000000020000000200000000", b"000000010000000100000000"))
    acks = endpoint(project, "dir114.acks_in", {"protocol": "local", "path": str(ack_dir)})
    with BatchSource(acks, context(tmp_path / "var", "dir114.acks_in"), schedule=False) as source:
        source.poll_now()
        assert drain(source) == []  # no rejected record: the ack is settled at once
        source.poll_now()
    assert miscounted_acks(config, out_context) == [f"ACK_{path.name}: received 1 of 2 sent"]
    status, detail = endpoint_health(config, out_context)
    assert status == "degraded"
    assert f"1 ack(s) counting other than what was sent: ACK_{path.name}: received 1 of 2 sent" in detail


def _acked(tmp_path: Path, count: int, header: bytes | None = None) -> tuple[Path, Path]:
    """Send a 114 listing file of ``count`` listed subscribers and pick up its ack (its A1 counts replaced
    by ``header`` when given); return the listing file and the hub's state folder."""
    path = _write(
        tmp_path, "dir114.listings_out", "dir114", [subscriber(n) for n in numbers(count, rejected=False)]
    )
    ack_dir = tmp_path / "ack"
    DirectorySystem("dir114", path.parent, ack_dir).poll()
    ack = ack_dir / f"ACK_{path.name}"
    if header is not None:
        lines = ack.read_bytes().split(b"\r\n")
        lines[0] = lines[0][:42] + header
        ack.write_bytes(b"\r\n".join(lines))
    acks = endpoint(load_project(), "dir114.acks_in", {"protocol": "local", "path": str(ack_dir)})
    with BatchSource(acks, context(tmp_path / "var", "dir114.acks_in"), schedule=False) as source:
        source.poll_now()
        drain(source)
        source.poll_now()
    return path, tmp_path / "var"


def test_an_ack_whose_accepted_and_rejected_do_not_make_its_received_is_flagged(tmp_path: Path) -> None:
    """accepted_field/rejected_field: an ack saying 2 received but 1 accepted and 0 rejected is a mismatch
    in the file's reconciliation and in esb health, though its received matches the records sent."""
    from adapters.batch.acks import reconcile
    from adapters.batch.health import endpoint_health

    path, var = _acked(tmp_path, 2, b"000000020000000100000000")
    config = endpoint(load_project(), "dir114.listings_out", {"protocol": "local", "path": str(path.parent)})
    out_context = context(var, "dir114.listings_out")
    [row] = reconcile(config, out_context)
    assert (row.file, row.sent, row.received, row.accepted, row.rejected) == (path.name, 2, 2, 1, 0)
    assert row.problems == ("accepted 1 + rejected 0 is not the 2 received",)
    assert row.status() == "mismatch"
    status, detail = endpoint_health(config, out_context)
    assert status == "degraded"
    assert f"ACK_{path.name}: accepted 1 + rejected 0 is not the 2 received" in detail


def test_a_file_whose_ack_adds_up_reconciles_ok_and_one_not_acked_is_waiting(tmp_path: Path) -> None:
    """A right ack (3 sent, 3 received = 3 accepted + 0 rejected) is ok; a file with no ack yet is waiting."""
    from adapters.batch.acks import reconcile

    path, var = _acked(tmp_path, 3)
    config = endpoint(load_project(), "dir114.listings_out", {"protocol": "local", "path": str(path.parent)})
    unanswered = _write(tmp_path, "dir114.listings_out", "dir114", [subscriber("13900000009")])
    rows = {r.file: r for r in reconcile(config, context(var, "dir114.listings_out"))}
    assert (rows[path.name].status(), rows[path.name].problems) == ("ok", ())
    assert (rows[path.name].received, rows[path.name].accepted, rows[path.name].rejected) == (3, 3, 0)
    assert rows[unanswered.name].status() == "waiting"


def test_esb_batch_acks_shows_each_files_reconciliation_and_fails_on_a_mismatch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`esb batch acks ENDPOINT` prints sent/received/accepted/rejected per file and exits 1 on a mismatch."""
    from click.testing import CliRunner

    from esb.cli.main import cli

    path, var = _acked(tmp_path, 2, b"000000020000000100000000")
    monkeypatch.setenv("ESB_DATA_DIR", str(var))
    result = CliRunner().invoke(cli, ["--project", str(PROJECT), "batch", "acks", "dir114.listings_out"])
    assert result.exit_code == 1, result.output
    assert (
        f"{path.name} (ACK_{path.name}) mismatch: sent 2, received 2, accepted 1, rejected 0: "
        "accepted 1 + rejected 0 is not the 2 received"
    ) in result.output
    refused = CliRunner().invoke(cli, ["--project", str(PROJECT), "batch", "acks", "dir114.acks_in"])
    assert refused.exit_code == 2
    assert "not an outbound batch endpoint that expects acks" in refused.output
