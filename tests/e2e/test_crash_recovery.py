"""SIGKILL the hub mid-flow on the embedded default, restart it: no message is lost."""

from __future__ import annotations

import time
from pathlib import Path

from esb.journal import Journal
from simulators.crm import CRMSimulator, order_scenario
from simulators.iom import IOMSimulator
from tests.e2e.hub_process import HubProcess, load_project, wait_for_outcomes

ROUTE = "crm-order-to-iom"


def test_sigkill_twice_loses_nothing(tmp_path: Path) -> None:
    """2,000 CRM orders survive two SIGKILLs of the hub: each ends as planned and IOM gets every good one."""
    project = load_project(tmp_path / "var")
    project.settings.data_dir.mkdir(parents=True)
    plan = order_scenario(2000, run="crash")
    ids = [p.message.id for p in plan]
    with CRMSimulator(project) as crm:
        for planned in plan:
            crm.send(planned.message)
    hub = HubProcess(project.settings.data_dir, tmp_path / "hub.log")
    journal = Journal(project.settings.journal.url)
    try:
        hub.start()
        journal.connect()
        for threshold in (150, 700):
            done = wait_for_outcomes(journal, ROUTE, ids, threshold, timeout=60)
            assert done < len(ids), "the hub finished before it could be killed: raise the message count"
            hub.kill()
            hub.start()
        assert wait_for_outcomes(journal, ROUTE, ids, len(ids), timeout=120) == len(ids)
        assert hub.stop() == 0
        outcomes = {p.message.id: journal.outcome(ROUTE, p.message.id) for p in plan}
    finally:
        hub.stop()
        journal.close()
    assert outcomes == {p.message.id: p.expected for p in plan}
    iom = IOMSimulator(project)
    iom.start()
    expected_ids = {p.message.id for p in plan if p.expected == "delivered"}
    deadline_ok = iom.ready.wait(10)
    end = time.monotonic() + 30
    while iom.count() < len(expected_ids) and time.monotonic() < end:
        time.sleep(0.1)
    iom.stop()
    iom.join(5)
    assert deadline_ok
    assert set(iom.received) == expected_ids
    assert iom.malformed == []
