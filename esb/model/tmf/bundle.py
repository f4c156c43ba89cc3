"""One self-contained schema per TMF SID class: every cross-file ``$ref`` inlined, read offline.

The SID schemas (:mod:`esb.model.tmf.schemas`) refer to each other with relative ``$ref``s such as
``../Common/Note.schema.json#Note`` (a draft-07 plain-name anchor) or ``Attribute.schema.json#/definitions/
Attribute`` (a JSON pointer). Tools that cannot follow such references (test-data generators such as
hypothesis-jsonschema) take :func:`bundled_schema` instead: the class schema with each reference replaced
by the schema it names (a class whose published file does not resolve is taken from
:data:`~esb.model.tmf.schemas.ERRATA`). Only files under the schema folder are read; a reference that
leaves the folder or names a URL is an error, never fetched.

The SID model is recursive (an order item holds order items, a product holds products): a reference to a
class already being inlined, or one deeper than ``max_depth`` references, becomes ``false`` (no value
allowed), so the bundle describes the documents whose nesting stays within that depth. Such a reference
is always optional in the SID (an array or an optional property), so the bundle stays satisfiable.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from esb.exceptions import ConfigError
from esb.model.tmf.schemas import class_schema

_DROPPED_KEYS = frozenset({"$id", "$schema", "title", "description", "example", "examples", "definitions"})


@cache
def _load(path: Path) -> dict[str, Any]:
    try:
        doc: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"TMF schema {path}: cannot read it: {exc}") from exc
    return doc


def _target(root: Path, base: Path, ref: str) -> tuple[Path, Any]:
    """Return the file and the sub-schema that ``ref`` (found in file ``base``) names."""
    file_part, _, fragment = ref.partition("#")
    if "://" in file_part or file_part.startswith("/"):
        raise ConfigError(f"TMF schema {base}: $ref {ref!r} is not a relative file reference (never fetched)")
    path = (base.parent / file_part).resolve() if file_part else base
    if not path.is_relative_to(root):
        raise ConfigError(f"TMF schema {base}: $ref {ref!r} leaves the schema folder {root}")
    doc = _load(path)
    if fragment.startswith("/"):
        node: Any = doc
        for part in fragment.strip("/").split("/"):
            if not isinstance(node, dict) or part not in node:
                raise ConfigError(f"TMF schema {base}: $ref {ref!r}: no {part!r} in {path.name}")
            node = node[part]
        return path, node
    name = fragment or path.name.removesuffix(".schema.json")
    for definition in doc.get("definitions", {}).values():
        if isinstance(definition, dict) and definition.get("$id") == f"#{name}":
            return path, definition
    definition = doc.get("definitions", {}).get(name)
    if definition is None:
        raise ConfigError(f"TMF schema {base}: $ref {ref!r}: {path.name} defines no {name!r}")
    return path, definition


def bundled_schema(schema_file: str, root: Path, max_depth: int = 6) -> dict[str, Any]:
    """Return the class schema ``<folder>/<Class>`` (``Customer/ProductOrder``) with its ``$ref``s inlined.

    A reference back into a class being inlined, or nested deeper than ``max_depth``, becomes ``false``.
    """
    root = root.resolve()
    start = root / "_"  # the class schema's $refs are relative to the folder

    def inline(node: Any, base: Path, stack: tuple[str, ...]) -> Any:
        if isinstance(node, list):
            return [inline(item, base, stack) for item in node]
        if not isinstance(node, dict):
            return node
        out: dict[str, Any] = {}
        for name, value in node.items():
            if name == "$ref" or name in _DROPPED_KEYS:
                continue
            if name == "properties" and isinstance(value, dict):
                out[name] = {prop: inline(sub, base, stack) for prop, sub in value.items()}
            else:
                out[name] = inline(value, base, stack)
        if "$ref" not in node:
            return out
        target_path, target = _target(root, base, str(node["$ref"]))
        key = f"{target_path}#{node['$ref'].partition('#')[2]}"
        if key in stack or len(stack) > max_depth:
            return False
        referred = inline(target, target_path, (*stack, key))
        return {"allOf": [referred, out]} if out else referred

    bundled: dict[str, Any] = inline(class_schema(schema_file), start, ())
    return bundled
