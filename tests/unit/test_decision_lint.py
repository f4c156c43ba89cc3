"""esb lint on decision tables and the decide step: overlaps, code lists, endpoints, schema enums."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from esb.config.findings import is_warning
from esb.decision.lint import table_findings
from esb.lint import Linter
from esb.project import Project
from esb.transforms.codelistcheck import check_codelist_targets
from tests.unit.routes_fixture import make_project

REPO = Path(__file__).resolve().parents[2]
ENDPOINTS = ["fault.in", "wo.north", "wo.south", "dlq.r"]


def project_with(
    tmp_path: Path, tables: dict[str, dict[str, Any]], routes: list[dict[str, Any]] | None = None
) -> Project:
    """A project with the repo's canonical model, memory endpoints and the given tables."""
    shutil.copytree(REPO / "canonical_model", tmp_path / "canonical_model")
    folder = tmp_path / "transforms" / "tables"
    folder.mkdir(parents=True)
    for name, spec in tables.items():
        (folder / f"{name}.yaml").write_text(yaml.safe_dump(spec, sort_keys=False), encoding="utf-8")
    project = make_project(tmp_path, routes or [], ENDPOINTS)
    del project.__dict__["transforms"]  # the real registry: lint checks it
    return project


def spec(
    policy: str,
    rules: list[Any],
    inputs: list[dict[str, Any]] | None = None,
    outputs: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """A table declaration."""
    return {
        "hit_policy": policy,
        "inputs": inputs or [{"name": "region", "type": "string"}, {"name": "hours", "type": "integer"}],
        "outputs": outputs or [{"name": "team", "type": "string"}],
        "rules": rules,
    }


def test_overlapping_rules_under_unique_are_found(tmp_path: Path) -> None:
    """Under unique, two rules an input can both match are a finding at the first rule's line."""
    rules = [["hz", "[0..8]", "a"], ["nb", "-", "b"], ["hz, wz", ">=8", "c"], ["wz", "<8", "d"]]
    findings = table_findings(project_with(tmp_path, {"t": spec("unique", rules)}))
    assert len(findings) == 1
    assert findings[0].startswith("transforms/tables/t.yaml:")
    assert "rule 1 overlaps rule 3 (transforms/tables/t.yaml:" in findings[0]


def test_exclusive_rules_and_other_policies_have_no_overlap_finding(tmp_path: Path) -> None:
    """Ranges that only touch at an open end do not overlap; first tables may overlap by design."""
    exclusive = [["hz", "[0..8)", "a"], ["hz", "[8..16]", "b"], ["-", ">16", "c"]]
    tables = {"u": spec("unique", exclusive), "f": spec("first", [["hz", "-", "a"], ["-", "-", "b"]])}
    assert table_findings(project_with(tmp_path, tables)) == []


def test_input_values_outside_the_named_code_list(tmp_path: Path) -> None:
    """An input naming a code list refuses values that are not in it (canonical, or a system's codes)."""
    inputs = [
        {"name": "severity", "type": "string", "codelist": "trouble_ticket_severity"},
        {"name": "code", "type": "string", "codelist": "trouble_ticket_severity", "system": "fault112"},
    ]
    rules = [["critical, warning", "-", "a"], ["-", "1, 5", "b"]]
    findings = table_findings(project_with(tmp_path, {"t": spec("first", rules, inputs)}))
    assert any(
        "rule 1: input severity: 'warning' is not in code list 'trouble_ticket_severity' "
        "(its canonical values)"
        in f
        and "allowed: critical, major, minor" in f
        for f in findings
    ), findings
    assert any(
        "rule 2: input code: '5' is not in code list 'trouble_ticket_severity' (fault112's codes)" in f
        for f in findings
    ), findings
    assert len(findings) == 2


def test_unknown_code_list_is_a_finding(tmp_path: Path) -> None:
    """An input naming a code list that does not exist is a finding at the column's line."""
    inputs = [{"name": "severity", "type": "string", "codelist": "trouble_ticket_severty"}]
    findings = table_findings(project_with(tmp_path, {"t": spec("first", [["-", "a"]], inputs)}))
    assert findings == [
        "transforms/tables/t.yaml:3: input severity: no code list 'trouble_ticket_severty' "
        "(did you mean 'trouble_ticket_severity'?)"
    ]


def test_output_endpoints_must_be_declared(tmp_path: Path) -> None:
    """An endpoint output naming an endpoint config/systems.yaml lacks is a finding with a suggestion."""
    outputs = [{"name": "to", "type": "endpoint"}]
    rules = [["hz", "-", "wo.north"], ["-", "-", "wo.sotuh"]]
    findings = table_findings(project_with(tmp_path, {"t": spec("first", rules, outputs=outputs)}))
    assert len(findings) == 1
    assert (
        "rule 2: output to: 'wo.sotuh' is not in the endpoints of config/systems.yaml "
        "(did you mean 'wo.south'?)" in findings[0]
    )


def test_output_values_outside_the_target_schema_enum(tmp_path: Path) -> None:
    """An output with a target field refuses values that field's enumeration does not allow."""
    outputs = [{"name": "severity", "type": "string", "target": "trouble_ticket.v1:severity"}]
    rules = [["hz", ">=24", "warning"], ["-", "-", "minor"]]
    findings = table_findings(project_with(tmp_path, {"t": spec("first", rules, outputs=outputs)}))
    assert len(findings) == 1
    assert (
        "rule 1: output severity: 'warning' is not in the enumeration of trouble_ticket.v1:severity"
        in findings[0]
    )


def test_broken_target_and_declared_values(tmp_path: Path) -> None:
    """A target that names no field, and an output value outside the declared values, are findings."""
    outputs = [
        {"name": "severity", "type": "string", "target": "trouble_ticket.v1:sevrity"},
        {"name": "skill", "type": "string", "values": ["fiber", "copper"]},
    ]
    findings = table_findings(
        project_with(tmp_path, {"t": spec("first", [["-", "-", "minor", "fibre"]], outputs=outputs)})
    )
    assert any("output severity: target 'trouble_ticket.v1:sevrity'" in f for f in findings), findings
    assert any(
        "output skill: 'fibre' is not in its declared values (did you mean 'fiber'?)" in f for f in findings
    )


def test_a_broken_table_is_a_lint_finding(tmp_path: Path) -> None:
    """esb lint reports a table that does not load, with its file:line."""
    project = project_with(tmp_path, {"t": spec("frist", [["-", "-", "a"]])})
    assert any(
        f.startswith("transforms/tables/t.yaml:1: hit_policy: unknown hit policy 'frist'")
        for f in Linter(project).run()
    )


def route(decide: dict[str, Any]) -> dict[str, Any]:
    """A route with one decide step."""
    return {
        "id": "r",
        "from": "fault.in",
        "to": "wo.north",
        "steps": [{"decide": decide}],
        "on_error": {"dead_letter": "dlq.r"},
    }


@pytest.mark.parametrize(
    ("decide", "finding"),
    [
        pytest.param(
            {"table": "dispach", "input": "body", "into": "d"},
            "unknown decision table 'dispach' (did you mean 'dispatch'?)",
            id="unknown-table",
        ),
        pytest.param(
            {"table": "dispatch", "input": {"region": "body.region", "hour": "body.h"}, "into": "d"},
            "steps[0].decide.input.hour: table 'dispatch' has no input 'hour'",
            id="unknown-input",
        ),
        pytest.param(
            {"table": "dispatch", "input": {"region": "body.region"}, "into": "d"},
            "no expression for input(s) hours of table 'dispatch'",
            id="missing-input",
        ),
        pytest.param(
            {"table": "dispatch", "input": "body.[", "into": "d"},
            "invalid JMESPath expression 'body.['",
            id="bad-expression",
        ),
    ],
)
def test_decide_step_lint(tmp_path: Path, decide: dict[str, Any], finding: str) -> None:
    """The decide step names an existing table, valid expressions, and exactly the table's inputs."""
    project = project_with(tmp_path, {"dispatch": spec("first", [["-", "-", "a"]])}, [route(decide)])
    findings = Linter(project).run()
    assert any(finding in f and f.startswith("routes.yaml:") for f in findings), findings


def test_codelist_target_lint_catches_a_value_the_schema_refuses(tmp_path: Path) -> None:
    """The shipped mistake (112 severity 4 -> warning) is a lint finding once the list names its target."""
    shutil.copytree(REPO / "canonical_model", tmp_path / "canonical_model")
    lists = tmp_path / "canonical_model" / "codelists.yaml"
    text = lists.read_text(encoding="utf-8")
    broken = text.replace(
        "canonical: [critical, major, minor]", "canonical: [critical, major, minor, warning]"
    )
    lists.write_text(broken.replace('"4": minor', '"4": warning'), encoding="utf-8")
    project = make_project(tmp_path, [], ENDPOINTS)
    findings = check_codelist_targets(project)
    assert len(findings) == 1
    assert (
        "trouble_ticket_severity.targets[0]: code list 'trouble_ticket_severity' gives 'warning'"
        in findings[0]
    )
    assert "allowed: critical, major, minor" in findings[0]


def test_a_clean_table_lints_clean_and_is_not_taken_for_a_mapping(tmp_path: Path) -> None:
    """A valid table under transforms/tables/ gives no finding: the transform registry leaves it alone."""
    project = project_with(tmp_path, {"t": spec("unique", [["hz", "-", "a"], ["nb", "-", "b"]])})
    assert project.transforms.names() == []
    assert Linter(project).run() == []


def test_a_code_list_without_targets_is_a_warning(tmp_path: Path) -> None:
    """A list naming no targets (how 112's severity slipped through) is a warning; targets: [] silences it."""
    shutil.copytree(REPO / "canonical_model", tmp_path / "canonical_model")
    lists = tmp_path / "canonical_model" / "codelists.yaml"
    text = lists.read_text(encoding="utf-8")
    lists.write_text(text.replace('  targets: ["trouble_ticket.v1:severity"]\n', ""), encoding="utf-8")
    project = make_project(tmp_path, [], ENDPOINTS)
    [finding] = check_codelist_targets(project)
    assert is_warning(finding)
    assert finding.startswith("canonical_model/codelists.yaml:")
    assert "trouble_ticket_severity: names no targets" in finding
    assert check_codelist_targets(make_project_with_lists(tmp_path, text)) == []


def make_project_with_lists(tmp_path: Path, text: str) -> Project:
    """The project again with ``text`` as its code lists."""
    (tmp_path / "canonical_model" / "codelists.yaml").write_text(text, encoding="utf-8")
    return make_project(tmp_path, [], ENDPOINTS)
