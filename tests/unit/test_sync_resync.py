"""Full resync, reconciliation and repair (esb/resync/resync.py, reconcile.py, esb sync) on a real store.

The target is NCR's queue on the embedded broker; ``sent()`` takes what it was sent. The journal URL
comes from the ``journal_url`` fixture (PostgreSQL in tests/integration/test_sync_resync_postgres.py).
"""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import pytest
from click.testing import CliRunner

from esb.cli.main import cli
from esb.journal import Journal
from esb.project import Project
from esb.resync.extract import extract_blocks, extract_records
from esb.resync.reconcile import Reconciler
from esb.resync.resync import Resync
from esb.sync.runs import Run, SyncRuns
from esb.sync.store import SyncStore
from tests.sync_project import (
    SYNC,
    crm_record,
    make_sync_project,
    sent,
    write_crm_extract,
    write_ncr_extract,
)

V2 = "2026-12-02T08:00:00+08:00"


@pytest.fixture
def journal_url(tmp_path: Path) -> str:
    """A SQLite journal in the test's folder."""
    return f"sqlite:///{tmp_path / 'journal.db'}"


@pytest.fixture
def project(tmp_path: Path, journal_url: str) -> Project:
    """The sync project (tests/sync_project.py), chunks of 10 records."""
    return make_sync_project(tmp_path / "p", journal_url, chunk=10)


def resync(project: Project, records: list[dict[str, str]], name: str = "full.dat", **kwargs: Any) -> Run:
    """Write ``records`` as the CRM's full extract and resync from it in this process."""
    path = project.root / "exchange" / name
    write_crm_extract(path, records)
    spec = project.settings.sync.resync[SYNC]
    with Journal(project.settings.journal.url) as journal, SyncStore(project.settings.journal.url) as store:
        engine = Resync(project, journal, store, SYNC, spec, progress=kwargs.pop("progress", None))
        try:
            return engine.run(*extract_blocks(project, spec.extract, path), str(path), **kwargs)
        finally:
            engine.close()


def keys_sent(project: Project) -> list[tuple[str, str]]:
    """(key, action) of every message the target got since last asked."""
    return [(m.headers["sync-key"], m.headers["sync-action"]) for m in sent(project)]


def base(n: int = 30) -> list[dict[str, str]]:
    """Customers 1..n, all listed."""
    return [crm_record(i) for i in range(1, n + 1)]


def test_a_resync_sends_only_the_differences_and_journals_its_counts(project: Project) -> None:
    """New keys, changed ones, unlisted and missing ones: only what differs goes, counted per kind."""
    first = resync(project, base())
    assert (first.counts["read"], first.counts["sent"], first.counts["unchanged"]) == (30, 30, 0)
    assert len(keys_sent(project)) == 30
    records = base()
    records[4] = crm_record(5, name="改名了", version=V2)  # changed
    records[5] = crm_record(6, version=V2)  # a newer version, same content: not sent
    records[6] = crm_record(7, unlisted=True, version=V2)  # now unlisted: the target must drop it
    del records[9]  # C0000010 left the CRM
    records.append(crm_record(31, unlisted=True))  # new and unlisted: never sent
    records.append(crm_record(32))  # new
    second = resync(project, records, "full2.dat")
    assert sorted(keys_sent(project)) == [
        ("C0000005", "upsert"),
        ("C0000007", "delete"),
        ("C0000010", "delete"),
        ("C0000032", "upsert"),
    ]
    counts = {k: second.counts[k] for k in ("read", "unchanged", "sent", "deleted", "excluded", "errors")}
    assert counts == {"read": 31, "unchanged": 27, "sent": 2, "deleted": 2, "excluded": 1, "errors": 0}
    with SyncStore(project.settings.journal.url) as store:
        stored = SyncRuns(store).runs(SYNC)
    assert [r.status for r in stored] == ["done", "done"]


def test_an_unlisted_subscriber_is_never_sent_by_any_resync(project: Project) -> None:
    """Unlisted from the start, changed while unlisted, resynced again: the target never gets it."""
    resync(project, [*base(5), crm_record(6, unlisted=True)])
    resync(project, [*base(5), crm_record(6, name="新名字", unlisted=True, version=V2)], "full2.dat")
    resync(project, [*base(5), crm_record(6, name="新名字", unlisted=True, version=V2)], "full3.dat")
    assert "C0000006" not in {key for key, _ in keys_sent(project)}
    with SyncStore(project.settings.journal.url) as store:
        state = store.get(SYNC, "C0000006", bodies=True)
    assert state is not None
    assert state.deleted
    assert state.body is None
    assert state.message_id is None


def test_unreadable_and_unmappable_records_are_counted_with_their_number(project: Project) -> None:
    """A record without a version is an error naming its record number; the others still go."""
    records = base(3)
    records[1] = {**records[1], "updated": "2026-12-01 08:00"}  # no zone: not a version
    run = resync(project, records)
    assert (run.counts["sent"], run.counts["errors"]) == (2, 1)
    assert run.counts["error_samples"][0].startswith("record 2: ")


class ProcessDiedError(Exception):
    """Stands for the process dying after a checkpoint."""


def test_a_run_that_died_resumes_after_its_checkpoint_and_resends_nothing(project: Project) -> None:
    """Died after 2 of 4 chunks: run again, the same run finishes; each difference went exactly once."""
    resync(project, base(40))
    keys_sent(project)
    changed = [crm_record(i, name=f"新{i}", version=V2) for i in range(1, 41)]

    def die(run: Run) -> None:
        if run.checkpoint >= 20:
            raise ProcessDiedError

    with pytest.raises(ProcessDiedError):
        resync(project, changed, "full2.dat", progress=die)
    resumed = resync(project, changed, "full2.dat")
    assert resumed.checkpoint == 40
    assert resumed.status == "done"
    assert resumed.counts["sent"] == 40
    counted = Counter(key for key, _ in keys_sent(project))
    assert sorted(counted) == [f"C{i:07d}" for i in range(1, 41)]
    assert set(counted.values()) == {1}
    with SyncStore(project.settings.journal.url) as store:
        runs = SyncRuns(store).runs(SYNC)
    assert [r.id for r in runs].count(resumed.id) == 1
    assert len(runs) == 2


def reconcile(project: Project, records: list[dict[str, str]]) -> Any:
    """Write NCR's extract of ``records`` and reconcile against it."""
    path = project.root / "exchange" / "ncr.dat"
    write_ncr_extract(path, records)
    spec = project.settings.sync.reconcile[SYNC]
    with SyncStore(project.settings.journal.url) as store:
        return Reconciler(project, store, SYNC, spec).run(
            extract_records(project, spec.extract, path), str(path)
        )


def test_reconciliation_counts_missing_extra_and_different_keys(project: Project) -> None:
    """The target lost C2, holds C99 and an unlisted C6 it should not, and an old name for C3."""
    resync(project, [*base(5), crm_record(6, unlisted=True)])
    target = [
        crm_record(1),
        crm_record(3, name="旧名"),
        crm_record(4),
        crm_record(5),
        crm_record(6, unlisted=True),
        crm_record(99),
    ]
    found = reconcile(project, target)
    assert found.keys == {
        "missing": ["C0000002"],
        "extra": ["C0000006", "C0000099"],
        "different": ["C0000003"],
    }
    assert {k: found.counts[k] for k in ("target_records", "hub_keys", "same")} == {
        "target_records": 6,
        "hub_keys": 5,
        "same": 3,
    }
    with SyncStore(project.settings.journal.url) as store:
        report = SyncRuns(store).report(found.report_id)
    assert report is not None
    assert report.keys == found.keys
    assert report.counts == found.counts


def test_after_the_target_lost_records_a_repair_from_the_report_resends_only_those(project: Project) -> None:
    """A resync cannot see what the target lost; reconcile finds it, the repair sends exactly that."""
    resync(project, base(10))
    keys_sent(project)
    again = resync(project, base(10), "full2.dat")
    assert again.counts["unchanged"] == 10
    assert keys_sent(project) == []
    found = reconcile(project, [crm_record(i) for i in range(1, 11) if i not in (4, 7)] + [crm_record(50)])
    result = CliRunner().invoke(
        cli,
        ["--project", str(project.root), "sync", "resync", SYNC, "--from-report", found.report_id, "--json"],
    )
    assert result.exit_code == 0, result.output
    messages = sent(project)
    assert sorted((m.headers["sync-key"], m.headers["sync-action"]) for m in messages) == [
        ("C0000004", "upsert"),
        ("C0000007", "upsert"),
        ("C0000050", "delete"),
    ]
    body = orjson.loads(next(m.body for m in messages if m.headers["sync-key"] == "C0000004"))
    assert body["id"] == "C0000004"
    assert body["name"] == "客户4"
    assert orjson.loads(result.output)["counts"]["sent"] == 2


def test_a_repair_of_listed_keys_sends_those_keys_only(project: Project) -> None:
    """--keys C2,C5: the stored bodies of those two, nothing else."""
    resync(project, base(10))
    keys_sent(project)
    result = CliRunner().invoke(
        cli, ["--project", str(project.root), "sync", "resync", SYNC, "--keys", "C0000002,C0000005"]
    )
    assert result.exit_code == 0, result.output
    assert sorted(keys_sent(project)) == [("C0000002", "upsert"), ("C0000005", "upsert")]


def test_reconcile_exit_codes_say_differences_apart_from_errors(project: Project) -> None:
    """Exit 0 when the target agrees, 3 when keys differ (the report id is printed)."""
    resync(project, base(3))
    path = project.root / "exchange" / "ncr.dat"
    args = ["--project", str(project.root), "sync", "reconcile", SYNC, "--extract", str(path)]
    write_ncr_extract(path, base(3))
    assert CliRunner().invoke(cli, args).exit_code == 0
    write_ncr_extract(path, base(2))
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 3
    assert "missing: C0000003" in result.output
    assert "--from-report report-" in result.output


def test_status_lists_each_sync_with_its_rows_and_last_run(project: Project) -> None:
    """esb sync status --json: live and deleted rows, the last run's counts."""
    resync(project, [*base(3), crm_record(4, unlisted=True)])
    result = CliRunner().invoke(cli, ["--project", str(project.root), "sync", "status", "--json"])
    assert result.exit_code == 0, result.output
    [row] = orjson.loads(result.output)
    assert (row["sync"], row["live"], row["deleted"]) == (SYNC, 3, 1)
    assert row["runs"][0]["counts"]["sent"] == 3
    assert row["runs"][0]["status"] == "done"


def test_a_scheduled_resync_runs_only_where_this_process_leads(project: Project) -> None:
    """Not leading: nothing sent; leading: the newest extract in the endpoint's folder is resynced."""
    from esb.resync.schedule import ResyncScheduler

    older = project.root / "exchange" / "CRM_CUST_FULL_20261205_001.dat"
    write_crm_extract(older, base(2))
    os.utime(older, (1_700_000_000, 1_700_000_000))
    write_crm_extract(project.root / "exchange" / "CRM_CUST_FULL_20261206_001.dat", base(4))
    scheduler = ResyncScheduler(project)

    class Election:
        is_leader = False

    scheduler.elections[SYNC] = Election()  # type: ignore[assignment]
    scheduler.run_if_leader(SYNC)
    assert keys_sent(project) == []
    Election.is_leader = True
    scheduler.run_if_leader(SYNC)
    assert sorted(key for key, _ in keys_sent(project)) == [f"C{i:07d}" for i in range(1, 5)]


def test_a_resync_schedule_that_is_not_cron_is_refused_when_settings_load() -> None:
    """schedule: 'every day' names the problem at load time, not at 03:00."""
    from pydantic import ValidationError

    from esb.config.settings import ResyncSettings

    with pytest.raises(ValidationError, match="not a 5-field cron"):
        ResyncSettings(extract="e", transform="t", schedule="every day")


def test_a_record_seen_before_is_judged_again_once_live_traffic_moved_its_state(project: Project) -> None:
    """Same bytes as last resync: unchanged by fingerprint, unless a live change moved the key since."""
    from esb.message import Message
    from esb.resync.path import SyncPath

    resync(project, base(3))
    keys_sent(project)
    with Journal(project.settings.journal.url) as journal:
        path = SyncPath(project, journal, SYNC)
        live = {
            "id": "C0000002",
            "name": "实时改名",
            "status": "active",
            "lastUpdate": "2026-12-03T08:00:00+08:00",
        }
        assert path.syncer(Message(body=live, id="live-1"))  # the live route sent a newer change of C2
        path.close()
    again = resync(project, base(3), "full2.dat")
    assert (again.counts["unchanged"], again.counts["stale"], again.counts["sent"]) == (2, 1, 0)
    assert keys_sent(project) == []


def test_claim_many_writes_only_the_keys_still_at_the_revision_read(journal_url: str) -> None:
    """One transaction: a new key and a key at its read revision are claimed, a moved key is not."""
    from esb.sync.store import SyncWrite

    def write(key: str, content: str, version: int) -> SyncWrite:
        return SyncWrite("s", key, content, version, False, f"m-{key}-{version}", {"v": content})

    with SyncStore(journal_url) as store:
        assert store.claim(write("A", "a1", 1), None)
        assert store.claim(write("B", "b1", 1), None)
        read_b = store.get("s", "B")
        assert read_b is not None
        assert store.claim(write("B", "b2", 2), read_b.revision)  # a live change moved B meanwhile
        claimed = store.claim_many(
            [(write("A", "a3", 3), 1), (write("B", "b3", 3), read_b.revision), (write("C", "c3", 3), None)]
        )
        assert claimed == {"A", "C"}
        b = store.get("s", "B", bodies=True)
        assert b is not None
        assert b.body == {"v": "b2"}


def test_lint_names_a_resync_of_an_unknown_sync_and_an_endpoint_that_cannot_read_extracts(
    project: Project,
) -> None:
    """sync.resync.customer-nrc (a typo) and an extract on a queue endpoint are findings with a hint."""
    import yaml

    from esb.lint import lint_project

    settings_file = project.root / "config" / "settings.yaml"
    settings = yaml.safe_load(settings_file.read_text())
    settings["sync"]["resync"]["customer-nrc"] = settings["sync"]["resync"].pop(SYNC)
    settings["sync"]["reconcile"][SYNC]["extract"] = "ncr.customers"
    settings_file.write_text(yaml.safe_dump(settings, allow_unicode=True))
    findings = "\n".join(lint_project(project.root))
    assert (
        "sync.resync.customer-nrc: no route declares sync 'customer-nrc' (did you mean 'customer-ncr'?)"
        in findings
    )
    assert f"sync.reconcile.{SYNC}.extract: ncr.customers cannot read an extract" in findings


def _changed_extract() -> list[dict[str, str]]:
    """Customers 1..60 with every kind of difference: renamed, newer same content, unlisted, gone, new."""
    records = base(60)
    records[4] = crm_record(5, name="改名了", version=V2)
    records[5] = crm_record(6, version=V2)
    records[6] = crm_record(7, unlisted=True, version=V2)
    del records[9]
    return [*records, crm_record(61, unlisted=True), crm_record(62)]


def test_skipping_by_fingerprint_sends_and_counts_what_judging_every_record_does(tmp_path: Path) -> None:
    """Differential: the in-memory fingerprint index gives the same sends and counts as the full path."""
    results = []
    for name, forget in (("fast", False), ("slow", True)):
        project = make_sync_project(tmp_path / name, f"sqlite:///{tmp_path / name}.db", chunk=10)
        resync(project, base(60))
        keys_sent(project)
        if forget:
            from esb.sync.fingerprints import Fingerprints

            with SyncStore(project.settings.journal.url) as store:
                Fingerprints(store, SYNC, b"").forget()
        run = resync(project, _changed_extract(), "full2.dat")
        counts = {k: v for k, v in run.counts.items() if k != "error_samples"}
        results.append((sorted(keys_sent(project)), counts))
    assert results[0] == results[1]
    assert results[0][1]["unchanged"] == 57


def test_a_resumed_run_deletes_only_the_keys_the_whole_extract_lacks(project: Project) -> None:
    """Died midway through an unchanged extract missing one key: the resumed run deletes just that key."""
    resync(project, base(60))
    keys_sent(project)
    records = [crm_record(i) for i in range(1, 61) if i != 45]

    def die(run: Run) -> None:
        if run.checkpoint >= 20:
            raise ProcessDiedError

    with pytest.raises(ProcessDiedError):
        resync(project, records, "full2.dat", progress=die)
    resumed = resync(project, records, "full2.dat")
    assert resumed.status == "done"
    assert keys_sent(project) == [("C0000045", "delete")]
    assert (resumed.counts["unchanged"], resumed.counts["deleted"], resumed.counts["sent"]) == (59, 1, 0)


def test_when_every_key_was_met_the_delete_pass_does_not_walk_the_store(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every stored key met, unchanged or changed: no walk for missing keys; a missing key still walks."""
    from esb.sync.fingerprints import Fingerprints

    resync(project, base(30))
    keys_sent(project)
    walks: list[str] = []
    states = Fingerprints.states

    def counted(self: Fingerprints, **kwargs: Any) -> Any:
        walks.append(self.name)
        return states(self, **kwargs)

    monkeypatch.setattr(Fingerprints, "states", counted)
    records = base(30)
    records[2] = crm_record(3, name="改名了", version=V2)
    resync(project, records, "full2.dat")
    assert (keys_sent(project), walks) == ([("C0000003", "upsert")], [])
    resync(project, records[1:], "full3.dat")
    assert (keys_sent(project), walks) == ([("C0000001", "delete")], [SYNC])
