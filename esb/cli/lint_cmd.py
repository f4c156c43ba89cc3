"""``esb lint``: check routes.yaml, config/, transforms/ and canonical_model/; exit 1 on any finding."""

from __future__ import annotations

import click

from esb.cli.main import Obj
from esb.lint import lint_project


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print the findings as a JSON list.")
@click.pass_obj
def lint(obj: Obj, as_json: bool) -> None:
    """Check the whole project; every finding names file:line and what to do. Exit 1 on any finding."""
    findings = lint_project(obj.project, obj.env)
    if as_json:
        import orjson

        click.echo(orjson.dumps(findings, option=orjson.OPT_INDENT_2).decode())
    else:
        for finding in findings:
            click.echo(finding)
        click.echo(f"{len(findings)} finding(s)" if findings else "no findings: the project is clean")
    if findings:
        raise click.exceptions.Exit(1)
