"""Loading the process definitions of a project, every version kept.

Layout (docs/processes.md)::

    processes/<name>.yaml          the current version of process <name>: new instances start on it
    processes/<name>/v<N>.yaml     older versions, kept while instances may still run on them
    processes/examples/            not part of the project (examples for docs and tests)
    processes/.versions.lock       the fingerprint of each recorded version (esb.process.versions)

Each file holds one process; its ``process:`` must be its file's (or folder's) name and an older
version's ``version:`` the N of its ``v<N>.yaml``, lower than the current one. Every problem is a finding
``file:line: path: what to do``; a file with structural errors is left out of the catalogue.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import ValidationError

from esb.config.findings import findings_from_validation
from esb.config.projectdir import PROCESSES_DIR as PROCESSES_DIR  # esb.process.versions reads it here
from esb.config.yamlpos import Located, load_yaml
from esb.exceptions import ConfigError
from esb.process.definition import Process
from esb.registry import did_you_mean

EXAMPLES_DIR = "examples"
_OLD_VERSION = re.compile(r"^v([1-9][0-9]*)\.yaml$")


@dataclass(frozen=True)
class Definition:
    """One loaded version of a process, with its YAML positions for findings."""

    process: Process
    doc: Located

    @property
    def file(self) -> str:
        """The file it came from, relative to the project (``processes/x.yaml``)."""
        return self.doc.file


@dataclass
class ProcessCatalog:
    """Every version of every process of a project; ``current`` is what new instances start on."""

    versions_of: dict[str, dict[int, Definition]] = field(default_factory=dict)
    current_version: dict[str, int] = field(default_factory=dict)
    findings: list[str] = field(default_factory=list)

    def names(self) -> list[str]:
        """Return the names of the processes that have a current version, sorted."""
        return sorted(self.current_version)

    def current(self, name: str) -> Definition:
        """Return the current version of process ``name``."""
        if name not in self.current_version:
            raise ConfigError(f"unknown process {name!r}{did_you_mean(name, self.names())}")
        return self.versions_of[name][self.current_version[name]]

    def get(self, name: str, version: int) -> Definition:
        """Return version ``version`` of process ``name`` (an engine runs an old instance on it)."""
        found = self.versions_of.get(name, {})
        if version not in found:
            known = ", ".join(str(v) for v in sorted(found)) or "none"
            raise ConfigError(f"process {name!r} has no version {version}; versions: {known}")
        return found[version]

    def versions(self, name: str) -> list[int]:
        """Return the loaded versions of process ``name``, oldest first."""
        return sorted(self.versions_of.get(name, {}))

    def all(self) -> list[Definition]:
        """Return every loaded definition, by name then version."""
        return [self.versions_of[n][v] for n in sorted(self.versions_of) for v in self.versions(n)]


def load_processes(root: Path) -> ProcessCatalog:
    """Load ``processes/`` of the project at ``root`` (an absent folder is an empty catalogue)."""
    catalog = ProcessCatalog()
    folder = root / PROCESSES_DIR
    if not folder.is_dir():
        return catalog
    for path in sorted(folder.glob("*.yaml")):
        _add(catalog, root, path, path.stem, None)
    for sub in sorted(p for p in folder.iterdir() if p.is_dir() and p.name != EXAMPLES_DIR):
        _load_old_versions(catalog, root, sub)
    return catalog


def _load_old_versions(catalog: ProcessCatalog, root: Path, sub: Path) -> None:
    display = f"{PROCESSES_DIR}/{sub.name}"
    if sub.name not in catalog.current_version and not (sub.parent / f"{sub.name}.yaml").exists():
        catalog.findings.append(
            f"{display}:1: older versions of {sub.name!r} without {PROCESSES_DIR}/{sub.name}.yaml: keep "
            "the current definition beside them (or delete the folder once no instance runs on it)"
        )
    for path in sorted(sub.iterdir()):
        match = _OLD_VERSION.match(path.name)
        if match is None:
            catalog.findings.append(
                f"{display}/{path.name}:1: not a version file: name older versions v<N>.yaml (v1.yaml, ...)"
            )
            continue
        _add(catalog, root, path, sub.name, int(match.group(1)))


def _add(catalog: ProcessCatalog, root: Path, path: Path, name: str, old: int | None) -> None:
    """Load one file: ``old`` is the N of ``v<N>.yaml``, None for the current version."""
    display = path.relative_to(root).as_posix()
    try:
        doc = load_yaml(path, display=display)
        process = Process.model_validate(doc.data or {})
    except ConfigError as exc:
        catalog.findings.extend(exc.findings or [f"{display}:1: {exc}"])
        return
    except ValidationError as exc:
        catalog.findings.extend(findings_from_validation(exc, doc, Process))
        return
    if process.process != name:
        catalog.findings.append(
            f"{doc.where(('process',))}: process: {process.process!r} in a file of process {name!r}: "
            "a process's files are named after it; rename one"
        )
        return
    if old is not None and process.version != old:
        catalog.findings.append(
            f"{doc.where(('version',))}: version: {process.version} in v{old}.yaml: make them agree"
        )
        return
    known = catalog.versions_of.setdefault(name, {})
    if process.version in known:
        other = known[process.version].file
        catalog.findings.append(
            f"{doc.where(('version',))}: version: {process.version} is also {other}: "
            "each version is one file; raise the current file's version"
        )
        return
    known[process.version] = Definition(process, doc)
    if old is None:
        catalog.current_version[name] = process.version
    elif name in catalog.current_version and old > catalog.current_version[name]:
        current = catalog.versions_of[name][catalog.current_version[name]]
        catalog.findings.append(
            f"{doc.where(('version',))}: version: {old} is newer than the current "
            f"{current.file} (version {current.process.version}): the current file has the highest version"
        )
