"""``esb schema routes|systems|settings``: print the JSON Schema of a project file (for editors)."""

from __future__ import annotations

import click
import orjson

from esb.config.schemas import SCHEMAS


@click.command()
@click.argument("which", type=click.Choice(sorted(SCHEMAS)))
def schema(which: str) -> None:
    """Print the JSON Schema of routes.yaml, config/systems.yaml (every adapter's options) or settings."""
    click.echo(orjson.dumps(SCHEMAS[which](), option=orjson.OPT_INDENT_2).decode())
