"""The transform registry: finds mapping files under ``<project>/transforms/``, compiles each once."""

from __future__ import annotations

import threading
from pathlib import Path

from esb.exceptions import ConfigError
from esb.registry import did_you_mean
from esb.transforms.base import Transform
from esb.transforms.loader import load_transform

TRANSFORMS_DIR = "transforms"
TEST_SUFFIX = "_test.yaml"
#: The folder of decision tables (esb.decision), not mappings.
TABLES = "tables"


class TransformRegistry:
    """Every mapping of a project by name (``crm/siebel_order_to_canonical``), compiled on first use."""

    def __init__(self, project_dir: Path) -> None:
        self.project_dir = Path(project_dir)
        self.root = self.project_dir / TRANSFORMS_DIR
        self._files: dict[str, Path] | None = None
        self._cache: dict[str, Transform] = {}
        self._lock = threading.Lock()

    def _scan(self) -> dict[str, Path]:
        if self._files is None:
            files: dict[str, Path] = {}
            if self.root.is_dir():
                for path in sorted(self.root.rglob("*.yaml")):
                    rel = path.relative_to(self.root)
                    if path.name.endswith(TEST_SUFFIX) or "samples" in rel.parts or rel.parts[0] == TABLES:
                        continue
                    files[rel.with_suffix("").as_posix()] = path
            self._files = files
        return self._files

    def names(self) -> list[str]:
        """Return the names of every mapping file, sorted."""
        return sorted(self._scan())

    def path_of(self, name: str) -> Path:
        """Return the mapping file of ``name``; ConfigError (with a suggestion) for an unknown name."""
        files = self._scan()
        if name not in files:
            known = ", ".join(sorted(files)) or "none"
            raise ConfigError(f"unknown transform {name!r}{did_you_mean(name, list(files))}; known: {known}")
        return files[name]

    def get(self, name: str) -> Transform:
        """Return the compiled transform ``name``, compiling it on first use."""
        cached = self._cache.get(name)
        if cached is not None:
            return cached
        path = self.path_of(name)
        with self._lock:
            if name not in self._cache:
                display = path.relative_to(self.project_dir).as_posix()
                self._cache[name] = load_transform(name, path, display, self.project_dir)
            return self._cache[name]

    def load_all(self) -> list[str]:
        """Compile every mapping; return the findings (``file:line: path: problem``), empty when clean."""
        findings: list[str] = []
        for name in self.names():
            try:
                self.get(name)
            except ConfigError as exc:
                findings.extend(exc.findings or [str(exc)])
        return findings
