"""A small project on disk for the mapping lint tests: two canonical schemas, a code list, no routes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from esb.project import Project

BASE = "https://esb.example/canonical/"

#: the output schema: closed, a required enum via $ref, a list of items, an open object, a oneOf
THING: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": BASE + "thing.v1.schema.json",
    "type": "object",
    "required": ["id", "kind"],
    "additionalProperties": False,
    "properties": {
        "id": {"type": "string"},
        "kind": {"$ref": "common/kind.v1.schema.json"},
        "note": {"type": "string"},
        "line": {"type": "array", "items": {"$ref": "#/$defs/line"}},
        "extra": {"type": "object"},
        "choice": {
            "oneOf": [
                {"type": "object", "properties": {"x": {"type": "string"}}, "additionalProperties": False},
                {"type": "object", "properties": {"y": {"type": "string"}}, "additionalProperties": False},
            ]
        },
    },
    "$defs": {
        "line": {
            "type": "object",
            "required": ["sku"],
            "additionalProperties": False,
            "properties": {"sku": {"type": "string"}, "qty": {"type": "integer"}},
        }
    },
}
KIND: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": BASE + "common/kind.v1.schema.json",
    "type": "string",
    "enum": ["a", "b"],
}
#: an input schema for JSON mappings
ORDER: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": BASE + "order.v1.schema.json",
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "ref": {"type": "string"},
        "type": {"type": "string"},
        "lines": {
            "type": "array",
            "items": {
                "type": "object",
                "additionalProperties": False,
                "properties": {"sku": {"type": "string"}, "count": {"type": "integer"}},
            },
        },
    },
}
CODELISTS = """\
# targets: [] keeps lint's "names no targets" warning out of these tests (the mappings' checks cover them)
thing_kind:
  targets: []
  canonical: [a, b, c]
  systems:
    crm: {A: a, B: b, C: c}
order_kind:
  targets: []
  canonical: [a, b]
  systems:
    crm: {A: a, B: b}
"""


def make_mapping_project(
    root: Path, mappings: dict[str, str], files: dict[str, str] | None = None
) -> Project:
    """Write the project with ``mappings`` (name -> YAML text) and other ``files``; return it loaded."""
    (root / "config").mkdir(parents=True, exist_ok=True)
    (root / "config" / "systems.yaml").write_text("systems: {}\n")
    (root / "config" / "settings.yaml").write_text(f"data_dir: {root / 'var'}\n")
    (root / "routes.yaml").write_text("routes: []\n")
    model = root / "canonical_model"
    (model / "common").mkdir(parents=True, exist_ok=True)
    (model / "thing.v1.schema.json").write_text(json.dumps(THING))
    (model / "order.v1.schema.json").write_text(json.dumps(ORDER))
    (model / "common" / "kind.v1.schema.json").write_text(json.dumps(KIND))
    (model / "codelists.yaml").write_text(CODELISTS)
    for name, text in {**{f"transforms/{k}.yaml": v for k, v in mappings.items()}, **(files or {})}.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return Project.load(root, environ={}, strict=False)
