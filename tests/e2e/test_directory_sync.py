"""Privacy and change detection of the directory flow through the running hub, across the daily delta
and the weekly full file: an unlisted subscriber's number is never in any file; a subscriber who becomes
unlisted is deleted (number only) and left out of the next full file; an unchanged subscriber sends
nothing; a late, older change is dropped."""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from click.testing import CliRunner

from esb.cli.main import cli
from esb.message import Message
from esb.ops.full_file import write_full_file
from esb.project import Project
from esb.runtime.hub import Hub
from esb.sync import SyncStore
from simulators.directory_scenario import DOWNSTREAM_ROUTES, PlannedSubscriber, subscriber_xml
from tests.e2e.hub_process import ROOT, hub_environ

ROUTE = "crm-subscriber-to-hub"
DAY = datetime(2026, 1, 11, 3, 0, tzinfo=ZoneInfo("Asia/Shanghai"))
LISTED = PlannedSubscriber("1-A", "13900000001", "张伟", listed=True, printed=True)
UNLISTED = PlannedSubscriber("1-B", "13900000002", "李娜", listed=False, printed=False)
LEAVING = PlannedSubscriber("1-C", "13900000003", "王芳", listed=True, printed=True)
LATE_LISTED_B = PlannedSubscriber("1-B", "13900000002", "李娜", listed=True, printed=True)
LEFT = PlannedSubscriber("1-C", "13900000003", "王芳", listed=False, printed=False)


class DirectoryHub:
    """The hub running the directory routes on a throwaway data folder, one listing per file."""

    def __init__(self, tmp: Path) -> None:
        self.exchange = tmp / "exchange"
        self.environ = hub_environ(tmp / "data", ESB_EXCHANGE_DIR=str(self.exchange), ESB_BATCH_POLL="0.5s",
                                   ESB_DIRECTORY_MAX_RECORDS="1")  # fmt: skip
        self.project = Project.load(ROOT, environ=self.environ)
        self.hub = Hub(self.project, route_ids=[ROUTE, *DOWNSTREAM_ROUTES])
        self.sent = 0

    def send(self, sub: PlannedSubscriber, updated: str) -> str:
        """Publish one CRM subscriber change; wait until both directory routes ended it; return its id."""
        self.sent += 1
        message = Message(body=subscriber_xml(sub, updated), id=f"sub-{self.sent}")
        config = self.project.endpoint("crm.subscribers_out")
        with self.project.adapter_for("crm.subscribers_out").sink(
            config, self.project.context(ROUTE)
        ) as sink:
            sink.write(message)
        deadline = time.monotonic() + 30
        routes = ("subscriber-to-directory114", "subscriber-to-phonebook")
        while time.monotonic() < deadline:
            if all(self.hub.journal.outcome(r, message.id) for r in routes):
                return message.id
            time.sleep(0.1)
        raise AssertionError(f"{message.id} did not end on {routes}")

    def outcome(self, route: str, message_id: str) -> str | None:
        """How the message ended on ``route``."""
        return self.hub.journal.outcome(route, message_id)

    def files(self, folder: str) -> dict[str, bytes]:
        """The listing files (not done files) in an exchange folder, by name."""
        path = self.exchange / folder
        return {p.name: p.read_bytes() for p in sorted(path.glob("*")) if p.is_file() and p.suffix != ".ok"}


def test_unlisted_never_in_delta_or_full_file_and_leaving_subscriber_is_deleted(tmp_path: Path) -> None:
    """Across the delta files and the full files (written by the sync state, also by `esb full-file`):
    the unlisted subscriber's number never appears, not even when a late, older change says listed; the
    subscriber who became unlisted is a number-only delete and is in no full file; an unchanged change
    writes nothing."""
    hub = DirectoryHub(tmp_path)
    try:
        hub.hub.start()
        hub.send(LISTED, "01/05/2026 10:00:00")
        hub.send(UNLISTED, "01/05/2026 10:00:00")
        hub.send(LEAVING, "01/05/2026 10:00:00")
        again = hub.send(LISTED, "01/06/2026 09:00:00")  # newer, but nothing 114 lists changed
        assert hub.outcome("subscriber-to-directory114", again) == "filtered"
        hub.send(LATE_LISTED_B, "01/04/2026 08:00:00")  # older than the unlisted change: stale
        left = hub.send(LEFT, "01/07/2026 10:00:00")  # became unlisted: a delete goes to each directory
        assert hub.outcome("subscriber-to-directory114", left) == "delivered"
    finally:
        hub.hub.stop()
    with SyncStore(hub.project.settings.journal.url) as store:
        full = write_full_file(hub.project, "subscriber-to-directory114", "dir114.full_out", store, DAY)
    assert (full.records, full.excluded) == (1, 0)
    result = CliRunner().invoke(
        cli, ["--project", str(ROOT), "full-file", "subscriber-to-phonebook", "--to", "phonebook.full_out"],
        env=hub.environ,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "with 1 record(s)" in result.output
    dir114, book = hub.files("dir114/in"), hub.files("phonebook/upload")
    deltas = [data for name, data in dir114.items() if name.endswith("_D.dat")]
    assert len(deltas) == 3  # listed, leaving, leaving's delete: the unchanged and the stale wrote nothing
    for data in [*dir114.values(), *book.values()]:
        assert UNLISTED.number.encode() not in data
    delete = [line for data in deltas for line in data.split(b"\r\n") if line.startswith(b"10D")]
    assert delete == [b"10D" + LEAVING.number.encode().ljust(20) + b" " * 182 + b"20260107100000"]
    assert "王芳".encode("gbk") not in delete[0]
    fulls = [data for name, data in dir114.items() if name.endswith("_F.dat")]
    assert len(fulls) == 1
    assert LISTED.number.encode() in fulls[0]
    assert LEAVING.number.encode() not in fulls[0]
    assert fulls[0].split(b"\r\n")[-2] == b"9900000001"
    full_book = [data.decode("gbk") for name, data in book.items() if name.endswith("_FULL.csv")]
    assert len(full_book) == 1
    assert "TRL,1" in full_book[0]
    assert LEAVING.number not in full_book[0]
