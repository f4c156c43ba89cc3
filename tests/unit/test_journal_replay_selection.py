"""Replay's selection by state over a time window: both ways of selecting dead letters (from the dead
letters since the window's start, or from the window's messages newest first) give exactly what the
latest state of every message of the window gives (the slow path); the one with fewer index entries to
read is chosen; the dead letters are read from the dead-letter index alone."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

import esb.journal.journal as journal_module
from esb.journal import Journal, queries
from esb.journal.queries import Filter, _dead_lettered_since, _few_dead_letters
from esb.message import Message, utcnow

ROUTES = ("crm-order-to-iom", "fault112-to-hub")
#: What happens to a message after it is received: the events written, each with its delay in hours.
FATES: dict[str, list[tuple[str, float]]] = {
    "delivered": [("delivered", 0.01)],
    "dead at once": [("failed", 0.01), ("dead_lettered", 0.02)],
    "dead days later": [("redelivered", 50.0), ("dead_lettered", 50.1)],
    "dead, replayed, delivered": [("dead_lettered", 0.02), ("replayed", 30.0), ("delivered", 30.1)],
    "dead, replayed, dead again": [("dead_lettered", 0.02), ("replayed", 80.0), ("dead_lettered", 80.1)],
    "still failing": [("failed", 0.5)],
}


@pytest.fixture
def journal(tmp_path: Path) -> Iterator[Journal]:
    """An empty journal in a SQLite file."""
    with Journal(f"sqlite:///{tmp_path / 'journal.db'}") as opened:
        yield opened


def fill(
    journal: Journal, monkeypatch: pytest.MonkeyPatch, start: datetime, count: int, dead_share: float = 0.0
) -> None:
    """Journal ``count`` messages over ten days from ``start`` on two routes, each with a random fate
    (``dead_share`` > 0: delivered, or dead at once for that share, as a busy journal's messages are)."""
    rng = random.Random(18)
    writes: list[tuple[datetime, str, Message, str]] = []
    for n in range(count):
        route, received = rng.choice(ROUTES), start + timedelta(hours=rng.uniform(0, 240))
        message = Message(body=b"{}", id=f"m{n:04d}")
        writes.append((received, route, message, "received"))
        fate = rng.choice(list(FATES))
        if dead_share:
            fate = "dead at once" if rng.random() < dead_share else "delivered"
        for state, hours in FATES[fate]:
            writes.append((received + timedelta(hours=hours), route, message, state))
    for when, route, message, state in sorted(writes, key=lambda w: w[0]):
        monkeypatch.setattr(journal_module, "utcnow", lambda when=when: when)
        if state == "received":
            journal.received(route, message)
        else:
            journal.event(route, message, state, endpoint="dlq.orders" if state == "dead_lettered" else None)
    monkeypatch.undo()


def slow_path(journal: Journal, route: str | None, since: datetime, until: datetime) -> list[str]:
    """The messages of the window whose latest state is dead_lettered, read message by message."""
    every = journal.find(route=route, since=since, until=until, limit=10_000)
    return [f"{r.id}@{r.route}" for r in every if r.state == "dead_lettered"]


@pytest.mark.parametrize(
    "from_dead_letters", [pytest.param(True, id="from-dead-letters"), pytest.param(False, id="from-window")]
)
def test_the_dead_letter_window_selection_equals_the_latest_state_of_every_message(
    journal: Journal, monkeypatch: pytest.MonkeyPatch, from_dead_letters: bool
) -> None:
    """Over old and recent windows, with and without a route, either way: the same messages, in the same
    order, including those dead-lettered days after the window and those replayed since."""
    start = utcnow() - timedelta(days=12)
    fill(journal, monkeypatch, start, 600)
    monkeypatch.setattr(queries, "_few_dead_letters", lambda conn, flt: from_dead_letters)
    checked = 0
    for day in (0, 2, 5, 9):
        for hours in (1, 24, 72):
            since = start + timedelta(days=day)
            until = since + timedelta(hours=hours)
            for route in (None, *ROUTES):
                fast = journal.find(
                    route=route, since=since, until=until, state="dead_lettered", limit=10_000
                )
                expected = slow_path(journal, route, since, until)
                assert [f"{r.id}@{r.route}" for r in fast] == expected, (day, hours, route)
                assert all(r.state == "dead_lettered" for r in fast)
                checked += len(expected)
    assert checked > 100, "the windows hold dead letters of every kind"


def test_the_side_with_fewer_entries_is_chosen(journal: Journal, monkeypatch: pytest.MonkeyPatch) -> None:
    """An old short window starts from its messages (every later dead letter would be read otherwise); a
    recent long one from the dead letters since its start."""
    start = utcnow() - timedelta(days=12)
    fill(journal, monkeypatch, start, 600, dead_share=0.05)
    engine = sa.create_engine(journal.url)
    try:
        with engine.connect() as conn:
            old_hour = Filter(since=start + timedelta(hours=1), until=start + timedelta(hours=7))
            recent_days = Filter(since=start + timedelta(days=8), until=start + timedelta(days=12))
            assert not _few_dead_letters(conn, old_hour)
            assert _few_dead_letters(conn, recent_days)
            monkeypatch.setattr(queries, "PROBE", 3)
            assert not _few_dead_letters(conn, recent_days), "past PROBE dead letters: from the window"
    finally:
        engine.dispose()


def plan(engine: sa.Engine, sql: str, params: Any = ()) -> str:
    """SQLite's query plan of ``sql``, its steps joined."""
    with engine.connect() as conn:
        return " ".join(row[3] for row in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}", params))


def test_dead_letters_are_read_from_the_dead_letter_index_alone(journal: Journal) -> None:
    """The replay selection's dead letters since a time, and a page of the dead-letter list (newest first,
    after a cursor), read ``ix_events_dead_lettered`` as a covering index, in its order: no event row,
    no scan of every event by time."""
    flt = Filter(route=ROUTES[0], since=utcnow(), state="dead_lettered")
    engine = sa.create_engine(journal.url)
    statements: list[tuple[str, Any]] = []
    sa.event.listen(journal._read(), "before_cursor_execute", lambda *a: statements.append((a[2], a[3])))
    try:
        with engine.connect() as conn:
            selection = str(
                _dead_lettered_since(flt).right.element.compile(conn, compile_kwargs={"literal_binds": True})
            )
        journal.dead_letters(route=ROUTES[0], before=(utcnow(), 10), limit=5)
        page = plan(engine, *statements[0])
        assert "COVERING INDEX ix_events_dead_lettered" in plan(engine, selection)
        assert "SEARCH events USING COVERING INDEX ix_events_dead_lettered" in page, page
        assert "TEMP B-TREE" not in page, page
    finally:
        engine.dispose()
