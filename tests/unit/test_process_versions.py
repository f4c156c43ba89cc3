"""Versioned definitions: every version loads, files and versions agree, the lock catches silent changes."""

from __future__ import annotations

from pathlib import Path

import pytest

from esb.config.findings import is_warning
from esb.exceptions import ConfigError
from esb.process.lint import process_findings
from esb.process.loader import load_processes
from esb.process.versions import LOCK_FILE, fingerprint, main, read_lock, record
from tests.unit.test_process_lint import GOOD, write_project

V2 = GOOD.replace("version: 1", "version: 2").replace(
    "call: {endpoint: rim.release}", "call: {endpoint: rim.release, timeout: 5s}"
)


def write(root: Path, name: str, text: str) -> None:
    """Write ``text`` as processes/<name>."""
    path = root / "processes" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def test_every_version_is_loaded(tmp_path: Path) -> None:
    """processes/p.yaml is current, processes/p/v1.yaml is kept for instances started on it."""
    write(tmp_path, "p.yaml", V2)
    write(tmp_path, "p/v1.yaml", GOOD)
    catalog = load_processes(tmp_path)
    assert catalog.findings == []
    assert catalog.versions("p") == [1, 2]
    assert catalog.current("p").process.version == 2
    assert catalog.get("p", 1).file == "processes/p/v1.yaml"
    assert catalog.get("p", 1).process.compensations[0].call.timeout == 30.0


def test_unknown_process_or_version_is_an_error(tmp_path: Path) -> None:
    """Asking for a process or version that is not there names what is."""
    write(tmp_path, "p.yaml", GOOD)
    catalog = load_processes(tmp_path)
    with pytest.raises(ConfigError, match="did you mean 'p'"):
        catalog.current("pp")
    with pytest.raises(ConfigError, match="no version 7; versions: 1"):
        catalog.get("p", 7)


def test_examples_folder_is_not_loaded(tmp_path: Path) -> None:
    """processes/examples/ holds examples, not the project's processes."""
    write(tmp_path, "examples/p.yaml", GOOD)
    assert load_processes(tmp_path).all() == []


def test_process_name_must_match_file(tmp_path: Path) -> None:
    """A file holds the process it is named after."""
    write(tmp_path, "q.yaml", GOOD)
    assert load_processes(tmp_path).findings == [
        "processes/q.yaml:1: process: 'p' in a file of process 'q': a process's files are named after it; "
        "rename one"
    ]


def test_old_version_number_must_match_file(tmp_path: Path) -> None:
    """processes/p/v1.yaml holds version 1."""
    write(tmp_path, "p.yaml", V2.replace("version: 2", "version: 3"))
    write(tmp_path, "p/v1.yaml", V2)
    assert load_processes(tmp_path).findings == [
        "processes/p/v1.yaml:2: version: 2 in v1.yaml: make them agree"
    ]


def test_old_version_equal_to_current_is_a_finding(tmp_path: Path) -> None:
    """Each version is one file: an old file cannot repeat the current version."""
    write(tmp_path, "p.yaml", GOOD)
    write(tmp_path, "p/v1.yaml", GOOD)
    assert load_processes(tmp_path).findings == [
        "processes/p/v1.yaml:2: version: 1 is also processes/p.yaml: each version is one file; raise the "
        "current file's version"
    ]


def test_old_version_newer_than_current_is_a_finding(tmp_path: Path) -> None:
    """The current file has the highest version."""
    write(tmp_path, "p.yaml", GOOD)
    write(tmp_path, "p/v2.yaml", V2)
    assert load_processes(tmp_path).findings == [
        "processes/p/v2.yaml:2: version: 2 is newer than the current processes/p.yaml (version 1): the "
        "current file has the highest version"
    ]


def test_stray_file_and_orphan_folder(tmp_path: Path) -> None:
    """A version folder holds v<N>.yaml files beside its current definition."""
    write(tmp_path, "q/notes.yaml", GOOD)
    assert load_processes(tmp_path).findings == [
        "processes/q:1: older versions of 'q' without processes/q.yaml: keep the current definition beside "
        "them (or delete the folder once no instance runs on it)",
        "processes/q/notes.yaml:1: not a version file: name older versions v<N>.yaml (v1.yaml, ...)",
    ]


def test_old_versions_are_linted_too(tmp_path: Path) -> None:
    """An old version naming an endpoint that is gone is reported in its own file."""
    project = write_project(
        tmp_path, {"p.yaml": V2, "p/v1.yaml": GOOD.replace("endpoint: rim.release", "endpoint: rim.gone")}
    )
    assert process_findings(project) == [
        "processes/p/v1.yaml:17: compensations[0].call.endpoint: unknown endpoint 'rim.gone': declare it "
        "in config/systems.yaml or fix the name"
    ]


def test_fingerprint_ignores_descriptions_and_version() -> None:
    """Rewording a description or renumbering is no change; a new timeout is."""
    from esb.config.yamlpos import load_yaml_text
    from esb.process.definition import Process

    def parse(text: str) -> Process:
        return Process.model_validate(load_yaml_text(text, "p.yaml").data)

    base = fingerprint(parse(GOOD))
    described = GOOD.replace("  - name: start\n", "  - name: start\n    description: begin the order\n")
    assert fingerprint(parse(described)) == base
    assert fingerprint(parse(GOOD.replace("version: 1", "version: 5"))) == base
    assert fingerprint(parse(V2)) != base


def test_no_lock_no_version_finding(tmp_path: Path) -> None:
    """Without processes/.versions.lock nothing is compared."""
    assert process_findings(write_project(tmp_path, {"p.yaml": GOOD})) == []


def test_changed_definition_without_new_version_is_reported(tmp_path: Path) -> None:
    """A recorded version whose steps changed while its number stayed is a finding at version:."""
    project = write_project(tmp_path, {"p.yaml": GOOD})
    assert record(tmp_path) == {"p": {1: fingerprint(load_processes(tmp_path).current("p").process)}}
    assert process_findings(project) == []
    (tmp_path / "processes" / "p.yaml").write_text(
        GOOD.replace("{endpoint: rim.release}", "{endpoint: rim.release, timeout: 5s}")
    )
    assert process_findings(project) == [
        "processes/p.yaml:2: version: p changed since version 1 was recorded in processes/.versions.lock, "
        "but its version was not raised: move this file to processes/p/v1.yaml (instances running on it "
        "need it), raise version to 2, then run python -m esb.process.versions"
    ]


def test_new_version_is_clean_once_recorded(tmp_path: Path) -> None:
    """Raising the version and keeping the old file is the fix; an unrecorded version is a warning."""
    project = write_project(tmp_path, {"p.yaml": GOOD})
    record(tmp_path)
    write(tmp_path, "p.yaml", V2)
    write(tmp_path, "p/v1.yaml", GOOD)
    (warning,) = process_findings(project)
    assert is_warning(warning)
    assert warning.startswith("processes/p.yaml:2: warning: version: 2 of p is not recorded")
    assert main([str(tmp_path)]) == 0
    assert process_findings(project) == []
    assert sorted(read_lock(tmp_path) or {}) == ["p"]
    assert (tmp_path / LOCK_FILE).read_text().count("sha256:") == 2


def test_record_refuses_broken_definitions(tmp_path: Path) -> None:
    """The lock is not written while a definition does not load."""
    write(tmp_path, "p.yaml", GOOD.replace("version: 1", "version: one"))
    assert main([str(tmp_path)]) == 2
    assert not (tmp_path / LOCK_FILE).exists()
