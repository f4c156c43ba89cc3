"""``esb trace KEY``: where a message or business key went, through every route and system, in time order."""

from __future__ import annotations

import click

from esb.cli.main import Obj
from esb.ops.common import load, open_journal, to_json
from esb.ops.trace import build_trace, render


@click.command()
@click.argument("key")
@click.option("--json", "as_json", is_flag=True, help="Print the trace as JSON.")
@click.pass_obj
def trace(obj: Obj, key: str, as_json: bool) -> None:
    """Show the path of KEY (message id, correlation id, order id, MSISDN, account id...) in time order.

    Exit 0 when the journal knows KEY, 1 when it does not.
    """
    project = load(obj.project, obj.env)
    with open_journal(project) as journal:
        result = build_trace(journal, key, project)
    click.echo(to_json(result.as_dict()) if as_json else render(result))
    if not result.steps:
        raise click.exceptions.Exit(1)
