"""`esb demo`: the hub with the simulated systems, N messages through every route, counts checked.

Runs in a fresh data directory (its own queues and journal), so it never disturbs a running hub.
"""

from __future__ import annotations

import os
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from esb.exceptions import mask_url
from esb.files import process_umask
from esb.project import Project
from esb.runtime.hub import Hub
from simulators.batch_scenarios import NCR_FILE_RECORDS
from simulators.crm import PlannedMessage
from simulators.devenv import choose_free_ports, ensure_credentials
from simulators.scenarios import Scenario, scenario_for

OUTCOMES = ("delivered", "filtered", "dead_lettered")
#: What the demo changes so that it runs in seconds: batch folders polled every second, an NCR extract
#: file flushed every NCR_FILE_RECORDS records instead of daily at 02:00.
DEMO_ENVIRONMENT = {"ESB_BATCH_POLL": "1s", "ESB_NCR_MAX_RECORDS": str(NCR_FILE_RECORDS)}


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
        f"look inside  export ESB_DATA_DIR={data_dir} ESB_EXCHANGE_DIR={exchange}; then esb trace KEY, "
        "esb receive ENDPOINT --peek, esb dlq list",
    ]


def run_demo(
    root: Path,
    env: str | None,
    messages: int,
    timeout: float,
    announce: Callable[[Project], None] | None = None,
) -> tuple[list[RouteReport], float]:
    """Run the demo; return a report per route and the seconds it took. ``announce`` is called with the
    loaded project before anything starts (``esb demo`` prints where the state lives)."""
    data_dir = Path(tempfile.mkdtemp(prefix="esb-demo-"))
    choose_free_ports()  # the demo never collides with a running hub's listeners
    os.environ.update(DEMO_ENVIRONMENT)
    environ = {**os.environ, "ESB_DATA_DIR": str(data_dir), "ESB_EXCHANGE_DIR": str(data_dir / "exchange")}
    project = Project.load(root, env, environ=environ)
    if announce is not None:
        announce(project)
    umask = process_umask()  # as `esb run` does; given back at the end (the demo may run inside tests)
    try:
        return _run(project, messages, timeout)
    finally:
        os.umask(umask)


def _run(project: Project, messages: int, timeout: float) -> tuple[list[RouteReport], float]:
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
    started = time.monotonic()
    hub = Hub(project, route_ids=list(scenarios))
    hub.start()
    try:
        plans = _drive(scenarios, reports, messages, run)
        _wait(hub, scenarios, reports, plans, started + timeout)
    finally:
        for scenario in scenarios.values():
            scenario.stop()
        hub.stop()
    return reports, time.monotonic() - started


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
