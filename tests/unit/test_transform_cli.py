"""`esb test` and `esb transform` through click's runner."""

from __future__ import annotations

from pathlib import Path

import orjson
from click.testing import CliRunner

from esb.cli.main import cli

PROJECT = Path(__file__).resolve().parents[2]
MAP = "kind: jmespath\nrules:\n  out: {from: a, fn: [upper]}\n"


def project_with(tmp_path: Path, test_yaml: str) -> Path:
    """A project with one mapping and its test file."""
    folder = tmp_path / "transforms" / "s"
    folder.mkdir(parents=True)
    (folder / "m.yaml").write_text(MAP, encoding="utf-8")
    (folder / "m_test.yaml").write_text(test_yaml, encoding="utf-8")
    return tmp_path


def test_esb_test_passes_on_the_project_transforms() -> None:
    """The project's own mapping tests all pass (exit 0)."""
    result = CliRunner().invoke(cli, ["--project", str(PROJECT), "test"])
    assert result.exit_code == 0, result.output
    assert "FAIL" not in result.output
    assert " 0 failed" in result.output


def test_esb_test_shows_a_diff_and_exits_1_on_failure(tmp_path: Path) -> None:
    """A failing case prints FAIL with a unified diff and exits 1."""
    project = project_with(tmp_path, "cases:\n  - name: wrong\n    input_inline: {a: x}\n"
                                     "    expect_inline: {out: Y}\n  - name: right\n"
                                     "    input_inline: {a: y}\n"
                                     "    checks: [{json_equals: {path: out, value: Y}}]\n")
    result = CliRunner().invoke(cli, ["--project", str(project), "test"])
    assert result.exit_code == 1
    assert "FAIL  transforms/s/m_test.yaml :: wrong" in result.output
    assert '-  "out": "Y"' in result.output
    assert '+  "out": "X"' in result.output
    assert "PASS  transforms/s/m_test.yaml :: right" in result.output


def test_esb_test_exits_2_on_a_broken_test_file(tmp_path: Path) -> None:
    """A test file with an unknown key is reported with file:line and exit 2."""
    project = project_with(tmp_path, "cases:\n  - name: x\n    inptu: {a: 1}\n")
    result = CliRunner().invoke(cli, ["--project", str(project), "test"])
    assert result.exit_code == 2
    assert "transforms/s/m_test.yaml:3" in result.output


def test_esb_test_refuses_a_check_path_that_is_not_jmespath(tmp_path: Path) -> None:
    """A json_equals path with an unquoted space is a broken test file (file:line, exit 2, how to quote),
    not a crash."""
    project = project_with(tmp_path, "cases:\n  - name: x\n    input_inline: {a: y}\n"
                                     "    checks:\n      - json_equals: {path: SR Number, value: Y}\n")
    result = CliRunner().invoke(cli, ["--project", str(project), "test"])
    assert result.exit_code == 2, result.output
    assert "transforms/s/m_test.yaml:5" in result.output
    assert "invalid JMESPath path 'SR Number'" in result.output
    assert '\'"SR Number"\'' in result.output


def test_esb_transform_prints_the_mapped_order() -> None:
    """esb transform applies a mapping to a file and prints the JSON result."""
    sample = PROJECT / "transforms" / "crm" / "samples" / "order_gbk.xml"
    result = CliRunner().invoke(cli, ["--project", str(PROJECT), "transform", "crm/siebel_order_to_canonical",
                                      "--input", str(sample)])
    assert result.exit_code == 0, result.output
    assert orjson.loads(result.output)["relatedParty"][0]["name"] == "欧阳娜娜(广州天河)"


def test_esb_transform_reports_mapping_error_and_unknown_name(tmp_path: Path) -> None:
    """A failing message exits 1 naming the error; an unknown transform exits 2 with a suggestion."""
    bad = tmp_path / "bad.xml"
    bad.write_bytes(b'<SiebelMessage IntObjectName="Account Interface"/>')
    runner = CliRunner()
    result = runner.invoke(cli, ["--project", str(PROJECT), "transform", "crm/siebel_order_to_canonical",
                                 "--input", str(bad)])
    assert result.exit_code == 1
    assert "UnknownMessageTypeError" in result.output
    result = runner.invoke(cli, ["--project", str(PROJECT), "transform", "crm/siebel_order_to_canonicl",
                                 "--input", str(bad)])
    assert result.exit_code == 2
    assert "did you mean 'crm/siebel_order_to_canonical'" in result.output
