"""Replay's selection by state over a window and the dlq count on PostgreSQL: migrated to head
(``dead_letters`` and its triggers, 0011 and 0014), selecting from it gives what the latest state of every
message of the window gives; 0011 and 0014 down and up again; pruning a message deletes its row."""

from __future__ import annotations

from datetime import timedelta

import pytest

from esb.journal import Journal
from esb.message import utcnow
from tests.integration.pg_server import PostgresJournals
from tests.unit import test_journal_replay_selection as on_sqlite  # its tests, called with this journal
from tests.unit.test_journal_replay_selection import ROUTES, fill, slow_path

pytestmark = pytest.mark.integration


@pytest.fixture
def journal(pg_journals: PostgresJournals) -> Journal:
    """A journal in a fresh database on the throwaway PostgreSQL server."""
    return pg_journals.journal("replay_state")


def test_the_selection_equals_the_latest_state_of_every_message_on_postgresql(
    journal: Journal, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Old and recent windows, with and without a route: the same messages in the same order."""
    start = utcnow() - timedelta(days=12)
    fill(journal, monkeypatch, start, 300)
    checked = 0
    for day, hours in ((0, 2), (1, 24), (8, 96)):
        since = start + timedelta(days=day)
        until = since + timedelta(hours=hours)
        for route in (None, ROUTES[0]):
            fast = journal.find(route=route, since=since, until=until, state="dead_lettered", limit=10_000)
            expected = slow_path(journal, route, since, until)
            assert [f"{r.id}@{r.route}" for r in fast] == expected
            checked += len(expected)
    assert checked > 20, "the windows hold dead letters"


def test_migration_0011_down_and_up_on_postgresql(journal: Journal, monkeypatch: pytest.MonkeyPatch) -> None:
    """The function and trigger are dropped and made again; the refilled table equals the trigger's rows
    and every window still equals the slow path."""
    on_sqlite.test_migration_0011_fills_dead_letters_of_an_existing_journal(journal, monkeypatch)


def test_the_dlq_count_equals_the_latest_state_on_postgresql(
    journal: Journal, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each route's count is its message rows whose latest state is dead_lettered."""
    on_sqlite.test_the_dlq_count_equals_the_latest_state_of_every_message(journal, monkeypatch)


def test_the_triggers_keep_the_unhandled_dead_letters_on_postgresql(
    journal: Journal, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The two triggers on the partitioned events keep exactly the rows whose latest state is dead."""
    on_sqlite.test_the_triggers_keep_one_row_per_message_whose_latest_state_is_dead_lettered(
        journal, monkeypatch
    )


def test_migration_0014_down_and_up_on_postgresql(journal: Journal, monkeypatch: pytest.MonkeyPatch) -> None:
    """Down: every dead letter back, the removing trigger gone; up: the unhandled ones, the same answers."""
    on_sqlite.test_migration_0014_keeps_the_unhandled_and_its_downgrade_puts_back_every_dead_letter(
        journal, monkeypatch
    )


def test_pruning_deletes_the_dead_letter_row_on_postgresql(journal: Journal) -> None:
    """The foreign key cascades on PostgreSQL too."""
    on_sqlite.test_pruning_a_message_deletes_its_dead_letter_row(journal)


def test_the_selection_without_keys_gives_the_same_records_on_postgresql(journal: Journal) -> None:
    """The same records as with their keys, keys empty; a forwarded id still shows its other row's keys."""
    on_sqlite.test_replay_selection_reads_the_same_records_without_their_business_keys(journal)


def test_the_selection_without_the_state_gives_the_same_records_on_postgresql(journal: Journal) -> None:
    """The same records as with their latest state, state None and no event read, on a partitioned journal."""
    on_sqlite.test_replay_selection_without_the_state_reads_no_event(journal)
