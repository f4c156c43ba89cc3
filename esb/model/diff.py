"""Breaking and non-breaking changes between two versions of a canonical schema.

The rule (docs/versioning.md): a change is **breaking** when some document valid under the old schema
is invalid under the new one. Messages already in queues, in the journal (replay) and produced by
existing transforms must keep validating; a breaking change needs a new major version file
(``<entity>.v2.schema.json``). Non-breaking changes may be made to the existing version in place.

Breaking: property removed, new required property (or an existing one made required), type narrowed,
enum value removed, const changed, constraint tightened (maxLength/maximum/maxItems lowered,
minLength/minimum/minItems raised, pattern/format added or changed), closing the object.

Non-breaking: new optional property, type widened, constraint loosened or removed. Two non-breaking
changes carry a note because *readers* must be told: an **enum value added** (routes, code lists and
state machines that switch on the value must learn it) and a property **no longer required** (outbound
transforms that read it must cope with its absence).

``$ref``s are followed (within the canonical model, through a ``referencing`` registry) so a change in a
common type shows up at every place that uses it. Descriptions and titles are ignored.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from referencing import Registry, Resource
from referencing.exceptions import Unresolvable
from referencing.jsonschema import DRAFT202012

_UPPER = ("maxLength", "maxItems", "maxProperties", "maximum", "exclusiveMaximum")
_LOWER = ("minLength", "minItems", "minProperties", "minimum", "exclusiveMinimum")
_TEXTUAL = ("pattern", "format", "multipleOf")
_CLOSERS = ("additionalProperties", "unevaluatedProperties")
_MAX_DEPTH = 40
#: keywords compared only for equality (a change is reported, breaking unless the keyword was removed)
_OPAQUE = ("if", "then", "else", "not", "dependentRequired", "dependentSchemas", "patternProperties",
           "prefixItems", "contains", "propertyNames")  # fmt: skip


def _plain(value: Any) -> Any:
    """Return ``value`` with bound subschemas unwrapped (for equality checks)."""
    if isinstance(value, BoundSchema):
        return _plain(value.node)
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


@dataclass(frozen=True)
class Change:
    """One difference: where (``productOrderItem[].action``), what kind, whether it breaks, details."""

    path: str
    kind: str
    breaking: bool
    detail: str
    note: str = ""

    def __str__(self) -> str:
        tag = "BREAKING" if self.breaking else "ok"
        note = f" (note: {self.note})" if self.note else ""
        return f"{tag:8} {self.path or '(root)'}: {self.kind}: {self.detail}{note}"


@dataclass(frozen=True)
class BoundSchema:
    """A subschema with the resolver its own ``$ref``s resolve against."""

    node: Any
    resolver: Any


_CHILD_MAPS = ("properties",)
_CHILD_ONE = ("items", "additionalProperties")
_CHILD_LISTS = ("anyOf", "oneOf")


def _bind(node: Mapping[str, Any], resolver: Any) -> dict[str, Any]:
    """Return ``node`` with each child subschema wrapped with ``resolver``."""
    out = dict(node)
    for word in _CHILD_MAPS:
        if isinstance(node.get(word), Mapping):
            out[word] = {
                k: v if isinstance(v, BoundSchema) else BoundSchema(v, resolver)
                for k, v in node[word].items()
            }
    for word in _CHILD_ONE:
        if isinstance(node.get(word), Mapping):
            out[word] = BoundSchema(node[word], resolver)
    for word in _CHILD_LISTS:
        if isinstance(node.get(word), list):
            out[word] = [BoundSchema(v, resolver) for v in node[word]]
    return out


def bind_schema(schema: Mapping[str, Any], resources: Mapping[str, Mapping[str, Any]]) -> BoundSchema:
    """Return ``schema`` bound to a resolver over ``resources`` plus itself (under its own ``$id``)."""
    base = str(schema.get("$id") or "urn:esb:diff:schema")
    docs = {**resources, base: schema}
    pairs = [(uri, Resource.from_contents(doc, DRAFT202012)) for uri, doc in docs.items()]
    return BoundSchema(schema, Registry().with_resources(pairs).resolver(base_uri=base))


def _merge(into: dict[str, Any], extra: Mapping[str, Any]) -> None:
    for key, value in extra.items():
        if key == "properties" and isinstance(into.get(key), dict):
            into[key] = {**into[key], **value}
        elif key == "required" and isinstance(into.get(key), list):
            into[key] = sorted(set(into[key]) | set(value))
        else:
            into[key] = value


def flatten_schema(bound: BoundSchema, depth: int = 0) -> dict[str, Any]:
    """Return the node with its ``$ref`` and ``allOf`` merged in, children bound to their resolvers."""
    node, resolver = bound.node, bound.resolver
    if not isinstance(node, Mapping):
        return {} if node is True else {"not": {}}
    out: dict[str, Any] = {}
    ref = node.get("$ref")
    if isinstance(ref, str) and depth < _MAX_DEPTH:
        try:
            resolved = resolver.lookup(ref)
        except Unresolvable:
            out["$ref"] = ref
        else:
            _merge(out, flatten_schema(BoundSchema(resolved.contents, resolved.resolver), depth + 1))
    for part in node.get("allOf", []) if depth < _MAX_DEPTH else []:
        _merge(out, flatten_schema(BoundSchema(part, resolver), depth + 1))
    own = {k: v for k, v in node.items() if k not in ("$ref", "allOf", "$id", "$schema")}
    _merge(out, _bind(own, resolver))
    return out


def _types(node: Mapping[str, Any]) -> set[str] | None:
    t = node.get("type")
    if t is None:
        return None
    types = {t} if isinstance(t, str) else set(t)
    return types | {"integer"} if "number" in types else types


class _Differ:
    def __init__(self) -> None:
        self.changes: list[Change] = []
        self._active: set[tuple[int, int]] = set()

    def add(self, path: str, kind: str, breaking: bool, detail: str, note: str = "") -> None:
        self.changes.append(Change(path, kind, breaking, detail, note))

    def compare(self, a: BoundSchema, b: BoundSchema, path: str, depth: int = 0) -> None:
        key = (id(a.node), id(b.node))
        if key in self._active or depth > _MAX_DEPTH:  # a recursive definition: compared once per branch
            return
        self._active.add(key)
        try:
            self._compare(a, b, path, depth)
        finally:
            self._active.discard(key)

    def _compare(self, a: BoundSchema, b: BoundSchema, path: str, depth: int) -> None:
        fa, fb = flatten_schema(a), flatten_schema(b)
        self._types(fa, fb, path)
        self._enum(fa, fb, path)
        self._constraints(fa, fb, path)
        self._properties(fa, fb, path, depth)
        for word, suffix in (("items", "[]"), ("additionalProperties", "{*}")):
            if isinstance(fa.get(word), BoundSchema) and isinstance(fb.get(word), BoundSchema):
                self.compare(fa[word], fb[word], path + suffix, depth + 1)
        for word in ("anyOf", "oneOf"):
            self._alternatives(word, fa, fb, path, depth)

    def _types(self, a: Mapping[str, Any], b: Mapping[str, Any], path: str) -> None:
        ta, tb = _types(a), _types(b)
        if ta == tb:
            return
        if tb is not None and (ta is None or ta - tb):
            lost = sorted((ta or {"any"}) - tb)
            self.add(
                path,
                "type-narrowed",
                True,
                f"type {sorted(ta or {'any'})} -> {sorted(tb)} (no longer {lost})",
            )
        else:
            self.add(path, "type-widened", False, f"type {sorted(ta or {'any'})} -> {sorted(tb or {'any'})}")

    def _enum(self, a: Mapping[str, Any], b: Mapping[str, Any], path: str) -> None:
        ea, eb = a.get("enum"), b.get("enum")
        if eb is not None and ea is None:
            self.add(path, "enum-added", True, f"values now restricted to {eb}")
        elif ea is not None and eb is not None:
            removed = [v for v in ea if v not in eb]
            added = [v for v in eb if v not in ea]
            if removed:
                self.add(path, "enum-value-removed", True, f"no longer accepted: {removed}")
            if added:
                note = "readers that switch on this value (routes, code lists, state machines) must learn it"
                self.add(path, "enum-value-added", False, f"new values: {added}", note)
        elif ea is not None:
            self.add(path, "enum-removed", False, "any value now accepted")
        if "const" in b and a.get("const", object()) != b["const"]:
            self.add(path, "const-changed", True, f"const {a.get('const', '(none)')!r} -> {b['const']!r}")
        elif "const" in a and "const" not in b:
            self.add(path, "const-removed", False, f"const {a['const']!r} dropped")

    def _constraints(self, a: Mapping[str, Any], b: Mapping[str, Any], path: str) -> None:
        for word in (*_UPPER, *_LOWER):
            va, vb = a.get(word), b.get(word)
            if va == vb or isinstance(va, bool) or isinstance(vb, bool):
                continue
            upper = word in _UPPER
            if vb is None:
                tighter = False
            elif va is None:
                tighter = True
            else:
                tighter = vb < va if upper else vb > va
            kind = "constraint-tightened" if tighter else "constraint-loosened"
            self.add(
                path,
                kind,
                tighter,
                f"{word} {va if va is not None else '(none)'} -> {vb if vb is not None else '(none)'}",
            )
        for word in _TEXTUAL:
            va, vb = a.get(word), b.get(word)
            if va != vb:
                tighter = vb is not None
                kind = "constraint-tightened" if tighter else "constraint-loosened"
                self.add(path, kind, tighter, f"{word} {va!r} -> {vb!r}")
        for word in _OPAQUE:
            va, vb = a.get(word), b.get(word)
            if _plain(va) != _plain(vb):
                changed = vb is not None  # cannot prove it looser: assume it tightens
                self.add(path, f"{word}-changed", changed, f"{word} {'changed' if changed else 'removed'}")
        for word in _CLOSERS:
            if a.get(word, True) is not False and b.get(word, True) is False:
                self.add(path, "closed", True, f"{word}: false (unknown properties now refused)")
            elif a.get(word, True) is False and b.get(word, True) is not False:
                self.add(path, "opened", False, f"{word} no longer false")

    def _properties(self, a: Mapping[str, Any], b: Mapping[str, Any], path: str, depth: int) -> None:
        pa, pb = a.get("properties") or {}, b.get("properties") or {}
        req_a, req_b = set(a.get("required") or []), set(b.get("required") or [])
        prefix = f"{path}." if path else ""
        for name in pa:
            if name not in pb:
                self.add(prefix + name, "property-removed", True, "property removed")
        for name in pb:
            if name not in pa:
                if name in req_b:
                    self.add(prefix + name, "required-property-added", True, "new required property")
                else:
                    self.add(prefix + name, "optional-property-added", False, "new optional property")
            else:
                self.compare(pa[name], pb[name], prefix + name, depth + 1)
        for name in sorted((req_b - req_a) & set(pa)):
            self.add(prefix + name, "made-required", True, "existing property is now required")
        for name in sorted((req_a - req_b) & set(pb)):
            note = "outbound transforms that read it must cope with its absence"
            self.add(prefix + name, "made-optional", False, "property no longer required", note)

    def _alternatives(
        self, word: str, a: Mapping[str, Any], b: Mapping[str, Any], path: str, depth: int
    ) -> None:
        la, lb = a.get(word), b.get(word)
        if la is None and lb is None:
            return
        if la is None or lb is None or len(la) != len(lb):
            n_a, n_b = len(la or []), len(lb or [])
            fewer = lb is not None and (la is None or n_b < n_a)
            self.add(
                path, f"{word}-changed", fewer or word == "oneOf", f"{word}: {n_a} -> {n_b} alternatives"
            )
            return
        for i, (x, y) in enumerate(zip(la, lb, strict=True)):
            self.compare(x, y, f"{path}<{word}[{i}]>", depth + 1)


def diff_schemas(
    a: Mapping[str, Any], b: Mapping[str, Any], resources: Mapping[str, Mapping[str, Any]] | None = None
) -> list[Change]:
    """Return the changes from schema ``a`` (old) to ``b`` (new), breaking ones first.

    ``resources`` maps ``$id`` to schema for the ``$ref``s both sides use (``ModelRegistry.resources()``);
    each side is registered under its own ``$id`` on top of them, so ``a`` and ``b`` may share an ``$id``.
    """
    res = dict(resources or {})
    differ = _Differ()
    differ.compare(bind_schema(a, res), bind_schema(b, res), "")
    unique = list(dict.fromkeys(differ.changes))
    return sorted(unique, key=lambda c: (not c.breaking, c.path, c.kind))


def is_breaking(changes: list[Change]) -> bool:
    """Return whether any change is breaking (a new major version is needed)."""
    return any(c.breaking for c in changes)
