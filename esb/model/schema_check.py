"""Checks of the canonical model for ``esb lint`` (``ModelRegistry.check``): schemas and their examples."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from esb.exceptions import ConfigError
from esb.model.validation import CanonicalValidator, meta_errors

if TYPE_CHECKING:
    from esb.model.registry import ModelRegistry

EXPECTED_FILE = "_expected.json"


def check_registry(registry: ModelRegistry) -> list[str]:
    """Return every finding about the schemas and examples of ``registry``."""
    findings: list[str] = []
    resources = registry.resources()
    broken: set[str] = set()
    for name in [*registry.common_names(), *registry.names()]:
        found = _check_schema(registry, name, resources)
        if found:
            broken.add(name)
        findings += found
    for name in registry.names():
        if name not in broken:
            findings += check_examples(registry, name)
    examples_root = registry.root / "examples"
    if examples_root.is_dir():
        for folder in sorted(p for p in examples_root.iterdir() if p.is_dir()):
            if folder.name not in registry.names():
                findings.append(
                    f"{_rel(registry, folder)}: examples for an unknown schema {folder.name!r} "
                    f"(expected one of: {', '.join(registry.names())})"
                )
    return findings


def _check_schema(registry: ModelRegistry, name: str, resources: dict[str, dict[str, Any]]) -> list[str]:
    """Meta-validate one schema, check its ``$id`` and that it compiles with every ``$ref`` resolved."""
    where = f"{registry.display(name)}:1"
    schema = registry.schema(name)
    found = [f"{where}: {msg} (not a valid JSON Schema 2020-12)" for msg in meta_errors(schema)]
    if schema.get("$schema") != "https://json-schema.org/draft/2020-12/schema":
        found.append(f"{where}: $schema must be 'https://json-schema.org/draft/2020-12/schema'")
    expected = registry.expected_id(name)
    if schema.get("$id") != expected:
        found.append(f"{where}: $id is {schema.get('$id')!r}, expected {expected!r}")
    if "/" not in name and (len(name.split(".v")) != 2 or not name.split(".v")[1].isdigit()):
        found.append(f"{where}: entity schema files are named <entity>.v<N>.schema.json")
    if not found:
        try:
            CanonicalValidator(name, schema, resources)
        except ConfigError as exc:
            found.append(f"{where}: {exc}")
    return found


def load_examples(registry: ModelRegistry, name: str, kind: str) -> dict[str, Any]:
    """Return ``{stem: document}`` of ``examples/<name>/<kind>/*.json`` (kind is valid or invalid)."""
    folder = registry.examples_dir(name) / kind
    out: dict[str, Any] = {}
    if folder.is_dir():
        for path in sorted(folder.glob("*.json")):
            if path.name != EXPECTED_FILE:
                out[path.stem] = json.loads(path.read_text(encoding="utf-8"))
    return out


def load_expectations(registry: ModelRegistry, name: str) -> dict[str, dict[str, str]]:
    """Return ``{stem: {"path": ..., "message": ...}}`` from ``examples/<name>/invalid/_expected.json``."""
    path = registry.examples_dir(name) / "invalid" / EXPECTED_FILE
    if not path.exists():
        return {}
    data: dict[str, dict[str, str]] = json.loads(path.read_text(encoding="utf-8"))
    return data


def check_examples(registry: ModelRegistry, name: str) -> list[str]:
    """Check that ``name`` has valid examples that pass and invalid ones that fail where expected."""
    where = _rel(registry, registry.examples_dir(name))
    try:
        valid = load_examples(registry, name, "valid")
        invalid = load_examples(registry, name, "invalid")
        expected = load_expectations(registry, name)
        validator = registry.validator(name)
    except (OSError, ValueError, ConfigError) as exc:
        return [f"{where}: cannot check examples: {exc}"]
    found: list[str] = []
    if not valid:
        found.append(f"{where}/valid: no valid example of {name}")
    if not invalid:
        found.append(f"{where}/invalid: no invalid example of {name}")
    for stem, doc in valid.items():
        found += [f"{where}/valid/{stem}.json: {p}: {m}" for p, m in validator.errors(doc)]
    for stem, doc in invalid.items():
        found += _check_invalid(f"{where}/invalid/{stem}.json", validator.errors(doc), expected.get(stem))
    for stem in sorted(set(expected) - set(invalid)):
        found.append(f"{where}/invalid/{EXPECTED_FILE}: {stem!r} names no example file")
    return found


def _check_invalid(where: str, errors: list[tuple[str, str]], expect: dict[str, str] | None) -> list[str]:
    """Check one invalid example against its expectation (the error path and a part of the message)."""
    if not errors:
        return [f"{where}: expected to be invalid, but it conforms"]
    if expect is None:
        return [f"{where}: no entry in {EXPECTED_FILE} (the error path it demonstrates)"]
    paths = {p for p, _ in errors}
    if expect.get("path") not in paths:
        return [f"{where}: expected an error at {expect.get('path')}, got {sorted(paths)}"]
    part = expect.get("message")
    if part and not any(part in m for p, m in errors if p == expect["path"]):
        return [f"{where}: no error at {expect['path']} mentions {part!r}: {errors}"]
    return []


def _rel(registry: ModelRegistry, path: Path) -> str:
    try:
        return str(Path(registry.root.name) / path.relative_to(registry.root))
    except ValueError:
        return str(path)
