"""esb health with processes: instances an operator must act on degrade the hub; process dead letters show."""

from __future__ import annotations

from pathlib import Path

import yaml

from esb.ops.health import DEGRADED, OK, check_process_dead_letters, check_processes
from esb.process.engine import ProcessStore, Runner
from esb.project import Project
from tests.unit.test_process_cli import ended, stuck
from tests.unit.test_process_engine import Clock, FakeResources
from tests.unit.test_process_lint import write_project

DEFINITION = yaml.safe_dump(
    {
        "process": "p",
        "version": 1,
        "trigger": {"from": "hub.orders"},
        "business_keys": {"order_id": "data.id"},
        "steps": [{"name": "start", "set_state": "inProgress"}],
    }
)


def project_with_process(root: Path) -> Project:
    """A project defining one process, its journal (and process tables) under root/var."""
    (root / "var").mkdir(exist_ok=True)
    return write_project(root, {"p.yaml": DEFINITION})


def test_no_process_no_check(tmp_path: Path) -> None:
    """A project without processes gets no process lines at all."""
    (tmp_path / "var").mkdir()
    project = write_project(tmp_path, {})
    assert check_processes(project) is None
    assert check_process_dead_letters(project) == []


def test_a_stuck_instance_degrades_and_is_named(tmp_path: Path) -> None:
    """Ended instances leave the hub ok; a stuck one makes it degraded, with its id and the command to use."""
    project = project_with_process(tmp_path)
    clock, fakes = Clock(), FakeResources()
    with ProcessStore(project.settings.journal.url) as store:
        runner = Runner(store, fakes, owner="r1", lease=60, clock=clock)
        ended(runner, "o-ok")
        healthy = check_processes(project)
        assert healthy is not None
        assert healthy.status == OK
        assert "stuck" not in healthy.detail
        iid = stuck(runner, fakes, clock, "o-bad")
    check = check_processes(project)
    assert check is not None
    assert check.status == DEGRADED
    assert "1 stuck" in check.detail
    assert iid in check.detail
    assert "esb process" in check.detail
    assert check.data is not None
    assert check.data["counts"] == {"stuck": 1}


def test_process_dead_letters_without_an_endpoint_are_not_checked(tmp_path: Path) -> None:
    """With processes.dead_letter unset the journal alone keeps them: no dead-letter line to show."""
    project = project_with_process(tmp_path)
    assert project.settings.processes.dead_letter is None
    assert check_process_dead_letters(project) == []
