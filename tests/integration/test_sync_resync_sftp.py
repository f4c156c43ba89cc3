"""A scheduled resync whose extract endpoint is an SFTP folder (a real OpenSSH sshd on loopback, its host
key from known_hosts only): the newest complete extract is fetched into the endpoint's staging folder
and resynced, the same file is never resynced twice, an incomplete one (no done file yet) waits, and a
server whose host key is not in known_hosts gets nothing fetched."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import yaml

from esb.project import Project
from esb.resync.schedule import ResyncScheduler
from esb.sync.runs import SyncRuns
from esb.sync.store import SyncStore
from tests.integration.servers_ssh import SSHServer
from tests.sync_project import SYNC, crm_record, make_sync_project, sent, write_crm_extract


class Leading:
    """A leader election this process always wins."""

    is_leader = True


def sftp_project(tmp: Path, server: SSHServer, folder: Path, known_hosts: Path | None = None) -> Project:
    """The sync project (tests/sync_project.py) with the CRM's full extract on the SFTP server."""
    root = tmp / "p"
    make_sync_project(root)
    systems_file = root / "config" / "systems.yaml"
    systems = yaml.safe_load(systems_file.read_text(encoding="utf-8"))
    systems["systems"]["crm"]["endpoints"]["customer_full"]["remote"] = {
        "protocol": "sftp", "host": "127.0.0.1", "port": server.port, "username": server.user,
        "key_file": str(server.key_file), "known_hosts": str(known_hosts or server.known_hosts),
        "path": str(folder), "timeout": 5,
    }  # fmt: skip
    systems_file.write_text(yaml.safe_dump(systems, allow_unicode=True), encoding="utf-8")
    return Project.load(root, environ={})


def upload(folder: Path, name: str, records: list[dict[str, str]], *, age: int, done: bool = True) -> None:
    """Put an extract (and its .ok done file) into the server's folder, last modified ``age`` s ago."""
    folder.mkdir(parents=True, exist_ok=True)
    write_crm_extract(folder / name, records)
    when = 1_800_000_000 - age
    os.utime(folder / name, (when, when))
    if done:
        (folder / f"{name}.ok").write_bytes(b"")
        os.utime(folder / f"{name}.ok", (when + 1, when + 1))


def scheduled(project: Project) -> ResyncScheduler:
    """The resync scheduler, leading."""
    scheduler = ResyncScheduler(project)
    scheduler.elections[SYNC] = Leading()  # type: ignore[assignment]
    return scheduler


def keys(project: Project) -> list[str]:
    """The keys the target got since last asked, sorted."""
    return sorted(m.headers["sync-key"] for m in sent(project))


def runs(project: Project) -> list[Any]:
    """The sync's resync runs, newest first."""
    with SyncStore(project.settings.journal.url) as store:
        return SyncRuns(store).runs(SYNC)


def test_the_newest_complete_extract_is_fetched_over_sftp_once(
    sshd: SSHServer,
    tmp_path: Path,
) -> None:
    """Older and newer extract on the server: the newer is staged and resynced; a second run fetches
    nothing; a newer file without its done file waits; once its .ok is there it is resynced, once."""
    folder = sshd.root / f"crm_full_{tmp_path.name}"
    project = sftp_project(tmp_path, sshd, folder)
    upload(folder, "CRM_CUST_FULL_20261205_001.dat", [crm_record(i) for i in (1, 2)], age=600)
    upload(folder, "CRM_CUST_FULL_20261206_001.dat", [crm_record(i) for i in (1, 2, 3, 4)], age=300)
    scheduler = scheduled(project)
    scheduler.run_if_leader(SYNC)
    assert keys(project) == ["C0000001", "C0000002", "C0000003", "C0000004"]
    [run] = runs(project)
    assert run.status == "done"
    staging = Path(project.settings.data_dir) / "batch" / "crm.customer_full" / "staging"
    assert Path(run.source).parent == staging.resolve()
    assert Path(run.source).name.endswith("_CRM_CUST_FULL_20261206_001.dat")
    scheduler.run_if_leader(SYNC)
    assert keys(project) == []
    assert len(runs(project)) == 1  # the same file is not resynced twice
    newest = [crm_record(1), crm_record(2, name="改名了", version="2026-12-07T08:00:00+08:00"),
              crm_record(3), crm_record(4)]  # fmt: skip
    upload(folder, "CRM_CUST_FULL_20261207_001.dat", newest, age=10, done=False)
    scheduler.run_if_leader(SYNC)
    assert keys(project) == []  # no done file yet: still being written
    (folder / "CRM_CUST_FULL_20261207_001.dat.ok").write_bytes(b"")
    os.utime(folder / "CRM_CUST_FULL_20261207_001.dat.ok", (1_800_000_000, 1_800_000_000))
    scheduler.run_if_leader(SYNC)
    assert keys(project) == ["C0000002"]
    scheduler.run_if_leader(SYNC)
    assert keys(project) == []
    assert [r.status for r in runs(project)] == ["done", "done"]
    assert sorted(p.name for p in folder.iterdir()) == [
        "CRM_CUST_FULL_20261205_001.dat", "CRM_CUST_FULL_20261205_001.dat.ok",
        "CRM_CUST_FULL_20261206_001.dat", "CRM_CUST_FULL_20261206_001.dat.ok",
        "CRM_CUST_FULL_20261207_001.dat", "CRM_CUST_FULL_20261207_001.dat.ok",
    ]  # fmt: skip  # the CRM's files are left where they are


def test_a_server_whose_host_key_is_not_in_known_hosts_gets_nothing_fetched(
    sshd: SSHServer,
    tmp_path: Path,
) -> None:
    """known_hosts holds another key for the server: the run fails (logged), nothing staged or sent."""
    other = tmp_path / "other_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)], check=True)
    wrong = tmp_path / "known_hosts"
    wrong.write_text(f"[127.0.0.1]:{sshd.port} {(tmp_path / 'other_key.pub').read_text().split()[0]} "
                     f"{(tmp_path / 'other_key.pub').read_text().split()[1]}\n")  # fmt: skip
    folder = sshd.root / f"crm_full_{tmp_path.name}"
    project = sftp_project(tmp_path, sshd, folder, known_hosts=wrong)
    upload(folder, "CRM_CUST_FULL_20261206_001.dat", [crm_record(1)], age=300)
    scheduled(project).run_if_leader(SYNC)
    assert keys(project) == []
    assert runs(project) == []
    staging = Path(project.settings.data_dir) / "batch" / "crm.customer_full" / "staging"
    assert not staging.exists() or not any(staging.iterdir())
