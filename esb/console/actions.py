"""The console's actions (POST, operator role, CSRF token): each calls the CLI's function and is audited.

Dead-letter retries go through ``esb.ops.dlq.retry`` with the console's rate limit and are followed in
the journal for a few seconds (``esb.ops.dlq.await_outcomes``); route suspend/resume through
``RouteControl``; process retry/cancel through ``esb.ops.processes``. ``acting_as`` makes every journal
note those functions write (replays, process inbox entries, route control) name the console user.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, flash, redirect, request, url_for
from werkzeug.wrappers import Response

from esb.console.app import current_user, operator_only, state
from esb.exceptions import ConfigError, EsbError
from esb.ops import dlq, processes
from esb.ops.replay import Replayer
from esb.runtime.control import RUNNING, SUSPENDED, RouteControl, acting_as

actions = Blueprint("actions", __name__)

#: How long a retry follows the journal for the outcome before answering "still in flight".
FOLLOW_SECONDS = 5.0


def audit(action: str, target: str, outcome: str, detail: dict[str, Any] | None = None) -> None:
    """Write one action of the current user to the audit table."""
    user = current_user()
    state().audit.record(user=user.name, role=user.role, client=request.remote_addr, action=action,
                         target=target, outcome=outcome, detail=detail)


def actor() -> str:
    """The name journal notes give the current user."""
    return f"console:{current_user().name}"


@actions.post("/dlq/<group>/retry")
@operator_only
def retry_dead_letters(group: str) -> Response:
    """Retry the selected dead letters (``ids``), or every one (``all``), at ``console.retry_rate``."""
    console = state()
    project = console.project()
    every = request.form.get("all") == "1"
    ids = set(request.form.getlist("ids"))
    if not every and not ids:
        abort(400, "select at least one dead letter (or retry all)")
    if len(ids) > console.settings.retry_max:
        abort(400, f"at most {console.settings.retry_max} dead letters per retry")
    try:
        if every:  # the oldest retry_max waiting: a bulk retry is bounded too
            ids = {d.message_id for d in dlq.peek(project, group, console.settings.retry_max)}
        with acting_as(actor()), Replayer(project, console.journal, rate=console.settings.retry_rate) as rp:
            results = dlq.retry(project, rp, group, ids)
            wait = 0.0 if dlq.is_process_group(group) else FOLLOW_SECONDS
            ends = dlq.await_outcomes(console.journal, group, results, wait) if wait else {}
    except ConfigError as exc:
        audit("dlq.retry", group, "refused", {"ids": sorted(ids), "all": every, "error": str(exc)})
        abort(400, str(exc))
    done = [{"id": r.message_id, "status": r.status, "ended": ends.get(r.message_id), "reason": r.reason}
            for r in results]
    ok = all(d["status"] == "sent" and d["ended"] != "dead_lettered" for d in done) and bool(done)
    audit("dlq.retry", group, "done" if ok else "partly", {"all": every, "messages": done})
    for d in done:
        ended = d["ended"] or ("not followed" if not wait else "still in flight")
        why = f" ({d['reason']})" if d["reason"] else ""
        flash(f"{d['id']}: {d['status']}, {ended.replace('_', '-')}{why}")
    missing = ids - {d["id"] for d in done}
    if missing:
        flash(f"not found on the endpoint: {', '.join(sorted(missing))}")
    return redirect(url_for("pages.dead_letters", group=group))


@actions.post("/routes/<route_id>/<verb>")
@operator_only
def change_route(route_id: str, verb: str) -> Response:
    """Suspend or resume a route (running hubs follow within ``runtime.control_interval``)."""
    if verb not in ("suspend", "resume"):
        abort(404, f"no action {verb!r} on routes")
    project = state().project()
    try:
        project.route(route_id)
    except ConfigError as exc:
        abort(404, str(exc))
    reason = request.form.get("reason", "").strip()[:500] or None
    wanted = SUSPENDED if verb == "suspend" else RUNNING
    with acting_as(actor()), RouteControl(project.settings.journal.url) as control:
        control.set_state(route_id, wanted, reason)
    audit(f"route.{verb}", route_id, "done", {"reason": reason})
    flash(f"route {route_id}: {wanted} (running hubs follow within "
          f"{project.settings.runtime.control_interval:g} s)")
    return redirect(url_for("pages.route_detail", route_id=route_id))


@actions.post("/processes/<instance_id>/<verb>")
@operator_only
def change_process(instance_id: str, verb: str) -> Response:
    """Retry a stuck or alert instance, or ask the engine to cancel one."""
    if verb not in ("retry", "cancel"):
        abort(404, f"no action {verb!r} on process instances")
    reason = request.form.get("reason", "").strip()[:500] or None
    try:
        console = state()
        store = console.process_store.get(console.project())  # kept between requests (stores.py)
        with acting_as(actor()):
            if verb == "retry":
                answer: Any = processes.retry(store, instance_id)
                ok, why = answer.done, answer.reason
            else:
                answer = processes.cancel(store, instance_id, reason)
                ok, why = answer.accepted, answer.reason
    except EsbError as exc:
        audit(f"process.{verb}", instance_id, "refused", {"error": str(exc)})
        abort(400, str(exc))
    audit(f"process.{verb}", instance_id, "done" if ok else "refused", {"reason": reason, "answer": why})
    flash(f"{verb} {instance_id}: " + ("accepted" if ok else f"refused: {why}"))
    return redirect(url_for("pages.process_detail", instance_id=instance_id))
