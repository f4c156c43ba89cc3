"""Two hub processes on one machine share the embedded queues and journal as competing consumers."""

from __future__ import annotations

from pathlib import Path

from esb.journal import Journal
from simulators.crm import CRMSimulator, order_scenario
from tests.e2e.hub_process import HubProcess, drain_iom, load_project, wait_for_outcomes

ROUTE = "crm-order-to-iom"


def test_two_hub_processes_share_the_work_without_duplicates(tmp_path: Path) -> None:
    """300 orders through two `esb run` processes: each ends once, as planned; IOM gets each good one once."""
    project = load_project(tmp_path / "var")
    project.settings.data_dir.mkdir(parents=True)
    plan = order_scenario(300, run="pair")
    hubs = [HubProcess(project.settings.data_dir, tmp_path / f"hub{i}.log") for i in range(2)]
    journal = Journal(project.settings.journal.url)
    for hub in hubs:
        hub.start()
    try:
        for hub in hubs:
            hub.wait_started()  # both consume before the orders arrive, so both get a share
        with CRMSimulator(project) as crm:
            for planned in plan:
                crm.send(planned.message)
        journal.connect()
        ids = [p.message.id for p in plan]
        assert wait_for_outcomes(journal, ROUTE, ids, len(ids)) == len(ids)
        outcomes = {p.message.id: journal.outcome(ROUTE, p.message.id) for p in plan}
    finally:
        codes = [hub.stop() for hub in hubs]
        journal.close()
    assert codes == [0, 0]
    assert outcomes == {p.message.id: p.expected for p in plan}
    logs = [(tmp_path / f"hub{i}.log").read_text() for i in range(2)]
    assert all("Traceback" not in log for log in logs)
    # 60 of the orders are bad: each hub logs the ones it dead-lettered, so both must have taken work
    assert all("dead-lettered" in log for log in logs), "one hub process did no work"
    expected = {p.message.id for p in plan if p.expected == "delivered"}
    iom = drain_iom(project, len(expected))
    assert set(iom.received) == expected
    assert iom.duplicates == 0
