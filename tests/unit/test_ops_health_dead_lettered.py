"""esb health's "dead-lettered in 24 h" from the per-minute figures (``route_minutes``) is the event count
it replaces: ``Journal.dead_lettered_since`` and its sqlite3 twin equal ``Journal.counts(since=...)``'s
``dead_lettered`` figures for windows starting on, between and around the events, after a workload through
every write path; the partial minute at the window's start is read from the events by an index."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from esb.journal import Journal
from esb.journal.engine import create_journal_engine
from esb.journal.minutes import whole_minutes_from
from esb.journal.schema import events
from esb.journal.sqliteread import sqlite_utc
from esb.journal.sqltext import SQLITE
from esb.ops import health
from esb.ops.healthread import ColdJournal, cold_rows, dead_lettered_since_from
from tests.unit.test_journal_rollup import workload

#: The workload's start: an hour ago, so that health's last 24 h hold it.
START = datetime.now(UTC).replace(microsecond=890) - timedelta(hours=1)


def _dead_lettered(journal: Journal, since: datetime) -> dict[str, int]:
    """The event scan's answer: ``counts(since=since)``'s dead_lettered figure per route (routes with one)."""
    counts = journal.counts(since=since)
    return {route: states["dead_lettered"] for route, states in counts.items() if states.get("dead_lettered")}


def _dead_lettered_at(url: str) -> list[datetime]:
    """The times of every dead_lettered event (aware), read through SQLAlchemy (any database)."""
    engine = create_journal_engine(url, pool_size=1)
    try:
        with engine.connect() as conn:
            stmt = sa.select(events.c.at).where(events.c.state == "dead_lettered").order_by(events.c.at)
            return list(conn.execute(stmt).scalars())
    finally:
        engine.dispose()


def check_against_the_event_count(journal: Journal, *, cold: bool) -> None:
    """dead_lettered_since(since) (and with ``cold`` its sqlite3 twin) is the event count, for since on,
    just after and just before each dead_lettered event and its minute's start, before and after all."""
    tiny = timedelta(microseconds=1)
    times = _dead_lettered_at(journal.url)
    assert len(times) >= 5
    windows = [START - timedelta(days=1), times[-1] + timedelta(minutes=5)]
    for at in times:
        minute = at.replace(second=0, microsecond=0)
        windows += [at, at + tiny, at - tiny, minute, minute + tiny, minute - tiny]
    assert len(_dead_lettered(journal, windows[0])) == 2  # both routes dead-lettered
    for since in windows:
        expected = _dead_lettered(journal, since)
        assert journal.dead_lettered_since(since) == expected, since
        if cold:
            assert dead_lettered_since_from(cold_rows(journal.url), since) == expected, since


def fill(journal: Journal, monkeypatch: pytest.MonkeyPatch) -> None:
    """~25 minutes of mixed traffic from START through every write path (dead letters on both routes)."""
    with Journal(journal.url) as other:
        workload(journal, other, monkeypatch, START)


@pytest.fixture
def url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A SQLite journal after ~25 minutes of mixed traffic (dead letters on both routes, some purged)."""
    url = f"sqlite:///{tmp_path / 'journal.db'}"
    with Journal(url) as journal:
        fill(journal, monkeypatch)
    return url


def test_the_figures_count_what_the_events_count(url: str) -> None:
    """dead_lettered_since through SQLAlchemy and through sqlite3 equals the event count at every boundary."""
    with Journal(url) as journal:
        check_against_the_event_count(journal, cold=True)


def test_the_health_line_counts_a_days_dead_letters(url: str) -> None:
    """check_dead_letters reads the figures through ColdJournal and shows the day's count of each route."""

    class Project:
        """The two routes of the workload, each with an empty dead-letter endpoint."""

    cold = ColdJournal.open(url)
    assert cold is not None
    with pytest.MonkeyPatch.context() as patch, Journal(url) as journal:
        routes = [type("Route", (), {"id": name})() for name in ("crm-orders", "fault-tickets")]
        listed = [(r, f"dlq.{r.id}") for r in routes]
        patch.setattr(health.dlq, "routes_with_dead_letters", lambda project: listed)
        patch.setattr(health.dlq, "depth", lambda project, endpoint: 0)
        checks = health.check_dead_letters(Project(), cold)  # type: ignore[arg-type]
        expected = _dead_lettered(journal, START - timedelta(hours=1))
    cold.close()
    counted = [c.data["last_24h"] for c in checks if c.data]
    assert counted == [expected["crm-orders"], expected["fault-tickets"]]
    assert all(c.data and c.data["last_24h"] for c in checks)


def test_the_partial_minute_is_read_through_the_partial_index(url: str) -> None:
    """SQLite's plan: route_minutes by its primary key (minute first), the events by their partial index."""
    sql, names, _columns, constants = SQLITE["dead_lettered_since"]
    since = START + timedelta(seconds=30)
    params = dict(constants, since=sqlite_utc(since), whole_from=sqlite_utc(whole_minutes_from(since)))
    with sqlite3.connect(url.removeprefix("sqlite:///")) as conn:
        rows = conn.execute(f"EXPLAIN QUERY PLAN {sql}", [params[n] for n in names]).fetchall()
    plan = " | ".join(row[3] for row in rows)
    assert "SEARCH route_minutes USING PRIMARY KEY (minute>?)" in plan
    assert "ix_events_dead_lettered (at>? AND at<?)" in plan
    assert "SCAN events" not in plan


@pytest.mark.parametrize(
    ("since", "expected"),
    [
        (datetime(2026, 1, 2, 3, 4, 0, tzinfo=UTC), datetime(2026, 1, 2, 3, 4, 0, tzinfo=UTC)),
        (datetime(2026, 1, 2, 3, 4, 0, 1, tzinfo=UTC), datetime(2026, 1, 2, 3, 5, 0, tzinfo=UTC)),
        (datetime(2026, 1, 2, 3, 59, 59, 999999, tzinfo=UTC), datetime(2026, 1, 2, 4, 0, 0, tzinfo=UTC)),
    ],
)
def test_whole_minutes_start_on_or_after_since(since: datetime, expected: datetime) -> None:
    """whole_minutes_from is since on a minute's start, else the next minute's start."""
    assert whole_minutes_from(since) == expected
