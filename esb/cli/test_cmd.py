"""``esb test [PATH]...``: run the mapping tests beside the transforms and the whole-route tests."""

from __future__ import annotations

from pathlib import Path

import click
import orjson

from esb.cli.main import Obj
from esb.decision.registry import TableRegistry
from esb.decision.testrun import TableTestFile, is_table_test
from esb.exceptions import ConfigError
from esb.model.registry import ModelRegistry
from esb.project import Project
from esb.runtime.routetest import ROUTE_TESTS_DIR, RouteTestFile, is_route_test
from esb.transforms.registry import TransformRegistry
from esb.transforms.testrun import CaseResult, TestFile, find_test_files


@click.command("test")
@click.argument("paths", nargs=-1, type=click.Path(exists=True, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON.")
@click.pass_obj
def test(obj: Obj, paths: tuple[Path, ...], as_json: bool) -> None:
    """Run the *_test.yaml files under PATHS (default: transforms/ and tests/routes/).

    A file under tests/routes/ (or one that names a route:) is a whole-route test, run through the
    route's real worker with mocked endpoints; one under transforms/tables/ (or one that names a
    table:) tests a decision table; any other is a mapping test. Prints PASS/FAIL per case
    with a diff on failure. Exit 0 when all pass, 1 when any fails, 2 when a test file is broken.
    """
    project: Path = obj.project
    registry = TransformRegistry(project)
    model = ModelRegistry(project / "canonical_model")
    tables = TableRegistry(project)
    roots = list(paths) or [registry.root, *[p for p in [project / ROUTE_TESTS_DIR] if p.is_dir()]]
    files = find_test_files(*roots)
    results: list[CaseResult] = []
    broken: list[str] = []
    loaded: list[Project] = []
    for file in files:
        try:
            if is_table_test(file, project):
                results.extend(TableTestFile(file, tables).run())
            elif is_route_test(file, project):
                if not loaded:
                    loaded.append(Project.load(project, obj.env))
                results.extend(RouteTestFile(file, loaded[0]).run())
            else:
                results.extend(TestFile(file, registry, model).run())
        except ConfigError as exc:
            broken.extend(exc.findings or [str(exc)])
    _report(results, broken, as_json)
    if broken:
        raise SystemExit(2)
    if not files:
        click.echo(f"no *_test.yaml files under {', '.join(str(r) for r in roots)}", err=True)
        raise SystemExit(1)
    if any(not r.ok for r in results):
        raise SystemExit(1)


def _report(results: list[CaseResult], broken: list[str], as_json: bool) -> None:
    if as_json:
        doc = {
            "results": [r.__dict__ for r in results],
            "broken": broken,
            "passed": sum(r.ok for r in results),
            "failed": sum(not r.ok for r in results),
        }
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
