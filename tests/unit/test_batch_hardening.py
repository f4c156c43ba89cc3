"""The batch adapter at its edges: links never followed, private modes, duplicates, done files, refusals."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

import pytest

from adapters.batch.errors import UnsafeNameError
from adapters.batch.health import endpoint_health
from adapters.batch.remote import check_name
from esb.journal import Journal
from esb.message import Message
from esb.ops.trace import build_trace
from esb.testing import captured_logs
from simulators.batch_files import write_charge_file
from tests.unit.batch_helpers import PROJECT, context, drain, drop, local_sink, local_source

NAME = "CHG_571_20240531_001.dat"
COPY = "CHG_571_20240531_002.dat"
ROUTE = "batch:billing.charges_in"
NCR = "config/layouts/ncr_customer_extract.yaml"


def _content(tmp: Path, records: int = 4, **bad: Any) -> bytes:
    write_charge_file(tmp / "content.tmp", records, **bad)
    data = (tmp / "content.tmp").read_bytes()
    (tmp / "content.tmp").unlink()
    return data


def _outside(tmp: Path, name: str) -> Path:
    """A file outside every endpoint folder that a planted link points at."""
    target = tmp / "outside" / name
    target.parent.mkdir(exist_ok=True)
    target.write_bytes(b"precious")
    return target


def _plant(link: Path, target: Path) -> None:
    link.parent.mkdir(parents=True, exist_ok=True)
    os.symlink(target, link)


def _journal(tmp: Path) -> Journal:
    journal = Journal(f"sqlite:///{tmp / 'var' / 'journal.db'}")
    journal.connect()
    return journal


@pytest.mark.parametrize(
    "name",
    [
        pytest.param("CHG_a..b.dat", id="inside"),
        pytest.param("..CHG.dat", id="leading"),
        pytest.param("CHG.dat..", id="trailing"),
        pytest.param("CHG/../x.dat", id="component"),
    ],
)
def test_a_name_containing_dot_dot_anywhere_is_refused(name: str) -> None:
    """check_name refuses '..' anywhere in a name, as docs/batch.md promises."""
    with pytest.raises(UnsafeNameError, match=r"'\.\.'"):
        check_name(name)


def test_links_in_error_and_reply_are_replaced_never_followed(tmp_path: Path) -> None:
    """Links planted under the .err note's, the reply's and the old temp names leave their targets as
    they were; the hub's files replace them in the folders; each link it met is logged once."""
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    bad = "CHG_571_20240531_009.dat"
    drop(inbox, bad, _content(tmp_path, 20, count_delta=1))
    drop(inbox, NAME, _content(tmp_path))
    targets = {
        inbox / "error" / f"{bad}.err": _outside(tmp_path, "journal.db"),
        inbox / "reply" / f"{NAME}.rec": _outside(tmp_path, "settings.yaml"),
        inbox / "reply" / f".{NAME}.rec.part": _outside(tmp_path, "state.db"),
        inbox / "reply" / f"{bad}.rec": _outside(tmp_path, "other"),
    }
    for link, target in targets.items():
        _plant(link, target)
    with captured_logs() as logs, local_source(tmp_path, reply={"enabled": True}) as source:
        for _ in range(3):
            source.poll_now()
            drain(source)
    assert {t.read_bytes() for t in targets.values()} == {b"precious"}
    assert "record count mismatch" in (inbox / "error" / f"{bad}.err").read_text()
    assert not (inbox / "error" / f"{bad}.err").is_symlink()
    assert "STATUS|PROCESSED" in (inbox / "reply" / f"{NAME}.rec").read_text("gb18030")
    assert (inbox / "done" / NAME).is_file()
    noted = [e for e in logs if e["event"].startswith("unexpected entry")]
    assert sorted(e["entry"] for e in noted) == sorted(
        repr(link.name) for link in targets if link.parent.name == "reply"
    )  # listed before the replies replaced them; error/ was listed after its note replaced the link


def test_links_and_folders_in_the_inbox_are_refused_once_and_shown_by_health(tmp_path: Path) -> None:
    """A link (to a file outside) and a stray folder in the inbox are never staged or followed, logged
    once over several polls, and make the endpoint degraded in esb health."""
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    target = _outside(tmp_path, "customers.dat")
    target.write_bytes(_content(tmp_path))
    _plant(inbox / NAME, target)
    (inbox / f"{NAME}.ok").write_bytes(b"")
    (inbox / "CHG_folder.dat").mkdir()
    with captured_logs() as logs, local_source(tmp_path) as source:
        for _ in range(3):
            source.poll_now()
            assert drain(source) == []
        status, detail = endpoint_health(source.endpoint, source.context)
    noted = sorted((e["entry"], e["kind"]) for e in logs if e["event"].startswith("unexpected entry"))
    assert noted == [(repr(NAME), "link"), (repr("CHG_folder.dat"), "folder")]
    assert status == "degraded"
    assert f"{NAME!r} (link)" in detail
    assert "'CHG_folder.dat' (folder)" in detail
    assert (inbox / NAME).is_symlink()  # left for an operator, never followed
    assert list(source.dirs.staging.iterdir()) == []


def test_health_names_a_link_planted_in_the_reply_folder(tmp_path: Path) -> None:
    """esb health shows a link in reply/ as a finding (degraded) even before the hub meets it."""
    with local_source(tmp_path, reply={"enabled": True}) as source:
        source.poll_now()
        assert endpoint_health(source.endpoint, source.context)[0] == "ok"
        _plant(tmp_path / "inbox" / "reply" / f"{NAME}.rec", _outside(tmp_path, "x"))
        status, detail = endpoint_health(source.endpoint, source.context)
    assert status == "degraded"
    assert f"reply/{NAME + '.rec'!r} (link)" in detail


def _modes(root: Path) -> dict[str, str]:
    found = {}
    for path in [root, *sorted(root.rglob("*"))]:
        st = os.lstat(path)
        found[str(path.relative_to(root.parent))] = oct(stat.S_IMODE(st.st_mode))
    return found


def test_batch_data_files_are_0600_in_0700_folders(tmp_path: Path) -> None:
    """After a file was processed (a reject, a reply) and an outgoing file rendered, every file and folder
    under the endpoints' data dirs is private, state.db's -wal and -shm included, as are the files the
    hub put into the local exchange folders."""
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    drop(inbox, NAME, _content(tmp_path, 20, bad_records={3: b"D short"}, total_delta=0))
    with local_source(tmp_path, reply={"enabled": True}) as source:
        source.poll_now()
        drain(source)
        with local_sink(tmp_path, NCR, file_name="571_CUST_{seq:03d}.dat", name_vars={}) as sink:
            sink.write(Message(body={"customer_id": "C1", "customer_name": "张三"}, id="m1"))
            sink.flush()
            source.poll_now()
            data = _modes(tmp_path / "var" / "batch")
            shared = _modes(inbox / "reply") | _modes(tmp_path / "outbox_remote")
    names = set(data)
    for suffix in ("state.db", "state.db-wal", "state.db-shm"):
        assert f"batch/billing.charges_in/{suffix}" in names
    assert any(n.startswith("batch/billing.charges_in/rejects/") for n in names)
    assert any(n.startswith("batch/billing.charges_in/replies/") for n in names)
    assert any(n.startswith("batch/ncr.customers_out/outbox/") for n in names)
    wrong = {n: m for n, m in data.items() if m != ("0o700" if (tmp_path / "var" / n).is_dir() else "0o600")}
    assert wrong == {}
    uploaded = {n: m for n, m in shared.items() if "/" in n}  # the files, not the exchange folders
    assert len(uploaded) == 4  # reply and rejects, outgoing file and its done file
    assert set(uploaded.values()) == {"0o600"}


def test_same_content_under_a_new_name_is_a_traceable_duplicate(tmp_path: Path) -> None:
    """A copy under a new name hands out no record, is replied DUPLICATE of the original, journaled
    under its own name (esb trace finds it) as filtered, and moves to done/ with its done file."""
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    data = _content(tmp_path)
    drop(inbox, NAME, data)
    with local_source(tmp_path, reply={"enabled": True}) as source:
        source.poll_now()
        first = drain(source)
        source.poll_now()
        drop(inbox, COPY, data)
        source.poll_now()
        assert drain(source) == []
        source.poll_now()
    assert len(first) == 4
    correlation = first[0].message.correlation_id
    reply = (inbox / "reply" / f"{COPY}.rec").read_text("gb18030")
    assert "STATUS|DUPLICATE" in reply
    assert f"DUPLICATE_OF|{NAME}" in reply
    assert f"CORRELATION_ID|{correlation}" in reply
    assert "DELIVERED" not in reply
    assert sorted(p.name for p in inbox.iterdir()) == ["done", "error", "reply"]
    assert sorted(p.name for p in (inbox / "done").iterdir() if p.name.startswith(COPY)) == [
        f"{COPY}.{first[0].message.headers['batch-sha256'][:12]}",
        f"{COPY}.ok.{first[0].message.headers['batch-sha256'][:12]}",
    ]
    with _journal(tmp_path) as journal:
        [dup] = journal.find(key=("batch_file", COPY))
        assert dup.id != correlation
        assert journal.outcome(ROUTE, dup.id) == "filtered"
        detail = journal.history(dup.id)[-1].detail or {}
        assert detail["duplicate_of"] == NAME
        assert detail["original_correlation_id"] == correlation
        trace = build_trace(journal, COPY)
    assert (dup.id, ROUTE, "filtered") in {(j.message_id, j.route, j.state) for j in trace.journeys}


def test_a_resent_file_takes_its_done_file_along(tmp_path: Path) -> None:
    """The same name and content again moves to done/ with its .ok, so a later half-written file of that
    name is not taken because of a stale done file."""
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    data = _content(tmp_path)
    drop(inbox, NAME, data)
    with local_source(tmp_path) as source:
        for _ in range(2):  # processed, then re-sent
            source.poll_now()
            drain(source)
            source.poll_now()
            drop(inbox, NAME, data)
        source.poll_now()
        assert sorted(p.name for p in inbox.iterdir()) == ["done", "error"]
        (inbox / NAME).write_bytes(data[:100])  # the next file of that name, half written, no done file
        source.poll_now()
        assert drain(source) == []
    assert list((inbox / "error").iterdir()) == []
    assert len([p for p in (inbox / "done").iterdir() if p.name.startswith(f"{NAME}.ok")]) == 3


def test_a_done_file_older_than_its_data_file_is_not_trusted(tmp_path: Path) -> None:
    """A data file written after its done file (a stale .ok) waits for a fresh done file."""
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    drop(inbox, NAME, _content(tmp_path))
    stale = os.stat(inbox / NAME).st_mtime - 60
    os.utime(inbox / f"{NAME}.ok", (stale, stale))
    with local_source(tmp_path) as source:
        source.poll_now()
        assert drain(source) == []
        (inbox / f"{NAME}.ok").touch()
        source.poll_now()
        assert len(drain(source)) == 4


def test_an_orphan_done_file_is_ignored_then_moved_once_its_file_was_processed(tmp_path: Path) -> None:
    """A done file without a data file is logged once and left; one whose file was processed and moved
    is moved to done/ after it."""
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / f"{COPY}.ok").write_bytes(b"")
    drop(inbox, NAME, _content(tmp_path))
    with captured_logs() as logs, local_source(tmp_path) as source:
        source.poll_now()
        drain(source)
        source.poll_now()
        (inbox / f"{NAME}.ok").write_bytes(b"")  # sent again, alone
        source.poll_now()
        source.poll_now()
    assert [e["file"] for e in logs if e["event"].startswith("done file without")] == [COPY]
    assert (inbox / f"{COPY}.ok").exists()
    assert not (inbox / f"{NAME}.ok").exists()
    assert len([p for p in (inbox / "done").iterdir() if p.name.startswith(f"{NAME}.ok")]) == 2


@pytest.mark.parametrize(
    ("name", "make", "reason"),
    [
        pytest.param(NAME, "count", "record count mismatch", id="whole-file-check"),
        pytest.param("CHG_571..001.dat", "good", "unsafe remote file name", id="dot-dot-name"),
    ],
)
def test_a_refused_file_gets_a_refused_reply(tmp_path: Path, name: str, make: str, reason: str) -> None:
    """A refused file (whole-file check, unsafe name) is answered REFUSED with the reason in reply/,
    besides its .err note in error/, and nothing is delivered."""
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    drop(inbox, name, _content(tmp_path, 20, **({"count_delta": 1} if make == "count" else {})))
    with local_source(tmp_path, reply={"enabled": True}) as source:
        source.poll_now()
        assert drain(source) == []
        source.poll_now()
    replied = list((inbox / "reply").iterdir())
    assert len(replied) == 1
    text = replied[0].read_text("gb18030")
    assert "STATUS|REFUSED" in text
    assert reason in text
    assert len(list((inbox / "error").glob("*.err"))) == 1
    assert sorted(p.name for p in inbox.iterdir()) == ["done", "error", "reply"]


def test_project_layout_is_found() -> None:
    """The helpers point at this repository (the layouts the tests read)."""
    assert (PROJECT / NCR).is_file()
    assert context(Path("/nonexistent")).endpoint == "billing.charges_in"


def test_local_listing_skips_an_entry_gone_since_the_listing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another writer's temp file renamed away between listing a shared local folder and reading its size
    is skipped, not a transfer error (two outbound endpoints sharing one exchange folder)."""
    from adapters.batch import remote as remote_module
    from adapters.batch.config import RemoteConfig

    (tmp_path / "kept.dat").write_bytes(b"x")
    listdir = os.listdir
    monkeypatch.setattr(remote_module.os, "listdir", lambda fd: [*listdir(fd), ".gone.part"])
    local = remote_module.LocalRemote(RemoteConfig(protocol="local", path=str(tmp_path)), tmp_path)
    assert [entry.name for entry in local.list()] == ["kept.dat"]
