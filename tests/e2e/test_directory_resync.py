"""Directory privacy across full resyncs (docs/sync.md, "Privacy"): the repo's own project, `esb sync
resync` of dir114-listings and phonebook-listings from the CRM's full subscriber extract, the listing
files written into the directories' exchange folders, the weekly full files after. A subscriber who
becomes unlisted between two resyncs is deleted (number only) and is in no file after; an unlisted
subscriber is never in any file, whatever the resyncs and late live changes say."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from click.testing import CliRunner

from esb.cli.main import cli
from esb.message import Message
from esb.project import Project
from esb.runtime.hub import Hub
from simulators.directory_scenario import DOWNSTREAM_ROUTES, PlannedSubscriber, subscriber_xml
from tests.directory_extract import write_subscriber_extract
from tests.e2e.hub_process import ROOT, hub_environ

SYNCS = {"dir114-listings": "dir114/in", "phonebook-listings": "phonebook/upload"}
LISTED = PlannedSubscriber("1-A", "13900000001", "张伟", listed=True, printed=True)
UNLISTED = PlannedSubscriber("1-B", "13900000002", "李娜", listed=False, printed=False)
LEAVING = PlannedSubscriber("1-C", "13900000003", "王芳", listed=True, printed=True)
LEFT = PlannedSubscriber("1-C", "13900000003", "王芳", listed=False, printed=False)
RENAMED_UNLISTED = PlannedSubscriber("1-B", "13900000002", "李娜娜", listed=False, printed=True)
DAY = datetime(2026, 1, 11, 3, 0, tzinfo=ZoneInfo("Asia/Shanghai"))


class Directories:
    """The repo's project on throwaway data and exchange folders, one listing per delta file."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.exchange = tmp / "exchange"
        self.environ = hub_environ(tmp / "data", ESB_EXCHANGE_DIR=str(self.exchange),
                                   ESB_DIRECTORY_MAX_RECORDS="1")  # fmt: skip
        self.extracts = 0

    def resync(self, *subscribers: PlannedSubscriber, updated: str) -> dict[str, dict[str, int]]:
        """Write the CRM's full extract of ``subscribers`` and resync both directories from it (CLI);
        return each run's counts."""
        self.extracts += 1
        path = self.tmp / "extracts" / f"CRM_SUBS_FULL_20260110_{self.extracts:03d}.dat"
        write_subscriber_extract(path, subscribers, updated)
        counts = {}
        for name in SYNCS:
            result = CliRunner().invoke(
                cli, ["--project", str(ROOT), "sync", "resync", name, "--extract", str(path), "--json"],
                env=self.environ,
            )  # fmt: skip
            assert result.exit_code == 0, result.output
            report = result.output[result.output.index("{\n") :]  # the run, after the log lines
            counts[name] = json.loads(report)["counts"]
        return counts

    def full_files(self) -> None:
        """Write both directories' weekly full file from the sync state (`esb full-file`)."""
        for route, endpoint in (("subscriber-to-directory114", "dir114.full_out"),
                                ("subscriber-to-phonebook", "phonebook.full_out")):  # fmt: skip
            result = CliRunner().invoke(
                cli, ["--project", str(ROOT), "full-file", route, "--to", endpoint], env=self.environ
            )
            assert result.exit_code == 0, result.output

    def files(self) -> dict[str, bytes]:
        """Every listing file of both directories (delta and full, not done files), by folder and name."""
        found = {}
        for folder in SYNCS.values():
            for path in sorted((self.exchange / folder).glob("*")):
                if path.is_file() and path.suffix != ".ok":
                    found[f"{folder}/{path.name}"] = path.read_bytes()
        return found


def lines_of(data: bytes, number: str) -> list[bytes]:
    """The lines of a listing file that name ``number``."""
    return [line for line in data.split(b"\r\n") if number.encode() in line]


def test_a_subscriber_unlisted_between_two_resyncs_is_deleted_and_in_no_file_after(tmp_path: Path) -> None:
    """Resync 1 lists A and C and never B (unlisted); C unlisted by resync 2 is one number-only delete in
    each directory; B renamed while unlisted is still never sent; a third resync and the full files list
    only A; a late, older live "listed" change of C afterwards is stale and writes nothing."""
    dirs = Directories(tmp_path)
    first = dirs.resync(LISTED, UNLISTED, LEAVING, updated="2026-01-05T10:00:00+08:00")
    assert {n: (c["sent"], c["excluded"]) for n, c in first.items()} == {
        "dir114-listings": (2, 1), "phonebook-listings": (2, 1),
    }  # fmt: skip
    after_first = dirs.files()
    assert len(after_first) == 4  # A and C, one delta file each per directory
    second = dirs.resync(LISTED, RENAMED_UNLISTED, LEFT, updated="2026-01-07T10:00:00+08:00")
    assert {n: (c["sent"], c["deleted"], c["unchanged"]) for n, c in second.items()} == {
        "dir114-listings": (0, 1, 1), "phonebook-listings": (0, 1, 1),
    }  # fmt: skip
    new = {name: data for name, data in dirs.files().items() if name not in after_first}
    assert len(new) == 2  # C's delete in each directory, nothing else
    deletes = [line for data in new.values() for line in lines_of(data, LEAVING.number)]
    assert deletes[0].startswith(b"10D")  # 114: action D, the number, blanks where the name was
    assert deletes[1].startswith(b'"DTL","DEL"') or deletes[1].startswith(b"DTL,DEL"), deletes[1]
    for line in deletes:
        assert "王芳".encode("gbk") not in line
    third = dirs.resync(LISTED, RENAMED_UNLISTED, LEFT, updated="2026-01-07T10:00:00+08:00")
    assert all(c["sent"] == c["deleted"] == 0 for c in third.values()), third
    late = late_listed_change(dirs, LEAVING, "01/06/2026 09:00:00")
    assert late == {"subscriber-to-directory114": "filtered", "subscriber-to-phonebook": "filtered"}
    before_full = set(dirs.files())
    dirs.full_files()
    files = dirs.files()
    fulls = {name: data for name, data in files.items() if name not in before_full}
    assert len(fulls) == 2
    for data in fulls.values():
        assert lines_of(data, LISTED.number)
        assert not lines_of(data, LEAVING.number)
    for name, data in files.items():
        assert UNLISTED.number.encode() not in data, name
        assert "李娜".encode("gbk") not in data, name
        if name not in after_first:  # after C became unlisted: only its number-only deletes name it
            assert all(line in deletes for line in lines_of(data, LEAVING.number)), name


def late_listed_change(dirs: Directories, sub: PlannedSubscriber, updated: str) -> dict[str, str | None]:
    """Send a live CRM change of ``sub`` (older than the resyncs) through the running hub; how it ended."""
    project = Project.load(ROOT, environ=dirs.environ)
    hub = Hub(project, route_ids=["crm-subscriber-to-hub", *DOWNSTREAM_ROUTES])
    hub.start()
    try:
        message = Message(body=subscriber_xml(sub, updated), id="late-1")
        config = project.endpoint("crm.subscribers_out")
        context = project.context("crm-subscriber-to-hub")
        with project.adapter_for("crm.subscribers_out").sink(config, context) as sink:
            sink.write(message)
        routes = ("subscriber-to-directory114", "subscriber-to-phonebook")
        return wait_for(hub, routes, message.id)
    finally:
        hub.stop()


def wait_for(hub: Hub, routes: tuple[str, ...], message_id: str) -> dict[str, str | None]:
    """Wait (30 s at most) until the message ended on each route; return how."""
    import time

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        ended = {r: hub.journal.outcome(r, message_id) for r in routes}
        if all(ended.values()):
            return ended
        time.sleep(0.1)
    return {r: hub.journal.outcome(r, message_id) for r in routes}
