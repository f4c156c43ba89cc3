"""Field coverage (``esb lint --coverage``): per rule mapping, the source fields mapped, ignored, unmapped.

The source fields are those of the samples (the inputs of ``<name>_test.yaml``), else of the
``input_schema`` (its fields three levels deep). A field is **mapped** when a rule reads it or an object
above it; **ignored** when the mapping's ``ignore:`` list names it or an object above it (with a reason);
**unmapped** otherwise: data that arrives and is dropped without anyone having said so.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from esb.model.fields import schema_fields
from esb.transforms.mapcheck import analyse, rule_mappings
from esb.transforms.mapsources import under


@dataclass
class Coverage:
    """The coverage of one mapping."""

    mapping: str
    basis: str
    mapped: list[str] = field(default_factory=list)
    ignored: dict[str, str] = field(default_factory=dict)
    unmapped: list[str] = field(default_factory=list)


def mapping_coverage(project: Any, name: str, transform: Any) -> Coverage:
    """Return the coverage of the rule mapping ``name``."""
    sources = analyse(project, name, transform).sources
    fields, mapped = sources.fields, sources.mapped
    basis = f"{sources.samples} sample(s)" if sources.samples else ""
    if not fields and transform.header.input_schema and sources.strict:
        basis = f"input schema {transform.header.input_schema}"
        fields = _schema_leaves(project, transform.header.input_schema)
        mapped = {f for f in fields if any(under(f, m) for m in sources.reads)}
    ignore = transform.header.ignore
    result = Coverage(name, basis or "no input_schema and no samples: fields unknown")
    for path in sorted(fields):
        reason = next((ignore[p] for p in ignore if under(path, p)), None)
        if path in mapped:
            result.mapped.append(path)
        elif reason is not None:
            result.ignored[path] = reason
        else:
            result.unmapped.append(path)
    return result


def _schema_leaves(project: Any, schema: str) -> set[str]:
    found = schema_fields(project.model.schema(schema), project.model.resources(), depth=3)
    paths = {f.path for f in found}
    return {p for p in paths if not any(q != p and under(q, p) for q in paths)}


def project_coverage(project: Any) -> list[Coverage]:
    """Return the coverage of every rule mapping of ``project``."""
    return [mapping_coverage(project, name, t) for name, t in rule_mappings(project)]


def as_json(report: list[Coverage]) -> dict[str, Any]:
    """The report as a JSON-ready mapping of mapping name to its basis and fields."""
    return {c.mapping: {k: v for k, v in asdict(c).items() if k != "mapping"} for c in report}


def render(report: list[Coverage]) -> list[str]:
    """The report as text lines: a summary per mapping, then its unmapped, ignored and mapped fields."""
    lines: list[str] = []
    for c in report:
        lines.append(
            f"{c.mapping} ({c.basis}): {len(c.mapped)} mapped, {len(c.ignored)} ignored, "
            f"{len(c.unmapped)} unmapped"
        )
        lines.extend(f"  unmapped  {p}" for p in c.unmapped)
        lines.extend(f"  ignored   {p}" + (f"  ({r})" if r else "") for p, r in c.ignored.items())
        lines.extend(f"  mapped    {p}" for p in c.mapped)
    return lines
