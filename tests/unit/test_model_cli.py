"""``esb model``: list, show, validate, diff, to-tmf and from-tmf through the click runner."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from esb.cli.main import cli

ROOT = Path(__file__).resolve().parents[2]
ORDER_DIR = ROOT / "canonical_model" / "examples" / "product_order.v1"
pytestmark = pytest.mark.skipif(
    not (ROOT / "canonical_model" / "product_order.v1.schema.json").exists(),
    reason="canonical_model/product_order.v1.schema.json is not written yet",
)


def _run(*args: str) -> Any:
    return CliRunner().invoke(cli, ["--project", str(ROOT), "model", *args])


def _valid_order() -> Path:
    return sorted((ORDER_DIR / "valid").glob("*.json"))[0]


def test_list_names_entities() -> None:
    """`model list` prints every entity schema, product_order.v1 among them."""
    result = _run("list", "--json")
    assert result.exit_code == 0, result.output
    assert "product_order.v1" in {row["name"] for row in json.loads(result.output)}


def test_show_prints_fields_and_states() -> None:
    """`model show` lists fields with required flags and the state machine's transitions."""
    result = _run("show", "product_order")
    assert result.exit_code == 0, result.output
    assert "productOrderItem" in result.output
    assert "yes" in result.output
    assert "completed              -> (final)" in result.output


def test_validate_valid_file() -> None:
    """A valid example validates with exit 0."""
    result = _run("validate", "product_order.v1", str(_valid_order()))
    assert result.exit_code == 0, result.output
    assert "valid product_order.v1" in result.output


def test_validate_invalid_file_lists_paths_and_exits_1(tmp_path: Path) -> None:
    """An invalid document prints each error with its JSON path and exits 1."""
    doc = json.loads(_valid_order().read_text(encoding="utf-8"))
    doc["state"] = "done"
    del doc["productOrderItem"]
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(doc), encoding="utf-8")
    result = _run("validate", "product_order", str(bad))
    assert result.exit_code == 1
    assert "$.state" in result.output


def test_validate_not_json_exits_1(tmp_path: Path) -> None:
    """A file that is not JSON is reported with its line, exit 1."""
    bad = tmp_path / "bad.json"
    bad.write_text("{\n  oops", encoding="utf-8")
    result = _run("validate", "product_order", str(bad))
    assert result.exit_code == 1
    assert "not JSON" in result.output


def test_unknown_entity_exits_2_with_suggestion() -> None:
    """An unknown schema name is a project error (exit 2) with a suggestion."""
    result = _run("validate", "product_ordr", str(_valid_order()))
    assert result.exit_code == 2
    assert "did you mean" in result.output


def test_diff_identical_exits_0() -> None:
    """Diffing a schema against itself finds no changes."""
    result = _run("diff", "product_order.v1", "product_order.v1")
    assert result.exit_code == 0
    assert "no changes" in result.output


def test_diff_breaking_exits_1(tmp_path: Path) -> None:
    """A breaking change between a schema name and a file exits 1 and names the change."""
    schema = json.loads(
        (ROOT / "canonical_model" / "product_order.v1.schema.json").read_text(encoding="utf-8")
    )
    new = copy.deepcopy(schema)
    del new["properties"]["category"]
    new["properties"]["salesArea"] = {"type": "string"}
    path = tmp_path / "product_order.v2.schema.json"
    path.write_text(json.dumps(new), encoding="utf-8")
    result = _run("diff", "product_order.v1", str(path))
    assert result.exit_code == 1
    assert "BREAKING category: property-removed" in result.output
    assert "salesArea: optional-property-added" in result.output


def test_to_tmf_then_from_tmf_round_trips(tmp_path: Path) -> None:
    """to-tmf prints TMF JSON; from-tmf of that prints the original canonical document."""
    source = _valid_order()
    out = _run("to-tmf", "product_order", str(source))
    assert out.exit_code == 0, out.output
    tmf_file = tmp_path / "tmf.json"
    tmf_file.write_text(out.output, encoding="utf-8")
    back = _run("from-tmf", "product_order", str(tmf_file))
    assert back.exit_code == 0, back.output
    assert json.loads(back.output) == json.loads(source.read_text(encoding="utf-8"))


def test_from_tmf_sloppy_state_warns_on_stderr(tmp_path: Path) -> None:
    """A capitalised state converts, with the warning on stderr, not in the document."""
    out = _run("to-tmf", "product_order", str(_valid_order()))
    tmf = json.loads(out.output)
    tmf["state"] = "InProgress"
    path = tmp_path / "tmf.json"
    path.write_text(json.dumps(tmf), encoding="utf-8")
    result = CliRunner().invoke(
        cli, ["--project", str(ROOT), "model", "from-tmf", "product_order", str(path)]
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["state"] == "inProgress"
    assert "warning:" in result.stderr
    assert "'InProgress' read as 'inProgress'" in result.stderr


def test_from_tmf_unknown_state_exits_1(tmp_path: Path) -> None:
    """An unknown TMF state is a clear error, exit 1."""
    tmf = json.loads(_run("to-tmf", "product_order", str(_valid_order())).output)
    tmf["state"] = "Done"
    path = tmp_path / "tmf.json"
    path.write_text(json.dumps(tmf), encoding="utf-8")
    result = _run("from-tmf", "product_order", str(path))
    assert result.exit_code == 1
    assert "'Done' is not a product_order state" in result.output
