"""The directory flow through the running hub: the CRM's subscriber changes become 114's and the phone
directory's listing files; the simulated directories answer with acks the hub picks up; no unlisted
subscriber's number appears in any file."""

from __future__ import annotations

import time
from pathlib import Path

from esb.project import Project
from esb.runtime.hub import Hub
from simulators.directory_scenario import DOWNSTREAM_ROUTES, FILE_RECORDS, DirectoryScenario
from tests.e2e.hub_process import ROOT, hub_environ

ROUTE = "crm-subscriber-to-hub"


def _files(folder: Path) -> list[bytes]:
    return [p.read_bytes() for p in folder.rglob("*") if p.is_file() and not p.name.endswith(".ok")]


def test_listed_subscribers_reach_their_directories_and_unlisted_ones_no_file(tmp_path: Path) -> None:
    """60 subscribers (36 listed and printed, 12 in 114 only, 12 unlisted): 114 holds the 48 listed, the
    phone directory the 36 printed (rejected ones: acked with a reason and noted by the hub), every ack is
    picked up, and no unlisted number is in any file of either directory (listing files or acks)."""
    environ = hub_environ(
        tmp_path / "data",
        ESB_EXCHANGE_DIR=str(tmp_path / "exchange"),
        ESB_BATCH_POLL="0.5s",
        ESB_DIRECTORY_MAX_RECORDS=str(FILE_RECORDS),
    )
    project = Project.load(ROOT, environ=environ)
    scenario = DirectoryScenario(project, ROUTE)
    hub = Hub(project, route_ids=[ROUTE, *DOWNSTREAM_ROUTES])
    planned = scenario.plan(60, "e2e")
    try:
        hub.start()
        scenario.start()
        scenario.send(planned)
        deadline = time.monotonic() + 90
        while scenario.received() < len(planned) and time.monotonic() < deadline:
            time.sleep(0.3)
        assert scenario.received() == len(planned), scenario.problems()
        assert scenario.problems() == []
    finally:
        scenario.stop()
        hub.stop()
    assert len(scenario.dir114.files) == 48 // FILE_RECORDS
    assert len(scenario.phonebook.files) == 36 // FILE_RECORDS
    unlisted = [s.number for s in scenario.planned if not s.listed]
    assert len(unlisted) == 12
    written = _files(tmp_path / "exchange")
    assert written, "no file was written"
    for number in unlisted:
        assert not any(number.encode() in data for data in written), f"{number} is in a directory file"
