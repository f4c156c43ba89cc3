"""adapters/batch/fetch.py on a local folder (the same code fetches over SFTP and FTP: the remote is the
poller's): the newest complete extract staged, handed out again until its resync ended, never after."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from adapters.batch.fetch import extract_done, fetch_extract
from esb.project import Project
from esb.typing import FetchedExtract
from tests.sync_project import crm_record, make_sync_project, write_crm_extract

ENDPOINT = "crm.customer_full"


@pytest.fixture
def project(tmp_path: Path) -> Project:
    """The sync project; its CRM extract folder is ``exchange/``."""
    return make_sync_project(tmp_path / "p")


def put(project: Project, name: str, *, at: int, done: bool = True) -> Path:
    """An extract of two customers modified at ``at``, with its .ok (one second later) unless not done."""
    path = project.root / "exchange" / name
    write_crm_extract(path, [crm_record(1), crm_record(2)])
    os.utime(path, (at, at))
    if done:
        (path.parent / f"{name}.ok").write_bytes(b"")
        os.utime(path.parent / f"{name}.ok", (at + 1, at + 1))
    return path


def fetch(project: Project) -> FetchedExtract | None:
    """Fetch as a scheduled resync does."""
    return fetch_extract(project.endpoint(ENDPOINT), project.context(ENDPOINT))


def test_the_newest_is_staged_and_handed_out_until_its_resync_ended(project: Project) -> None:
    """Fetched twice before its resync ended: the same staged copy (a resync resumes over it); after
    `processed` it is not handed out again; a newer file is."""
    put(project, "CRM_CUST_FULL_20261205_001.dat", at=1_700_000_000)
    source = put(project, "CRM_CUST_FULL_20261206_001.dat", at=1_700_000_100)
    first = fetch(project)
    assert first is not None
    assert first.name == source.name
    assert first.path.read_bytes() == source.read_bytes()
    again = fetch(project)
    assert again == first
    extract_done(project.endpoint(ENDPOINT), project.context(ENDPOINT), first, None)
    assert fetch(project) is None
    put(project, "CRM_CUST_FULL_20261207_001.dat", at=1_700_000_200)
    newer = fetch(project)
    assert newer is not None
    assert newer.name == "CRM_CUST_FULL_20261207_001.dat"


def test_a_failed_resync_is_handed_out_again_and_a_file_without_done_file_waits(project: Project) -> None:
    """`failed` is fetched again (from its staged copy); the newest without its .ok is not handed out."""
    put(project, "CRM_CUST_FULL_20261206_001.dat", at=1_700_000_100)
    first = fetch(project)
    assert first is not None
    extract_done(project.endpoint(ENDPOINT), project.context(ENDPOINT), first, "boom")
    assert fetch(project) == first
    put(project, "CRM_CUST_FULL_20261207_001.dat", at=1_700_000_200, done=False)
    assert fetch(project) is None
