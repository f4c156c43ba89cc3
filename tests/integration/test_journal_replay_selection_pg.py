"""Replay's selection by state over a window on PostgreSQL: migrated to head (0009's dead-letter index),
both ways of selecting give what the latest state of every message of the window gives."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest

from esb.journal import Journal, queries
from esb.message import utcnow
from tests.integration.pg_server import PostgresServer, postgres_server  # noqa: F401  # a fixture
from tests.unit.test_journal_replay_selection import ROUTES, fill, slow_path

pytestmark = pytest.mark.integration


@pytest.fixture
def journal(postgres_server: PostgresServer) -> Iterator[Journal]:  # noqa: F811  # the fixture above
    """A journal in a fresh database on the throwaway PostgreSQL server."""
    url = postgres_server.create_database("replay_state")
    with Journal(url) as opened:
        yield opened
    postgres_server.drop_database(url)


@pytest.mark.parametrize("from_dead_letters", [True, False, None], ids=["dead-letters", "window", "chosen"])
def test_both_ways_equal_the_latest_state_of_every_message_on_postgresql(
    journal: Journal, monkeypatch: pytest.MonkeyPatch, from_dead_letters: bool | None
) -> None:
    """Old and recent windows, with and without a route: the same messages in the same order."""
    start = utcnow() - timedelta(days=12)
    fill(journal, monkeypatch, start, 300)
    if from_dead_letters is not None:
        monkeypatch.setattr(queries, "_few_dead_letters", lambda conn, flt: from_dead_letters)
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
