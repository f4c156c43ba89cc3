"""The batch adapter against real FTP and FTPS servers (pyftpdlib) on loopback."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from adapters.batch import BatchEndpoint, BatchSink
from adapters.batch.errors import HostKeyError, RemoteTransferError
from adapters.batch.ftp import FTPRemote
from esb.message import Message
from simulators.batch_files import write_charge_file
from tests.integration.servers_ftp import FTPServer
from tests.unit.batch_helpers import BatchSource, context, drain, inbound_endpoint

pytestmark = pytest.mark.integration

NAME = "CHG_571_20240531_001.dat"
DAY = datetime(2024, 6, 1, 2, tzinfo=ZoneInfo("Asia/Shanghai"))
BOTH = [pytest.param("ftpd", id="ftp"), pytest.param("ftpsd", id="ftps")]


def _remote(server: FTPServer, folder: str, **extra: Any) -> dict[str, Any]:
    remote = {
        "protocol": "ftp",
        "host": "127.0.0.1",
        "port": server.port,
        "username": server.user,
        "password_file": str(server.password_file),
        "path": f"/{folder}",
        "timeout": 5,
    }
    if server.certs is not None:
        remote.update(protocol="ftps", ca_file=str(server.certs.ca))
    return {**remote, **extra}


def _outbound(server: FTPServer, folder: str) -> BatchEndpoint:
    return BatchEndpoint.model_validate(
        {
            "adapter": "batch",
            "layout": "config/layouts/ncr_customer_extract.yaml",
            "encoding": "gbk",
            "remote": _remote(server, folder),
            "outbound": {"file_name": "571_CUST_{date:%Y%m%d}_{seq:03d}.dat"},
        }
    )


def _inbox(server: FTPServer, folder: str, records: int) -> Path:
    inbox = server.root / folder
    inbox.mkdir()
    write_charge_file(inbox / NAME, records)
    (inbox / f"{NAME}.ok").write_bytes(b"")
    return inbox


@pytest.mark.parametrize("server_name", BOTH)
def test_file_is_picked_up_and_moved_to_done(
    server_name: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """A complete charge file (FTP, or FTPS with a verified certificate) is staged, parsed, moved to done/."""
    server: FTPServer = request.getfixturevalue(server_name)
    inbox = _inbox(server, "in", 300)
    with BatchSource(inbound_endpoint(_remote(server, "in")), context(tmp_path), schedule=False) as source:
        source.poll_now()
        assert len(drain(source)) == 300
        source.poll_now()
    assert (inbox / "done" / NAME).exists()
    assert not (inbox / NAME).exists()


@pytest.mark.parametrize("server_name", BOTH)
def test_file_is_written_and_uploaded(
    server_name: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """An outgoing extract is uploaded under a temp name, renamed into place, then its done file written."""
    server: FTPServer = request.getfixturevalue(server_name)
    (server.root / "out").mkdir()
    with BatchSink(_outbound(server, "out"), context(tmp_path, "ncr.customers_out"), schedule=False) as sink:
        sink.write(Message(body={"customer_id": "C1", "customer_name": "王五"}, id="m1"))
        sink.flush(DAY)
    assert sorted(p.name for p in (server.root / "out").iterdir()) == [
        "571_CUST_20240601_001.dat",
        "571_CUST_20240601_001.dat.ok",
    ]
    assert "王五".encode("gbk") in (server.root / "out" / "571_CUST_20240601_001.dat").read_bytes()


def test_ftps_server_with_a_certificate_from_another_ca_is_refused(
    ftpsd: FTPServer,
    tmp_path: Path,
) -> None:
    """The client trusts only its ca_file: a server certificate from another CA is refused, clearly."""
    assert ftpsd.certs is not None
    config = BatchEndpoint.model_validate(
        {"adapter": "batch", "layout": "x", "remote": _remote(ftpsd, "", ca_file=str(ftpsd.certs.other_ca))}
    ).remote
    with pytest.raises(HostKeyError, match=r"FTPS certificate refused: .*certificate") as caught:
        FTPRemote(config, tmp_path).connect()
    assert f"ftps://esb@127.0.0.1:{ftpsd.port}" in str(caught.value)
    assert "s3cret" not in str(caught.value)


def test_ftps_without_ca_file_does_not_trust_a_private_ca(ftpsd: FTPServer, tmp_path: Path) -> None:
    """Without ca_file only the system store is trusted: the session CA's certificate is refused."""
    remote = _remote(ftpsd, "")
    del remote["ca_file"]
    config = BatchEndpoint.model_validate({"adapter": "batch", "layout": "x", "remote": remote}).remote
    with pytest.raises(HostKeyError, match="FTPS certificate refused"):
        FTPRemote(config, tmp_path).connect()


@pytest.mark.parametrize("server_name", BOTH)
def test_download_dropped_mid_transfer_is_retried(
    server_name: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """A data connection dropped mid-download stages nothing; the next poll downloads the whole file."""
    server: FTPServer = request.getfixturevalue(server_name)
    _inbox(server, "in_drop", 20_000)
    endpoint = inbound_endpoint(_remote(server, "in_drop"))
    with BatchSource(endpoint, context(tmp_path), schedule=False) as source:
        server.cut.after, hits = 600_000, server.cut.hits
        try:
            with pytest.raises(RemoteTransferError):
                source.poll_now()
        finally:
            server.cut.after = None
        assert server.cut.hits == hits + 1
        assert list(source.dirs.staging.iterdir()) == []
        assert source.store.files_in("checked", "staged", "failed") == []
        source.poll_now()
        assert len(drain(source)) == 20_000


@pytest.mark.parametrize("server_name", BOTH)
def test_upload_dropped_mid_transfer_leaves_no_partial_file(
    server_name: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """A data connection dropped mid-upload leaves nothing under the final name; the retry completes it."""
    server: FTPServer = request.getfixturevalue(server_name)
    outbox = server.root / "out_drop"
    outbox.mkdir()
    with BatchSink(_outbound(server, "out_drop"), context(tmp_path, "ncr.out"), schedule=False) as sink:
        for n in range(2_000):
            sink.write(Message(body={"customer_id": f"C{n}", "customer_name": "客户名称" * 20}, id=f"m{n}"))
        server.cut.after, hits = 120_000, server.cut.hits
        try:
            with pytest.raises(RemoteTransferError):
                sink.flush(DAY)
        finally:
            server.cut.after = None
        assert server.cut.hits == hits + 1
        names = [p.name for p in outbox.iterdir()]
        assert "571_CUST_20240601_001.dat" not in names
        assert "571_CUST_20240601_001.dat.ok" not in names
        assert sink.upload_pending() == ["571_CUST_20240601_001.dat"]
    data = (outbox / "571_CUST_20240601_001.dat").read_bytes()
    assert data.endswith(b"T|2000\r\n")
    assert data.count(b"\r\n") == 2_002
    assert (outbox / "571_CUST_20240601_001.dat.ok").exists()
