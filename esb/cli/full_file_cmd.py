"""``esb full-file ROUTE --to ENDPOINT``: write every record a route's target holds as one file (a weekly
full file of a directory: docs/sync.md, "Directory systems")."""

from __future__ import annotations

import dataclasses

import click

from esb.cli.main import Obj
from esb.ops.common import load, to_json


@click.command("full-file")
@click.argument("route")
@click.option(
    "--to", "endpoint", required=True, help="The endpoint that takes the file, e.g. dir114.full_out."
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def full_file(obj: Obj, route: str, endpoint: str, as_json: bool) -> None:
    """Write ROUTE's sync state (every record its target holds, excluded ones left out) to ENDPOINT as one
    file, mapped by the route's transforms after its sync step."""
    from esb.ops.full_file import write_full_file
    from esb.sync import SyncStore

    project = load(obj.project, obj.env)
    with SyncStore(project.settings.journal.url) as store:  # creates or upgrades the schema
        result = write_full_file(project, route, endpoint, store)
    if as_json:
        click.echo(to_json(dataclasses.asdict(result)))
    else:
        click.echo(
            f"{result.endpoint}: wrote {result.file} with {result.records} record(s) of sync {result.sync} "
            f"({result.excluded} held key(s) left out by exclude)"
        )
