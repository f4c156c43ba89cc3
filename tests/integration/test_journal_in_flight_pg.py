"""The ``in_flight`` table on PostgreSQL (partitioned journal): the differential checks of
tests/unit/test_journal_in_flight.py (the table against the events after a mixed workload, a dropped
trigger caught, the migration's fill, replays and dead letters, prune) against a real server, and the
stuck messages read on the journal's one engine."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from esb.journal import Journal
from esb.message import Message
from esb.ops import health
from tests.integration.pg_server import PostgresJournals
from tests.unit import test_journal_in_flight as on_sqlite
from tests.unit.test_ops_health_processes import project_with_process

pytestmark = pytest.mark.integration


@pytest.fixture
def journal(pg_journals: PostgresJournals) -> Journal:
    """A journal in a fresh database on the throwaway PostgreSQL server."""
    return pg_journals.journal("inflight")


def test_in_flight_equals_the_events_on_postgresql(journal: Journal, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every write path keeps in_flight equal to "a body, latest state not settled" from the events."""
    on_sqlite.check_mixed_workload(journal, monkeypatch)


def test_a_missing_trigger_is_caught_on_postgresql(journal: Journal, monkeypatch: pytest.MonkeyPatch) -> None:
    """With the trigger that removes settled messages dropped on purpose, the differential check fails."""
    on_sqlite.drop_trigger(journal, "tr_events_in_flight_settled")
    with pytest.raises(AssertionError):
        on_sqlite.check_mixed_workload(journal, monkeypatch)


def test_the_migration_fill_equals_the_triggers_on_postgresql(
    journal: Journal, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Migration 0016 down and up: its fill from the events is exactly what the triggers kept."""
    on_sqlite.check_fill(journal, monkeypatch)


def test_replays_and_dead_letters_on_postgresql(journal: Journal) -> None:
    """Dead-lettered: out; replayed: in; dead-lettered again: out; replayed and delivered: out."""
    on_sqlite.check_replay_and_dead_letters(journal)


def test_a_prune_leaves_no_orphan_on_postgresql(
    journal: Journal, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The prune leaves the table exact and without orphans (here it prunes nothing: every row is in
    today's partition, whose period has not ended, so the week's drop waits)."""
    on_sqlite.check_prune(journal, tmp_path, monkeypatch, pruned=-1)


def test_stuck_messages_counted_on_the_journals_engine(journal: Journal, tmp_path: Path) -> None:
    """esb health's stuck check through the open journal counts every message in flight beyond the
    1,000 it lists."""
    journal.received_many("busy", [(Message(body=b"{}", id=f"busy-{i}"), 1) for i in range(1100)])
    project = project_with_process(tmp_path)
    project.settings.journal.url = journal.url
    check = health.check_stuck(project, timedelta(0), health.reader(journal))
    assert check.data is not None
    assert check.data["count"] == 1100
    assert len(check.data["stuck"]) == 1000
