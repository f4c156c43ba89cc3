"""`esb demo`: the hub with the simulated systems, N messages through every route, counts checked, a mix
of orders through the order processes and of 112 faults through the assurance process, each checked
against the end its scenario expects.

Runs in a fresh data directory (its own queues and journal), so it never disturbs a running hub. The
processes run from an overlay of the project in a folder beside it (:func:`demo_project`): the same files,
except that every await's deadline of an hour or less in processes/ is cut to :data:`DEMO_DEADLINE` (OSS's
30 minutes would make an OSS timeout take an hour and a half to show), and the simulated work-order system
runs on a short hour (:data:`simulators.fault_mix.DEMO_HOUR`). Nothing in the project itself changes.
"""

from __future__ import annotations

import os
import re
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from esb.config.durations import parse_duration
from esb.exceptions import mask_url
from esb.files import process_umask
from esb.project import Project
from esb.runtime.hub import Hub
from simulators.batch_scenarios import NCR_FILE_RECORDS
from simulators.crm import PlannedMessage
from simulators.devenv import choose_free_ports, ensure_credentials
from simulators.fault112 import runs_faults
from simulators.fault_mix import DEMO_HOUR, FaultMix, demo_faults, ticket_states
from simulators.process_orders import (
    ProcessOrderScenario,
    Rates,
    ScenarioReport,
    instance_states,
    plan_orders,
    runs_processes,
)
from simulators.process_systems import ProcessSystems
from simulators.scenarios import Scenario, scenario_for

OUTCOMES = ("delivered", "filtered", "dead_lettered")
#: What the demo changes so that it runs in seconds: batch folders polled every second, an NCR extract
#: file flushed every NCR_FILE_RECORDS records instead of daily at 02:00.
DEMO_ENVIRONMENT = {"ESB_BATCH_POLL": "1s", "ESB_NCR_MAX_RECORDS": str(NCR_FILE_RECORDS)}
#: The demo's await deadline for every await of the processes whose deadline is an hour or less (OSS
#: answers in a second where the definition waits 30m; a technician answers at once where it waits 30m).
#: Longer deadlines (a repair's 30 days) stay: the work-order system's short hour brings due times in.
DEMO_DEADLINE = "8s"
SHORTENED_UP_TO = 3600.0
_DEADLINE = re.compile(r"^(\s+deadline:\s*)(\S+)", re.MULTILINE)
#: What of the project the demo's overlay does not link (processes/ is written, the rest is not needed).
_NOT_LINKED = {"processes", "var", ".git", ".venv", "__pycache__"}


@dataclass
class RouteReport:
    """What happened on one route, against what should have."""

    route_id: str
    sent: int = 0
    expected: dict[str, int] = field(default_factory=lambda: dict.fromkeys(OUTCOMES, 0))
    actual: dict[str, int] = field(default_factory=lambda: dict.fromkeys((*OUTCOMES, "pending"), 0))
    received_by_peer: int = 0
    mismatches: list[str] = field(default_factory=list)
    skipped: str | None = None

    @property
    def ok(self) -> bool:
        """True when every message ended as expected and the peer got exactly the delivered ones."""
        if self.skipped:
            return True
        return (
            not self.mismatches
            and self.actual["pending"] == 0
            and self.received_by_peer == self.expected["delivered"]
        )


@dataclass
class DemoResult:
    """What ``esb demo`` reports: a row per route, a row per order scenario, the seconds it took."""

    routes: list[RouteReport]
    scenarios: list[ScenarioReport]
    seconds: float
    notes: list[str] = field(default_factory=list)
    #: why no order went through the processes (the project runs none), when none did
    orders_skipped: str | None = None
    #: the CRM's and the hotline's status queries of every order: (answered as expected, not)
    queries: tuple[int, int] = (0, 0)
    #: a row per 112 fault scenario, and why none ran when none did
    fault_scenarios: list[ScenarioReport] = field(default_factory=list)
    faults_skipped: str | None = None
    #: the hotline's ticket status queries of every ticket: (answered as expected, not)
    ticket_queries: tuple[int, int] = (0, 0)

    @property
    def ok(self) -> bool:
        """True when every route and every order scenario ended as planned, with nothing else to note."""
        scenarios = [*self.scenarios, *self.fault_scenarios]
        return all(r.ok for r in self.routes) and all(s.ok for s in scenarios) and not self.notes


def demo_project(root: Path, folder: Path) -> Path:
    """Return an overlay of the project at ``root`` in ``folder``: every file linked, except processes/,
    copied with each await's deadline cut to :data:`DEMO_DEADLINE`."""
    folder.mkdir(parents=True)
    for entry in root.iterdir():
        if entry.name not in _NOT_LINKED:
            (folder / entry.name).symlink_to(entry, target_is_directory=entry.is_dir())
    source = root / "processes"
    if source.is_dir():
        for path in sorted(source.rglob("*")):
            target = folder / "processes" / path.relative_to(source)
            if path.is_dir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            text = path.read_text(encoding="utf-8")
            if path.suffix == ".yaml":
                text = _DEADLINE.sub(_shortened, text)
            target.write_text(text, encoding="utf-8")
    return folder


def _shortened(match: re.Match[str]) -> str:
    """A ``deadline:`` line with :data:`DEMO_DEADLINE` when its duration is an hour or less."""
    try:
        seconds = parse_duration(match.group(2))
    except (TypeError, ValueError):
        return match.group(0)  # not a duration: the demo leaves it for lint to report
    return f"{match.group(1)}{DEMO_DEADLINE}" if seconds <= SHORTENED_UP_TO else match.group(0)


def state_lines(project: Project) -> list[str]:
    """Where the demo keeps its state (kept after the run), one ``what  where`` line each."""
    settings = project.settings
    data_dir = settings.data_dir
    exchange = data_dir / "exchange"  # run_demo points ESB_EXCHANGE_DIR there
    return [
        f"data folder  {data_dir}",
        f"journal      {mask_url(settings.journal.url)}",
        f"queues       {mask_url(settings.broker.url)}",
        f"exchange     {exchange}  (the batch files in and out)",
        f"processes    {project.root / 'processes'}  (deadlines up to an hour cut to {DEMO_DEADLINE})",
        f"look inside  export ESB_DATA_DIR={data_dir} ESB_EXCHANGE_DIR={exchange}; then esb trace KEY, "
        f"esb receive ENDPOINT --peek, esb dlq list, esb --project {project.root} process list",
    ]


def run_demo(
    root: Path,
    env: str | None,
    messages: int,
    timeout: float,
    announce: Callable[[Project], None] | None = None,
    *,
    orders: int = 0,
    rates: Rates | None = None,
    faults: int = 0,
) -> DemoResult:
    """Run the demo: ``messages`` through each route, ``orders`` through the order processes (mixed by
    ``rates``) and ``faults`` 112 faults through the assurance process. ``announce`` is called with the
    loaded project before anything starts (``esb demo`` prints where the state lives)."""
    data_dir = Path(tempfile.mkdtemp(prefix="esb-demo-"))
    choose_free_ports()  # the demo never collides with a running hub's listeners
    os.environ.update(DEMO_ENVIRONMENT)
    environ = {**os.environ, "ESB_DATA_DIR": str(data_dir), "ESB_EXCHANGE_DIR": str(data_dir / "exchange")}
    overlay = Path(tempfile.mkdtemp(prefix="esb-demo-project-")) / "project"  # not message data: beside it
    project = Project.load(demo_project(root, overlay), env, environ=environ)
    if announce is not None:
        announce(project)
    umask = process_umask()  # as `esb run` does; given back at the end (the demo may run inside tests)
    try:
        return _run(project, messages, timeout, orders, rates or Rates(), faults)
    finally:
        os.umask(umask)


def _run(
    project: Project, messages: int, timeout: float, orders: int, rates: Rates, faults: int = 0
) -> DemoResult:
    ensure_credentials(project)
    run = uuid.uuid4().hex[:8]
    scenarios: dict[str, Scenario] = {}
    reports = []
    for route in project.routes:
        if not route.enabled:
            continue
        scenario = scenario_for(project, route.id)
        report = RouteReport(route.id)
        if scenario is None:
            report.skipped = f"no simulator for {route.from_}"
        else:
            scenarios[route.id] = scenario
        reports.append(report)
    result = DemoResult(reports, [], 0.0)
    if orders and not runs_processes(project):
        result.orders_skipped = "the project runs no order_to_activation process with the CRM's queues"
        orders = 0
    if faults and not runs_faults(project):
        result.faults_skipped = "the project runs no fault_to_resolution process with its route and queues"
        faults = 0
    processes = orders > 0 or faults > 0
    started = time.monotonic()
    systems = ProcessSystems(project, hour_seconds=DEMO_HOUR)
    route_ids = _routes_to_run(project, scenarios, processes)
    for report in reports:
        if report.skipped and report.route_id in route_ids:
            report.skipped = _checked_by(scenarios, report.route_id)
    hub = Hub(project, route_ids=route_ids, processes=processes)
    process_orders: ProcessOrderScenario | None = None
    fault_mix: FaultMix | None = None
    try:
        if processes:
            systems.start()
        if orders:
            process_orders = ProcessOrderScenario(project, systems)
            process_orders.start()
        if faults:
            fault_mix = FaultMix(project, systems)
            fault_mix.start()
        hub.start()
        plans = _drive(scenarios, reports, messages, run)
        if process_orders is not None:
            process_orders.send(plan_orders(orders, run, rates))
        if fault_mix is not None:
            fault_mix.send(demo_faults(faults, run))
            fault_mix.complain(max(1, faults // 10), run)
        _wait(hub, scenarios, reports, plans, started + timeout)
        if process_orders is not None:
            result.scenarios = _wait_orders(hub, process_orders, started + timeout, result.notes)
            result.queries = (process_orders.queries, process_orders.query_failures)
        if fault_mix is not None:
            result.fault_scenarios = _wait_faults(hub, fault_mix, started + timeout, result.notes)
            result.ticket_queries = (fault_mix.queries, fault_mix.query_failures)
    finally:
        for scenario in scenarios.values():
            scenario.stop()
        if process_orders is not None:
            process_orders.stop()
        if fault_mix is not None:
            fault_mix.stop()
        hub.stop()
        systems.stop()
    result.seconds = time.monotonic() - started
    return result


def _wait_faults(hub: Hub, faults: FaultMix, deadline: float, notes: list[str]) -> list[ScenarioReport]:
    """Wait until every ticket's instance ended and the hotline was told of each (or the deadline); then
    check each ticket against its scenario."""
    assert hub.processes is not None
    store = hub.processes.store
    ids = {f.ticket_id for f in faults.faults}
    states: dict[str, tuple[str, str]] = {}
    while time.monotonic() < deadline:
        states = ticket_states(store, ids)
        ended = len(states) == len(ids) and all(status == "ended" for _, status in states.values())
        if ended and not faults.waiting_to_be_told():
            break
        time.sleep(0.5)
    else:
        running = sum(1 for i in ids if states.get(i, ("", ""))[1] != "ended")
        notes.append(f"{running} of {len(ids)} faults had not ended when the demo's time was up")
    faults.ask()
    return faults.check(ticket_states(store, ids))


def _checked_by(scenarios: dict[str, Scenario], route_id: str) -> str:
    """Why a route without a scenario of its own runs: a scenario checks it beside its own route (the
    sync routes), or the order processes do."""
    for scenario in scenarios.values():
        if route_id in getattr(scenario, "downstream", ()):
            return f"run beside {scenario.route_id}, whose row checks it"
    return "run with the order processes (the order table below checks it)"


def _routes_to_run(project: Project, scenarios: dict[str, Scenario], processes: bool) -> list[str]:
    """The routes the demo's hub runs: those with a scenario and, with the order mix, every route that
    feeds a process trigger (crm-cancel-to-hub brings the CRM's cancels to order_cancellation) or
    answers from the processes (the status queries, a process_status step)."""
    wanted = list(scenarios)
    for scenario in scenarios.values():  # routes a scenario checks beside its own (the sync routes)
        checked = getattr(scenario, "downstream", ())
        wanted += [r.id for r in project.routes if r.enabled and r.id in checked and r.id not in wanted]
    if processes:
        from esb.config.steps.registry import step_kind
        from esb.process.loader import load_processes  # late: the demo loads no process code unless used
        from esb.runtime.process_service import process_endpoints

        triggers = set(process_endpoints(load_processes(project.root)))
        wanted += [
            r.id
            for r in project.routes
            if r.enabled
            and r.id not in wanted
            and (triggers & set(r.destinations()) or any(step_kind(s) == "process_status" for s in r.steps))
        ]
    return wanted


def _wait_orders(
    hub: Hub, orders: ProcessOrderScenario, deadline: float, notes: list[str]
) -> list[ScenarioReport]:
    """Send the cancels when their moment comes; wait until every order's instance ended and every cancel
    was answered (or the deadline); then check each order against its scenario."""
    assert hub.processes is not None
    store = hub.processes.store
    ids = {o.order_id for o in orders.orders}
    cancels = [o for o in orders.orders if o.cancel is not None]
    states: dict[str, tuple[str, str]] = {}
    while time.monotonic() < deadline:
        waiting = orders.send_due_cancels()
        states = instance_states(store, ids)
        ended = len(states) == len(ids) and all(status == "ended" for _, status in states.values())
        answered = all(orders.status.cancel_answer(o.order_id) for o in cancels)
        if ended and answered and not waiting:
            break
        time.sleep(0.5)
    else:
        running = sum(1 for i in ids if states.get(i, ("", ""))[1] != "ended")
        notes.append(f"{running} of {len(ids)} orders had not ended when the demo's time was up")
    time.sleep(0.5)  # the CRM's last updates are on their queue: let the receiver read them
    return orders.check(instance_states(store, ids))


def _drive(
    scenarios: dict[str, Scenario], reports: list[RouteReport], messages: int, run: str
) -> dict[str, list[PlannedMessage]]:
    plans = {}
    for report in reports:
        scenario = scenarios.get(report.route_id)
        if scenario is None:
            continue
        scenario.start()
        plan = scenario.plan(messages, run)
        for item in plan:
            report.expected[item.expected] += 1
        report.sent = len(plan)
        plans[report.route_id] = plan
        scenario.send(plan)
    return plans


def _wait(
    hub: Hub,
    scenarios: dict[str, Scenario],
    reports: list[RouteReport],
    plans: dict[str, list[PlannedMessage]],
    deadline: float,
) -> None:
    pending = {rid: {p.message.id: p for p in plan} for rid, plan in plans.items()}
    while time.monotonic() < deadline:
        for route_id, waiting in pending.items():
            for mid in list(waiting):
                if hub.journal.outcome(route_id, mid) is not None:
                    del waiting[mid]
        received = all(
            scenarios[r.route_id].received() >= r.expected["delivered"]
            for r in reports
            if r.route_id in scenarios
        )
        if not any(pending.values()) and received:
            break
        time.sleep(0.25)
    time.sleep(0.5)  # let a late duplicate show up if there were one
    for report in reports:
        if report.route_id not in plans:
            continue
        scenario = scenarios[report.route_id]
        for item in plans[report.route_id]:
            outcome = hub.journal.outcome(report.route_id, item.message.id) or "pending"
            report.actual[outcome] += 1
            if outcome != item.expected:
                why = _last_error(hub, item.message.id) if outcome == "dead_lettered" else ""
                report.mismatches.append(
                    f"{item.message.id} ({item.kind}): expected {item.expected}, got {outcome}{why}"
                )
        report.received_by_peer = scenario.received()
        report.mismatches.extend(scenario.problems())


def _last_error(hub: Hub, message_id: str) -> str:
    """Return ``: <error>`` from the message's last dead-letter event, for the report."""
    errors = [e for e in hub.journal.history(message_id) if e.state == "dead_lettered" and e.error_text]
    return f": {(errors[-1].error_text or '')[:200]}" if errors else ""
