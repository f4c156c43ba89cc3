"""``esb send ENDPOINT --body FILE [--header K=V]...``: put one message onto an endpoint."""

from __future__ import annotations

from pathlib import Path

import click

from esb.cli.main import Obj
from esb.message import Message
from esb.project import Project


def parse_headers(pairs: tuple[str, ...]) -> dict[str, str]:
    """Turn ``("K=V", ...)`` into a dict; a pair without ``=`` is a usage error."""
    headers: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{pair!r} is not K=V", param_hint="--header")
        headers[key.strip()] = value
    return headers


@click.command()
@click.argument("endpoint")
@click.option(
    "--body",
    "body_file",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="File whose bytes are the message body (sent as they are).",
)
@click.option("--header", "headers", multiple=True, help="A header K=V (repeatable).")
@click.option(
    "--id", "message_id", default=None, help="Message id (default: a new one). Reuse it to test idempotence."
)
@click.option("--correlation-id", default=None, help="Correlation id (default: the message id).")
@click.option("--type", "message_type", default=None, help="Message type, e.g. order.submitted.")
@click.pass_obj
def send(
    obj: Obj,
    endpoint: str,
    body_file: Path,
    headers: tuple[str, ...],
    message_id: str | None,
    correlation_id: str | None,
    message_type: str | None,
) -> None:
    """Put the bytes of FILE onto ENDPOINT (system.endpoint from config/systems.yaml)."""
    project = Project.load(obj.project, obj.env)
    config = project.endpoint(endpoint)
    kwargs: dict[str, object] = {
        "body": body_file.read_bytes(),
        "headers": parse_headers(headers),
        "source": "esb-send",
        "type": message_type,
    }
    if message_id:
        kwargs["id"] = message_id
    if correlation_id:
        kwargs["correlation_id"] = correlation_id
    message = Message(**kwargs)  # type: ignore[arg-type]
    sink = project.adapter_for(endpoint).sink(config, project.context(endpoint))
    with sink:
        sink.write(message)
    click.echo(f"sent {message.id} to {endpoint} ({len(message.body)} bytes)")
