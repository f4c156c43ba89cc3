"""The schema registry: every canonical schema of a project, by name, with validators compiled once.

Layout of ``canonical_model/`` (see docs/canonical-model.md)::

    product_order.v1.schema.json        one file per entity and major version: <entity>.v<N>.schema.json
    common/money.v1.schema.json         shared types, referenced by relative $ref
    examples/product_order.v1/valid/*.json
    examples/product_order.v1/invalid/*.json   each shows one violation;
    examples/product_order.v1/invalid/_expected.json   {"<stem>": {"path": "$.x", "message": "part"}}

Every schema's ``$id`` is ``BASE_URI`` + its path under ``canonical_model/``, so relative ``$ref``s
resolve between files and nothing is fetched from the network.
"""

from __future__ import annotations

import json
import re
import threading
from pathlib import Path
from typing import Any

from esb.exceptions import ConfigError
from esb.model.validation import CanonicalValidator, ReferenceValidator
from esb.registry import did_you_mean

#: Base of every canonical schema ``$id``.
BASE_URI = "https://esb.example/canonical/"
SCHEMA_SUFFIX = ".schema.json"
_ENTITY_FILE = re.compile(r"^(?P<entity>[a-z][a-z0-9_]*)\.v(?P<version>[1-9][0-9]*)\.schema\.json$")


class ModelRegistry:
    """The canonical schemas under ``root`` (``<project>/canonical_model``), loaded once.

    Entity schemas are named ``<entity>.v<N>`` (``product_order.v1``); common types
    ``common/<type>.v<N>`` (``common/money.v1``). Files that do not parse are reported by :meth:`check`
    and raise ConfigError when asked for by name.
    """

    def __init__(self, root: Path) -> None:
        """Load every ``*.schema.json`` under ``root`` (validators are compiled on first use)."""
        self.root = Path(root)
        self._schemas: dict[str, dict[str, Any]] = {}
        self._paths: dict[str, Path] = {}
        self._load_findings: list[str] = []
        self._validators: dict[str, CanonicalValidator] = {}
        self._lock = threading.Lock()
        for path in sorted(self.root.rglob("*" + SCHEMA_SUFFIX)):
            rel = path.relative_to(self.root)
            if rel.parts[0] == "examples":
                continue
            name = rel.as_posix()[: -len(SCHEMA_SUFFIX)]
            self._paths[name] = path
            try:
                doc = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
                line = getattr(exc, "lineno", 1)
                self._load_findings.append(f"{self._display(path)}:{line}: not readable JSON: {exc}")
                continue
            if not isinstance(doc, dict):
                self._load_findings.append(f"{self._display(path)}:1: a schema must be a JSON object")
                continue
            self._schemas[name] = doc

    # ------------------------------------------------------------------ names
    def names(self) -> list[str]:
        """Return the entity schema names (``["customer.v1", "product_order.v1", ...]``), sorted."""
        return sorted(n for n in self._schemas if "/" not in n)

    def common_names(self) -> list[str]:
        """Return the common type names (``["common/address.v1", ...]``), sorted."""
        return sorted(n for n in self._schemas if n.startswith("common/"))

    def entity_names(self) -> list[str]:
        """Return the entity names without version (``["customer", "product_order", ...]``), sorted."""
        return sorted({n.rsplit(".v", 1)[0] for n in self.names()})

    def latest(self, entity: str) -> str:
        """Return the newest schema name of ``entity`` (``product_order`` -> ``product_order.v1``)."""
        versions = [n for n in self.names() if n.rsplit(".v", 1)[0] == entity]
        if not versions:
            raise self._unknown(entity, self.entity_names())
        return max(versions, key=lambda n: int(n.rsplit(".v", 1)[1]))

    def resolve_name(self, name: str) -> str:
        """Return the full schema name for ``name``: accepts ``product_order.v1``, ``product_order``
        (latest version), ``common/money.v1`` and file names ending in ``.schema.json``."""
        if name.endswith(SCHEMA_SUFFIX):
            name = name[: -len(SCHEMA_SUFFIX)]
        if name in self._schemas:
            return name
        if ".v" not in name and name in self.entity_names():
            return self.latest(name)
        if name in self._paths:
            raise ConfigError(f"canonical schema {name!r} could not be loaded", findings=self._load_findings)
        raise self._unknown(name, list(self._schemas))

    def _unknown(self, name: str, choices: list[str]) -> ConfigError:
        known = ", ".join(self.names()) or "(none)"
        return ConfigError(f"unknown canonical schema {name!r}{did_you_mean(name, choices)}; known: {known}")

    # ---------------------------------------------------------------- schemas
    def schema(self, name: str) -> dict[str, Any]:
        """Return the parsed schema ``name`` (do not modify it)."""
        return self._schemas[self.resolve_name(name)]

    def path(self, name: str) -> Path:
        """Return the file of schema ``name``."""
        return self._paths[self.resolve_name(name)]

    def resources(self) -> dict[str, dict[str, Any]]:
        """Return every loaded schema keyed by its ``$id`` (falling back to BASE_URI + file path)."""
        out: dict[str, dict[str, Any]] = {}
        for name, doc in self._schemas.items():
            out[str(doc.get("$id") or self.expected_id(name))] = doc
        return out

    @staticmethod
    def expected_id(name: str) -> str:
        """Return the ``$id`` a schema called ``name`` must have."""
        return f"{BASE_URI}{name}{SCHEMA_SUFFIX}"

    # ------------------------------------------------------------- validators
    def validator(self, name: str) -> CanonicalValidator:
        """Return the compiled validator of ``name``, compiling it once (thread-safe) and caching it."""
        full = self.resolve_name(name)
        found = self._validators.get(full)
        if found is not None:
            return found
        with self._lock:
            if full not in self._validators:
                self._validators[full] = CanonicalValidator(full, self._schemas[full], self.resources())
            return self._validators[full]

    def compile_all(self) -> None:
        """Compile every entity validator now (at load time), so a bad schema fails before traffic."""
        for name in self.names():
            self.validator(name)

    def reference_validator(self, name: str) -> ReferenceValidator:
        """Return a python-jsonschema validator of ``name`` (reference implementation, not cached)."""
        full = self.resolve_name(name)
        return ReferenceValidator(self._schemas[full], self.resources())

    # ------------------------------------------------------------------- lint
    def examples_dir(self, name: str) -> Path:
        """Return ``examples/<name>/`` (its ``valid/`` and ``invalid/`` folders hold the examples)."""
        return self.root / "examples" / name

    def check(self) -> list[str]:
        """Return findings for ``esb lint``: unreadable files, invalid 2020-12 schemas, wrong ``$id``,
        unresolvable ``$ref``s, entities without a valid and an invalid example, examples that disagree."""
        from esb.model.schema_check import check_registry  # lint helpers, only needed by lint

        return [*self._load_findings, *check_registry(self)]

    def _display(self, path: Path) -> str:
        try:
            return str(Path(self.root.name) / path.relative_to(self.root))
        except ValueError:
            return str(path)

    def display(self, name: str) -> str:
        """Return the file of ``name`` as shown in findings (``canonical_model/x.v1.schema.json``)."""
        return self._display(self._paths[name])


def entity_file_parts(filename: str) -> tuple[str, int] | None:
    """Split ``product_order.v1.schema.json`` into ``("product_order", 1)``; None for other names."""
    m = _ENTITY_FILE.match(filename)
    return (m["entity"], int(m["version"])) if m else None
