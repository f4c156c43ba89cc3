"""Schema diff: breaking and non-breaking changes between two versions, following $refs."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from esb.model.diff import Change, diff_schemas, is_breaking

ROOT = Path(__file__).resolve().parents[2]
BASE = "https://esb.example/canonical/"
COMMON = {
    f"{BASE}common/code.v1.schema.json": {
        "$id": f"{BASE}common/code.v1.schema.json",
        "type": "string",
        "enum": ["a", "b", "c"],
    }
}
OLD: dict[str, Any] = {
    "$id": f"{BASE}thing.v1.schema.json",
    "type": "object",
    "properties": {
        "id": {"type": "string", "maxLength": 20},
        "name": {"type": "string"},
        "count": {"type": "number", "minimum": 0},
        "code": {"$ref": "common/code.v1.schema.json"},
        "items": {"type": "array", "items": {"$ref": "#/$defs/item"}},
    },
    "required": ["id", "name"],
    "$defs": {"item": {"type": "object", "properties": {"sku": {"type": "string"}}}},
}


def _changed(edit: Any) -> list[Change]:
    new = copy.deepcopy(OLD)
    edit(new)
    return diff_schemas(OLD, new, COMMON)


def _kinds(changes: list[Change]) -> set[tuple[str, str, bool]]:
    return {(c.path, c.kind, c.breaking) for c in changes}


def test_identical_schemas_have_no_changes() -> None:
    """A schema compared with itself has no changes."""
    assert diff_schemas(OLD, copy.deepcopy(OLD), COMMON) == []


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        pytest.param(
            lambda s: s["properties"].pop("count"), ("count", "property-removed", True), id="removed"
        ),
        pytest.param(
            lambda s: (s["properties"].update(x={"type": "string"}), s["required"].append("x")),
            ("x", "required-property-added", True),
            id="new-required",
        ),
        pytest.param(
            lambda s: s["properties"].update(x={"type": "string"}),
            ("x", "optional-property-added", False),
            id="new-optional",
        ),
        pytest.param(
            lambda s: s["required"].append("count"), ("count", "made-required", True), id="made-required"
        ),
        pytest.param(
            lambda s: s["required"].remove("name"), ("name", "made-optional", False), id="made-optional"
        ),
        pytest.param(
            lambda s: s["properties"]["count"].update(type="integer"),
            ("count", "type-narrowed", True),
            id="number-to-integer",
        ),
        pytest.param(
            lambda s: s["properties"]["name"].update(type=["string", "null"]),
            ("name", "type-widened", False),
            id="nullable",
        ),
        pytest.param(
            lambda s: s["properties"]["id"].update(maxLength=10),
            ("id", "constraint-tightened", True),
            id="maxLength-lower",
        ),
        pytest.param(
            lambda s: s["properties"]["id"].update(maxLength=40),
            ("id", "constraint-loosened", False),
            id="maxLength-higher",
        ),
        pytest.param(
            lambda s: s["properties"]["name"].update(pattern="^[A-Z]"),
            ("name", "constraint-tightened", True),
            id="pattern-added",
        ),
        pytest.param(
            lambda s: s["properties"]["count"].update(minimum=1),
            ("count", "constraint-tightened", True),
            id="minimum-raised",
        ),
        pytest.param(
            lambda s: s.update(additionalProperties=False), ("", "closed", True), id="closed-object"
        ),
        pytest.param(
            lambda s: s["$defs"]["item"]["properties"].pop("sku"),
            ("items[].sku", "property-removed", True),
            id="through-local-ref",
        ),
        pytest.param(
            lambda s: (
                s["properties"].update(code={"$ref": "#/$defs/code2"})
                or s["$defs"].update(code2={"type": "string", "enum": ["a", "b"]})
            ),
            ("code", "enum-value-removed", True),
            id="enum-value-removed-through-refs",
        ),
        pytest.param(
            lambda s: s["properties"].update(code={"type": "string", "enum": ["a", "b", "c", "d"]}),
            ("code", "enum-value-added", False),
            id="enum-value-added",
        ),
    ],
)
def test_change_classification(edit: Any, expected: tuple[str, str, bool]) -> None:
    """Each kind of change is found at its path and classified breaking or not."""
    changes = _changed(edit)
    assert expected in _kinds(changes)
    assert is_breaking(changes) is expected[2]


def test_enum_value_added_carries_reader_note() -> None:
    """An added enum value is non-breaking but tells readers to learn the value."""
    (change,) = _changed(
        lambda s: s["properties"].update(code={"type": "string", "enum": ["a", "b", "c", "d"]})
    )
    assert "must learn it" in change.note
    assert "['d']" in change.detail


def test_breaking_changes_are_listed_first() -> None:
    """Breaking changes sort before non-breaking ones."""
    changes = _changed(lambda s: (s["properties"].update(z={"type": "string"}), s["properties"].pop("name")))
    assert [c.breaking for c in changes] == [True, False]


def test_recursive_definitions_terminate() -> None:
    """A self-referencing definition (bundle items within items) is compared without looping."""
    node = {
        "type": "object",
        "properties": {"v": {"type": "string"}, "kids": {"type": "array", "items": {"$ref": "#/$defs/node"}}},
    }
    old = {"$id": f"{BASE}tree.v1.schema.json", "$ref": "#/$defs/node", "$defs": {"node": node}}
    new = copy.deepcopy(old)
    new["$defs"]["node"]["properties"]["v"]["maxLength"] = 3
    paths = {c.path for c in diff_schemas(old, new)}
    assert "v" in paths
    assert "kids[].v" in paths


def test_real_product_order_schema_change_is_found() -> None:
    """A tightened constraint deep in product_order.v1 is found through its common $refs."""
    from esb.model.registry import ModelRegistry

    if not (ROOT / "canonical_model" / "product_order.v1.schema.json").exists():
        pytest.skip("canonical_model/product_order.v1.schema.json is not written yet")
    registry = ModelRegistry(ROOT / "canonical_model")
    old = registry.schema("product_order.v1")
    new = copy.deepcopy(old)
    new["$defs"]["productOrderItem"]["properties"]["quantity"]["minimum"] = 2
    assert diff_schemas(old, old, registry.resources()) == []
    changes = diff_schemas(old, new, registry.resources())
    assert ("productOrderItem[].quantity", "constraint-tightened", True) in _kinds(changes)
