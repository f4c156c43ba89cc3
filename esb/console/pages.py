"""The console's pages (GET only): routes, search, processes, dead letters, health, audit, live figures.

Each page calls the function behind the matching CLI command (``esb.ops``, ``esb.runtime.control``);
every list is paged on the server (``?page=N``, ``console.page_size`` rows).
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, render_template, request

from esb.console.app import current_user, state
from esb.console.figures import CHART_WINDOW, WINDOW, bars, rate_series
from esb.exceptions import ConfigError, EsbError
from esb.ops import dlq, health, processes, trace
from esb.ops.common import display_body, iso, parse_key
from esb.process.loader import load_processes
from esb.runtime.control import RUNNING, RouteControl

pages = Blueprint("pages", __name__)


def page_args() -> tuple[int, int, int]:
    """Return (page number from 1, limit, offset) of the request."""
    try:
        number = max(1, int(request.args.get("page", "1")))
    except ValueError:
        abort(400, "page must be a number")
    size = state().settings.page_size
    return number, size, (number - 1) * size


def page_of(items: list[Any]) -> tuple[list[Any], dict[str, Any]]:
    """Cut one page out of ``items`` (lists an ops function returns whole); return it and its pager."""
    number, size, offset = page_args()
    return items[offset:offset + size], pager(number, size, len(items))


def pager(number: int, size: int, total: int | None, shown: int | None = None) -> dict[str, Any]:
    """Return what the pager template needs (``total`` None: more exist when the page is full)."""
    more = (number * size < total) if total is not None else shown == size
    return {"page": number, "size": size, "total": total, "prev": number > 1, "next": more}


@pages.get("/")
def routes() -> str:
    """Every route: state, figures over the window, dead letters waiting; a latency chart."""
    console = state()
    project = console.project()
    with RouteControl(project.settings.journal.url) as control:
        states = control.states()
    figures = console.figures.get(project, project.settings.journal.url, console.stats_engine)
    chart = bars([(f.route, f.stats.latency_ms.get("p99", 0.0), f.stats.latency_ms.get("p50", 0.0))
                  for f in figures], width=max(300, 40 * len(figures)), height=80)
    shown, pages_ = page_of(figures)
    rows = [{"f": f, "state": _state(f.enabled, states.get(f.route))} for f in shown]
    return render_template("routes.html", rows=rows, pager=pages_, chart=chart,
                           window=int(WINDOW.total_seconds() // 60), user=current_user())


def _state(enabled: bool, found: Any) -> dict[str, Any]:
    if not enabled:
        return {"state": "disabled"}
    if found is None:
        return {"state": RUNNING}
    return {"state": found.state, "by": found.changed_by, "at": iso(found.changed_at), "reason": found.reason}


@pages.get("/routes/<route_id>")
def route_detail(route_id: str) -> str:
    """One route: its rate over the window as a chart, its endpoints, its state."""
    project = state().project()
    try:
        route = project.route(route_id)
    except ConfigError as exc:
        abort(404, str(exc))
    series = rate_series(project.settings.journal.url, route_id, state().stats_engine)
    chart = bars([(iso(start)[11:16], total, dead) for start, total, dead in series])
    with RouteControl(project.settings.journal.url) as control:
        current = _state(route.enabled, control.states().get(route_id))
    return render_template("route.html", route=route, chart=chart, state=current, user=current_user(),
                           step_minutes=CHART_WINDOW.total_seconds() / 60 / len(series))


@pages.get("/search")
def search() -> str:
    """A business key (order id, MSISDN, ticket id) or message id: its timeline, and the process
    instances that hold it as a key."""
    key = request.args.get("key", "").strip()
    found = None
    instances: list[processes.Summary] = []
    steps: list[trace.Step] = []
    pager_: dict[str, Any] = {}
    if key:
        console = state()
        project = console.project()
        found = trace.build_trace(console.journal, key, project)
        steps, pager_ = page_of(found.steps)
        instances = _instances_with(project, key)
    return render_template("search.html", key=key, trace=found, steps=steps, pager=pager_,
                           instances=instances, user=current_user())


def _instances_with(project: Any, key: str) -> list[processes.Summary]:
    """Process instances holding ``key`` (``name=value``, or a bare value under any key name)."""
    names: list[tuple[str, str]]
    names = [parse_key(key)] if "=" in key else [(name, key) for name in _key_names(project)]
    found: list[processes.Summary] = []
    try:
        store = state().process_store.get(project)
        for pair in names:
            found.extend(processes.find(store, key=pair, limit=20))
    except EsbError:
        return []
    return found


def _key_names(project: Any) -> list[str]:
    """The business key names of every process definition of the project (read once per project: the
    hub hands a new project object after a reload)."""
    cache = state().key_names
    if cache.get("project") is not project:
        try:
            definitions = load_processes(project.root).all()
        except (EsbError, OSError):
            definitions = []
        cache.clear()
        cache.update(project=project, names=sorted({n for d in definitions for n in d.process.business_keys}))
    names: list[str] = cache["names"]
    return names


@pages.get("/processes")
def process_list() -> str:
    """Process instances, newest update first, filtered by status, process or key."""
    number, size, offset = page_args()
    status = request.args.get("status", "")
    name = request.args.get("process", "") or None
    console = state()
    try:
        store = console.process_store.get(console.project())
        found = processes.find(store, process=name, statuses=(status,) if status else (),
                               limit=size, offset=offset)
    except ConfigError as exc:
        abort(400, str(exc))
    return render_template("processes.html", instances=found, statuses=processes.STATUSES, status=status,
                           process=name or "", pager=pager(number, size, None, len(found)),
                           user=current_user())


@pages.get("/processes/<instance_id>")
def process_detail(instance_id: str) -> str:
    """One instance: steps, branches, timers, what it waits for, inbox, what compensation would undo."""
    found = processes.detail(state().process_store.get(state().project()), instance_id)
    if found is None:
        abort(404, f"no process instance has the id {instance_id!r}")
    return render_template("process.html", found=found, user=current_user())


@pages.get("/dlq")
def dead_letter_groups() -> str:
    """Every route with a dead-letter endpoint and how many wait there."""
    project = state().project()
    rows = []
    for route, endpoint in dlq.routes_with_dead_letters(project):
        try:
            waiting: Any = dlq.waiting(project, route.id)
        except EsbError as exc:
            waiting = f"? ({exc})"
        rows.append({"route": route.id, "endpoint": endpoint, "waiting": waiting})
    shown, pager_ = page_of(rows)
    return render_template("dlq_groups.html", rows=shown, pager=pager_, user=current_user())


@pages.get("/dlq/<group>")
def dead_letters(group: str) -> str:
    """One route's (or process group's) dead letters, oldest first, one page of them."""
    number, size, offset = page_args()
    project = state().project()
    try:
        letters = dlq.peek(project, group, offset + size)[offset:]
        waiting = dlq.waiting(project, group)
    except ConfigError as exc:
        abort(404, str(exc))
    return render_template("dlq.html", group=group, letters=letters, waiting=waiting,
                           pager=pager(number, size, waiting, len(letters)), user=current_user())


@pages.get("/dlq/<group>/<message_id>")
def dead_letter(group: str, message_id: str) -> str:
    """One dead letter: the error, the headers and the original bytes."""
    project = state().project()
    try:
        letter = dlq.find(project, group, message_id)
    except ConfigError as exc:
        abort(404, str(exc))
    if letter is None:
        abort(404, f"{message_id} is not waiting on the dead-letter endpoint of {group}")
    return render_template("dead_letter.html", group=group, letter=letter, body=display_body(letter.body),
                           user=current_user())


@pages.get("/health")
def health_page() -> str:
    """``esb health``'s checks and verdict as last run in the background (they call the project's peers:
    a second or more when one is down), with when they ran; before the first run ends, a page that
    reloads itself."""
    watch = state().health
    watch.start()  # the console server starts it; a console built otherwise starts it with its first view
    result = watch.last()
    if result is None:
        return render_template("health.html", result=None, checks=[], overall="unknown", user=current_user())
    return render_template("health.html", result=result, checks=result.checks, every=watch.every,
                           overall="down" if result.error else health.overall(result.checks),
                           user=current_user())


@pages.get("/audit")
def audit_page() -> str:
    """Every operator action, newest first."""
    number, size, offset = page_args()
    entries = state().audit.page(size, offset, request.args.get("user") or None)
    return render_template("audit.html", entries=entries, pager=pager(number, size, None, len(entries)),
                           user=current_user())


@pages.get("/api/figures")
def figures() -> dict[str, Any]:
    """The live figures the routes page polls: per route over the window, and when they were read."""
    console = state()
    project = console.project()
    found = console.figures.get(project, project.settings.journal.url, console.stats_engine)
    return {"window_minutes": WINDOW.total_seconds() / 60, "routes": [f.as_dict() for f in found]}
