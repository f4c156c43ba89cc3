"""Every canonical example: valid ones conform, each invalid one fails exactly where it says."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from esb.model.registry import ModelRegistry
from esb.model.schema_check import EXPECTED_FILE

ROOT = Path(__file__).resolve().parents[2] / "canonical_model"
REGISTRY = ModelRegistry(ROOT)


def _cases(kind: str) -> list[Any]:
    cases = []
    for name in REGISTRY.names():
        for path in sorted((ROOT / "examples" / name / kind).glob("*.json")):
            if path.name != EXPECTED_FILE:
                cases.append(pytest.param(name, path, id=f"{name}/{path.stem}"))
    return cases


def _expected(name: str) -> dict[str, dict[str, str]]:
    data: dict[str, dict[str, str]] = json.loads(
        (ROOT / "examples" / name / "invalid" / EXPECTED_FILE).read_text(encoding="utf-8")
    )
    return data


@pytest.mark.parametrize(("name", "path"), _cases("valid"))
def test_valid_example_conforms(name: str, path: Path) -> None:
    """A valid example passes both the hot-path validator and the reference implementation."""
    doc = json.loads(path.read_text(encoding="utf-8"))
    assert REGISTRY.validator(name).errors(doc) == []
    assert REGISTRY.reference_validator(name).errors(doc) == []


@pytest.mark.parametrize(("name", "path"), _cases("invalid"))
def test_invalid_example_fails_only_at_its_expected_path(name: str, path: Path) -> None:
    """An invalid example shows one violation: exactly one error, at the path its sidecar records."""
    doc = json.loads(path.read_text(encoding="utf-8"))
    expect = _expected(name)[path.stem]
    errors = REGISTRY.validator(name).errors(doc)
    assert [p for p, _ in errors] == [expect["path"]], errors
    if "message" in expect:
        assert expect["message"] in errors[0][1]


@pytest.mark.parametrize(("name", "path"), _cases("invalid"))
def test_reference_implementation_agrees_on_invalid_examples(name: str, path: Path) -> None:
    """python-jsonschema reports the same error paths as jsonschema-rs for each invalid example."""
    doc = json.loads(path.read_text(encoding="utf-8"))
    rs_paths = {p for p, _ in REGISTRY.validator(name).errors(doc)}
    ref_paths = {p for p, _ in REGISTRY.reference_validator(name).errors(doc)}
    assert ref_paths == rs_paths


@pytest.mark.parametrize("name", REGISTRY.names())
def test_each_entity_has_a_valid_and_several_invalid_examples(name: str) -> None:
    """Each entity has at least one valid and three invalid examples, each invalid one with an expectation."""
    valid = list((ROOT / "examples" / name / "valid").glob("*.json"))
    invalid = {
        p.stem for p in (ROOT / "examples" / name / "invalid").glob("*.json") if p.name != EXPECTED_FILE
    }
    assert valid
    assert len(invalid) >= 3
    assert set(_expected(name)) == invalid


def test_the_first_issue_date_time_case_is_an_example() -> None:
    """The impossible date-time 2026-13-45T99:00:00Z is among product_order's invalid examples."""
    doc = json.loads(
        (ROOT / "examples/product_order.v1/invalid/order_date_impossible.json").read_text("utf-8")
    )
    assert doc["orderDate"] == "2026-13-45T99:00:00Z"
    assert _expected("product_order.v1")["order_date_impossible"]["path"] == "$.orderDate"
