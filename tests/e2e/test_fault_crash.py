"""Issue 16's e2e: the assurance process (112 fault -> ticket -> work order -> closure) survives SIGKILLs.

100 112 fault reports go onto the desk's queue of a project copy that runs the route fault112-to-hub and
processes/fault_to_resolution.yaml (the technicians' answer deadline cut to 3 s in the copy); the hub runs
in a subprocess on the embedded default (SQLite queues, journal and store) and is SIGKILLed and restarted
twice while faults are in flight (at 25% and 60% of them ended). The simulated work-order system runs in
this process on loopback with a work-order hour of four seconds, scripted per ticket: 10% of the first
technicians reject, 10% never answer (reassigned at the deadline), 5% complete after the due time
(escalated). Every fault is a critical broadband fault of Hangzhou, Ningbo or Wenzhou (the table gives
8 hours: 32 s here, longer than a restart at load 20 (20-23 s) and the work together), so a work order
dispatched in time is done before its due time even when a kill falls between its pick and its dispatch.

The answer deadline is shorter than a restart on purpose: deadlines come due while the hub is down, and
the restarted hub must read the answers already waiting on workorder.events (some of them leased to the
killed hub's reader until their visibility timeout, 3 s in the e2e hubs, runs out) before it fires them,
so a technician who accepted in time is not passed over (docs/processes.md, "Timers and answers across a
restart"). The restarted hub holds such timers until its reply queues are read back
(processes.backlog_grace, 90 s, at most). Before that rule, main failed this test in 2 of 2 runs at load
13-15 (tickets offered to every technician of their team, then failed), a 20 s deadline failed now and
then once a restart took 20-23 s, and the test ran with 40 s and a 9 s hour.

Checked at the end: every ticket resolved, no instance left running, waiting, alert or stuck; each
ticket offered to exactly the technicians its script needs (a pick redone after a kill gets the same
work order), no work order answered twice, each silent technician's order recalled; the supervisor told
of exactly the late tickets; the hotline told of each ticket once.
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest
import sqlalchemy as sa
import yaml

from esb.process.engine.tables import process_instances
from esb.project import Project
from simulators.devenv import ensure_credentials
from simulators.fault112 import Fault112Sender, critical_broadband, plan_faults
from simulators.receiver import QueueReceiver
from simulators.workorder import WorkOrderService
from tests.e2e.hub_process import ROOT
from tests.e2e.ops_hub import copy_project
from tests.e2e.order_processes import ProcessHub, free_ports, order_environ
from tests.waiting import wait_for_count

PROCESS = "fault_to_resolution"
ROUTE = "fault112-to-hub"
ENDED = ("completed", "partial", "failed", "cancelled")
OFFERS = {"resolved": 1, "late": 1, "reject": 2, "silent": 2}


def fault_project(target: Path) -> Path:
    """The repository's project with only the 112 route and the assurance process (answer deadline 3 s)."""
    copy_project(target)
    routes = yaml.safe_load((ROOT / "routes.yaml").read_text(encoding="utf-8"))["routes"]
    (target / "routes.yaml").write_text(
        yaml.safe_dump({"routes": [r for r in routes if r["id"] == ROUTE]}, allow_unicode=True),
        encoding="utf-8",
    )
    document = yaml.safe_load((ROOT / "processes" / f"{PROCESS}.yaml").read_text(encoding="utf-8"))
    (answer,) = [s for s in document["steps"] if s["name"] == "answer"]
    answer["await"]["deadline"] = "3s"
    processes = target / "processes"  # the copy holds only this definition
    if processes.exists():
        shutil.rmtree(processes)
    processes.mkdir()
    (processes / f"{PROCESS}.yaml").write_text(
        yaml.safe_dump(document, allow_unicode=True, sort_keys=False), encoding="utf-8"
    )
    return target


class Tickets:
    """The assurance process's instances in the journal's database."""

    def __init__(self, url: str) -> None:
        self.engine = sa.create_engine(url)

    def states(self) -> dict[str, tuple[str, str]]:
        """ticket id -> (status, state)."""
        t = process_instances.c
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(t.data, t.status, t.state).where(t.process == PROCESS))
            return {r.data["id"]: (str(r.status), str(r.state)) for r in rows}

    def ended(self, ids: set[str]) -> int:
        """How many of ``ids`` have ended."""
        return sum(1 for i, (status, _) in self.states().items() if i in ids and status in ENDED)

    def close(self) -> None:
        """Dispose of the connections."""
        self.engine.dispose()


@pytest.mark.slow
def test_100_faults_survive_two_sigkills_on_the_embedded_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """100 faults, hub SIGKILLed twice: all resolved, nobody offered a ticket twice, exactly the late ones
    escalated, each silent technician's work order recalled, the hotline told once per ticket."""
    root = fault_project(tmp_path / "project")
    ports = free_ports()
    project = Project.load(root, environ=order_environ(tmp_path / "var", ports))
    for name, value in ensure_credentials(project).items():
        monkeypatch.setenv(name, value)
    environ = order_environ(tmp_path / "var", ports)
    project = Project.load(root, environ=environ)
    project.settings.data_dir.mkdir(parents=True, exist_ok=True)
    faults = critical_broadband(plan_faults(100, "crash"))
    ids = {f.ticket_id for f in faults}
    service = WorkOrderService(project, hour_seconds=4.0, answer_delay=0.2, work_delay=0.2)
    service.serve(port=int(ports["ESB_WORKORDER_PORT"]))
    receivers = {
        name: QueueReceiver(project, name)
        for name in ("hub.supervisor_escalations", "hotline.ticket_notices")
    }
    for receiver in receivers.values():
        receiver.start()
    hub = ProcessHub(root, environ, tmp_path / "hub.log")
    tickets = Tickets(project.settings.journal.url)
    try:
        hub.start()
        hub.wait_started()
        sender = Fault112Sender(project, service.system)
        sender.send(faults)
        sender.close()
        for share in (0.25, 0.6):
            target = math.ceil(share * len(ids))
            wait_for_count(lambda: tickets.ended(ids), target, f"{share:.0%} of the faults")
            assert tickets.ended(ids) < len(ids), "every fault ended before the kill: add faults"
            starts = hub.starts()
            hub.kill()
            hub.start()
            hub.wait_started(previous=starts)
        wait_for_count(lambda: tickets.ended(ids), len(ids), "every fault to end")
        states = tickets.states()
        assert {i: states[i] for i in ids} == {i: ("completed", "resolved") for i in ids}
        assert [s for s in states.values() if s[0] not in ENDED] == []
        system = service.system
        assert {f.ticket_id: len(system.offered[f.ticket_id]) for f in faults} == {
            f.ticket_id: OFFERS[f.scenario] for f in faults
        }
        for order in system.orders.values():
            assert len(order.events) == len(set(order.events)), order
        for fault in faults:
            if fault.scenario == "silent":
                first = next(o for o in system.orders.values() if o.ticket_no == fault.ticket_id)
                assert first.state == "recalled", fault.ticket_id
        escalations = receivers["hub.supervisor_escalations"]
        late = {f.ticket_id for f in faults if f.escalated}
        wait_for_count(escalations.count, len(late), "the escalations")
        told = {json.loads(body)["ticketId"] for body in escalations.received.values()}
        assert told == late
        notices = receivers["hotline.ticket_notices"]
        wait_for_count(notices.count, len(ids), "the hotline's notices")
        assert {json.loads(body)["ticketId"] for body in notices.received.values()} == ids
        assert notices.count() == len(ids)  # a notice redone after a kill carries the same message id
        assert service.refused == []
    finally:
        try:
            assert hub.stop() == 0, hub.log.read_text()[-3000:]
        finally:
            for receiver in receivers.values():
                receiver.stop()
            service.stop()
            tickets.close()
