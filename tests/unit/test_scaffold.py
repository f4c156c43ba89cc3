"""`esb new system` / `esb new route`: what is generated passes lint and test; nothing is overwritten."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from esb.cli.main import cli

ROOT = Path(__file__).resolve().parents[2]
PROJECT_FILES = ("routes.yaml", "config", "transforms", "canonical_model", "processes")


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A copy of the shipped project."""
    target = tmp_path / "project"
    target.mkdir()
    for name in PROJECT_FILES:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, target / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source, target / name)
    return target


def esb(project: Path, *args: str) -> Result:
    """Run an esb command on ``project`` (its data folder beside it)."""
    environ = {"ESB_DATA_DIR": str(project.parent / "var")}
    return CliRunner().invoke(cli, ["--project", str(project), *args], env=environ)


def snapshot(project: Path) -> dict[str, bytes]:
    """Every file of the project with its bytes."""
    return {p.relative_to(project).as_posix(): p.read_bytes() for p in project.rglob("*") if p.is_file()}


def test_a_new_system_and_routes_pass_lint_and_test_straight_away(project: Path) -> None:
    """A system, a JSON-source route and an XML-source route are generated; lint is clean, tests pass."""
    made = esb(project, "new", "system", "warehouse", "--description", "Data warehouse: nightly loads")
    assert made.exit_code == 0, made.output
    json_route = esb(
        project,
        "new",
        "route",
        "warehouse-to-iom",
        "--from",
        "warehouse.messages_out",
        "--to",
        "iom.orders_in",
    )
    assert json_route.exit_code == 0, json_route.output
    xml_route = esb(
        project,
        "new",
        "route",
        "crm-orders-copy",
        "--from",
        "crm.orders_out",
        "--to",
        "warehouse.messages_in",
    )
    assert xml_route.exit_code == 0, xml_route.output
    assert "created  transforms/crm-orders-copy/samples/sample.xml" in xml_route.output

    lint = esb(project, "lint")
    assert lint.exit_code == 0, lint.output
    tested = esb(project, "test")
    assert tested.exit_code == 0, tested.output
    for name in ("warehouse-to-iom", "crm-orders-copy"):
        assert f"PASS  transforms/{name}/to_canonical_test.yaml" in tested.output
        assert f"PASS  transforms/{name}/from_canonical_test.yaml" in tested.output
        assert (project / "transforms" / name / "to_canonical.yaml").is_file()
    routes = (project / "routes.yaml").read_text(encoding="utf-8")
    assert "dead_letter: dlq.warehouse-to-iom" in routes
    assert "description: 'Data warehouse: nightly loads'" in (project / "config/systems.yaml").read_text()


def test_the_yaml_files_keep_their_comments_and_lines(project: Path) -> None:
    """Every line of systems.yaml and routes.yaml is still there, in order, after both commands."""
    before = {
        name: (project / name).read_text(encoding="utf-8") for name in ("config/systems.yaml", "routes.yaml")
    }
    assert esb(project, "new", "system", "warehouse").exit_code == 0
    assert (
        esb(
            project, "new", "route", "wh", "--from", "warehouse.messages_out", "--to", "iom.orders_in"
        ).exit_code
        == 0
    )
    for name, text in before.items():
        after = iter((project / name).read_text(encoding="utf-8").splitlines())
        missing = [line for line in text.splitlines() if not any(line == seen for seen in after)]
        assert missing == [], name
    systems = (project / "config/systems.yaml").read_text(encoding="utf-8")
    assert systems.index("  warehouse:") < systems.index("  dlq:")  # dead letters stay last


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("new", "system", "crm"), "config/systems.yaml:5: system 'crm' already exists"),
        (("new", "system", "Bad Name"), "system name 'Bad Name': use lower-case"),
        (
            ("new", "route", "crm-order-to-iom", "--from", "crm.orders_out", "--to", "iom.orders_in"),
            "routes.yaml:4: route 'crm-order-to-iom' already exists",
        ),
        (
            ("new", "route", "x-route", "--from", "crm.orders_ot", "--to", "iom.orders_in"),
            "unknown endpoint 'crm.orders_ot'",
        ),
        (
            ("new", "route", "crm", "--from", "crm.orders_out", "--to", "iom.orders_in"),
            "transforms/crm already exists",
        ),
    ],
)
def test_existing_names_and_bad_input_are_refused_and_nothing_changes(
    project: Path, args: tuple[str, ...], expected: str
) -> None:
    """A taken system, route id or transforms folder, a bad name, an unknown endpoint: an error, no change."""
    before = snapshot(project)
    result = esb(project, *args)
    assert result.exit_code != 0
    assert expected in str(result.exception)
    assert snapshot(project) == before


def test_a_dead_letter_endpoint_already_taken_is_refused(project: Path) -> None:
    """A route id whose dlq endpoint exists (a removed route's) is refused before anything is written."""
    systems = project / "config" / "systems.yaml"
    systems.write_text(
        systems.read_text(encoding="utf-8")
        + "      old-route:\n        adapter: queue\n"
        + "        queue: esb.dlq.old-route\n        format: bytes\n",
        encoding="utf-8",
    )
    before = snapshot(project)
    result = esb(project, "new", "route", "old-route", "--from", "crm.orders_out", "--to", "iom.orders_in")
    assert "endpoint dlq.old-route already exists" in str(result.exception)
    assert snapshot(project) == before
