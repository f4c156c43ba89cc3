"""The assurance mix of `esb demo`: planned 112 faults and 10000 complaints through ``fault_to_resolution``.

The simulated 112 desk sends faults (simulators/fault112.py, scenarios by quota: ``resolved``,
``reject``, ``silent``, ``late``) through route ``fault112-to-hub`` to the process, and the simulated
work-order system (simulators/workorder.py) answers each ticket's technicians as its scenario says. The
10000 hotline files complaints beside them (``SubmitComplaint``, route ``hotline-complaint-to-hub``: the
same process) and, at the end, asks for every ticket by its id (``QueryTicketStatus``). The demo runs
the work-order system on a short simulated hour (:data:`DEMO_HOUR`), so a ``late`` ticket's due time,
hours away in the dispatch table, comes within the demo. At the end each ticket is checked:

- its instance ended ``completed`` with the ticket ``resolved``, and the hotline's query says so;
- the work-order system offered it to as many technicians as its scenario needs (:data:`OFFERS`: a
  rejection or a silence costs one more), each work order answered at most once per event;
- a silent technician's work order was recalled;
- the supervisor was told of exactly the late tickets, the hotline of every ticket (once), the CRM of
  every ticket.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from simulators.fault112 import PROCESS, Fault112Sender, PlannedFault, critical_broadband, plan_faults
from simulators.hotline_tickets import HotlineTicketClient, hotline_ticket_client
from simulators.process_orders import ScenarioReport, keyed_states
from simulators.receiver import QueueReceiver

if TYPE_CHECKING:
    from esb.project import Project
    from simulators.process_systems import ProcessSystems

#: Seconds of the demo's simulated hour: the work-order system's due times come within the demo (a
#: critical fault's 8 hours: 24 s), so a late completion and its escalation show, while the shortest due
#: time (4 hours: 12 s) leaves a rejected or silent ticket's second technician time to finish first.
DEMO_HOUR = 3.0
#: How many technicians a ticket is offered to, by scenario (a 10000 complaint is done by the first).
OFFERS = {"resolved": 1, "late": 1, "reject": 2, "silent": 2, "complaint": 1}
#: The scenarios, in the order the demo prints them.
FAULT_SCENARIOS = ("resolved", "reject", "silent", "late", "complaint")
ESCALATIONS, NOTICES, CRM = "hub.supervisor_escalations", "hotline.ticket_notices", "crm.ticket_status"


class FaultMix:
    """Sends the planned faults through the 112 desk's queue; checks how each ticket ended."""

    def __init__(self, project: Project, systems: ProcessSystems) -> None:
        if systems.workorders is None:
            raise RuntimeError("the fault mix needs the simulated work-order system: start it first")
        self.system = systems.workorders.system
        self.sender = Fault112Sender(project, self.system)
        self.receivers = {name: QueueReceiver(project, name) for name in (ESCALATIONS, NOTICES, CRM)}
        self.faults: list[PlannedFault] = []
        self.project = project
        self._hotline: HotlineTicketClient | None = None
        #: the hotline's ticket status queries answered as expected / not (QueryTicketStatus by id)
        self.queries = 0
        self.query_failures = 0
        self.query_problems: dict[str, str] = {}  # ticket id -> what the hotline's query answered wrongly

    def start(self) -> None:
        """Start reading what the process tells the supervisor, the hotline and the CRM."""
        for receiver in self.receivers.values():
            receiver.start()

    def send(self, faults: list[PlannedFault]) -> None:
        """Script each fault's technicians and send its report."""
        self.faults.extend(faults)
        self.sender.send(faults)

    def complain(self, count: int, run: str) -> None:
        """File ``count`` complaints through the 10000 hotline's ``SubmitComplaint`` (SOAP): each becomes
        ticket ``TT-10000-<complaint no>`` of the same process, done by its first technician."""
        if count and self._hotline is None:
            self._hotline = hotline_ticket_client(self.project)
        for n in range(count):
            planned = PlannedFault({"faultNo": f"10000-{run}-{n:03d}"}, "complaint")
            self.system.scenarios[planned.ticket_id] = "resolved"
            self.faults.append(planned)
            assert self._hotline is not None
            self._hotline.complain(
                planned.report["faultNo"].removeprefix("10000-"),
                access_number=f"ad0574{n:08d}",
                city="宁波",
                product="宽带",
                fault_type="网速慢",
                category="network.quality",
                urgency="重要",
                content="晚上宽带网速很慢",
            )

    def ask(self) -> None:
        """The hotline asks for every ticket by its id (``QueryTicketStatus``): each must be resolved."""
        client = self._hotline or hotline_ticket_client(self.project)
        self._hotline = client
        for fault in self.faults:
            answer = client.ticket_status(ticket_id=fault.ticket_id)
            states = [t.get("state") for t in answer.get("ticket") or []]
            if states == ["resolved"]:
                self.queries += 1
            else:
                self.query_failures += 1
                self.query_problems[fault.ticket_id] = f"the hotline's ticket query answered {states}"

    def told(self, endpoint: str) -> list[str]:
        """The ticket ids of the messages ``endpoint`` got, one per message (the CRM names it its
        service request's ``SR Number``)."""
        field = "SR Number" if endpoint == CRM else "ticketId"
        return [json.loads(body)[field] for body in self.receivers[endpoint].received.values()]

    def check(self, states: dict[str, tuple[str, str]]) -> list[ScenarioReport]:
        """Compare each ticket's end with its scenario's: ``states`` maps ticket id -> (state, status)."""
        reports = {name: ScenarioReport(name) for name in FAULT_SCENARIOS}
        escalated, notices, crm = set(self.told(ESCALATIONS)), self.told(NOTICES), set(self.told(CRM))
        for fault in self.faults:
            ticket = fault.ticket_id
            report = reports[fault.scenario]
            report.orders += 1
            state, status = states.get(ticket, ("(no instance)", ""))
            shown = state if status == "ended" or state == "(no instance)" else f"{state} ({status})"
            report.ends[shown] = report.ends.get(shown, 0) + 1
            problems = []
            if (state, status) != ("resolved", "ended"):
                problems.append(f"ended {shown}, expected resolved")
            offered = self.system.offered.get(ticket, [])
            if len(offered) != OFFERS[fault.scenario]:
                problems.append(f"offered to {len(offered)} technician(s), expected {OFFERS[fault.scenario]}")
            orders = [o for o in self.system.orders.values() if o.ticket_no == ticket]
            if any(len(o.events) != len(set(o.events)) for o in orders):
                problems.append("a work order answered the same event twice")
            if fault.scenario == "silent" and not any(o.state == "recalled" for o in orders):
                problems.append("the silent technician's work order was not recalled")
            if (ticket in escalated) != fault.escalated:
                problems.append(f"the supervisor was {'' if ticket in escalated else 'not '}told")
            if notices.count(ticket) != 1:
                problems.append(f"the hotline was told {notices.count(ticket)} time(s), expected once")
            if ticket not in crm:
                problems.append("the CRM was not told")
            if ticket in self.query_problems:
                problems.append(self.query_problems[ticket])
            if problems:
                report.mismatches.append(f"{ticket}: {'; '.join(problems)}")
            else:
                report.as_expected += 1
        return [r for r in reports.values() if r.orders]

    def waiting_to_be_told(self) -> bool:
        """True while the hotline has not been told of every ticket (its notice is the process's last)."""
        return len(set(self.told(NOTICES))) < len({f.ticket_id for f in self.faults})

    def stop(self) -> None:
        """Stop the receivers and close the sender (may be called twice)."""
        for receiver in self.receivers.values():
            receiver.stop()
        self.sender.close()
        if self._hotline is not None:
            self._hotline.close()


def demo_faults(count: int, run: str) -> list[PlannedFault]:
    """``count`` planned faults (simulators/fault112.py's mix); the late ones critical broadband faults
    of a big city, so that their due time (8 hours) passes within the demo."""
    planned = plan_faults(count, run)
    late = iter(critical_broadband([f for f in planned if f.scenario == "late"]))
    return [next(late) if f.scenario == "late" else f for f in planned]


def ticket_states(store: Any, ticket_ids: set[str]) -> dict[str, tuple[str, str]]:
    """Ticket id -> (state, status) of its fault_to_resolution instance, from the process store."""
    return keyed_states(store, PROCESS, "ticket_id", ticket_ids)


__all__ = ["DEMO_HOUR", "FAULT_SCENARIOS", "FaultMix", "demo_faults", "ticket_states"]
