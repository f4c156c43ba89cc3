"""``esb decide TABLE --input FILE``: look one input up in a decision table and print the decision."""

from __future__ import annotations

from pathlib import Path

import click
import orjson

from esb.cli.main import Obj
from esb.config.yamlpos import load_yaml
from esb.decision.registry import TableRegistry
from esb.exceptions import ConfigError, EsbError


@click.command("decide")
@click.argument("table")
@click.option(
    "--input",
    "input_file",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="The input values: a JSON or YAML object of input name -> value.",
)
@click.pass_obj
def decide(obj: Obj, table: str, input_file: Path) -> None:
    """Decide with table TABLE (transforms/tables/TABLE.yaml) for the inputs in FILE; print it as JSON.

    Prints {"decision": ..., "rules": [the rules that gave it, file:line]}. Exit 0 on a decision (null
    when no rule matches), 1 when the input cannot be decided (a value of the wrong type, an unknown
    input, two rules under unique), 2 when the table or the input file is broken or unknown.
    """
    try:
        loaded = TableRegistry(obj.project).get(table)
        data = load_yaml(input_file, display=str(input_file)).data
        if not isinstance(data, dict):
            raise ConfigError(f"{input_file}:1: the input is an object of input name -> value, got {data!r}")
        decision = loaded.decide(data)
    except EsbError as exc:
        click.echo(f"error: {type(exc).__name__}: {exc}", err=True)
        raise SystemExit(exc.exit_code) from None
    click.echo(orjson.dumps(decision.as_json(), option=orjson.OPT_INDENT_2).decode())
