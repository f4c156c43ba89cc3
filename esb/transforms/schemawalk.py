"""Following a path (``productOrderItem[].itemPrice[].price``) through a canonical JSON Schema, for lint.

``$ref`` and ``allOf`` are merged (:func:`esb.model.diff.flatten_schema`); ``anyOf``/``oneOf`` count as
"the field exists in any branch"; an object that is not closed (no ``additionalProperties: false`` or
``unevaluatedProperties: false``), ``additionalProperties: true`` or a schema without properties lets
anything through below it.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from esb.model.diff import BoundSchema, bind_schema, flatten_schema
from esb.registry import did_you_mean

#: a path segment: a property name, ``[]`` (any array item; an int index means the same) or ``*`` (any key)
Segment = str | int
ITEM = "[]"
ANY = "*"
_SHAPE = {"properties", "items", "additionalProperties", "patternProperties"}


@dataclass
class Found:
    """Where a path led: the candidate schema nodes, ``open`` when anything goes, else ``problem``."""

    nodes: list[dict[str, Any]] = field(default_factory=list)
    open: bool = False
    problem: str = ""

    def enum(self) -> list[Any] | None:
        """Return the values allowed at the path (enum/const of every candidate), None when unrestricted."""
        if self.open or not self.nodes:
            return None
        values: list[Any] = []
        for node in self.nodes:
            if "const" in node:
                values.append(node["const"])
            elif isinstance(node.get("enum"), list):
                values.extend(node["enum"])
            else:
                return None
        return values

    def required(self) -> set[str]:
        """Return the properties every candidate object requires (those of the first; branches differ)."""
        if self.open or not self.nodes:
            return set()
        sets = [set(n.get("required") or ()) for n in self.nodes]
        return set.intersection(*sets)


def display(path: Sequence[Segment]) -> str:
    """Render ``("a", "[]", "b")`` as ``a[].b`` (the notation of coverage and findings)."""
    out = ""
    for part in path:
        if isinstance(part, int) or part == ITEM:
            out += ITEM
        else:
            out += f".{part}" if out else str(part)
    return out or "(top level)"


def bind(schema: Mapping[str, Any], resources: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """Return the flattened top node of ``schema`` with its ``$ref``s resolvable through ``resources``."""
    return flatten_schema(bind_schema(schema, resources))


def _branches(node: dict[str, Any], depth: int = 0) -> Iterator[dict[str, Any]]:
    yield node
    for word in ("anyOf", "oneOf"):
        for branch in node.get(word) or []:
            if isinstance(branch, BoundSchema) and depth < 8:
                yield from _branches(flatten_schema(branch), depth + 1)


def _types(node: Mapping[str, Any]) -> set[str] | None:
    t = node.get("type")
    if t is None:
        return None
    return {t} if isinstance(t, str) else set(t)


def _is_open(node: Mapping[str, Any]) -> bool:
    """True when ``node`` accepts properties it does not list."""
    return node.get("additionalProperties") is not False and node.get("unevaluatedProperties") is not False


def _step(node: dict[str, Any], key: Segment, found: Found, names: set[str]) -> list[dict[str, Any]]:
    """Return the nodes ``key`` leads to from ``node`` (setting ``found.open`` when anything goes)."""
    if (node.get("anyOf") or node.get("oneOf")) and not _SHAPE.intersection(node):
        return []  # only the branches say what is there
    types = _types(node)
    if isinstance(key, int) or key == ITEM:
        if types is not None and "array" not in types:
            return []
        items = node.get("items")
        if isinstance(items, BoundSchema):
            return [flatten_schema(items)]
        found.open = found.open or items is None
        return []
    if types is not None and "object" not in types:
        return []
    props = node.get("properties") or {}
    names.update(props)
    if key == ANY:
        found.open = True
        return []
    if key in props:
        return [flatten_schema(props[key])]
    extra = node.get("additionalProperties")
    if isinstance(extra, BoundSchema):
        return [flatten_schema(extra)]
    if node.get("patternProperties") or _is_open(node):
        found.open = True
    return []


def follow(top: dict[str, Any], path: Sequence[Segment]) -> Found:
    """Follow ``path`` from the flattened schema node ``top``; ``problem`` says where it breaks."""
    current = [top]
    for index, key in enumerate(path):
        found = Found()
        names: set[str] = set()
        branches = [branch for node in current for branch in _branches(node)]
        nodes = [n for branch in branches for n in _step(branch, key, found, names)]
        if found.open and not nodes:
            return Found(open=True)
        if not nodes:
            where = display(path[:index])
            if isinstance(key, int) or key == ITEM:
                return Found(problem=f"{where} is not a list in the schema")
            if not names:
                return Found(problem=f"{where} is not an object in the schema")
            hint = did_you_mean(str(key), sorted(names))
            return Found(problem=f"{where} has no field {key!r}{hint}")
        current = nodes
    return Found(nodes=current)


def parse_display(text: str) -> tuple[str, ...]:
    """Split ``identification[].identificationType`` into its segments (``[]`` for a list item)."""
    out: list[str] = []
    for part in text.split("."):
        name = part.removesuffix(ITEM)
        while name.endswith(ITEM):
            name = name.removesuffix(ITEM)
        out.append(name)
        out.extend([ITEM] * ((len(part) - len(name)) // len(ITEM)))
    return tuple(p for p in out if p)
