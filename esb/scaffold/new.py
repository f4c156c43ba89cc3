"""Adding a system or a route to a project: every check first, then the files, never overwriting.

``new_system`` adds a system with a queue endpoint each way to ``config/systems.yaml``. ``new_route`` adds
a route between two existing endpoints to ``routes.yaml``, its dead-letter endpoint ``dlq.<route>`` to
``config/systems.yaml``, and under ``transforms/<route>/`` two mapping skeletons (the source's format to
the canonical form, the canonical form to the target's), each with a ``*_test.yaml`` and samples. The
YAML files are edited round-trip (comments and layout kept).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from esb.exceptions import ConfigError
from esb.project import ROUTES_FILE, SYSTEMS_FILE, Project
from esb.scaffold import templates as t
from esb.scaffold import yamledit
from esb.transforms.registry import TRANSFORMS_DIR

SYSTEM_NAME = re.compile(r"^[a-z][a-z0-9_\-]{0,62}$")
ROUTE_ID = re.compile(r"^[a-z0-9][a-z0-9_\-]*$")  # as Route.id
DEAD_LETTER_SYSTEM = "dlq"


@dataclass
class Changes:
    """What ``esb new`` wrote: files created and files edited (relative to the project)."""

    created: list[str] = field(default_factory=list)
    edited: list[str] = field(default_factory=list)


def _check_name(kind: str, name: str, pattern: re.Pattern[str], example: str) -> None:
    if not pattern.fullmatch(name) or len(name) > 100:
        raise ConfigError(
            f"{kind} name {name!r}: use lower-case letters, digits, '-' and '_', starting with a letter "
            f"(e.g. {example})"
        )


def _line(doc: Any, key: str) -> int:
    """The 1-based line of ``key`` in the round-trip mapping ``doc``."""
    try:
        return int(doc.lc.key(key)[0]) + 1
    except (AttributeError, KeyError, TypeError):
        return 0


def _systems(root: Path) -> Any:
    doc = yamledit.load(root / SYSTEMS_FILE)
    if not isinstance(doc, dict) or not isinstance(doc.get("systems"), dict):
        raise ConfigError(f"{SYSTEMS_FILE}: expected a 'systems:' mapping to add to")
    return doc


def _insert_system(systems: Any, name: str, value: Any) -> None:
    """Add ``name`` before the dead-letter system (which stays last), else at the end."""
    keys = list(systems)
    position = keys.index(DEAD_LETTER_SYSTEM) if DEAD_LETTER_SYSTEM in keys else len(keys)
    systems.insert(position, name, value)


def new_system(root: Path, name: str, description: str | None = None, env: str | None = None) -> Changes:
    """Add system ``name`` with ``messages_out`` and ``messages_in`` queue endpoints to systems.yaml."""
    _check_name("system", name, SYSTEM_NAME, "warehouse")
    Project.load(root, env)  # the project must load before it is changed: its problems are not ours to add to
    doc = _systems(root)
    systems = doc["systems"]
    if name in systems:
        raise ConfigError(
            f"{SYSTEMS_FILE}:{_line(systems, name)}: system {name!r} already exists: choose another name "
            "(esb new never overwrites)"
        )
    system = yamledit.parse(t.SYSTEM.substitute(name=name))[name]
    # free text is set on the parsed document, never pasted into YAML text: the dump quotes what needs it
    system["name"] = name.replace("_", " ").replace("-", " ").title()
    system["description"] = description or f"The {name} system (made by esb new system: describe it)"
    _insert_system(systems, name, system)
    (root / SYSTEMS_FILE).write_text(yamledit.dump(doc), encoding="utf-8")
    return Changes(edited=[SYSTEMS_FILE])


@dataclass
class _RoutePlan:
    """Everything ``new_route`` writes, worked out before anything is written."""

    files: dict[Path, str]
    systems: Any
    routes: Any


def _plan_route(root: Path, route_id: str, source: str, target: str, env: str | None) -> _RoutePlan:
    _check_name("route", route_id, ROUTE_ID, "warehouse-orders-to-iom")
    project = Project.load(root, env)
    source_endpoint = project.endpoint(source)  # unknown names fail here, with a suggestion
    project.endpoint(target)
    if source == target:
        raise ConfigError(f"a route from {source} to itself: give another --to")
    for index, existing in enumerate(project.routes):
        if existing.id == route_id:
            raise ConfigError(
                f"{project.route_line(index)}: route {route_id!r} already exists: choose another id "
                "(esb new never overwrites)"
            )
    dead_letter = f"{DEAD_LETTER_SYSTEM}.{route_id}"
    if dead_letter in project.endpoints:
        raise ConfigError(f"{SYSTEMS_FILE}: endpoint {dead_letter} already exists: choose another route id")
    folder = root / TRANSFORMS_DIR / route_id
    if folder.exists():
        raise ConfigError(f"{folder.relative_to(root)} already exists: choose another route id")
    ext = "xml" if source_endpoint.format == "xml" else "json"
    values = {"route": route_id, "source": source, "target": target, "ext": ext, "no_id": t.NO_ID[ext]}
    to_canonical = t.TO_CANONICAL_XML if ext == "xml" else t.TO_CANONICAL_JSON
    files = {
        folder / "to_canonical.yaml": to_canonical.substitute(values),
        folder / "to_canonical_test.yaml": t.TO_CANONICAL_TEST.substitute(values),
        folder / "from_canonical.yaml": t.FROM_CANONICAL.substitute(values),
        folder / "from_canonical_test.yaml": t.FROM_CANONICAL_TEST.substitute(values),
        folder / "samples" / f"sample.{ext}": t.SAMPLE_XML if ext == "xml" else t.SAMPLE_JSON,
        folder / "samples" / "sample.canonical.json": t.SAMPLE_CANONICAL,
        folder / "samples" / "sample.out.json": t.SAMPLE_OUT,
    }
    systems_doc = _systems(root)
    routes_doc = yamledit.load(root / ROUTES_FILE)
    if not isinstance(routes_doc, dict) or not isinstance(routes_doc.get("routes"), list):
        raise ConfigError(f"{ROUTES_FILE}: expected a 'routes:' list to add to")
    return _RoutePlan(files, systems_doc, routes_doc)


def new_route(root: Path, route_id: str, source: str, target: str, env: str | None = None) -> Changes:
    """Add route ``route_id`` from ``source`` to ``target``, its dead-letter endpoint and its mappings."""
    plan = _plan_route(root, route_id, source, target, env)
    systems = plan.systems["systems"]
    if DEAD_LETTER_SYSTEM not in systems:
        systems[DEAD_LETTER_SYSTEM] = yamledit.parse(
            "name: Dead letters\n"
            "description: Messages that could not be delivered, with the error and the original bytes\n"
            "endpoints: {}\n"
        )
    dlq = systems[DEAD_LETTER_SYSTEM]
    if not isinstance(dlq.get("endpoints"), dict) or not dlq["endpoints"]:
        dlq["endpoints"] = yamledit.parse(t.DEAD_LETTER.substitute(route=route_id))
    else:
        dlq["endpoints"][route_id] = yamledit.parse(t.DEAD_LETTER.substitute(route=route_id))[route_id]
    routes = plan.routes["routes"]
    routes.append(yamledit.parse(t.ROUTE.substitute(route=route_id, source=source, target=target))[0])
    if len(routes) > 1:
        routes.yaml_set_comment_before_after_key(len(routes) - 1, before="\n")
    changes = Changes(edited=[SYSTEMS_FILE, ROUTES_FILE])
    for path, text in plan.files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("x", encoding="utf-8") as out:  # "x": an existing file is never replaced
            out.write(text)
        changes.created.append(path.relative_to(root).as_posix())
    (root / SYSTEMS_FILE).write_text(yamledit.dump(plan.systems), encoding="utf-8")
    (root / ROUTES_FILE).write_text(yamledit.dump(plan.routes), encoding="utf-8")
    return changes
