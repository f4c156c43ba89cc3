"""``esb trace KEY``: where a message or business key went, through every route and system, in time order."""

from __future__ import annotations

import click

from esb.cli.main import Obj
from esb.config.projectdir import project_settings, route_sources
from esb.ops.common import to_json
from esb.ops.trace import render, trace_journal


@click.command()
@click.argument("key")
@click.option("--json", "as_json", is_flag=True, help="Print the trace as JSON.")
@click.pass_obj
def trace(obj: Obj, key: str, as_json: bool) -> None:
    """Show the path of KEY (message id, correlation id, order id, MSISDN, account id...) in time order.

    Exit 0 when the journal knows KEY, 1 when it does not.
    """
    # The journal is all a trace reads: the settings say where it is, and routes.yaml (read only when
    # the journal knows KEY) which system each route's messages come from. The rest of the project is
    # neither loaded nor checked (esb lint does that), so a trace answers in a fraction of a second; on
    # a SQLite journal it reads without SQLAlchemy.
    root, settings = project_settings(obj.project, obj.env)
    result = trace_journal(settings, key, sources=lambda: route_sources(root))
    click.echo(to_json(result.as_dict()) if as_json else render(result))
    if not result.steps:
        raise click.exceptions.Exit(1)
