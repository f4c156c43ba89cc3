"""A readable list of a canonical schema's fields (for ``esb model show`` and the docs)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from esb.model.diff import BoundSchema, bind_schema, flatten_schema

#: TMF polymorphism attributes every nested object allows: left out of nested listings
_NESTED_NOISE = {"@type", "@baseType", "@schemaLocation"}


@dataclass(frozen=True)
class Field:
    """One field: dotted path (``productOrderItem[].action``), type, required, allowed values, description."""

    path: str
    type: str
    required: bool
    values: tuple[str, ...]
    description: str


def _type_of(node: Mapping[str, Any]) -> str:
    t = node.get("type")
    if isinstance(t, list):
        return "|".join(t)
    if t == "array" and isinstance(node.get("items"), BoundSchema):
        inner = flatten_schema(node["items"])
        return f"array<{_type_of(inner)}>"
    if "const" in node:
        return f"const {node['const']!r}"
    if t is None and "format" not in node and {"unit", "value"} <= set(node.get("properties") or {}):
        return "Money"
    return str(t or "any") + (f" ({node['format']})" if "format" in node else "")


def schema_fields(
    schema: Mapping[str, Any], resources: Mapping[str, Mapping[str, Any]], *, depth: int = 2
) -> list[Field]:
    """Return the fields of ``schema`` down to ``depth`` levels of nesting ($refs followed)."""
    out: list[Field] = []
    _walk(flatten_schema(bind_schema(schema, resources)), "", depth, out, set())
    return out


def _walk(node: Mapping[str, Any], prefix: str, depth: int, out: list[Field], seen: set[int]) -> None:
    required = set(node.get("required") or [])
    for name, child in (node.get("properties") or {}).items():
        if prefix and name in _NESTED_NOISE:
            continue
        flat = flatten_schema(child)
        values = tuple(str(v) for v in flat.get("enum") or ())
        desc = str(flat.get("description") or child.node.get("description") or "")
        path = f"{prefix}{name}"
        out.append(Field(path, _type_of(flat), name in required, values, desc))
        if depth <= 0 or id(child.node) in seen:
            continue
        inner = flat
        suffix = "."
        if flat.get("type") == "array" and isinstance(flat.get("items"), BoundSchema):
            inner, suffix = flatten_schema(flat["items"]), "[]."
        if inner.get("properties") and _type_of(inner) != "Money":
            _walk(inner, path + suffix, depth - 1, out, seen | {id(child.node)})
