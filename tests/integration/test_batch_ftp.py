"""The batch adapter against a real FTP server (pyftpdlib) on loopback."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from adapters.batch import BatchEndpoint, BatchSink
from esb.message import Message
from esb.simulators.batch_files import write_charge_file
from tests.integration.servers_ftp import FTPServer, ftpd  # noqa: F401 - the fixture
from tests.unit.batch_helpers import BatchSource, context, drain, inbound_endpoint

pytestmark = pytest.mark.integration


def _remote(server: FTPServer, folder: str) -> dict[str, Any]:
    return {
        "protocol": "ftp",
        "host": "127.0.0.1",
        "port": server.port,
        "username": server.user,
        "password_file": str(server.password_file),
        "path": f"/{folder}",
        "timeout": 5,
    }


def test_file_is_picked_up_over_ftp_and_moved_to_done(ftpd: FTPServer, tmp_path: Path) -> None:  # noqa: F811
    """A complete charge file on the FTP server is staged, parsed record by record and moved to done/."""
    (ftpd.root / "in").mkdir()
    write_charge_file(ftpd.root / "in" / "CHG_571_20240531_001.dat", 300)
    (ftpd.root / "in" / "CHG_571_20240531_001.dat.ok").write_bytes(b"")
    with BatchSource(inbound_endpoint(_remote(ftpd, "in")), context(tmp_path), schedule=False) as source:
        source.poll_now()
        assert len(drain(source)) == 300
        source.poll_now()
    assert (ftpd.root / "in" / "done" / "CHG_571_20240531_001.dat").exists()
    assert not (ftpd.root / "in" / "CHG_571_20240531_001.dat").exists()


def test_file_is_written_and_uploaded_over_ftp(ftpd: FTPServer, tmp_path: Path) -> None:  # noqa: F811
    """An outgoing extract is uploaded under a temp name, renamed into place, then its done file written."""
    (ftpd.root / "out").mkdir()
    endpoint = BatchEndpoint.model_validate(
        {
            "adapter": "batch",
            "layout": "config/layouts/ncr_customer_extract.yaml",
            "encoding": "gbk",
            "remote": _remote(ftpd, "out"),
            "outbound": {"file_name": "571_CUST_{date:%Y%m%d}_{seq:03d}.dat"},
        }
    )
    with BatchSink(endpoint, context(tmp_path, "ncr.customers_out"), schedule=False) as sink:
        sink.write(Message(body={"customer_id": "C1", "customer_name": "王五"}, id="m1"))
        sink.flush(datetime(2024, 6, 1, 2, tzinfo=ZoneInfo("Asia/Shanghai")))
    assert sorted(p.name for p in (ftpd.root / "out").iterdir()) == [
        "571_CUST_20240601_001.dat",
        "571_CUST_20240601_001.dat.ok",
    ]
    assert "王五".encode("gbk") in (ftpd.root / "out" / "571_CUST_20240601_001.dat").read_bytes()
