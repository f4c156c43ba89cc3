"""``esb new system NAME`` / ``esb new route NAME --from A --to B``: scaffolding that passes lint and test."""

from __future__ import annotations

import click

from esb.cli.main import Obj
from esb.scaffold.new import Changes, new_route, new_system


def _report(changes: Changes, follow_up: str) -> None:
    for path in changes.edited:
        click.echo(f"edited   {path}")
    for path in changes.created:
        click.echo(f"created  {path}")
    click.echo(follow_up)


@click.group()
def new() -> None:
    """Scaffold a system (its endpoints) or a route (route, dead letters, mappings and their tests)."""


@new.command("system")
@click.argument("name")
@click.option("--description", default=None, help="What the system is (shown by esb health and the docs).")
@click.pass_obj
def system(obj: Obj, name: str, description: str | None) -> None:
    """Add system NAME to config/systems.yaml with a queue endpoint each way (messages_out, messages_in)."""
    changes = new_system(obj.project, name, description, obj.env)
    _report(
        changes,
        f"next: esb new route ROUTE --from {name}.messages_out --to SYSTEM.ENDPOINT (rename the endpoints "
        "as you like first)",
    )


@new.command("route")
@click.argument("route_id", metavar="NAME")
@click.option("--from", "source", required=True, help="The source endpoint, system.endpoint.")
@click.option("--to", "target", required=True, help="The target endpoint, system.endpoint.")
@click.pass_obj
def route(obj: Obj, route_id: str, source: str, target: str) -> None:
    """Add route NAME to routes.yaml with its dead-letter endpoint and mapping skeletons with tests."""
    changes = new_route(obj.project, route_id, source, target, obj.env)
    _report(changes, f"next: fill in transforms/{route_id}/ and its samples, then esb lint and esb test")
