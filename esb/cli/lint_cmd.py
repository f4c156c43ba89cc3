"""``esb lint``: check routes.yaml, config/, transforms/ and canonical_model/; exit 1 on any error.

Warnings (``file:line: warning: ...``) are printed but do not fail lint. ``--coverage`` adds, per rule
mapping, the source fields mapped, ignored and unmapped (:mod:`esb.transforms.coverage`).
"""

from __future__ import annotations

from typing import Any

import click

from esb.cli.main import Obj
from esb.config.findings import is_warning
from esb.lint import lint_project


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print the findings as a JSON list.")
@click.option(
    "--coverage", is_flag=True, help="Also list, per mapping, the source fields mapped, ignored and unmapped."
)
@click.pass_obj
def lint(obj: Obj, as_json: bool, coverage: bool) -> None:
    """Check the whole project; every finding names file:line and what to do. Exit 1 on any error."""
    findings = lint_project(obj.project, obj.env)
    errors = [f for f in findings if not is_warning(f)]
    report = _coverage(obj) if coverage else None
    if as_json:
        import orjson

        out: Any = findings if report is None else {"findings": findings, "coverage": report[0]}
        click.echo(orjson.dumps(out, option=orjson.OPT_INDENT_2).decode())
    else:
        for finding in findings:
            click.echo(finding)
        if report is not None:
            for line in report[1]:
                click.echo(line)
        warned = len(findings) - len(errors)
        if not findings:
            click.echo("no findings: the project is clean")
        else:
            click.echo(f"{len(errors)} error(s), {warned} warning(s)")
    if errors:
        raise click.exceptions.Exit(1)


def _coverage(obj: Obj) -> tuple[dict[str, Any], list[str]]:
    """Return the coverage report as JSON data and as text lines."""
    from esb.exceptions import ConfigError
    from esb.project import Project
    from esb.transforms.coverage import as_json, project_coverage, render

    try:
        project = Project.load(obj.project, obj.env, strict=False)
    except ConfigError:
        return {}, ["coverage: the project does not load (see the findings)"]
    report = project_coverage(project)
    return as_json(report), render(report)
