"""Generate docs/canonical-model.md from the schemas, so the reference never drifts from the model.

``generate(root)`` renders: the conventions, a glossary of the systems and Chinese terms, a mermaid
diagram of the references between entities, one field table per entity (and per nested type), the
common types and the state enumerations. Regenerate with ``python -m esb.model.docs [PROJECT]``; a unit
test fails when the committed file differs from the output.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from esb.exceptions import ConfigError
from esb.model.docs_text import GLOSSARY, INTRO
from esb.model.registry import ModelRegistry

DOCS_FILE = Path("docs") / "canonical-model.md"
_STATES = "common/states.v1.schema.json#/$defs/"
_IDENTIFIERS = "common/identifiers.v1.schema.json#/$defs/"


def generate(root: Path) -> str:
    """Return the Markdown reference of the canonical model under ``root`` (``<project>/canonical_model``)."""
    registry = ModelRegistry(root)
    parts = [INTRO, GLOSSARY, _diagram(registry), "## Entities\n"]
    for name in registry.names():
        parts.append(_entity_section(registry, name))
    parts.append("## Common types\n")
    for name in registry.common_names():
        if name not in ("common/states.v1", "common/identifiers.v1"):
            parts.append(_type_section(registry, name))
    parts.append(_enum_section(registry, "common/identifiers.v1", "Identifier formats"))
    parts.append(_enum_section(registry, "common/states.v1", "State enumerations"))
    return "\n".join(p.rstrip("\n") + "\n" for p in parts)


# --------------------------------------------------------------------------- diagram
def _tmf_types(registry: ModelRegistry) -> dict[str, str]:
    """Map each TMF class name (@type) to the entity that carries it."""
    out: dict[str, str] = {}
    for name in registry.names():
        type_schema = registry.schema(name)["properties"]["@type"]
        for value in [type_schema.get("const"), *type_schema.get("enum", [])]:
            if value:
                out[str(value)] = name.rsplit(".v", 1)[0]
    return out


def _referred(node: Any, top: str | None = None) -> list[tuple[str, str]]:
    """Return ``(top-level property, referred TMF type)`` for every typed reference inside ``node``."""
    found: list[tuple[str, str]] = []
    if isinstance(node, dict):
        props = node.get("properties", {})
        referred = props.get("@referredType", {}) if isinstance(props, dict) else {}
        for value in [referred.get("const"), *referred.get("enum", [])] if isinstance(referred, dict) else []:
            if value and top:
                found.append((top, str(value)))
        for key, value in node.items():
            if key == "properties" and isinstance(value, dict):
                for prop, sub in value.items():
                    found += _referred(sub, top or prop)
            elif key != "properties":
                found += _referred(value, top)
    elif isinstance(node, list):
        for value in node:
            found += _referred(value, top)
    return found


def _diagram(registry: ModelRegistry) -> str:
    """A mermaid graph of the references between entities (from their ``@referredType`` values)."""
    types = _tmf_types(registry)
    edges: dict[tuple[str, str], list[str]] = {}
    for name in registry.names():
        source = name.rsplit(".v", 1)[0]
        schema = registry.schema(name)
        for prop, tmf in _referred({"properties": schema.get("properties", {})}) + _referred(
            schema.get("$defs", {})
        ):
            target = types.get(tmf)
            if target:
                labels = edges.setdefault((source, target), [])
                if prop not in labels:
                    labels.append(prop)
    lines = [
        "## Relations",
        "",
        "Arrows follow references (`@referredType`) from one entity to another.",
        "",
        "```mermaid",
        "graph LR",
    ]
    for (source, target), labels in sorted(edges.items()):
        lines.append(f"  {source} -->|{', '.join(sorted(labels))}| {target}")
    lines += ["```", ""]
    return "\n".join(lines)


# --------------------------------------------------------------------------- tables
def _cell(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _anchor(title: str) -> str:
    """The GitHub anchor of a heading."""
    return "".join(c for c in title.lower().replace(" ", "-") if c.isalnum() or c in "-_")


def _target(registry: ModelRegistry, ref: str) -> dict[str, Any]:
    """The schema a ``$ref`` of an entity points to (another file, a ``$defs`` entry), or {}."""
    path, _, fragment = ref.partition("#")
    try:
        doc = registry.schema(path) if path else {}
    except ConfigError:  # an unknown target just has no description (lint reports it)
        return {}
    for part in [p for p in fragment.split("/") if p]:
        doc = doc.get(part, {}) if isinstance(doc, dict) else {}
    return doc


def _type_of(registry: ModelRegistry, schema: dict[str, Any]) -> str:
    """A short human name for a property's type, linked to its section when it has one."""
    ref = schema.get("$ref")
    if isinstance(ref, str):
        if ref.startswith(_STATES):
            return "enum"
        if ref.startswith(_IDENTIFIERS):
            return f"string ({ref.rsplit('/', 1)[1]})"
        if ref.startswith("#/$defs/"):
            return f"[{ref[8:]}](#{ref[8:].lower()})"
        if "#" in ref:
            return f"{ref.split('.v')[0]}.{ref.rsplit('/', 1)[-1]}"
        title = str(_target(registry, ref).get("title", ref))
        return f"[{title}](#{_anchor(title)})"
    if "const" in schema:
        return f"const `{schema['const']}`"
    kind = schema.get("type", "any")
    if kind == "array":
        return f"array of {_type_of(registry, schema.get('items', {}))}"
    if isinstance(kind, list):
        return " / ".join(kind)
    if "format" in schema:
        return f"{kind} ({schema['format']})"
    return str(kind)


def _values(registry: ModelRegistry, schema: dict[str, Any]) -> str:
    """The allowed values of a property (enum, const, referred type, pattern), for the table."""
    ref = schema.get("$ref", "")
    if isinstance(ref, str) and ref.startswith(_STATES):
        states = registry.schema("common/states.v1")["$defs"][ref.rsplit("/", 1)[1]]
        return ", ".join(f"`{v}`" for v in states["enum"])
    if schema.get("type") == "array":
        return _values(registry, schema.get("items", {}))
    if "enum" in schema:
        return ", ".join(f"`{v}`" for v in schema["enum"])
    referred = schema.get("properties", {}).get("@referredType", {})
    if "const" in referred or "enum" in referred:
        return "→ " + ", ".join(f"`{v}`" for v in [referred.get("const"), *referred.get("enum", [])] if v)
    if "pattern" in schema:
        return f"pattern `{schema['pattern']}`"
    return ""


def _ref_description(registry: ModelRegistry, schema: dict[str, Any]) -> str:
    ref = schema.get("$ref") or (schema.get("items", {}) or {}).get("$ref")
    return str(_target(registry, ref).get("description", "")) if isinstance(ref, str) else ""


def _table(registry: ModelRegistry, schema: dict[str, Any]) -> list[str]:
    required = set(schema.get("required", []))
    rows = ["| Field | Type | Req. | Description | Values / states |", "|---|---|---|---|---|"]
    for prop, sub in schema.get("properties", {}).items():
        item = sub.get("items", {}) or {}
        desc = sub.get("description") or item.get("description") or _ref_description(registry, sub)
        req = "yes" if prop in required else ""
        kind, values = _cell(_type_of(registry, sub)), _cell(_values(registry, sub))
        rows.append(f"| `{prop}` | {kind} | {req} | {_cell(desc)} | {values} |")
    return rows


def _entity_section(registry: ModelRegistry, name: str) -> str:
    schema = registry.schema(name)
    lines = [
        f"### {schema.get('title', name)}",
        "",
        f"`{name}` — `canonical_model/{name}.schema.json`",
        "",
        _cell(schema.get("description", "")),
        "",
        "Also carries the [common entity header](#entity-header) (`id`, `href`, `@baseType`, `lastUpdate`, "
        "`externalReference`...).",
        "",
    ]
    lines += _table(registry, schema)
    for def_name, sub in schema.get("$defs", {}).items():
        if "properties" in sub:
            lines += ["", f"#### {def_name}", "", _cell(sub.get("description", "")), ""]
            lines += _table(registry, sub)
        elif "enum" in sub:
            lines += [
                "",
                f"#### {def_name}",
                "",
                _cell(sub.get("description", "")),
                "",
                ", ".join(f"`{v}`" for v in sub["enum"]),
            ]
    return "\n".join(lines) + "\n"


def _type_section(registry: ModelRegistry, name: str) -> str:
    schema = registry.schema(name)
    lines = [f"### {schema.get('title', name)}", "", f"`{name}`: {_cell(schema.get('description', ''))}", ""]
    return "\n".join(lines + _table(registry, schema)) + "\n"


def _enum_section(registry: ModelRegistry, name: str, title: str) -> str:
    defs = registry.schema(name)["$defs"]
    lines = [f"### {title}", "", f"`{name}`", "", "| Name | Description | Values |", "|---|---|---|"]
    for key, sub in defs.items():
        values = ", ".join(f"`{v}`" for v in sub.get("enum", [])) or (
            f"pattern `{sub['pattern']}`" if "pattern" in sub else ""
        )
        lines.append(f"| `{key}` | {_cell(sub.get('description', ''))} | {_cell(values)} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Write docs/canonical-model.md of the project given as the first argument (default: cwd)."""
    args = sys.argv[1:] if argv is None else argv
    project = Path(args[0]) if args else Path.cwd()
    target = project / DOCS_FILE
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(generate(project / "canonical_model"), encoding="utf-8")
    print(f"wrote {target}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
