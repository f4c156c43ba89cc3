"""processes/fault_to_resolution.yaml run by the engine with the project's mappings and the simulated
work-order system's logic (simulators/workorder.py): a 112 fault resolved, a rejected work order and a
silent technician's work order reassigned, a work order past its due time escalated."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from esb.config.yamlpos import load_yaml
from esb.decision.registry import TableRegistry
from esb.message import Message
from esb.process.definition import Process
from esb.process.engine import ProcessStore, Runner, feed
from simulators.workorder import Technician, WorkOrderSystem
from tests.unit import test_process_engine as _cases
from tests.unit.test_process_engine import Clock, FakeResources, instance
from tests.unit.test_process_engine_branches import ProjectTransforms

store_url = _cases.store_url
store = _cases.store
clock = _cases.clock

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "transforms/fault112/samples/fault_broadband.json"
ONE_WAY = {"crm.ticket_status", "workorder.orders_in", "hub.supervisor_escalations", "hotline.ticket_notices"}


class Orders:
    """The sink of workorder.orders_in: records the send and hands the body to the work-order system."""

    def __init__(self, systems: Systems) -> None:
        self.systems = systems

    def connect(self) -> None:
        """Nothing to open."""

    def close(self) -> None:
        """Nothing to close."""

    def write(self, message: Message) -> None:
        """Record, then let the work-order system take it."""
        self.systems.endpoint("workorder.orders_in").write(message)
        self.systems.workorders.take(message.body)


class Systems(ProjectTransforms):
    """The project's transforms; the work-order system's logic behind the pick and the orders queue."""

    def __init__(self, clock: Clock) -> None:
        super().__init__()
        self.one_way.update(ONE_WAY)
        self.events: list[Message] = []
        technicians = [
            Technician("T-1", "王师傅", "hz-fiber", frozenset({"fiber"}), load=0),
            Technician("T-2", "李师傅", "hz-fiber", frozenset({"fiber"}), load=1),
            Technician("T-3", "张师傅", "hz-fiber", frozenset({"fiber"}), load=2),
            Technician("T-9", "刘师傅", "hz-fiber", frozenset({"copper"})),
        ]
        self.workorders = WorkOrderSystem(
            technicians, publish=lambda message, _delay: self.events.append(message), clock=clock
        )
        self.endpoint("workorder.pick_technician").reply = lambda m: self.workorders.pick(m.body)

    def sink(self, endpoint: str) -> Any:
        """The orders queue goes to the work-order system; the others are recording fakes."""
        return Orders(self) if endpoint == "workorder.orders_in" else super().sink(endpoint)

    def sent(self, endpoint: str) -> list[Any]:
        """The bodies sent to ``endpoint``, in order."""
        return [body for name, _, body in self.log if name == endpoint]


def definition() -> Process:
    """The shipped process."""
    return Process.model_validate(load_yaml(ROOT / "processes/fault_to_resolution.yaml").data)


def ticket(systems: FakeResources, fault_no: str = "112-0571-1") -> Message:
    """112's sample fault made canonical and decided as the route fault112-to-hub does."""
    report = {**json.loads(SAMPLE.read_text()), "faultNo": fault_no}
    body = systems.transform("fault112/report_to_canonical").apply(Message(body=report)).body
    table = TableRegistry(ROOT).get("fault112_dispatch")
    inputs = {
        "region": body["relatedParty"][0]["id"],
        "product": body["relatedEntity"][0]["name"],
        "fault_category": body["faultCategory"],
        "severity": body["severity"],
    }
    return Message(body={**body, "dispatch": table.decide(inputs).value}, id=f"trigger-{fault_no}")


def deliver(store: ProcessStore, systems: Systems, clock: Clock, runner: Runner) -> list[str]:
    """Feed the work-order system's events to the process (each must be taken); return their names."""
    names = []
    while systems.events:
        event = systems.events.pop(0)
        outcome = feed(store, [definition()], "workorder.events", event, now=clock())
        assert outcome == {"fault_to_resolution": "waiting"}, (event.body, outcome)
        names.append(event.body["event"])
        runner.run_due()
    return names


@pytest.fixture
def systems(clock: Clock) -> Systems:
    """The project's mappings with the simulated work-order system."""
    return Systems(clock)


@pytest.fixture
def runner(store: ProcessStore, systems: Systems, clock: Clock) -> Runner:
    """A runner over the systems."""
    return Runner(store, systems, owner="r1", lease=60, clock=clock)


def test_a_fault_is_dispatched_to_the_least_loaded_technician_and_resolved(
    store: ProcessStore, systems: Systems, runner: Runner, clock: Clock
) -> None:
    """The table's team and skill pick T-1 (load 0); accept, appointment, completion: resolved, all told."""
    iid = runner.start(definition(), ticket(systems))
    runner.run_due()
    (dispatched,) = systems.sent("workorder.orders_in")
    assert (dispatched["action"], dispatched["techNo"], dispatched["slaHours"]) == ("DISPATCH", "T-1", 8)
    assert deliver(store, systems, clock, runner) == ["ACCEPT", "APPOINT", "COMPLETE"]
    row = instance(store, iid)
    assert (row.status, row.state) == ("completed", "resolved")
    assert row.data["appointment"]["@type"] == "Appointment"
    assert [u["Status"] for u in systems.sent("crm.ticket_status")] == [
        "In Progress",
        "In Progress",
        "Resolved",
    ]
    (notice,) = systems.sent("hotline.ticket_notices")
    assert (notice["statusText"], notice["accessNumber"]) == ("已修复", "ad057112345678")
    assert systems.sent("hub.supervisor_escalations") == []


def test_a_rejected_work_order_goes_to_the_next_least_loaded_technician(
    store: ProcessStore, systems: Systems, runner: Runner, clock: Clock
) -> None:
    """T-1 rejects: a new pick gives T-2 a new work order, whose events resolve the ticket."""
    systems.workorders.scenarios["TT-112-0571-1"] = "reject"
    iid = runner.start(definition(), ticket(systems))
    runner.run_due()
    assert deliver(store, systems, clock, runner) == ["REJECT", "ACCEPT", "APPOINT", "COMPLETE"]
    assert [(o["action"], o["techNo"]) for o in systems.sent("workorder.orders_in")] == [
        ("DISPATCH", "T-1"),
        ("DISPATCH", "T-2"),
    ]
    row = instance(store, iid)
    assert (row.status, row.state) == ("completed", "resolved")
    assert row.data["assignment"]["technicianId"] == "T-2"


def test_a_silent_technicians_work_order_is_recalled_and_reassigned_at_its_deadline(
    store: ProcessStore, systems: Systems, runner: Runner, clock: Clock
) -> None:
    """No answer from T-1 in 30 minutes: its work order is recalled and T-2 gets a new one."""
    systems.workorders.scenarios["TT-112-0571-1"] = "silent"
    iid = runner.start(definition(), ticket(systems))
    runner.run_due()
    assert systems.events == []
    clock.advance(29 * 60)
    runner.run_due()
    assert len(systems.sent("workorder.orders_in")) == 1  # not before the deadline
    clock.advance(2 * 60)
    runner.run_due()
    first, recall, second = systems.sent("workorder.orders_in")
    assert (recall["action"], recall["woNo"], recall["techNo"]) == ("RECALL", first["woNo"], "T-1")
    assert (second["action"], second["techNo"]) == ("DISPATCH", "T-2")
    assert systems.workorders.technicians["T-1"].load == 0  # the recalled order no longer counts
    assert deliver(store, systems, clock, runner) == ["ACCEPT", "APPOINT", "COMPLETE"]
    assert instance(store, iid).state == "resolved"


def test_a_work_order_not_completed_by_its_due_time_is_escalated_then_resolved_late(
    store: ProcessStore, systems: Systems, runner: Runner, clock: Clock
) -> None:
    """Past the table's 8 hours the supervisor is told; the late completion still resolves the ticket."""
    systems.workorders.scenarios["TT-112-0571-1"] = "late"
    iid = runner.start(definition(), ticket(systems))
    runner.run_due()
    complete = systems.events.pop()  # held back until the due time has passed
    assert deliver(store, systems, clock, runner) == ["ACCEPT", "APPOINT"]
    clock.advance(8 * 3600 - 60)
    runner.run_due()
    assert systems.sent("hub.supervisor_escalations") == []
    clock.advance(120)
    runner.run_due()
    (escalation,) = systems.sent("hub.supervisor_escalations")
    assert (escalation["team"], escalation["technicianId"], escalation["deadlineHours"]) == (
        "hz-fiber",
        "T-1",
        8,
    )
    assert instance(store, iid).state == "inProgress"
    systems.events.append(complete)
    assert deliver(store, systems, clock, runner) == ["COMPLETE"]
    row = instance(store, iid)
    assert (row.status, row.state) == ("completed", "resolved")
    assert row.data["completion"]["resolution"] == "超时后修复"


def test_no_technician_with_the_skill_fails_the_ticket_with_the_reason(
    store: ProcessStore, systems: Systems, runner: Runner
) -> None:
    """A team nobody can serve: the pick is refused and the instance fails naming team and skill."""
    message = ticket(systems)
    message = Message(
        body={**message.body, "dispatch": {"team": "zj-iptv", "skill": "iptv", "deadline_hours": 24}}
    )
    iid = runner.start(definition(), message)
    runner.run_due()
    row = instance(store, iid)
    assert row.status == "failed"
    assert "no available technician of team 'zj-iptv' with skill 'iptv'" in row.error


def test_a_completion_after_the_due_time_read_before_the_hubs_clock_fired_is_escalated(
    store: ProcessStore, systems: Systems, runner: Runner, clock: Clock
) -> None:
    """A hub running behind (the late COMPLETE, stamped after the due time, already waits in the inbox when
    the instance reaches its repair step): the supervisor is still told, and the ticket resolved once."""
    systems.workorders.scenarios["TT-112-0571-1"] = "late"
    iid = runner.start(definition(), ticket(systems))
    runner.run_due()
    accept, appoint, complete = systems.events
    systems.events[:] = [accept]
    assert deliver(store, systems, clock, runner) == ["ACCEPT"]
    clock.advance(10 * 3600)  # the runner is hours behind: the appointment and the completion both wait
    for event in (appoint, complete):
        assert feed(store, [definition()], "workorder.events", event, now=clock()) == {
            "fault_to_resolution": "waiting"
        }
    runner.run_due()
    (escalation,) = systems.sent("hub.supervisor_escalations")
    assert escalation["technicianId"] == "T-1"
    row = instance(store, iid)
    assert (row.status, row.state) == ("completed", "resolved")
    assert row.data["completion"]["resolution"] == "超时后修复"
    assert len(systems.sent("hotline.ticket_notices")) == 1
