"""``esb dlq list|show|retry|purge``: each route's dead letters, with the error and the original bytes.

Process dead letters (``processes.dead_letter``) are handled the same way, one group per endpoint
they were read on: ``process:<endpoint>`` stands where a route id does.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

import click

from esb.cli.main import Obj
from esb.ops import dlq as ops
from esb.ops.common import display_body, load, open_journal, table, to_json


@click.group()
def dlq() -> None:
    """Dead letters per route (or process:ENDPOINT): list, show one, retry (re-publish), purge (archived)."""


@dlq.command("list")
@click.argument("route_id", required=False)
@click.option("--limit", default=50, show_default=True, help="Messages listed per route.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def list_(obj: Obj, route_id: str | None, limit: int, as_json: bool) -> None:
    """Per route and per process:ENDPOINT group: how many dead letters wait, and the newest ones with
    their error. Exit 1 if any wait."""
    project = load(obj.project, obj.env)
    if route_id:
        groups = [(route_id, ops.group_endpoint(project, route_id))]
    else:
        groups = [(r.id, e) for r, e in ops.routes_with_dead_letters(project)] + ops.process_groups(project)
    report: list[dict[str, Any]] = []
    journaled = ops.journaled(project, [group for group, _ in groups])
    for group, endpoint in groups:
        letters = ops.peek(project, group, limit)
        report.append(
            {
                "route": group,
                "endpoint": endpoint,
                "waiting": ops.waiting(project, group),
                "journal_dead_lettered": journaled[group],
                "messages": [d.summary() for d in letters],
            }
        )
    if as_json:
        click.echo(to_json(report))
    else:
        for entry in report:
            click.echo(
                f"{entry['route']}: {entry['waiting']} waiting on {entry['endpoint']}, "
                f"{entry['journal_dead_lettered']} dead-lettered in the journal"
            )
            if entry["messages"]:
                click.echo(
                    table(
                        ["MESSAGE", "FAILED AT", "REASON", "ERROR"],
                        [
                            [
                                m["message_id"],
                                m["failed_at"] or "-",
                                m["error_reason"] or "-",
                                (m["error"] or "").splitlines()[0][:90] if m["error"] else "",
                            ]
                            for m in entry["messages"]
                        ],
                    )
                )
    if any(entry["waiting"] or entry["messages"] for entry in report):
        raise click.exceptions.Exit(1)


@dlq.command()
@click.argument("route_id")
@click.argument("message_id", required=False)
@click.option(
    "--raw",
    "raw",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write the original bytes to this file, byte for byte.",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON (body as text).")
@click.pass_obj
def show(obj: Obj, route_id: str, message_id: str | None, raw: Path | None, as_json: bool) -> None:
    """One dead letter (without MESSAGE_ID: the oldest waiting): its error, headers and original bytes.
    Exit 1 if it is not there."""
    project = load(obj.project, obj.env)
    letter = ops.find(project, route_id, message_id)
    if letter is None:
        what = message_id or "no dead letter"
        click.echo(f"{what} is not on the dead-letter endpoint of {route_id}", err=True)
        raise click.exceptions.Exit(1)
    if raw is not None:
        raw.write_bytes(letter.body)
    if as_json:
        click.echo(
            to_json(
                {
                    **letter.summary(),
                    "headers": letter.headers,
                    "body": letter.body.decode("utf-8", "backslashreplace"),
                }
            )
        )
        return
    click.echo(f"message   {letter.message_id}\nroute     {letter.route}\nfailed at {letter.failed_at}")
    click.echo(f"error     {letter.error_class} ({letter.error_reason})\n          {letter.error}")
    click.echo("headers:")
    for name, value in sorted(letter.headers.items()):
        if name not in ops.ERROR_HEADERS:
            click.echo(f"  {name}: {value}")
    click.echo(f"original bytes ({letter.size}):\n{display_body(letter.body)}")


def _selection(ids: tuple[str, ...], every: bool) -> set[str] | None:
    if not ids and not every:
        raise click.UsageError("name the MESSAGE_IDS, or pass --all")
    return None if every else set(ids)


@dlq.command()
@click.argument("route_id")
@click.argument("message_ids", nargs=-1)
@click.option("--all", "every", is_flag=True, help="Every dead letter of the route (or process group).")
@click.option("--new-id", is_flag=True, help="Give each retry a new id instead of the original.")
@click.option("--rate", type=float, default=None, help="At most N messages per second.")
@click.option(
    "--wait",
    "wait",
    type=click.FloatRange(min=0),
    default=30.0,
    show_default=True,
    help="Seconds to follow the journal for each re-published message's end (0: do not wait).",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def retry(
    obj: Obj,
    route_id: str,
    message_ids: tuple[str, ...],
    every: bool,
    new_id: bool,
    rate: float | None,
    wait: float,
    as_json: bool,
) -> None:
    """Send dead letters through their route again (journaled as replays) and take them off the endpoint,
    then follow the journal until each one ended.

    Exit 0 when every selected one was delivered or filtered (with --wait 0: re-published); 1 when one
    was not found, not re-published, or dead-lettered again; 3 when one was still in flight when the
    wait ended (``esb trace ID`` follows it).

    A process:ENDPOINT dead letter is re-published to ENDPOINT, for the running hub's process inlet
    to take again; it is not followed (an instance it starts is journaled on process:NAME):
    ``esb trace ID`` shows what became of it.
    """
    from esb.ops.replay import Replayer  # only retry re-publishes: the other commands do not load it

    project = load(obj.project, obj.env)
    ids = _selection(message_ids, every)
    if ops.is_process_group(route_id):
        wait = 0.0
    with open_journal(project) as journal, Replayer(project, journal, new_id=new_id, rate=rate) as replayer:
        results = ops.retry(project, replayer, route_id, ids)
        ends = ops.await_outcomes(journal, route_id, results, wait) if wait else {}
    missing = (ids or set()) - {r.message_id for r in results}
    failed = [r for r in results if r.status != "sent" or ends.get(r.message_id) == "dead_lettered"]
    pending = [r for r in results if r.message_id in ends and ends[r.message_id] is None]
    if as_json:
        click.echo(to_json([{**asdict(r), "ended": ends.get(r.message_id)} for r in results]))
    else:
        _print_retry(route_id, results, ends, wait)
    if missing:
        click.echo(f"not found on the endpoint: {', '.join(sorted(missing))}", err=True)
    if missing or failed:
        raise click.exceptions.Exit(1)
    if pending:
        click.echo(f"{len(pending)} still in flight after {wait:g}s: follow them with esb trace ID", err=True)
        raise click.exceptions.Exit(3)


def _print_retry(route_id: str, results: list[Any], ends: dict[str, str | None], wait: float) -> None:
    for r in results:
        end = ends.get(r.message_id, "")
        status = r.status if not end else f"{r.status}, {end.replace('_', '-')}"
        if r.message_id in ends and end is None:
            status = f"{r.status}, still in flight"
        click.echo(f"{status:<22} {r.message_id}" + (f": {r.reason}" if r.reason else ""))
    sent = sum(r.status == "sent" for r in results)
    again = sum(end == "dead_lettered" for end in ends.values())
    if ops.is_process_group(route_id):
        click.echo(
            f"{sent} re-published to {route_id.removeprefix(ops.PROCESS_PREFIX)} for the process inlet "
            "(not followed: esb trace ID shows what became of each)"
        )
        return
    click.echo(
        f"{sent} re-published to route {route_id}"
        + (f"; {again} dead-lettered again" if wait else " (not followed: --wait 0)")
    )


@dlq.command()
@click.argument("route_id")
@click.argument("message_ids", nargs=-1)
@click.option("--all", "every", is_flag=True, help="Every dead letter of the route (or process group).")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.pass_obj
def purge(obj: Obj, route_id: str, message_ids: tuple[str, ...], every: bool, yes: bool) -> None:
    """Remove dead letters for good, after writing each to {data_dir}/dlq-archive/ROUTE-TIME.jsonl.

    Each removal is journaled as ``purged`` with the archive file (``esb trace ID`` shows it).
    """
    project = load(obj.project, obj.env)
    ids = _selection(message_ids, every)
    what = "every dead letter" if ids is None else f"{len(ids)} dead letter(s)"
    if not yes:
        click.confirm(f"purge {what} of {route_id} (archived first)?", abort=True, err=True)
    with open_journal(project) as journal:
        removed, path = ops.purge(project, route_id, ids, journal)
    click.echo(f"purged {removed} dead letter(s) of {route_id}" + (f"; archived in {path}" if path else ""))
