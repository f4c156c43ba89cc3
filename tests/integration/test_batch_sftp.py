"""The batch adapter against a real OpenSSH sshd (internal-sftp) on loopback."""

from __future__ import annotations

import os
import re
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from adapters.batch import BatchEndpoint, BatchSink
from adapters.batch.errors import HostKeyError, RemoteTransferError
from adapters.batch.sftp import SFTPRemote, quiet_read_ahead
from esb.message import Message
from simulators.batch_files import write_charge_file
from tests.integration.proxy import CuttingProxy
from tests.integration.servers_ssh import SSHServer
from tests.unit.batch_helpers import BatchSource, context, drain, inbound_endpoint

pytestmark = pytest.mark.integration


def _remote(server: SSHServer, folder: Path, **extra: Any) -> dict[str, Any]:
    return {
        "protocol": "sftp",
        "host": "127.0.0.1",
        "port": server.port,
        "username": server.user,
        "key_file": str(server.key_file),
        "known_hosts": str(server.known_hosts),
        "path": str(folder),
        "timeout": 5,
        **extra,
    }


def _folder(server: SSHServer, name: str) -> Path:
    folder = server.root / name
    folder.mkdir()
    return folder


def test_gbk_named_file_is_picked_up_over_sftp(sshd: SSHServer, tmp_path: Path) -> None:
    """A file with a GBK-encoded Chinese name is listed, staged and processed, then moved to done/."""
    inbox = _folder(sshd, "in_gbk")
    name = "CHG_571_杭州_001.dat"
    raw = os.fsencode(inbox) + b"/" + name.encode("gbk")
    write_charge_file(Path(os.fsdecode(raw)), 50)
    Path(os.fsdecode(raw + b".ok")).write_bytes(b"")
    endpoint = inbound_endpoint(_remote(sshd, inbox, name_encoding="gbk"))
    with BatchSource(endpoint, context(tmp_path), schedule=False) as source:
        source.poll_now()
        assert len(drain(source)) == 50
        source.poll_now()
    assert (os.fsencode(inbox) + b"/done/" + name.encode("gbk")) in [
        os.fsencode(inbox / "done") + b"/" + n for n in os.listdir(os.fsencode(inbox / "done"))
    ]


def test_unknown_host_key_is_refused(sshd: SSHServer, tmp_path: Path) -> None:
    """A server whose key is not in known_hosts is refused with a clear error."""
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    config = BatchEndpoint.model_validate(
        {"adapter": "batch", "layout": "x", "remote": _remote(sshd, sshd.root, known_hosts=str(empty))}
    ).remote
    remote = SFTPRemote(config, tmp_path)
    with pytest.raises(HostKeyError, match="not in known_hosts"):
        remote.connect()


def test_changed_host_key_is_refused(sshd: SSHServer, tmp_path: Path) -> None:
    """A server whose key differs from the one in known_hosts is refused (possible impostor)."""
    other = tmp_path / "other_key"
    os.system(f"ssh-keygen -q -t ed25519 -N '' -f {other}")
    host = sshd.known_hosts.read_text().split()[0]
    wrong = tmp_path / "known_hosts"
    wrong.write_text(f"{host} {' '.join((other.with_suffix('.pub')).read_text().split()[:2])}\n")
    config = BatchEndpoint.model_validate(
        {"adapter": "batch", "layout": "x", "remote": _remote(sshd, sshd.root, known_hosts=str(wrong))}
    ).remote
    with pytest.raises(HostKeyError, match="CHANGED"):
        SFTPRemote(config, tmp_path).connect()


def _via_proxy(server: SSHServer, proxy: CuttingProxy, tmp_path: Path) -> Path:
    known = tmp_path / "proxy_known_hosts"
    known.write_text(
        re.sub(
            r"^\[127\.0\.0\.1\]:\d+", f"[127.0.0.1]:{proxy.port}", server.known_hosts.read_text(), flags=re.M
        )
    )
    return known


def test_download_dropped_mid_transfer_is_retried(sshd: SSHServer, tmp_path: Path) -> None:
    """A connection dropped mid-download stages nothing; the next poll downloads the whole file."""
    inbox = _folder(sshd, "in_drop")
    write_charge_file(inbox / "CHG_571_20240531_001.dat", 20_000)
    (inbox / "CHG_571_20240531_001.dat.ok").write_bytes(b"")
    proxy = CuttingProxy(sshd.port)
    known = _via_proxy(sshd, proxy, tmp_path)
    endpoint = inbound_endpoint(_remote(sshd, inbox, port=proxy.port, known_hosts=str(known)))
    try:
        with BatchSource(endpoint, context(tmp_path / "var"), schedule=False) as source:
            proxy.cut_after = 600_000
            with pytest.raises(RemoteTransferError):
                source.poll_now()
            assert not [p for p in source.dirs.staging.iterdir()]
            proxy.cut_after = None
            source.poll_now()
            assert len(drain(source)) == 20_000
    finally:
        proxy.close()


def test_upload_dropped_mid_transfer_leaves_no_partial_file(sshd: SSHServer, tmp_path: Path) -> None:
    """A connection dropped mid-upload leaves no file under the final name; the retry completes it."""
    outbox = _folder(sshd, "out_drop")
    proxy = CuttingProxy(sshd.port)
    known = _via_proxy(sshd, proxy, tmp_path)
    endpoint = BatchEndpoint.model_validate(
        {
            "adapter": "batch",
            "layout": "config/layouts/ncr_customer_extract.yaml",
            "encoding": "gbk",
            "remote": _remote(sshd, outbox, port=proxy.port, known_hosts=str(known)),
            "outbound": {"file_name": "571_CUST_{date:%Y%m%d}_{seq:03d}.dat"},
        }
    )
    day = datetime(2024, 6, 1, 2, tzinfo=ZoneInfo("Asia/Shanghai"))
    try:
        with BatchSink(endpoint, context(tmp_path / "var", "ncr.customers_out"), schedule=False) as sink:
            for n in range(2_000):
                sink.write(
                    Message(body={"customer_id": f"C{n}", "customer_name": "客户名称" * 20}, id=f"m{n}")
                )
            proxy.cut_after = 120_000
            with pytest.raises(RemoteTransferError):
                sink.flush(day)
            assert "571_CUST_20240601_001.dat" not in os.listdir(outbox)
            proxy.cut_after = None
            assert sink.upload_pending() == ["571_CUST_20240601_001.dat"]
    finally:
        proxy.close()
    data = (outbox / "571_CUST_20240601_001.dat").read_bytes()
    assert data.endswith(b"T|2000\r\n")
    assert data.count(b"\r\n") == 2_002
    assert (outbox / "571_CUST_20240601_001.dat.ok").exists()


def test_links_planted_over_sftp_are_never_followed(sshd: SSHServer, tmp_path: Path) -> None:
    """Over SFTP, links planted in error/ and reply/ (named like the .err note, the reply and its old
    temp name) and in the inbox leave their targets unchanged; the inbox link is listed as a link
    (lstat), never downloaded, and esb health names it; a link in place of done/ is refused."""
    from adapters.batch.health import endpoint_health
    from adapters.batch.remote import make_remote
    from esb.files import UnsafePathError

    inbox = _folder(sshd, "in_links")
    outside = tmp_path / "outside"
    outside.mkdir()
    bad, good = "CHG_571_20240531_009.dat", "CHG_571_20240531_001.dat"
    write_charge_file(inbox / bad, 20, count_delta=1)
    write_charge_file(inbox / good, 4)
    for name in (bad, good):
        (inbox / f"{name}.ok").write_bytes(b"")
    planted = [
        inbox / "error" / f"{bad}.err",
        inbox / "reply" / f"{good}.rec",
        inbox / "reply" / f".{good}.rec.part",
        inbox / "CHG_571_20240531_005.dat",
    ]
    for n, link in enumerate(planted):
        target = outside / f"target{n}"
        target.write_bytes(b"precious")
        link.parent.mkdir(exist_ok=True)
        os.symlink(target, link)
    (inbox / "CHG_571_20240531_005.dat.ok").write_bytes(b"")
    endpoint = inbound_endpoint(_remote(sshd, inbox), reply={"enabled": True})
    with BatchSource(endpoint, context(tmp_path / "var"), schedule=False) as source:
        for _ in range(3):
            source.poll_now()
            drain(source)
        status, detail = endpoint_health(source.endpoint, source.context)
    assert {p.read_bytes() for p in outside.iterdir()} == {b"precious"}
    assert "record count mismatch" in (inbox / "error" / f"{bad}.err").read_text()
    assert "STATUS|PROCESSED" in (inbox / "reply" / f"{good}.rec").read_text("gb18030")
    assert (inbox / "done" / good).is_file()
    assert status == "degraded"
    assert "'CHG_571_20240531_005.dat' (link)" in detail
    (inbox / "done").rename(inbox / "done_real")
    os.symlink(inbox / "done_real", inbox / "done")
    remote = make_remote(endpoint.remote, tmp_path)
    remote.connect()
    try:
        with pytest.raises(UnsafePathError, match="symbolic link"):
            remote.rename(f"{good}.ok" if (inbox / f"{good}.ok").exists() else "x", f"done/{good}.x")
        with pytest.raises(UnsafePathError, match="symbolic link"):
            remote.makedirs("done")
    finally:
        remote.close()


def test_read_ahead_ends_quietly_when_the_connection_is_lost(sshd: SSHServer, tmp_path: Path) -> None:
    """The read-ahead's requests on a lost connection end without an exception (paramiko raises EOFError)."""
    inbox = _folder(sshd, "in_lost")
    (inbox / "big.dat").write_bytes(b"x" * 300_000)
    config = BatchEndpoint.model_validate(
        {"adapter": "batch", "layout": "x", "remote": _remote(sshd, inbox)}
    ).remote
    remote = SFTPRemote(config, tmp_path)
    remote.connect()
    try:
        handle = remote.sftp.open(remote._p("big.dat"), "rb")
        remote.sftp.get_channel().get_transport().sock.close()  # the connection is gone
        chunks = [(0, 32_768), (32_768, 32_768)]
        with pytest.raises((EOFError, OSError)):
            handle._prefetch_thread(chunks, None)  # paramiko's own: raises in its thread
        quiet_read_ahead(handle)
        handle._prefetch_thread(chunks, None)  # ends quietly
    finally:
        remote.close()
