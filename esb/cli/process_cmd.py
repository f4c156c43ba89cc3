"""``esb process list|show|retry|cancel``: the process engine's instances, for operators."""

from __future__ import annotations

from dataclasses import asdict

import click

from esb.cli.main import Obj
from esb.ops import processes as ops
from esb.ops.common import load, parse_key, parse_when, to_json


@click.group()
def process() -> None:
    """Process instances: list, show one with its steps, retry a stuck one, cancel one."""


@process.command("list")
@click.option("--process", "process_name", default=None, help="Only instances of this process.")
@click.option("--state", default=None, help="Only instances in this TMF state (e.g. inProgress).")
@click.option(
    "--status",
    "statuses",
    multiple=True,
    type=click.Choice(ops.STATUSES),
    help="Only these statuses (repeat for several): waiting = running but not due; ended = any end.",
)
@click.option("--key", default=None, metavar="NAME=VALUE", help="Only instances with this business key.")
@click.option("--since", default=None, help="Updated since: a duration ago (2h, 1d) or an ISO time.")
@click.option(
    "--limit", default=50, show_default=True, type=click.IntRange(min=1), help="Instances per page."
)
@click.option("--offset", default=0, show_default=True, type=click.IntRange(min=0), help="Instances skipped.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def list_(
    obj: Obj,
    process_name: str | None,
    state: str | None,
    statuses: tuple[str, ...],
    key: str | None,
    since: str | None,
    limit: int,
    offset: int,
    as_json: bool,
) -> None:
    """One line per instance, newest update first: keys, TMF state, status, what it waits for, last step."""
    project = load(obj.project, obj.env)
    with ops.open_store(project) as store:
        found = ops.find(
            store,
            process=process_name,
            state=state,
            statuses=statuses,
            key=parse_key(key) if key else None,
            since=parse_when(since),
            limit=limit,
            offset=offset,
        )
    if as_json:
        click.echo(to_json([asdict(s) for s in found]))
        return
    if not found:
        click.echo("no process instance matches")
        return
    click.echo(ops.list_table(found))
    if len(found) == limit:
        click.echo(f"(first {limit} from {offset}: --offset {offset + limit} for the next page)")


@process.command()
@click.argument("instance_id", required=False)
@click.option("--key", default=None, metavar="NAME=VALUE", help="The instance with this business key.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def show(obj: Obj, instance_id: str | None, key: str | None, as_json: bool) -> None:
    """One instance: every step, branch, timer and inbox entry, and what compensation would undo.

    Exit 1 if there is no such instance.
    """
    project = load(obj.project, obj.env)
    with ops.open_store(project) as store:
        wanted = ops.resolve(store, instance_id, parse_key(key) if key else None)
        found = ops.detail(store, wanted)
    if found is None:
        click.echo(f"no process instance has the id {wanted!r}", err=True)
        raise click.exceptions.Exit(1)
    click.echo(to_json(found.as_dict()) if as_json else ops.show_text(found))


@process.command()
@click.argument("instance_id")
@click.pass_obj
def retry(obj: Obj, instance_id: str) -> None:
    """Make a stuck or alert instance due again from where it stopped (its failed step or undo is
    re-run with the same idempotency key). Exit 1, with the reason, for any other status."""
    project = load(obj.project, obj.env)
    with ops.open_store(project) as store:
        answer = ops.retry(store, instance_id)
    if not answer.done:
        click.echo(f"refused: {answer.reason}", err=True)
        raise click.exceptions.Exit(1)
    click.echo(f"retried {instance_id}: {answer.status}, due now (the engine's runners pick it up)")


@process.command()
@click.argument("instance_id", required=False)
@click.option("--key", default=None, metavar="NAME=VALUE", help="The instance with this business key.")
@click.option("--reason", default=None, help="Why (kept with the request, with who asked).")
@click.pass_obj
def cancel(obj: Obj, instance_id: str | None, key: str | None, reason: str | None) -> None:
    """Ask the engine to cancel an instance: its definition's on_cancel and point of no return decide.

    Accepted: the instance undoes its done steps and ends cancelled. Exit 1, with the reason, if refused.
    """
    project = load(obj.project, obj.env)
    with ops.open_store(project) as store:
        wanted = ops.resolve(store, instance_id, parse_key(key) if key else None)
        answer = ops.cancel(store, wanted, reason)
    if not answer.accepted:
        click.echo(f"refused: {answer.reason}", err=True)
        raise click.exceptions.Exit(1)
    click.echo(f"accepted: {wanted} will undo its done steps and end cancelled")
