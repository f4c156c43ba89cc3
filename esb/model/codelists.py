"""Code lists in one place: canonical codes against each system's own values.

``canonical_model/codelists.yaml`` holds, per list, the canonical values and each system's mapping::

    order_item_action:
      description: Action on a product order item
      canonical: [add, modify, delete, noChange]
      systems:
        siebel: {Add: add, Update: modify, Delete: delete, "-": noChange}

Transforms call :meth:`CodeLists.to_canonical` / :meth:`CodeLists.from_canonical` (through the
``codelist`` and ``codelist_out`` mapping functions); an unknown code is a clear error, never a guess.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from esb.config.yamlpos import load_yaml
from esb.exceptions import ConfigError
from esb.registry import did_you_mean

CODELISTS_FILE = Path("canonical_model") / "codelists.yaml"


class UnknownCode(LookupError):  # noqa: N818 (public API name used by the transforms)
    """A code that the list does not know, for that system."""


@dataclass(frozen=True)
class CodeList:
    """One list: canonical values and, per system, the system's code for each."""

    name: str
    canonical: tuple[str, ...]
    systems: dict[str, dict[str, str]] = field(default_factory=dict)
    description: str = ""

    def to_canonical(self, system: str, code: Any) -> str:
        """Return the canonical value for ``system``'s ``code``."""
        mapping = self._system(system)
        key = "" if code is None else str(code)
        if key in mapping:
            return mapping[key]
        stripped = key.strip()
        if stripped in mapping:
            return mapping[stripped]
        raise UnknownCode(
            f"code list {self.name!r}: {system} code {key!r} is unknown{did_you_mean(key, list(mapping))}; "
            f"known: {', '.join(sorted(mapping))}"
        )

    def from_canonical(self, system: str, value: Any) -> str:
        """Return ``system``'s code for the canonical ``value`` (the first code listed for it)."""
        mapping = self._system(system)
        for code, canonical in mapping.items():
            if canonical == value:
                return code
        raise UnknownCode(
            f"code list {self.name!r}: canonical value {value!r} has no {system} code; "
            f"known: {', '.join(sorted(set(mapping.values())))}"
        )

    def _system(self, system: str) -> dict[str, str]:
        try:
            return self.systems[system]
        except KeyError:
            raise UnknownCode(
                f"code list {self.name!r} has no codes for system {system!r}"
                f"{did_you_mean(system, list(self.systems))}"
            ) from None


class CodeLists:
    """All code lists of a project, looked up by name."""

    def __init__(self, lists: dict[str, CodeList]) -> None:
        self.lists = lists

    def get(self, name: str) -> CodeList:
        """Return the list called ``name``."""
        try:
            return self.lists[name]
        except KeyError:
            raise UnknownCode(f"no code list {name!r}{did_you_mean(name, list(self.lists))}") from None

    def to_canonical(self, name: str, system: str, code: Any) -> str:
        """Return the canonical value of ``system``'s ``code`` in list ``name``."""
        return self.get(name).to_canonical(system, code)

    def from_canonical(self, name: str, system: str, value: Any) -> str:
        """Return ``system``'s code for canonical ``value`` in list ``name``."""
        return self.get(name).from_canonical(system, value)


def parse_codelists(data: Any, where: str) -> CodeLists:
    """Build CodeLists from the parsed YAML ``data``; ``where`` names the file in errors."""
    if not isinstance(data, dict):
        raise ConfigError(f"{where}:1: code lists must be a mapping of list name to list")
    lists: dict[str, CodeList] = {}
    findings: list[str] = []
    for name, spec in data.items():
        if not isinstance(spec, dict) or "canonical" not in spec:
            findings.append(f"{where}: {name}: needs 'canonical' (the canonical values) and 'systems'")
            continue
        canonical = tuple(str(v) for v in spec["canonical"])
        systems: dict[str, dict[str, str]] = {}
        for system, mapping in (spec.get("systems") or {}).items():
            systems[system] = {str(k): str(v) for k, v in (mapping or {}).items()}
            bad = sorted({v for v in systems[system].values() if v not in canonical})
            if bad:
                findings.append(f"{where}: {name}.systems.{system}: maps to non-canonical values {bad}")
        lists[name] = CodeList(name, canonical, systems, str(spec.get("description", "")))
    if findings:
        raise ConfigError(f"{where}: invalid code lists", findings=findings)
    return CodeLists(lists)


@cache
def load_codelists(project_dir: Path) -> CodeLists:
    """Load (once per project directory) ``canonical_model/codelists.yaml``."""
    path = project_dir / CODELISTS_FILE
    if not path.exists():
        return CodeLists({})
    doc = load_yaml(path, display=str(CODELISTS_FILE))
    return parse_codelists(doc.data or {}, str(CODELISTS_FILE))
