"""``esb schema routes|systems|settings|processes``: print the JSON Schema of a project file (for editors)."""

from __future__ import annotations

import click
import orjson

from esb.config.schemas import SCHEMAS
from esb.process.definition import process_schema

ALL = {**SCHEMAS, "processes": process_schema}


@click.command()
@click.argument("which", type=click.Choice(sorted(ALL)))
def schema(which: str) -> None:
    """Print the JSON Schema of routes.yaml, config/systems.yaml (every adapter's options), settings or
    a process file (processes/<name>.yaml)."""
    click.echo(orjson.dumps(ALL[which](), option=orjson.OPT_INDENT_2).decode())
