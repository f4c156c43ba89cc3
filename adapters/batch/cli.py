"""``esb batch acks ENDPOINT``: each file an outbound batch endpoint sent, reconciled against the ack its
peer sent back (records sent, received, accepted, rejected; docs/batch.md, "Acks").

The batch adapter's own command group, added to the ``esb`` CLI through its ``commands()`` capability. It
reads the two endpoints' local state read-only, as ``esb health`` does: it writes nothing.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import click
import orjson


@click.group("batch")
def batch() -> None:
    """The batch adapter's commands."""


@click.command("acks")
@click.argument("endpoint")
@click.option("--days", type=float, default=30.0, show_default=True, help="Files sent in the last DAYS days.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def acks(obj: Any, endpoint: str, days: float, as_json: bool) -> None:
    """Each file ENDPOINT (e.g. dir114.listings_out) sent against its ack: sent, received, accepted,
    rejected and whether they add up (ok, mismatch, waiting). Exits 1 when one does not add up."""
    from adapters.batch.acks import reconcile
    from adapters.batch.config import BatchEndpoint
    from esb.project import Project

    project = Project.load(obj.project, obj.env)  # obj: the esb group's (project folder, environment)
    config = project.endpoint(endpoint)
    if not isinstance(config, BatchEndpoint) or config.outbound is None or config.outbound.ack is None:
        raise click.UsageError(
            f"{endpoint} is not an outbound batch endpoint that expects acks (outbound.ack)"
        )
    rows = reconcile(config, project.context(endpoint), since=time.time() - days * 86400)
    if as_json:
        table = [{**dataclasses.asdict(r), "status": r.status()} for r in rows]
        click.echo(orjson.dumps(table, option=orjson.OPT_INDENT_2).decode())
    else:
        if not rows:
            click.echo(f"{endpoint}: no file sent in the last {days:g} day(s)")
        for r in rows:

            def shown(value: int | None) -> str:
                return "-" if value is None else str(value)

            counts = (
                f"sent {r.sent}, received {shown(r.received)}, accepted {shown(r.accepted)}, "
                f"rejected {shown(r.rejected)}"
            )
            tail = f": {'; '.join(r.problems)}" if r.problems else ""
            click.echo(f"{r.file} ({r.ack}) {r.status()}: {counts}{tail}")
    if any(r.problems for r in rows):
        raise SystemExit(1)


batch.add_command(acks)
