"""The per-minute figures on PostgreSQL (partitioned journal): the differential checks of
tests/unit/test_journal_rollup.py (figures against the event scan after a mixed workload, a broken write
path caught, the migration's backfill, two writers at once, prune) against a real server; and esb
health's day of dead letters from the figures against the event count."""

from __future__ import annotations

from pathlib import Path

import pytest

from esb.journal import Journal
from tests.integration.pg_server import PostgresJournals
from tests.unit import test_journal_rollup as on_sqlite
from tests.unit import test_ops_health_dead_lettered as health_on_sqlite

pytestmark = pytest.mark.integration


@pytest.fixture
def journal(pg_journals: PostgresJournals) -> Journal:
    """A journal in a fresh database on the throwaway PostgreSQL server."""
    return pg_journals.journal("rollup")


def test_the_figures_equal_the_event_scan_on_postgresql(
    journal: Journal, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every write path's figures equal the scan: counts, and percentiles within a bucket."""
    with Journal(journal.url) as other:
        on_sqlite.check_mixed_workload(journal, other, monkeypatch)


def test_a_broken_write_path_is_caught_on_postgresql(
    journal: Journal, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The batched outcomes' figures dropped on purpose: the differential check fails."""
    on_sqlite.check_a_broken_write_path_is_caught(journal, monkeypatch, "_outcome_figures")


def test_the_backfill_equals_the_write_paths_on_postgresql(
    journal: Journal, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Migration 0015 down and up: the server's backfill writes exactly the write paths' rows."""
    on_sqlite.check_backfill(journal, monkeypatch)


def test_two_journals_writing_at_once_lose_no_increment_on_postgresql(journal: Journal) -> None:
    """Two journals upserting the same minutes from two threads: no increment lost, no deadlock."""
    with Journal(journal.url) as other:
        on_sqlite.check_concurrent_writers(journal, other)


def test_a_prune_keeps_the_figures_on_postgresql(
    journal: Journal, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Pruned messages (partitions or rows) leave their minutes' figures; past every retention they go."""
    on_sqlite.check_prune_keeps_the_figures(journal, tmp_path, monkeypatch)


def test_the_dead_lettered_count_from_the_figures_is_the_events_on_postgresql(
    journal: Journal, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Journal.dead_lettered_since (route_minutes plus the first partial minute's events) equals the
    event count of counts(since=...) at every boundary, on the partitioned journal."""
    health_on_sqlite.fill(journal, monkeypatch)
    health_on_sqlite.check_against_the_event_count(journal, cold=False)
