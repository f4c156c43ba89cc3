"""``esb replay``: send journaled messages through their route again (or ``--dry-run``: show the diff)."""

from __future__ import annotations

from dataclasses import asdict

import click

from esb.cli.main import Obj
from esb.journal import STATES
from esb.ops.common import load, open_journal, parse_key, parse_when, to_json
from esb.ops.dryrun import DryRun
from esb.ops.replay import Outcome, Replayer, Selection, select

CONFIRM_ABOVE = 10


@click.command()
@click.argument("message_ids", nargs=-1)
@click.option("--correlation-id", default=None, help="Every message of this conversation.")
@click.option("--key", "key", default=None, help="A business key NAME=VALUE (order_id=..., msisdn=...).")
@click.option("--route", default=None, help="Only messages that entered this route.")
@click.option("--since", default=None, help="Received since: a duration ago (15m, 2h) or an ISO time.")
@click.option("--until", default=None, help="Received before: a duration ago or an ISO time.")
@click.option("--state", type=click.Choice(STATES), default=None, help="Latest state is this.")
@click.option("--limit", default=1000, show_default=True, help="At most this many messages.")
@click.option("--dry-run", is_flag=True, help="Send nothing; diff today's output with what was sent.")
@click.option("--new-id", is_flag=True, help="New ids (<id>:replay-<n>), not the original.")
@click.option("--rate", type=float, default=None, help="At most N messages per second.")
@click.option("--yes", is_flag=True, help=f"Do not ask before replaying more than {CONFIRM_ABOVE} messages.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def replay(obj: Obj, message_ids: tuple[str, ...], correlation_id: str | None, key: str | None,
           route: str | None, since: str | None, until: str | None, state: str | None, limit: int,
           dry_run: bool, new_id: bool, rate: float | None, yes: bool, as_json: bool) -> None:
    """Replay MESSAGE_IDS, or every message matching the options, from their original bytes.

    Exit 0 when every selected message was sent (or dry-run), 1 when one was skipped or failed or
    nothing matched, 2 for a usage or project error.
    """
    project = load(obj.project, obj.env)
    if route is not None:
        project.route(route)
    selection = Selection(message_ids, correlation_id, parse_key(key) if key else None, route,
                          parse_when(since), parse_when(until), state, limit)
    with open_journal(project) as journal:
        records = select(journal, project, selection)
        if not records:
            click.echo("no journaled message matches", err=True)
            raise click.exceptions.Exit(1)
        if not dry_run and len(records) > CONFIRM_ABOVE and not yes:
            click.confirm(f"replay {len(records)} messages?", abort=True, err=True)
        results: list[Outcome] = []
        if dry_run:
            runner = DryRun(project, journal)
            try:
                results = [runner.run(r) for r in records]
            finally:
                runner.close()
        else:
            with Replayer(project, journal, new_id=new_id, rate=rate) as replayer:
                for record in records:
                    results.append(replayer.replay_record(record))
                    if not as_json:
                        click.echo(_line(results[-1]))
    if as_json:
        click.echo(to_json([asdict(r) for r in results]))
    elif dry_run:
        click.echo(render_dry_run(results))
    if any(r.status in ("skipped", "failed") for r in results):
        raise click.exceptions.Exit(1)


def _line(result: Outcome) -> str:
    if result.status == "sent":
        alias = f" as {result.sent_as}" if result.sent_as != result.message_id else ""
        how = f": {result.reason}" if result.reason else ""
        return f"sent     {result.message_id}{alias} to route {result.route} (replay #{result.replay}){how}"
    return f"{result.status:<8} {result.message_id} on route {result.route}: {result.reason}"


def render_dry_run(results: list[Outcome]) -> str:
    """Return the dry run for people: per message, each output, its destinations and diffs."""
    lines: list[str] = []
    for result in results:
        lines.append(f"== {result.message_id} (route {result.route}): {result.status}"
                     + (f": {result.reason}" if result.reason else ""))
        for output in result.outputs or []:
            for dest in output["destinations"]:
                if not dest["sent_before"]:
                    verdict = "never sent there before"
                else:
                    verdict = "CHANGED since it was sent" if dest["changed"] else "same as sent then"
                lines.append(f"-- output {output['id']} -> {dest['endpoint']}: {verdict}")
                if dest["diff"]:
                    lines.append(dest["diff"].rstrip("\n"))
            if not any(d["diff"] for d in output["destinations"]):
                lines.append(output["body"])
    return "\n".join(lines)
