"""The 112 assurance flow through a running hub (issue 16): 112 fault reports on the desk's queue go
through the route fault112-to-hub (canonical ticket, dispatch table) to the fault_to_resolution process,
which works with the simulated work-order system over HTTP and its queues. A fault ends resolved, a
rejected work order is reassigned, a silent technician's work order is recalled and reassigned at its
deadline, and a work order completed after its due time is escalated to the supervisor queue; the CRM
and the 10000 hotline are told. A complaint the hotline files over SOAP joins the same path, and the
hotline's ticket status query (SOAP request-reply) answers by ticket id and by access number. The
project is the repository's mappings and systems on a temp folder, with the shipped definition whose
answer deadline is cut to 3 s (the demo's way: the file is changed in the copy, never by a setting) and
a work-order hour of one second."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
import yaml

from esb.process.engine.tables import process_instances
from esb.project import Project
from esb.runtime.hub import Hub
from simulators.devenv import choose_free_ports, ensure_credentials
from simulators.fault112 import Fault112Sender, PlannedFault, plan_faults
from simulators.hotline_tickets import hotline_ticket_client
from simulators.receiver import QueueReceiver
from simulators.status_query import QueryRefused
from simulators.workorder import WorkOrderService

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
ANSWER_DEADLINE = "3s"
ROUTES = ("fault112-to-hub", "hotline-complaint-to-hub", "hotline-ticket-status-query")


def wait_for(predicate: Callable[[], bool], timeout: float = 60.0) -> bool:
    """Poll ``predicate`` until true or ``timeout``; return the last answer."""
    deadline = time.monotonic() + timeout
    while not predicate() and time.monotonic() < deadline:
        time.sleep(0.2)
    return predicate()


def short_definition(target: Path) -> None:
    """processes/fault_to_resolution.yaml with the technicians' answer deadline cut to ANSWER_DEADLINE."""
    document = yaml.safe_load((REPO / "processes/fault_to_resolution.yaml").read_text(encoding="utf-8"))
    (answer,) = [s for s in document["steps"] if s["name"] == "answer"]
    answer["await"]["deadline"] = ANSWER_DEADLINE
    target.write_text(yaml.safe_dump(document, allow_unicode=True, sort_keys=False), encoding="utf-8")


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Project:
    """The repository's mappings, model and systems, the assurance routes and process."""
    for name, value in choose_free_ports({}).items():
        monkeypatch.setenv(name, value)
    root = tmp_path / "project"
    for folder in ("config", "canonical_model", "transforms"):
        shutil.copytree(REPO / folder, root / folder)
    (root / "processes").mkdir()
    short_definition(root / "processes" / "fault_to_resolution.yaml")
    routes = yaml.safe_load((REPO / "routes.yaml").read_text(encoding="utf-8"))["routes"]
    chosen = [route for route in routes if route["id"] in ROUTES]
    (root / "routes.yaml").write_text(
        yaml.safe_dump({"routes": chosen}, allow_unicode=True), encoding="utf-8"
    )
    settings = {
        "data_dir": str(tmp_path / "var"),
        "broker": {"url": "sqlite:///{data_dir}/queues.db"},
        "journal": {"url": "sqlite:///{data_dir}/journal.db"},
        "monitoring": {"enabled": False},
        "runtime": {"poll_timeout": "0.1s", "watch_project": False},
        "processes": {"runners": 2, "poll": "0.1s"},
    }
    (root / "config" / "settings.yaml").write_text(yaml.safe_dump(settings), encoding="utf-8")
    loaded = Project.load(root, environ=dict(os.environ))
    for name, value in ensure_credentials(loaded).items():
        monkeypatch.setenv(name, value)
    return loaded


@pytest.fixture
def workorders(project: Project) -> Iterator[WorkOrderService]:
    """The work-order system on the port workorder.pick_technician names; an hour lasts a second."""
    service = WorkOrderService(project, hour_seconds=1.0, answer_delay=0.2, work_delay=0.2)
    service.serve(port=int(os.environ["ESB_WORKORDER_PORT"]))
    yield service
    service.stop()


@pytest.fixture
def receivers(project: Project) -> Iterator[dict[str, QueueReceiver]]:
    """Receivers for what the process tells the CRM, the hotline and the supervisor."""
    started = {
        name: QueueReceiver(project, name)
        for name in ("crm.ticket_status", "hotline.ticket_notices", "hub.supervisor_escalations")
    }
    for receiver in started.values():
        receiver.start()
        receiver.ready.wait(10)
    yield started
    for receiver in started.values():
        receiver.stop()
        receiver.join(5)


@pytest.fixture
def hub(project: Project, workorders: WorkOrderService) -> Iterator[Hub]:
    """The hub on the project (the route and the process), started; stopped at the end."""
    running = Hub(project)
    running.start(wait=30)
    yield running
    running.stop(timeout=10)


def tickets(project: Project) -> dict[str, tuple[str, str, str | None]]:
    """ticket id -> (status, state, error) of every fault_to_resolution instance."""
    t = process_instances.c
    engine = sa.create_engine(project.settings.journal.url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                sa.select(t.status, t.state, t.data, t.error).where(t.process == "fault_to_resolution")
            )
            return {row.data["id"]: (str(row.status), str(row.state), row.error) for row in rows}
    finally:
        engine.dispose()


def test_faults_through_the_hub_end_resolved_reassigned_and_escalated(
    project: Project, workorders: WorkOrderService, receivers: dict[str, QueueReceiver], hub: Hub
) -> None:
    """One fault per scenario: all end resolved; the rejected and the silent technicians' tickets went to
    a second technician (the silent one's order recalled); the late one was escalated; CRM, hotline told."""
    planned = plan_faults(4, "it", {"reject": 0.25, "silent": 0.25, "late": 0.25})
    assert sorted(f.scenario for f in planned) == ["late", "reject", "resolved", "silent"]
    by_scenario: dict[str, PlannedFault] = {f.scenario: f for f in planned}
    sender = Fault112Sender(project, workorders.system)
    sender.send(planned)
    sender.close()
    ids = {f.ticket_id for f in planned}
    assert wait_for(
        lambda: (
            {k: v for k, v in tickets(project).items() if k in ids}
            == {i: ("completed", "resolved", None) for i in ids}
        )
    ), (tickets(project), workorders.refused)
    system = workorders.system
    rejected = system.events_of(by_scenario["reject"].ticket_id)
    assert [e for _, _, e in rejected][:1] == ["REJECT"]
    assert len({tech for _, tech, _ in rejected}) == 2
    silent = system.events_of(by_scenario["silent"].ticket_id)
    assert [e for _, _, e in silent] == ["ACCEPT", "APPOINT", "COMPLETE"]  # from the second technician only
    first, second = system.offered[by_scenario["silent"].ticket_id]
    assert {
        o.tech_no: o.state for o in system.orders.values() if o.ticket_no == by_scenario["silent"].ticket_id
    } == {
        first: "recalled",
        second: "completed",
    }
    escalations = receivers["hub.supervisor_escalations"]
    assert wait_for(lambda: escalations.count() == 1, 10)
    (escalation,) = escalations.received.values()
    assert by_scenario["late"].ticket_id.encode() in escalation
    notices = receivers["hotline.ticket_notices"]
    assert wait_for(lambda: notices.count() == 4, 10)
    assert all("已修复".encode() in body for body in notices.received.values())
    updates = receivers["crm.ticket_status"]
    assert wait_for(lambda: sum(b'"Resolved"' in b for b in updates.received.values()) == 4, 10)


def test_a_hotline_complaint_joins_the_path_and_the_hotline_asks_where_tickets_stand(
    project: Project, workorders: WorkOrderService, receivers: dict[str, QueueReceiver], hub: Hub
) -> None:
    """SubmitComplaint becomes ticket TT-10000-<no>, dispatched and resolved; QueryTicketStatus finds a
    ticket waiting for its silent technician by id, the resolved one by access number, and refuses a
    query naming neither with a BadRequest fault."""
    workorders.system.scenarios["TT-10000-C1"] = "silent"
    client = hotline_ticket_client(project)
    try:
        client.complain(
            "C1",
            access_number="ad057412345678",
            city="宁波",
            product="宽带",
            fault_type="网速慢",
            category="network.quality",
            urgency="重要",
            content="晚上宽带网速很慢",
        )
        assert wait_for(lambda: len(workorders.system.offered.get("TT-10000-C1", [])) == 1), tickets(project)
        waiting = client.ticket_status(ticket_id="TT-10000-C1")
        assert waiting["found"] is True
        (seen,) = waiting["ticket"]
        assert (seen["state"], seen["stateText"], seen["step"]) == ("inProgress", "处理中", "answer")
        assert seen["workOrderId"] == "WO-000001"
        assert wait_for(lambda: tickets(project).get("TT-10000-C1") == ("completed", "resolved", None)), (
            tickets(project)
        )
        assert workorders.system.orders["WO-000001"].state == "recalled"  # reassigned at the 3 s deadline
        resolved = client.ticket_status(access_number="ad057412345678")
        (seen,) = resolved["ticket"]
        assert (seen["ticketId"], seen["state"], seen["stateText"], seen["status"]) == (
            "TT-10000-C1",
            "resolved",
            "已修复",
            "completed",
        )
        assert client.ticket_status(ticket_id="TT-NONE") == {"found": False, "ticket": []}
        with pytest.raises(QueryRefused) as refused:
            client.ticket_status()
        assert refused.value.code == "BadRequest"
        assert refused.value.sender
    finally:
        client.close()
