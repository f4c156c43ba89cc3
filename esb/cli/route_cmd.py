"""``esb route list|suspend|resume``: maintenance windows (e.g. while Billing runs its batch)."""

from __future__ import annotations

import click

from esb.cli.main import Obj
from esb.ops.common import iso, load, table, to_json
from esb.runtime.control import RUNNING, SUSPENDED, RouteControl


@click.group()
def route() -> None:
    """List routes with their state; suspend or resume one (its messages stay queued meanwhile)."""


@route.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def list_routes(obj: Obj, as_json: bool) -> None:
    """Every route of routes.yaml: source, destinations, and whether it is suspended."""
    project = load(obj.project, obj.env)
    with RouteControl(project.settings.journal.url) as control:
        states = control.states()
    rows = []
    for r in project.routes:
        state = states.get(r.id)
        current = "disabled" if not r.enabled else (state.state if state else RUNNING)
        rows.append({
            "route": r.id, "from": r.from_, "to": r.destinations() if r.to is not None else [],
            "state": current, "reason": state.reason if state else None,
            "changed_by": state.changed_by if state else None,
            "changed_at": iso(state.changed_at) if state else None,
        })
    if as_json:
        click.echo(to_json(rows))
        return
    click.echo(table(
        ["ROUTE", "FROM", "TO", "STATE", "SINCE", "BY", "REASON"],
        [[r["route"], r["from"], ", ".join(r["to"] or []) or "(reply)", r["state"], r["changed_at"] or "-",
          r["changed_by"] or "-", r["reason"] or ""] for r in rows],
    ))


def _change(obj: Obj, route_id: str, state: str, reason: str | None) -> None:
    project = load(obj.project, obj.env)
    project.route(route_id)  # unknown ids fail here, with a suggestion
    with RouteControl(project.settings.journal.url) as control:
        control.set_state(route_id, state, reason)
    interval = project.settings.runtime.control_interval
    click.echo(f"route {route_id}: {state} (running hubs follow within {interval:g}s)")


@route.command()
@click.argument("route_id")
@click.option("--reason", default=None, help="Why (shown by `esb route list` and `esb health`).")
@click.pass_obj
def suspend(obj: Obj, route_id: str, reason: str | None) -> None:
    """Stop ROUTE_ID reading its source; its messages wait on the queue until resume."""
    _change(obj, route_id, SUSPENDED, reason)


@route.command()
@click.argument("route_id")
@click.pass_obj
def resume(obj: Obj, route_id: str) -> None:
    """Let ROUTE_ID read its source again."""
    _change(obj, route_id, RUNNING, None)
