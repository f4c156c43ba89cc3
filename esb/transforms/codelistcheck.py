"""``esb lint`` on code lists: the canonical values of a list lie within the fields it fills.

A code list may name the canonical fields its values go to (``targets:`` in
``canonical_model/codelists.yaml``, each ``<schema>:<field path>``)::

    trouble_ticket_severity:
      canonical: [critical, major, minor]
      targets: ["trouble_ticket.v1:severity"]

Lint follows each target through its schema and reports a target that does not exist, and every
canonical value the field's enumeration refuses (a message mapped with that list would be refused by
the schema at runtime, and dead-lettered). Mappings that use a list are checked rule by rule as well
(:mod:`esb.transforms.mapcheck`); ``targets`` covers the lists no shipped mapping uses yet. That is how
112's severity ``"4" -> warning`` went unnoticed: no mapping used the list and it named no target, so
nothing tied it to ``trouble_ticket.v1:severity``. A list without a ``targets`` key is therefore a
warning: name the fields, or write ``targets: []`` for a list whose values fill no enumerated field.
"""

from __future__ import annotations

from typing import Any

from esb.config.findings import warning
from esb.config.yamlpos import Located, format_path, load_yaml
from esb.exceptions import ConfigError
from esb.model.codelists import CODELISTS_FILE
from esb.transforms.schemawalk import bind, follow, parse_display

NO_TARGETS = (
    "names no targets, so lint cannot check its values against the fields they fill: add "
    "targets: ['<schema>:<field path>'], or targets: [] when its values fill no enumerated field"
)


def check_codelist_targets(project: Any) -> list[str]:
    """Return a finding per code-list target that is missing or refuses a canonical value of its list.

    A list with no ``targets`` key at all is a warning (see the module docstring).
    """
    path = project.root / CODELISTS_FILE
    if not path.is_file():
        return []
    try:
        doc = load_yaml(path, display=CODELISTS_FILE.as_posix())
    except ConfigError:
        return []  # an unreadable file is the code lists' own finding
    findings: list[str] = []
    for name, spec in (doc.data or {}).items():
        if isinstance(spec, dict) and "targets" not in spec:
            findings.append(warning(doc.where((name,)), f"{name}: {NO_TARGETS}"))
        targets = spec.get("targets") if isinstance(spec, dict) else None
        if targets is None:
            continue
        if not isinstance(targets, list):
            findings.append(_finding(doc, (name, "targets"), "targets is a list of '<schema>:<field path>'"))
            continue
        canonical = [str(v) for v in spec.get("canonical") or []]
        for index, target in enumerate(targets):
            problem = _check_target(project, str(target), name, canonical)
            if problem:
                findings.append(_finding(doc, (name, "targets", index), problem))
    return findings


def _finding(doc: Located, path: tuple[str | int, ...], problem: str) -> str:
    return f"{doc.where(path)}: {format_path(path)}: {problem}"


def target_enum(project: Any, target: str) -> tuple[list[Any] | None, str]:
    """The enumeration of the field ``<schema>:<field path>`` names (None: any value), or a problem."""
    schema, sep, field = target.partition(":")
    if not sep or not field:
        return None, f"target {target!r}: write it as '<schema>:<field path>' (trouble_ticket.v1:severity)"
    try:
        top = bind(project.model.schema(schema), project.model.resources())
    except ConfigError as exc:
        return None, f"target {target!r}: {exc}"
    found = follow(top, parse_display(field))
    if found.problem:
        return None, f"target {target!r}: {found.problem} of {schema}: fix the field path"
    return found.enum(), ""


def _check_target(project: Any, target: str, name: str, canonical: list[str]) -> str:
    allowed, problem = target_enum(project, target)
    if problem:
        return problem
    schema, _, field = target.partition(":")
    bad = [v for v in canonical if allowed is not None and v not in allowed]
    if not bad:
        return ""
    return (
        f"code list {name!r} gives {', '.join(map(repr, bad))}, which {field} of {schema} does not allow "
        f"(allowed: {', '.join(map(str, allowed or []))}): map those codes to allowed values, or add the "
        "values to the schema"
    )
