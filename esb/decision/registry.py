"""The table registry: every decision table under ``<project>/transforms/tables/``, loaded once.

A table is ``<name>.yaml`` (its rules inline or in a CSV file it names); its tests are
``<name>_test.yaml`` beside it. Tables sit with the transforms because they are the same kind of
thing, data that maps a message to values, edited by the same people: ``esb test`` and hot reload
already walk that folder, and the transform registry leaves ``tables/`` to this one.
"""

from __future__ import annotations

import threading
from pathlib import Path

from esb.decision.loader import load_table
from esb.decision.table import Table
from esb.exceptions import ConfigError
from esb.registry import did_you_mean

TABLES_DIR = Path("transforms") / "tables"
TEST_SUFFIX = "_test.yaml"


class TableRegistry:
    """Every decision table of a project by name (``fault112_dispatch``), loaded on first use."""

    def __init__(self, project_dir: Path) -> None:
        self.project_dir = Path(project_dir)
        self.root = self.project_dir / TABLES_DIR
        self._cache: dict[str, Table] = {}
        self._lock = threading.Lock()

    def files(self) -> dict[str, Path]:
        """Table name -> its YAML file (tests excluded), sorted by name."""
        if not self.root.is_dir():
            return {}
        found = {}
        for path in sorted(self.root.rglob("*.yaml")):
            if not path.name.endswith(TEST_SUFFIX):
                found[path.relative_to(self.root).with_suffix("").as_posix()] = path
        return found

    def names(self) -> list[str]:
        """The names of every table, sorted."""
        return list(self.files())

    def get(self, name: str) -> Table:
        """The table ``name``; ConfigError for an unknown or broken one."""
        cached = self._cache.get(name)
        if cached is not None:
            return cached
        files = self.files()
        if name not in files:
            known = ", ".join(files) or "none"
            raise ConfigError(
                f"unknown decision table {name!r}{did_you_mean(name, list(files))}; known: {known} "
                f"(tables are {TABLES_DIR.as_posix()}/<name>.yaml)"
            )
        with self._lock:
            if name not in self._cache:
                path = files[name]
                self._cache[name] = load_table(name, path, path.relative_to(self.project_dir).as_posix())
            return self._cache[name]

    def load_all(self) -> list[str]:
        """Load every table; the findings (``file:line: path: problem``), empty when all load."""
        findings: list[str] = []
        for name in self.names():
            try:
                self.get(name)
            except ConfigError as exc:
                findings.extend(exc.findings or [str(exc)])
        return findings
