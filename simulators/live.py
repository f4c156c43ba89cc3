"""`esb run --simulate` (what `make run` starts): the simulated systems keep sending, and receiving.

Every route that has a scenario (simulators/scenarios.py) is driven: message flows one message per
tick, file flows one small file every so often. What is sent is printed as it goes; what the hub did
with it shows in the hub's own log lines (delivered, filtered, dead-lettered, with the reason). The
systems the order-to-activation process calls (RIM, OSS, Billing's subscriber service:
simulators/process_systems.py) are served beside them; when the project runs the order processes, the
simulated CRM also sends one order of the demo's mix per tick (simulators/process_orders.py: bundles and
single products, 5% refused by RIM, 5% never answered by OSS, 2% cancelled), cancels some while they
are in flight, and prints each status update its status receiver gets back; the 10000 hotline and the
CRM ask the hub in turn where the order sent five ticks earlier stands (flow 3, status queries). When
the project runs the assurance process, the simulated 112 desk sends one fault per tick
(simulators/fault112.py: 10% rejected by the first technician, 10% never answered, 5% completed late) to
the work-order system's technicians, the 10000 hotline files a complaint every fifth fault and asks
where the fault sent five ticks earlier stands (QueryTicketStatus), and what the CRM, the 10000 hotline
and the supervisor are told is printed. Billing's arrears feed (simulators/credit_control.py) sends one
credit-control event per tick (stops, resumes, reminders, some late or repeated on purpose) to route
billing-credit-control, and each subscriber status the CRM is told after OSS confirmed is printed.
"""

from __future__ import annotations

import itertools
import json
import threading
import uuid
from typing import TYPE_CHECKING, Any

import click

from simulators.batch_scenarios import NCR_FILE_RECORDS
from simulators.credit_control import CRM_ENDPOINT as SUBSCRIBER_STATUS
from simulators.credit_control import CreditControlScenario
from simulators.crm import PlannedMessage
from simulators.directory_scenario import BLOCK as DIRECTORY_BLOCK
from simulators.fault112 import TOLD, Fault112Sender, PlannedFault, TicketWatcher, plan_faults, runs_faults
from simulators.process_orders import (
    ProcessOrder,
    ProcessOrderScenario,
    StatusUpdate,
    plan_orders,
    runs_processes,
)
from simulators.process_systems import ProcessSystems
from simulators.scenarios import Scenario, scenario_for

if TYPE_CHECKING:
    from esb.project import Project

#: Scenarios whose unit is a file, not a message: sent whole, every FILE_EVERY ticks, with this many
#: records. The NCR plan keeps its good customers to whole extract files (NCR_FILE_RECORDS each) and makes
#: about one in nine invalid: it needs room for one whole file beside its invalid records, or every record
#: it plans is invalid (10 records gave 10 dead letters).
FILE_RECORDS = {
    "BillingChargesScenario": 10,
    "NCRExtractScenario": NCR_FILE_RECORDS * 9 // 8 + 1,
    "DirectoryScenario": DIRECTORY_BLOCK,  # one block of the mix: whole 114 and phone directory files
}
#: The extracts' feeds get a few orders and tickets at a time (the processes feed them as orders end).
FILE_RECORDS.update(CommissionScenario=10, NCROrderExtractScenario=10, NCRTicketExtractScenario=10)
FILE_SCENARIOS = frozenset(FILE_RECORDS)
FILE_EVERY = 20
PLAN_SIZE = 25
#: Ticks after an order (or a fault) is sent that the hotline or the CRM asks where it stands.
QUERY_LAG = 5
#: The 10000 hotline files a complaint once every this many 112 faults.
COMPLAINT_EVERY = 5


class LiveSimulation:
    """Runs every route's simulated systems beside the hub until stopped."""

    def __init__(
        self, project: Project, *, interval: float = 2.0, hub_started: threading.Event | None = None
    ) -> None:
        self.project = project
        self.interval = interval
        self.hub_started = hub_started
        self.scenarios: list[Scenario] = []
        for route in project.routes:
            scenario = scenario_for(project, route.id) if route.enabled else None
            if scenario is not None:
                self.scenarios.append(scenario)
        self.systems = ProcessSystems(project)
        self.orders: ProcessOrderScenario | None = None
        self._sent: list[str] = []  # orders sent, asked about QUERY_LAG ticks later
        self._clients: dict[str, Any] = {}  # the status query clients, made on first use
        self._turns = itertools.count()  # the hotline and the CRM ask in turn
        self._faults_sent: list[str] = []  # tickets sent, asked about QUERY_LAG ticks later
        self.faults: Fault112Sender | None = None
        self.watchers: list[TicketWatcher] = []
        self.stop_event = threading.Event()
        self.sender = threading.Thread(target=self._send_forever, name="sim-senders", daemon=True)

    def _send_forever(self) -> None:
        if self.hub_started is not None:
            while not self.hub_started.wait(0.2):
                if self.stop_event.is_set():
                    return
        run = uuid.uuid4().hex[:6]
        queues: dict[int, list[PlannedMessage]] = {}
        orders: list[ProcessOrder] = []
        faults: list[PlannedFault] = []
        for tick in itertools.count():
            for index, scenario in enumerate(self.scenarios):
                if self.stop_event.is_set():
                    return
                try:
                    self._tick(scenario, index, tick, run, queues)
                except Exception as exc:
                    click.echo(f"sim  !! {scenario.route_id}: {exc}")
            if self.orders is not None:
                try:
                    self._order_tick(self.orders, orders, f"{run}{tick}")
                except Exception as exc:
                    click.echo(f"sim  !! order processes: {exc}")
            if self.faults is not None:
                try:
                    self._fault_tick(self.faults, faults, f"{run}{tick}")
                except Exception as exc:
                    click.echo(f"sim  !! 112 faults: {exc}")
            if self.stop_event.wait(self.interval):
                return

    def _order_tick(self, scenario: ProcessOrderScenario, queue: list[ProcessOrder], run: str) -> None:
        """Send the next planned order of the mix, and the cancels whose moment came."""
        if not queue:
            queue.extend(plan_orders(PLAN_SIZE, run))
        order = queue.pop(0)
        scenario.send([order])
        click.echo(
            f"sim  -> {'order process':<32} {order.scenario:<26} expect {order.expected_state:<14} "
            f"[{order.order_id}: {order.offering}]"
        )
        scenario.send_due_cancels()
        self._sent.append(order.order_id)
        if len(self._sent) > QUERY_LAG:
            self._ask(self._sent.pop(0), next(self._turns))

    def _ask(self, order_id: str, turn: int) -> None:
        """Flow 3: the 10000 hotline or the CRM (in turn) asks the hub where an earlier order stands."""
        from simulators.status_query import CRM_ENDPOINT, HOTLINE_ENDPOINT, client_for, orders

        endpoint = (HOTLINE_ENDPOINT, CRM_ENDPOINT)[turn % 2]
        if endpoint not in self.project.endpoints:
            return
        client = self._clients.get(endpoint)
        if client is None:
            client = self._clients[endpoint] = client_for(self.project, endpoint)
            client.connect()
        seen = orders(client.query(order_id=order_id))
        text = ", ".join(f"{o.state} ({o.status}, step {o.step or '-'})" for o in seen) or "not found"
        click.echo(f"sim  <- {endpoint:<32} {order_id}: {text}")

    def _fault_tick(self, sender: Fault112Sender, queue: list[PlannedFault], run: str) -> None:
        """Send the next planned 112 fault."""
        if not queue:
            queue.extend(plan_faults(PLAN_SIZE, run))
        fault = queue.pop(0)
        sender.send([fault])
        escalated = " (escalated)" if fault.escalated else ""
        click.echo(
            f"sim  -> {'112 fault process':<32} {fault.scenario:<26} expect resolved{escalated:<6} "
            f"[{fault.ticket_id}: {fault.report['prodType']} {fault.report['areaCode']}]"
        )
        self._faults_sent.append(fault.ticket_id)
        if len(self._faults_sent) % COMPLAINT_EVERY == 0:
            self._complain(sender, run)
        if len(self._faults_sent) > QUERY_LAG:
            ticket = self._faults_sent.pop(0)
            answer = self._hotline_tickets().ticket_status(ticket_id=ticket)
            seen = ", ".join(f"{t.get('state')} ({t.get('stateText')})" for t in answer.get("ticket") or [])
            click.echo(f"sim  <- {'hotline QueryTicketStatus':<32} {ticket}: {seen or 'not found'}")

    def _hotline_tickets(self) -> Any:
        """The 10000 hotline's complaint and ticket status client, made on first use."""
        from simulators.hotline_tickets import COMPLAINTS_ENDPOINT, hotline_ticket_client

        client = self._clients.get(COMPLAINTS_ENDPOINT)
        if client is None:
            client = self._clients[COMPLAINTS_ENDPOINT] = hotline_ticket_client(self.project)
        return client

    def _complain(self, sender: Fault112Sender, run: str) -> None:
        """The 10000 hotline files a complaint (SubmitComplaint): a ticket of the same process."""
        number = f"{run}-{len(self._faults_sent):03d}"
        sender.workorders.scenarios[f"TT-10000-{number}"] = "resolved"
        self._hotline_tickets().complain(
            number, access_number="ad057412345678", city="宁波", product="宽带", fault_type="网速慢",
            category="network.quality", urgency="重要", content="晚上宽带网速很慢",
        )  # fmt: skip
        click.echo(
            f"sim  -> {'10000 complaint':<32} {'resolved':<26} expect resolved       [TT-10000-{number}]"
        )

    def _tick(
        self, scenario: Scenario, index: int, tick: int, run: str, queues: dict[int, list[PlannedMessage]]
    ) -> None:
        kind = type(scenario).__name__
        if kind in FILE_SCENARIOS:
            if tick % FILE_EVERY == index % FILE_EVERY:
                planned = scenario.plan(FILE_RECORDS[kind], f"{run}{tick}")
                scenario.send(planned)
                mix = ", ".join(
                    f"{sum(p.expected == outcome for p in planned)} expect {outcome}"
                    for outcome in sorted({p.expected for p in planned})
                )
                click.echo(f"sim  -> {scenario.route_id:<32} a file of {len(planned)} records ({mix})")
            return
        if not queues.get(index):
            queues[index] = scenario.plan(PLAN_SIZE, f"{run}{tick}")
        item = queues[index].pop(0)
        scenario.send([item])
        click.echo(
            f"sim  -> {scenario.route_id:<32} {item.kind:<26} expect {item.expected:<14} [{item.message.id}]"
        )

    def __enter__(self) -> LiveSimulation:
        self.project.settings.data_dir.mkdir(parents=True, exist_ok=True)
        for scenario in self.scenarios:
            if isinstance(scenario, CreditControlScenario):
                scenario.crm.show = _print_subscriber_status
            scenario.start()
        try:
            for line in self.systems.start():
                click.echo(f"sim  serving {line}")
            if (
                self.systems.rim
                and self.systems.oss
                and self.systems.billing
                and runs_processes(self.project)
            ):
                self.orders = ProcessOrderScenario(self.project, self.systems, _print_update)
                self.orders.start()
                click.echo("sim  serving CRM status receiver on crm.order_status")
            if self.systems.workorders is not None and runs_faults(self.project):
                self.faults = Fault112Sender(self.project, self.systems.workorders.system)
                self.watchers = [TicketWatcher(self.project, name, _print_told) for name in TOLD]
                for watcher in self.watchers:
                    watcher.start()
                click.echo(f"sim  serving 112 fault desk, receivers on {', '.join(TOLD)}")
        except BaseException:
            self.__exit__()  # a port taken: stop what started, then say why
            raise
        self.sender.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop_event.set()
        if self.sender.ident is not None:
            self.sender.join(10)
        for scenario in self.scenarios:
            scenario.stop()
        if self.orders is not None:
            self.orders.stop()
        for client in self._clients.values():
            client.close()
        for watcher in self.watchers:
            watcher.stop()
        if self.faults is not None:
            self.faults.close()
        self.systems.stop()


def _print_update(order_id: str, update: StatusUpdate) -> None:
    """Print one update the CRM's status receiver got."""
    click.echo(f"sim  <- {'crm.order_status':<32} {order_id}: {update.status or '-'} {update.comments or ''}")


def _print_told(endpoint: str, body: bytes) -> None:
    """Print what the assurance process told the CRM, the hotline or the supervisor."""
    try:
        doc = json.loads(body)
    except ValueError:
        doc = {}
    ticket = doc.get("SR Number") or doc.get("ticketId") or "?"
    what = doc.get("Status") or doc.get("statusText") or doc.get("reason") or ""
    click.echo(f"sim  <- {endpoint:<32} {ticket}: {what}")


def _print_subscriber_status(msisdn: str, status: str) -> None:
    """Print a subscriber status the CRM was told after OSS confirmed a stop or resume (停机 / 复机)."""
    click.echo(f"sim  <- {SUBSCRIBER_STATUS:<32} {msisdn}: {status}")
