"""The directories' files over their real protocols: 114's over FTP (pyftpdlib), the phone directory's
over SFTP (OpenSSH, host key from known_hosts); each directory's ack comes back the same way."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from adapters.batch import BatchSink, BatchSource
from simulators.directories import DirectorySystem
from tests.integration.servers_ftp import FTPServer
from tests.integration.servers_ssh import SSHServer
from tests.unit.batch_helpers import context, drain
from tests.unit.directory_helpers import endpoint, load_project, numbers, record, subscriber

pytestmark = pytest.mark.integration

DAY = datetime(2024, 6, 1, 1, 0, tzinfo=ZoneInfo("Asia/Shanghai"))


def _ftp(server: FTPServer, folder: str) -> dict[str, Any]:
    return {"protocol": "ftp", "host": "127.0.0.1", "port": server.port, "username": server.user,
            "password_file": str(server.password_file), "path": f"/{folder}", "name_encoding": "gbk",
            "timeout": 5}  # fmt: skip


def _sftp(server: SSHServer, folder: Path) -> dict[str, Any]:
    return {"protocol": "sftp", "host": "127.0.0.1", "port": server.port, "username": server.user,
            "key_file": str(server.key_file), "known_hosts": str(server.known_hosts), "path": str(folder),
            "timeout": 5}  # fmt: skip


def _round_trip(
    tmp: Path, directory: str, out: dict[str, Any], ack: dict[str, Any], local_in: Path, local_ack: Path
) -> tuple[str, DirectorySystem, list[Any]]:
    """Write 3 accepted, 1 rejected and 1 unlisted subscriber's listings, upload them, let the simulated
    directory answer, read the ack back; return (file name, the directory, the hub's ack records)."""
    project = load_project()
    subscribers = [subscriber(n) for n in numbers(3, rejected=False) + numbers(1, rejected=True)]
    hidden = subscriber("13911112222", privacy="confidential", name="不登录")
    name = {"dir114": "dir114.listings_out", "phonebook": "phonebook.listings_out"}[directory]
    with BatchSink(endpoint(project, name, out), context(tmp / "out", name), schedule=False) as sink:
        for body in subscribers:
            sink.write(record(project, body, directory))
        written = sink.flush(DAY)
    assert written is not None
    simulated = DirectorySystem(directory, local_in, local_ack)
    assert simulated.poll() == [written]
    acks = f"{directory}.acks_in"
    with BatchSource(endpoint(project, acks, ack), context(tmp / "ack", acks), schedule=False) as source:
        source.poll_now()
        deliveries = drain(source)
        source.poll_now()
    assert hidden["accessNumber"] not in simulated.seen
    return written, simulated, deliveries


def test_114_listing_file_goes_over_ftp_and_its_ack_comes_back(ftpd: FTPServer, tmp_path: Path) -> None:
    """114 over FTP: the GBK fixed-width file and its done file are uploaded; 114 holds the 3 accepted
    listings, its ack is picked up over FTP with the one rejected record and moved to done/."""
    (ftpd.root / "dir114_in").mkdir()
    (ftpd.root / "dir114_ack").mkdir()
    written, simulated, deliveries = _round_trip(
        tmp_path, "dir114", _ftp(ftpd, "dir114_in"), _ftp(ftpd, "dir114_ack"),
        ftpd.root / "dir114_in", ftpd.root / "dir114_ack",
    )  # fmt: skip
    assert written == "LST114_0571_20240601_001_D.dat"
    assert (ftpd.root / "dir114_in" / f"{written}.ok").exists()
    assert "张伟".encode("gbk") in (ftpd.root / "dir114_in" / written).read_bytes()
    assert sorted(simulated.listed) == sorted(numbers(3, rejected=False))
    assert [d.message.body["access_number"] for d in deliveries] == numbers(1, rejected=True)
    assert (ftpd.root / "dir114_ack" / "done" / f"ACK_{written}").exists()


def test_phonebook_listing_file_goes_over_sftp_and_its_ack_comes_back(
    sshd: SSHServer,
    tmp_path: Path,
) -> None:
    """The phone directory over SFTP (host key from known_hosts): the comma-separated GBK file is uploaded;
    its '|'-delimited ack is picked up over SFTP with the rejected record."""
    upload, ack = sshd.root / "hb_upload", sshd.root / "hb_ack"
    upload.mkdir()
    ack.mkdir()
    written, simulated, deliveries = _round_trip(
        tmp_path, "phonebook", _sftp(sshd, upload), _sftp(sshd, ack), upload, ack
    )
    assert written == "HB_20240601_0001_DELTA.csv"
    assert (upload / f"{written}.ok").exists()
    assert "TRL,4" in (upload / written).read_bytes().decode("gbk")
    assert sorted(simulated.listed) == sorted(numbers(3, rejected=False))
    assert [d.message.body["phone"] for d in deliveries] == numbers(1, rejected=True)
    assert (ack / "done" / f"{written}.ack").exists()
