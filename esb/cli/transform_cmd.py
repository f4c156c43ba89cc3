"""``esb transform NAME --input FILE``: apply one transform to a file and print the result."""

from __future__ import annotations

from pathlib import Path

import click
import orjson

from esb.cli.main import Obj
from esb.exceptions import EsbError
from esb.transforms.registry import TransformRegistry


@click.command("transform")
@click.argument("name")
@click.option("--input", "input_file", required=True,
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="The message body to transform (XML or JSON, as the transform expects).")
@click.option("--output", "output_file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write the result here instead of printing it.")
@click.pass_obj
def transform(obj: Obj, name: str, input_file: Path, output_file: Path | None) -> None:
    """Apply transform NAME (e.g. crm/siebel_order_to_canonical) to a file and print the result.

    Exit 0 on success, 1 when the message fails the mapping (the error names the rule and source
    path), 2 when the transform itself is broken or unknown.
    """
    project: Path = obj.project
    try:
        compiled = TransformRegistry(project).get(name)
        result = compiled.transform_body(input_file.read_bytes())
    except EsbError as exc:
        click.echo(f"error: {type(exc).__name__}: {exc}", err=True)
        raise SystemExit(exc.exit_code) from None
    data = result if isinstance(result, bytes) else orjson.dumps(result, option=orjson.OPT_INDENT_2) + b"\n"
    if output_file is not None:
        output_file.write_bytes(data)
        click.echo(f"wrote {len(data)} bytes to {output_file}", err=True)
        return
    encoding = compiled.header.output_encoding if isinstance(result, bytes) else "utf-8"
    click.echo(data.decode(encoding, errors="replace"), nl=False)
