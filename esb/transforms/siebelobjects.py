"""``config/siebel.yaml``: which Siebel integration objects the hub accepts, and their component names.

Integration-object and component names are deployment configuration: a site may send the standard
``Order Entry (Sales)`` or ``Siebel Order`` objects, or its own ``CMCC Order IO``. A mapping names a
*logical object* (``siebel: order``) and refers to its components by logical names (``{{line_item}}``);
this file says, per logical object, which integration objects carry it and what each calls the
components::

    order:
      components: [order, line_item, line_attribute]
      integration_objects:
        Order Entry (Sales):
          order: Order Entry - Orders
          line_item: Order Entry - Line Items
          line_attribute: OrderItemXA

Every integration object names every component of its logical object. Problems are findings
``config/siebel.yaml:line: path: problem``, reported by the mappings that use the file and by lint.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from esb.config.yamlpos import Located, PathKey, format_path, load_yaml
from esb.exceptions import ConfigError
from esb.registry import did_you_mean

DECLARATION_FILE = "config/siebel.yaml"
IO_NAME = "io"  # {{io}}: the integration object itself
_LOGICAL = re.compile(r"^[a-z][a-z0-9_]*$")
_OBJECT_KEYS = ("components", "integration_objects")


@dataclass(frozen=True)
class SiebelObject:
    """One logical object: its component names, and the integration objects that carry it."""

    name: str
    components: tuple[str, ...]
    integration_objects: dict[str, dict[str, str]]  # integration-object name -> logical -> repository name
    where: str  # file:line of the declaration

    def names_for(self, integration_object: str) -> dict[str, str]:
        """Return the ``{{name}}`` table of ``integration_object``: its components plus ``io``."""
        return {IO_NAME: integration_object, **self.integration_objects[integration_object]}

    def describe(self) -> str:
        """Return ``'A', 'B' or 'C'``: the accepted integration-object names, as declared."""
        quoted = [repr(name) for name in self.integration_objects]
        return quoted[0] if len(quoted) == 1 else f"{', '.join(quoted[:-1])} or {quoted[-1]}"


class _Checker:
    """Collects the findings about one declaration file."""

    def __init__(self, doc: Located) -> None:
        self.doc = doc
        self.findings: list[str] = []

    def add(self, path: PathKey, problem: str) -> None:
        self.findings.append(f"{self.doc.where(path)}: {format_path(path)}: {problem}")

    def objects(self) -> dict[str, SiebelObject]:
        data = self.doc.data
        if data is None:
            return {}
        if not isinstance(data, dict):
            self.add((), "expected a mapping of logical object name (order, account...) to its declaration")
            return {}
        found = {}
        for name, spec in data.items():
            obj = self.object(name, spec)
            if obj is not None:
                found[name] = obj
        return found

    def object(self, name: str, spec: Any) -> SiebelObject | None:
        path: PathKey = (name,)
        if not _LOGICAL.match(name):
            self.add(path, f"a logical object name is lower_snake_case, got {name!r}")
        if not isinstance(spec, dict):
            self.add(path, f"expected a mapping with {' and '.join(_OBJECT_KEYS)}, got {type(spec).__name__}")
            return None
        for key in spec:
            if key not in _OBJECT_KEYS:
                self.add(
                    (*path, key),
                    f"unknown key{did_you_mean(key, _OBJECT_KEYS)}: expected {' and '.join(_OBJECT_KEYS)}",
                )
        components = self.components(spec.get("components"), (*path, "components"))
        ios = spec.get("integration_objects")
        io_path = (*path, "integration_objects")
        if not isinstance(ios, dict) or not ios:
            self.add(
                io_path,
                "expected a non-empty mapping of integration-object name (as in IntObjectName) "
                "to its component names",
            )
            return None
        declared = {}
        for io_name, names in ios.items():
            table = self.integration_object(io_name, names, components, (*io_path, io_name))
            if table is not None:
                declared[io_name] = table
        if components is None or len(declared) != len(ios):
            return None
        return SiebelObject(name, components, declared, self.doc.where(path))

    def components(self, value: Any, path: PathKey) -> tuple[str, ...] | None:
        if not isinstance(value, list) or not value:
            self.add(path, "expected a non-empty list of logical component names ([order, line_item])")
            return None
        ok = True
        for index, item in enumerate(value):
            if not isinstance(item, str) or not _LOGICAL.match(item) or item == IO_NAME:
                self.add(
                    (*path, index), f"a component name is lower_snake_case and not {IO_NAME!r}, got {item!r}"
                )
                ok = False
        if len(set(map(str, value))) != len(value):
            self.add(path, "a component is listed twice")
            ok = False
        return tuple(value) if ok else None

    def integration_object(
        self, io_name: str, names: Any, components: tuple[str, ...] | None, path: PathKey
    ) -> dict[str, str] | None:
        if not io_name.strip():
            self.add(path, "an integration-object name cannot be empty")
            return None
        if not isinstance(names, dict):
            self.add(
                path,
                "expected a mapping of logical component name to the component's repository name "
                f"({'; '.join(components or ())}), got {type(names).__name__}",
            )
            return None
        ok = True
        for key, value in names.items():
            if components is not None and key not in components:
                self.add(
                    (*path, key),
                    f"unknown component{did_you_mean(key, components)}: the logical object "
                    f"declares {', '.join(components)}",
                )
                ok = False
            elif not isinstance(value, str) or not value.strip():
                self.add((*path, key), f"expected the component's repository name (text), got {value!r}")
                ok = False
        for missing in [c for c in components or () if c not in names]:
            self.add(path, f"no name for component {missing!r}: give the repository name {io_name!r} uses")
            ok = False
        return {str(k): str(v) for k, v in names.items()} if ok else None


def _doc(project_dir: Path) -> Located | None:
    path = Path(project_dir) / DECLARATION_FILE
    if not path.is_file():
        return None
    return load_yaml(path, display=DECLARATION_FILE)


def declaration_findings(project_dir: Path) -> list[str]:
    """Return every problem of the project's ``config/siebel.yaml`` (empty when clean or absent)."""
    try:
        doc = _doc(project_dir)
    except ConfigError as exc:
        return exc.findings or [str(exc)]
    if doc is None:
        return []
    checker = _Checker(doc)
    checker.objects()
    return checker.findings


def load_object(project_dir: Path, name: str) -> SiebelObject:
    """Return the logical object ``name`` declared in ``config/siebel.yaml``.

    ConfigError (every finding of the file, or an unknown name with the declared ones) otherwise.
    """
    doc = _doc(project_dir)
    if doc is None:
        raise ConfigError(f"{DECLARATION_FILE}: file not found: declare the Siebel integration objects there")
    checker = _Checker(doc)
    objects = checker.objects()
    if checker.findings:
        raise ConfigError("; ".join(checker.findings), findings=checker.findings)
    if name not in objects:
        known = ", ".join(objects) or "none"
        raise ConfigError(
            f"{DECLARATION_FILE} declares no logical object {name!r}"
            f"{did_you_mean(name, list(objects))} (declared: {known})"
        )
    return objects[name]
