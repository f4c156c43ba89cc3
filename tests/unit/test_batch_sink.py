"""The batch sink over a local folder: files with header, details and trailer; names and sequences."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import BinaryIO
from zoneinfo import ZoneInfo

import pytest

from adapters.batch.errors import RemoteTransferError
from esb.message import Message
from tests.unit.batch_helpers import CHARGE_LAYOUT, local_sink

NCR = "config/layouts/ncr_customer_extract.yaml"
DAY = datetime(2024, 6, 1, 2, 0, tzinfo=ZoneInfo("Asia/Shanghai"))
PATTERN = "{province}_CUST_{date:%Y%m%d}_{seq:03d}.dat"


def _customer(n: int) -> Message:
    return Message(
        body={"customer_id": f"CUST{n:06d}", "customer_name": f"张三{n}", "status": "active"}, id=f"m{n}"
    )


def test_flush_writes_header_details_trailer_in_gbk_and_uploads(tmp_path: Path) -> None:
    """A flush renders the waiting records (GBK, '|'), uploads the file and writes its done file."""
    with local_sink(tmp_path, NCR, file_name=PATTERN, name_vars={"province": "571"}) as sink:
        for n in range(3):
            sink.write(_customer(n))
        sink.write(_customer(1))  # the same message again: spooled once
        assert sink.flush(DAY) == "571_CUST_20240601_001.dat"
    remote = tmp_path / "outbox_remote"
    lines = (remote / "571_CUST_20240601_001.dat").read_bytes().decode("gbk").split("\r\n")
    assert lines[0] == "H|571|20240601|1"
    assert lines[1] == "D|CUST000000|张三0|active|||||"
    assert lines[4] == "T|3"
    assert lines[5] == ""
    assert (remote / "571_CUST_20240601_001.dat.ok").exists()
    assert sorted(p.name for p in remote.iterdir()) == [
        "571_CUST_20240601_001.dat",
        "571_CUST_20240601_001.dat.ok",
    ]


def test_sequence_survives_a_restart(tmp_path: Path) -> None:
    """The file sequence of the day carries on after the sink is closed and made again."""
    with local_sink(tmp_path, NCR, file_name=PATTERN, name_vars={"province": "571"}) as sink:
        sink.write(_customer(1))
        sink.flush(DAY)
    with local_sink(tmp_path, NCR, file_name=PATTERN, name_vars={"province": "571"}) as sink:
        sink.write(_customer(2))
        assert sink.flush(DAY) == "571_CUST_20240601_002.dat"


def test_max_records_flushes_by_size(tmp_path: Path) -> None:
    """Reaching max_records writes a file without waiting for the schedule."""
    with local_sink(tmp_path, NCR, file_name=PATTERN, name_vars={"province": "571"}, max_records=2) as sink:
        sink.write(_customer(1))
        assert not list((tmp_path / "outbox_remote").iterdir())
        sink.write(_customer(2))
    assert len(list((tmp_path / "outbox_remote").glob("*.dat"))) == 1


def test_fixed_width_output_pads_in_bytes_and_totals_in_trailer(tmp_path: Path) -> None:
    """Fixed-width output pads Chinese text in GBK bytes and puts count and amount total in the trailer."""
    body = {
        "charge_id": "C1",
        "account_id": "A1",
        "charge_code": "CHG1",
        "charge_name": "国内通话费",
        "amount": "12.34",
        "charge_date": "2024-05-31",
    }
    with local_sink(
        tmp_path,
        CHARGE_LAYOUT,
        file_name="CHG_{province}_{date:%Y%m%d}_{seq:03d}.dat",
        name_vars={"province": "571"},
    ) as sink:
        sink.write(Message(body=body, id="a"))
        sink.write(Message(body={**body, "charge_id": "C2", "amount": "0.66"}, id="b"))
        name = sink.flush(DAY)
    lines = (tmp_path / "outbox_remote" / str(name)).read_bytes().split(b"\r\n")
    assert [len(x) for x in lines[:4]] == [40, 120, 120, 40]
    assert lines[1][56:76] == "国内通话费".encode("gbk").ljust(20)
    assert lines[1][76:88] == b"000000001234"
    assert lines[3] == b"T0000000002" + b"13.00".replace(b".", b"").rjust(16, b"0") + b" " * 13


def test_failed_upload_leaves_no_visible_file_and_is_retried(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An upload that breaks off leaves nothing under the final name; the next attempt completes the file."""

    def broken(source: BinaryIO, target: BinaryIO, length: int = 0) -> None:
        target.write(b"H|571|2024")
        raise OSError("connection dropped")

    with local_sink(tmp_path, NCR, file_name=PATTERN, name_vars={"province": "571"}) as sink:
        sink.write(_customer(1))
        monkeypatch.setattr("adapters.batch.remote.shutil.copyfileobj", broken)
        with pytest.raises(RemoteTransferError):
            sink.flush(DAY)
        assert [p.name for p in (tmp_path / "outbox_remote").iterdir() if not p.name.startswith(".")] == []
        monkeypatch.undo()
        assert sink.upload_pending() == ["571_CUST_20240601_001.dat"]
    final = (tmp_path / "outbox_remote" / "571_CUST_20240601_001.dat").read_bytes()
    assert final.endswith(b"T|1\r\n")
