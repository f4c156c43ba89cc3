"""``esb receive ENDPOINT [--peek] [--count N] [--json]``: take what waits on a queue or in a batch outbox."""

from __future__ import annotations

import click
import orjson

from esb.cli.main import Obj
from esb.ops.common import load
from esb.ops.receive import Received
from esb.ops.receive import receive as receive_messages


def _print(received: Received, as_json: bool) -> None:
    """Print one message: a JSON line, or its id, headers and decoded body."""
    if as_json:
        click.echo(orjson.dumps(received.as_dict(), option=orjson.OPT_NON_STR_KEYS, default=str).decode())
        return
    charset = received.charset or "structured"
    click.echo(f"--- {received.id}  ({received.bytes} bytes, {charset})")
    if received.type:
        click.echo(f"type: {received.type}")
    if received.correlation_id and received.correlation_id != received.id:
        click.echo(f"correlation: {received.correlation_id}")
    for name, value in sorted(received.headers.items()):
        click.echo(f"{name}: {value}")
    if received.note:
        click.echo(f"note: {received.note}")
    click.echo("")
    click.echo(received.body)


@click.command()
@click.argument("endpoint")
@click.option("--peek", is_flag=True, help="Only look: leave the messages where they are.")
@click.option(
    "--count", "-n", default=1, show_default=True, type=click.IntRange(1, 10_000), help="Messages at most."
)
@click.option(
    "--wait",
    default=1.0,
    show_default=True,
    type=click.FloatRange(0, 3600),
    help="Seconds to wait for a message on a queue before stopping.",
)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per message (JSON Lines).")
@click.pass_obj
def receive(obj: Obj, endpoint: str, peek: bool, count: int, wait: float, as_json: bool) -> None:
    """Take up to N messages from ENDPOINT (a queue, or a batch outbox's complete files) and print them.

    Each is printed (id, headers, body decoded with its charset) and then acked (removed); with --peek
    nothing is taken. Exit 0 when something was shown, 1 when nothing waits.
    """
    project = load(obj.project, obj.env)
    shown = receive_messages(project, endpoint, count, lambda r: _print(r, as_json), peek=peek, wait=wait)
    if not shown:
        click.echo(f"nothing waiting on {endpoint}", err=True)
        raise click.exceptions.Exit(1)
    if not as_json:
        click.echo(f"--- {shown} message(s) {'looked at' if peek else 'received'} from {endpoint}", err=True)
