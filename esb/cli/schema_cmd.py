"""``esb schema routes``: print the JSON Schema of routes.yaml (for editors)."""

from __future__ import annotations

import click
import orjson
from pydantic import BaseModel

from esb.config.routes import RoutesFile
from esb.config.systems import SystemsFile
from esb.settings import Settings

_SCHEMAS: dict[str, type[BaseModel]] = {"routes": RoutesFile, "systems": SystemsFile, "settings": Settings}


@click.command()
@click.argument("which", type=click.Choice(sorted(_SCHEMAS)))
def schema(which: str) -> None:
    """Print the JSON Schema of routes.yaml, systems.yaml or settings.yaml."""
    document = _SCHEMAS[which].model_json_schema(by_alias=True)
    document["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    click.echo(orjson.dumps(document, option=orjson.OPT_INDENT_2).decode())
