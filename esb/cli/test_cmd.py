"""``esb test [PATH]``: run the mapping tests (``*_test.yaml``) beside the transforms."""

from __future__ import annotations

from pathlib import Path

import click
import orjson

from esb.cli.main import Obj
from esb.exceptions import ConfigError
from esb.transforms.registry import TransformRegistry
from esb.transforms.testrun import CaseResult, TestFile, find_test_files


@click.command("test")
@click.argument("path", required=False, type=click.Path(exists=True, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON.")
@click.pass_obj
def test(obj: Obj, path: Path | None, as_json: bool) -> None:
    """Run the *_test.yaml files under PATH (default: the project's transforms/).

    Prints PASS/FAIL per case with a diff on failure. Exit 0 when all pass, 1 when any fails, 2 when a
    test file is broken.
    """
    project: Path = obj.project
    registry = TransformRegistry(project)
    root = path or registry.root
    files = find_test_files(root)
    results: list[CaseResult] = []
    broken: list[str] = []
    for file in files:
        try:
            suite = TestFile(file, registry)
        except ConfigError as exc:
            broken.extend(exc.findings or [str(exc)])
            continue
        results.extend(suite.run())
    _report(results, broken, as_json)
    if broken:
        raise SystemExit(2)
    if not files:
        click.echo(f"no *_test.yaml files under {root}", err=True)
        raise SystemExit(1)
    if any(not r.ok for r in results):
        raise SystemExit(1)


def _report(results: list[CaseResult], broken: list[str], as_json: bool) -> None:
    if as_json:
        doc = {"results": [r.__dict__ for r in results], "broken": broken,
               "passed": sum(r.ok for r in results), "failed": sum(not r.ok for r in results)}
        click.echo(orjson.dumps(doc, option=orjson.OPT_INDENT_2).decode())
        return
    for result in results:
        click.echo(f"{'PASS' if result.ok else 'FAIL'}  {result.file} :: {result.name}")
        if not result.ok:
            click.echo("\n".join(f"    {line}" for line in result.detail.splitlines()))
    for finding in broken:
        click.echo(f"BROKEN  {finding}", err=True)
    failed = sum(not r.ok for r in results)
    tail = f", {len(broken)} broken file(s)" if broken else ""
    click.echo(f"{len(results) - failed} passed, {failed} failed{tail}")
