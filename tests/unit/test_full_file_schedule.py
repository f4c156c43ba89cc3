"""The scheduled full files: a route's full_file is scheduled on its cron and written only by the leader."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from esb.config.routes import Route
from esb.project import Project
from esb.runtime.full_files import FullFileScheduler
from tests.unit.directory_helpers import ROOT


class _Election:
    def __init__(self, leader: bool) -> None:
        self.is_leader = leader
        self.stopped = False

    def stop(self) -> None:
        self.stopped = True


def _project(tmp_path: Path) -> Project:
    return Project.load(ROOT, environ={"ESB_DATA_DIR": str(tmp_path / "data"),
                                       "ESB_EXCHANGE_DIR": str(tmp_path / "exchange")})  # fmt: skip


def test_each_directory_route_is_scheduled_on_its_cron(tmp_path: Path) -> None:
    """The two directory routes' full files are scheduled for their next Sunday 03:00 / 03:30 Beijing."""
    routes = ["subscriber-to-directory114", "subscriber-to-phonebook"]
    scheduler = FullFileScheduler(_project(tmp_path), routes)
    assert scheduler.enabled
    scheduler.start()
    try:
        runs = scheduler.next_runs()
    finally:
        scheduler.stop()
    assert sorted(runs) == routes
    assert runs["subscriber-to-directory114"].endswith("T03:00:00+08:00")
    assert runs["subscriber-to-phonebook"].endswith("T03:30:00+08:00")


def test_only_the_leader_writes_the_full_file(tmp_path: Path) -> None:
    """A follower's run writes nothing; the leader's writes the file (empty sync state: no record)."""
    project = _project(tmp_path)
    scheduler = FullFileScheduler(project, ["subscriber-to-directory114"])
    scheduler.elections["subscriber-to-directory114"] = _Election(leader=False)
    assert scheduler.run("subscriber-to-directory114") is None
    assert not (tmp_path / "exchange" / "dir114" / "in").exists()
    scheduler.elections["subscriber-to-directory114"] = _Election(leader=True)
    result = scheduler.run("subscriber-to-directory114")
    assert result is not None
    assert result.file.endswith("_F.dat")
    assert result.records == 0
    assert (tmp_path / "exchange" / "dir114" / "in" / result.file).exists()


def test_a_full_file_needs_a_sync_step() -> None:
    """A route with full_file but no sync step is refused (nothing to read the file from)."""
    spec: dict[str, Any] = {"id": "r", "from": "a.b", "to": "c.d", "steps": [{"transform": "x/y"}],
                            "full_file": {"to": "c.e", "cron": "0 3 * * 0"}}  # fmt: skip
    with pytest.raises(ValidationError, match="full_file needs a sync step"):
        Route.model_validate(spec)


def test_a_bad_cron_is_refused() -> None:
    """full_file.cron must be a crontab apscheduler reads."""
    spec: dict[str, Any] = {"id": "r", "from": "a.b", "to": "c.d", "steps": [],
                            "full_file": {"to": "c.e", "cron": "every sunday"}}  # fmt: skip
    with pytest.raises(ValidationError, match="cron 'every sunday'"):
        Route.model_validate(spec)


def test_esb_health_lists_each_full_file_job(tmp_path: Path) -> None:
    """esb health shows each route's full-file job with its cron, next run and target endpoint."""
    from esb.ops.health import check_schedules

    checks = {c.component: c for c in check_schedules(_project(tmp_path))}
    job = checks["job full-file subscriber-to-directory114"]
    assert job.status == "ok"
    assert job.detail.startswith("cron '0 3 * * 0', next ")
    assert "to dir114.full_out; written by the leader of full-file:subscriber-to-directory114" in job.detail

