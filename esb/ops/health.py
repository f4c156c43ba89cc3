"""``esb health``: one line per component, and an overall verdict (0 healthy, 1 degraded, 2 down).

Components: the broker (reachable, depth of every queue), the journal, each configured endpoint
(through its adapter's optional ``health(endpoint, context) -> (status, detail)``), scheduled jobs, the
running hub (its /health/ready), routes suspended by operators, dead letters per route, and messages
stuck in flight (received but with no final state for longer than ``stuck_after``). With processes: the
instances by status (``stuck`` and ``alert`` ones degrade the hub: they wait for an operator) and the
process dead letters waiting per ``process:<endpoint>`` group.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import orjson

from esb.config.cron import next_fire_time
from esb.config.projectdir import defines_processes
from esb.exceptions import EsbError
from esb.ops import dlq
from esb.ops.healthread import (
    ColdJournal,
    ReadsRows,
    Rows,
    cold_rows,
    process_counts_from,
    route_states_from,
    stuck_from,
    warm_rows,
)
from esb.project import Project
from esb.runtime.hubclient import ask_running_hub
from esb.runtime.jobs import scheduled_jobs
from esb.typing import HealthReporter, QueueInspector, capability

OK, DEGRADED, DOWN, UNKNOWN = "ok", "degraded", "down", "unknown"
EXIT = {OK: 0, UNKNOWN: 0, DEGRADED: 1, DOWN: 2}


class JournalCounts(Protocol):
    """What the checks ask of the journal: a :class:`~esb.journal.Journal`, or the
    :class:`~esb.ops.healthread.ColdJournal` that reads it without SQLAlchemy."""

    def counts(self, *, since: datetime) -> dict[str, dict[str, int]]:
        """Events per route and state since ``since``."""
        ...

    def dead_lettered_since(self, since: datetime) -> dict[str, int]:
        """``dead_lettered`` events per route since ``since`` (from the per-minute figures)."""
        ...


@dataclass
class Check:
    """The state of one component."""

    component: str
    status: str
    detail: str
    data: dict[str, Any] | None = None


def overall(checks: list[Check]) -> str:
    """Return the worst status: down beats degraded beats ok; ``unknown`` (no check) counts as ok."""
    statuses = {c.status for c in checks}
    return DOWN if DOWN in statuses else DEGRADED if DEGRADED in statuses else OK


def check_journal(journal: JournalCounts) -> Check:
    """The journal answers a query."""
    try:
        journal.counts(since=datetime.now(UTC) - timedelta(minutes=1))
    except EsbError as exc:
        return Check("journal", DOWN, str(exc))
    return Check("journal", OK, "reachable")


def check_broker(project: Project) -> list[Check]:
    """The broker answers, and how many messages wait on each queue endpoint."""
    queues = {name: ep for name, ep in project.endpoints.items() if _inspector(project, name) is not None}
    if not queues:
        return [Check("broker", UNKNOWN, "no queue endpoints configured")]
    depths: dict[str, dict[str, int]] = {}
    try:
        for name, endpoint in sorted(queues.items()):
            inspector = _inspector(project, name)
            assert inspector is not None
            depths[name] = inspector.queue_stats(endpoint, project.context(name))
    except EsbError as exc:
        return [Check("broker", DOWN, str(exc))]
    text = ", ".join(
        f"{n} {d.get('ready', 0)}" + (f" (+{d['in_flight']} in flight)" if d.get("in_flight") else "")
        for n, d in depths.items()
    )
    return [Check("broker", OK, f"reachable; waiting: {text}", {"queues": depths})]


def _inspector(project: Project, endpoint: str) -> QueueInspector | None:
    """The endpoint's adapter as a queue inspector, or None (an unknown adapter is lint's finding)."""
    try:
        return capability(project.adapter_for(endpoint), QueueInspector)
    except EsbError:
        return None


def check_endpoints(project: Project) -> list[Check]:
    """Each endpoint that is not a queue through its adapter's ``health`` (``no check`` when it has none)."""
    out = []
    for name, endpoint in sorted(project.endpoints.items()):
        if _inspector(project, name) is not None:
            continue  # queues are the broker's line
        probe = capability(project.adapter_for(name), HealthReporter)
        if probe is None:
            out.append(Check(f"endpoint {name}", UNKNOWN, f"{endpoint.adapter}: no check"))
            continue
        try:
            status, detail = probe.health(endpoint, project.context(name))
        except EsbError as exc:
            status, detail = DOWN, str(exc)
        # a peripheral system being down degrades the hub (its messages wait or retry); it is not down
        out.append(Check(f"endpoint {name}", DEGRADED if status == DOWN else status, detail))
    return out


def _schedules(project: Project) -> dict[str, Any]:
    """Return ``{"endpoint (poll|flush)": schedule}`` for endpoints with a schedule (batch-like config)."""
    found: dict[str, Any] = {}
    for name, endpoint in project.endpoints.items():
        poll = getattr(getattr(endpoint, "inbound", None), "poll", None)
        flush = getattr(getattr(endpoint, "outbound", None), "schedule", None)
        for kind, schedule in (("poll", poll), ("flush", flush)):
            if schedule is not None:
                found[f"{name} ({kind})"] = schedule
    return found


def _next_run(schedule: Any) -> str:
    if getattr(schedule, "cron", None):
        from zoneinfo import ZoneInfo

        zone = ZoneInfo(schedule.timezone)
        when = next_fire_time(schedule.cron, zone, datetime.now(zone))  # apscheduler only if not plain
        return f"cron '{schedule.cron}', next {when:%Y-%m-%d %H:%M %Z}" if when else f"cron '{schedule.cron}'"
    return f"every {schedule.interval:g}s"


def _when(value: datetime | None) -> str:
    return "never" if value is None else f"{value.astimezone(UTC):%Y-%m-%d %H:%M:%S}Z"


def job_check(endpoint: str, job: dict[str, Any]) -> Check:
    """One line for one scheduled job: its schedule, last run and outcome, next run."""
    component = f"job {endpoint} {job['job']}"
    if job.get("schedule") is None:
        return Check(component, DEGRADED, f"cannot read the job's state: {job.get('error')}")
    last = _when(job.get("last_run"))
    if job.get("last_run") is not None:
        last += f" ({job.get('outcome')}, {job.get('runs', 0)} run(s) recorded)"
    nxt = "when the hub runs it" if job.get("next_run") is None else _when(job["next_run"])
    text = f"{job['schedule']}; last run {last}; next {nxt}"
    data = {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in job.items()}
    if job.get("outcome") in ("error", "missed"):
        return Check(component, DEGRADED, f"{text}: last run {job['outcome']}"
                     + (f": {job['error']}" if job.get("error") else ""), data)
    if job.get("overdue"):
        return Check(component, DEGRADED, f"{text}: OVERDUE (is the hub running this endpoint?)", data)
    return Check(component, OK, text, data)


def check_schedules(project: Project) -> list[Check]:
    """Scheduled jobs (batch polls, flushes, upload retries): schedule, last run and next run, per job.

    Endpoints whose adapter has no ``jobs`` fall back to their configured schedule (next run only).
    """
    jobs = scheduled_jobs(project)
    checks = [job_check(name, job) for name, found in jobs.items() for job in found]
    rest = {k: v for k, v in _schedules(project).items() if k.split(" ", 1)[0] not in jobs}
    if rest:
        text = "; ".join(f"{name}: {_next_run(s)}" for name, s in sorted(rest.items()))
        checks.append(Check("scheduler", OK, f"{len(rest)} job(s): {text}", {"jobs": sorted(rest)}))
    checks += [
        Check(f"job full-file {route.id}", OK, f"{_next_run(route.full_file)} {route.full_file.timezone}, "
              f"to {route.full_file.to}; written by the leader of full-file:{route.id} (logged)")
        for route in project.routes
        if route.enabled and route.full_file is not None
    ]  # fmt: skip
    if not checks:
        checks.append(Check("scheduler", OK, "no scheduled jobs configured"))
    return checks


def check_hub(project: Project) -> Check:
    """The hub process running on this data directory answers /health/ready."""
    try:
        status, body = ask_running_hub(project.settings)
    except (OSError, ValueError, KeyError) as exc:
        return Check("hub", DEGRADED, f"no running hub answers on this data directory ({type(exc).__name__})")
    detail = orjson.loads(body) if body else {}
    routes = detail.get("routes", {})
    text = f"running, {sum(r['alive'] for r in routes.values())} worker(s) on {len(routes)} route(s)"
    if status != 200:
        return Check("hub", DEGRADED, f"not ready: {detail}", detail)
    return Check("hub", OK, text, detail)


def check_routes(project: Project, rows: Rows | None = None) -> list[Check]:
    """Routes an operator suspended (their messages wait on their queues); ``rows``: :func:`reader`."""
    states = route_states(project.settings.journal.url, rows)
    out = []
    for route in project.routes:
        state = states.get(route.id)
        if state is not None and state["state"] == "suspended":
            out.append(Check(f"route {route.id}", DEGRADED,
                             f"suspended by {state['changed_by']} since {state['changed_at']:%Y-%m-%d %H:%M}Z"
                             + (f": {state['reason']}" if state["reason"] else "")))
    return out


def route_states(url: str, rows: Rows | None = None) -> dict[str, dict[str, Any]]:
    """Route control's rows by route (the fields of ``RouteState``): through ``rows`` (by default the
    journal read without SQLAlchemy, :func:`~esb.ops.healthread.cold_rows`), else (or when that cannot
    answer) through :class:`~esb.runtime.control.RouteControl`."""
    found = route_states_from(rows or cold_rows(url))
    if found is not None:
        return found
    from esb.runtime.control import RouteControl  # SQLAlchemy: only when the cold path could not answer

    with RouteControl(url) as control:
        return {name: asdict(state) for name, state in control.states().items()}


def check_dead_letters(project: Project, journal: JournalCounts) -> list[Check]:
    """Per route: dead letters waiting on its endpoint, and dead-lettered in the journal (24 h)."""
    out = []
    since = datetime.now(UTC) - timedelta(hours=24)
    recent_by_route = journal.dead_lettered_since(since)
    for route, endpoint in dlq.routes_with_dead_letters(project):
        try:
            waiting = dlq.depth(project, endpoint)
        except EsbError as exc:
            out.append(Check(f"dead letters {route.id}", DEGRADED, f"{endpoint}: {exc}"))
            continue
        recent = recent_by_route.get(route.id, 0)
        status = DEGRADED if waiting else OK
        out.append(Check(f"dead letters {route.id}", status,
                         f"{waiting if waiting is not None else '?'} waiting on {endpoint}; {recent} in 24 h",
                         {"waiting": waiting, "last_24h": recent}))
    return out


def stuck_in_flight(url: str, older_than: timedelta, rows: Rows | None = None) -> list[dict[str, Any]]:
    """Return the ingress messages received more than ``older_than`` ago whose latest state is not settled
    (the oldest ``STUCK_LIMIT`` of them: :func:`stuck_scan`)."""
    return stuck_scan(url, older_than, rows)[0]


def stuck_scan(url: str, older_than: timedelta, rows: Rows | None = None) -> tuple[list[dict[str, Any]], int]:
    """The stuck messages (the oldest ``STUCK_LIMIT``) and how many there are: the rows of the
    ``in_flight`` table (migration 0016) received before ``older_than`` ago, an exact range of its index.
    Read through ``rows`` (by default :func:`~esb.ops.healthread.cold_rows`), else through SQLAlchemy."""
    before = datetime.now(UTC) - older_than
    found = stuck_from(rows or cold_rows(url), before)
    if found is None:
        found = _stuck_rows(url, before)
    listed, count = found
    stuck = [{"message_id": r["id"], "route": r["route"], "received_at": r["received_at"].isoformat(),
              "state": r["state"]} for r in listed]  # fmt: skip
    return stuck, count


def _stuck_rows(url: str, received_before: datetime) -> tuple[list[dict[str, Any]], int]:
    """The stuck-message reads through a journal of their own (when no reader could answer)."""
    from esb.journal import Journal

    with Journal(url, pool_size=1) as journal:
        found = stuck_from(warm_rows(journal), received_before)
    if found is None:
        raise EsbError("journal: cannot read the messages in flight")
    return found


def check_stuck(project: Project, older_than: timedelta, rows: Rows | None = None) -> Check:
    """Messages received more than ``older_than`` ago that have not ended yet (all counted; the oldest
    ``STUCK_LIMIT`` listed)."""
    stuck, count = stuck_scan(project.settings.journal.url, older_than, rows)
    minutes = older_than.total_seconds() / 60
    if not count:
        return Check("in flight", OK, f"no message older than {minutes:g} min without a final state",
                     {"count": 0})  # fmt: skip
    sample = ", ".join(f"{s['message_id']} ({s['route']}, {s['state']})" for s in stuck[:5])
    listed = f" (the oldest {len(stuck):,} listed)" if count > len(stuck) else ""
    text = f"{count} message(s) without a final state after {minutes:g} min: {sample}{listed}"
    return Check("in flight", DEGRADED, text, {"stuck": stuck, "count": count})


def _has_processes(project: Project) -> bool:
    return defines_processes(project.root)


def check_processes(
    project: Project, *, defined: bool | None = None, rows: Rows | None = None
) -> Check | None:
    """Process instances by status; ``stuck`` and ``alert`` ones (an operator must act) degrade the hub.

    None when the project defines no process.
    """
    if not (_has_processes(project) if defined is None else defined):
        return None
    try:
        counts, waiting = process_status_counts(project, rows=rows)
    except EsbError as exc:
        return Check("processes", DOWN, f"cannot read the process tables: {exc}")
    held = {s: n for s, n in counts.items() if s in ("stuck", "alert")}
    text = ", ".join(f"{n} {s}" for s, n in sorted(counts.items())) or "no instance"
    if held:
        sample = ", ".join(waiting[:5])
        return Check("processes", DEGRADED,
                     f"{text}; waiting for an operator (esb process show/retry/cancel): {sample}",
                     {"counts": counts, "held": waiting})
    return Check("processes", OK, text, {"counts": counts})


def process_status_counts(
    project: Project, sample: int = 20, rows: Rows | None = None
) -> tuple[dict[str, int], list[str]]:
    """``esb.ops.processes.status_counts``: through ``rows`` (by default
    :func:`~esb.ops.healthread.cold_rows`), else (or when that cannot answer) through the process store."""
    found = process_counts_from(rows or cold_rows(project.settings.journal.url), sample)
    if found is not None:
        return found
    from esb.ops.processes import open_store, status_counts  # late: the engine is only loaded with processes

    with open_store(project) as store:
        return status_counts(store, sample)


def check_process_dead_letters(project: Project, *, defined: bool | None = None) -> list[Check]:
    """Process dead letters (triggers and replies no instance took) waiting, per ``process:<endpoint>``.

    ``defined``: whether the project defines processes, when the caller knows (else processes/ is read).
    """
    endpoint = project.settings.processes.dead_letter
    if endpoint is None or not (_has_processes(project) if defined is None else defined):
        return []
    try:
        groups = dlq.process_groups(project)
        counts = {group: dlq.waiting(project, group) for group, _ in groups}
    except EsbError as exc:
        return [Check("dead letters processes", DEGRADED, f"{endpoint}: {exc}")]
    if not counts:
        return [Check("dead letters processes", OK, f"none waiting on {endpoint}", {"waiting": 0})]
    return [Check(f"dead letters {group}", DEGRADED, f"{n} waiting on {endpoint}", {"waiting": n})
            for group, n in counts.items()]


def reader(journal: JournalCounts) -> Rows | None:
    """The reader of the checks' statements for ``journal``: the held connection of a
    :class:`~esb.ops.healthread.ColdJournal`, the engine of an open :class:`~esb.journal.Journal` (the
    running hub's journal, or where the cold path does not apply: one engine for every check), else None
    (each check reads as it can)."""
    if isinstance(journal, ColdJournal):
        return journal.rows
    if isinstance(journal, ReadsRows):
        return warm_rows(journal)
    return None


def run_checks(project: Project, journal: JournalCounts | None, stuck_after: timedelta) -> list[Check]:
    """Run every check; the broker and journal being down make the hub down."""
    broker = check_broker(project)
    journal_check = check_journal(journal) if journal is not None else Check(
        "journal", DOWN, "cannot open the journal")
    checks = [*broker, journal_check, check_hub(project), *check_endpoints(project),
              *check_schedules(project)]
    if journal is None or journal_check.status == DOWN:
        return checks
    rows = reader(journal)
    checks.extend(check_routes(project, rows))
    defined = _has_processes(project)  # processes/ read once for both process checks
    if (processes := check_processes(project, defined=defined, rows=rows)) is not None:
        checks.append(processes)
    if all(c.status != DOWN for c in broker):
        checks.extend(check_dead_letters(project, journal))
        checks.extend(check_process_dead_letters(project, defined=defined))
    checks.append(check_stuck(project, stuck_after, rows))
    return checks


def as_dict(checks: list[Check]) -> dict[str, Any]:
    """Return the checks and the verdict for ``--json``."""
    return {"status": overall(checks), "checks": [asdict(c) for c in checks]}
