"""Replay's selection of a window's dead letters (migration 0018): chosen from ``dead_letters``' index alone
(no message row read), it lists what the selection before it listed (every record read up front by
``find``), and its records are read a page at a time as the replay reaches them."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, cast

import pytest
import sqlalchemy as sa

from esb.journal import Journal, MessageRecord, queries
from esb.message import Message, utcnow
from esb.ops import replay
from esb.ops.replay import Paged, Selection, first_entries, select
from esb.project import Project
from tests.unit.test_journal_replay_selection import ROUTES, fill, plan

#: ``select`` does not read the project for these selections.
NO_PROJECT = cast(Project, None)


@pytest.fixture
def journal(tmp_path: Path) -> Iterator[Journal]:
    """An empty journal in a SQLite file."""
    with Journal(f"sqlite:///{tmp_path / 'journal.db'}") as opened:
        yield opened


def selection_before(journal: Journal, selection: Selection) -> list[MessageRecord]:
    """What ``select`` returned for ``selection`` before 0018: every record read by ``find``, then one per
    id, oldest first."""
    found = journal.find(
        route=selection.route,
        since=selection.since,
        until=selection.until,
        state=selection.state,
        limit=selection.limit,
        with_keys=False,
        with_state=False,
    )
    return first_entries(found)


def windows(start: datetime) -> Iterator[Selection]:
    """Old and recent windows of 1 h to 3 days, with and without a route, capped or not by the limit."""
    for day in (0, 2, 5, 9):
        for hours in (1, 24, 72):
            for route in (None, *ROUTES):
                since = start + timedelta(days=day)
                for limit in (1000, 7):
                    until = since + timedelta(hours=hours)
                    yield Selection(route=route, since=since, until=until, state="dead_lettered", limit=limit)
    yield Selection(route=ROUTES[0], since=start, state="dead_lettered")  # no end
    yield Selection(route=ROUTES[1], state="dead_lettered")  # the route alone


def dead_at_one_instant(journal: Journal, monkeypatch: pytest.MonkeyPatch, when: datetime) -> list[Selection]:
    """Dead-letter a dozen messages received at the same instant ``when`` (ties the order breaks by id);
    return windows ending just after it, whose ``--limit`` cuts within the ties."""
    import esb.journal.journal as journal_module

    monkeypatch.setattr(journal_module, "utcnow", lambda: when)
    for n in (7, 3, 11, 0, 9, 5, 1, 10, 2, 8, 4, 6):
        message = Message(body=b"{}", id=f"tie{n:02d}")
        journal.received(ROUTES[0], message)
        journal.event(ROUTES[0], message, "dead_lettered")
    monkeypatch.undo()
    window = {
        "since": when - timedelta(hours=2),
        "until": when + timedelta(seconds=1),
        "state": "dead_lettered",
    }
    return [Selection(route=route, limit=limit, **window) for route in (ROUTES[0], None) for limit in (5, 9)]


def assert_the_selection_is_what_it_was(journal: Journal, start: datetime, ties: list[Selection]) -> int:
    """Every window of :func:`windows` and ``ties``: ``select`` gives the records, in the order, the
    selection before 0018 gave (a forwarded id once, where it entered first; ties by id); return how many
    records were compared."""
    compared = 0
    for selection in [*windows(start), *ties]:
        chosen = select(journal, NO_PROJECT, selection)
        assert isinstance(chosen, Paged), selection
        expected = selection_before(journal, selection)
        assert len(chosen) == len(expected), selection
        assert list(chosen) == expected, selection
        assert [chosen[i] for i in range(len(chosen))] == expected, selection
        compared += len(expected)
    return compared


def test_the_selection_of_dead_letters_is_the_one_find_gave(
    journal: Journal, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Over old and recent windows, with and without a route or an end, capped by ``--limit``: the same
    records in the same order as the selection before 0018, dead letters of every kind (late, replayed
    and dead again, an id dead on two routes, received at the same instant) included."""
    start = utcnow() - timedelta(days=12)
    fill(journal, monkeypatch, start, 600)
    ties = dead_at_one_instant(journal, monkeypatch, start + timedelta(days=4, minutes=30))
    assert assert_the_selection_is_what_it_was(journal, start, ties) > 500


def test_the_records_are_read_a_page_at_a_time(journal: Journal, monkeypatch: pytest.MonkeyPatch) -> None:
    """The count is known with no message row read; iterating reads one statement on ``messages`` per
    page of :data:`replay.PAGE` records, each record once; a row pruned since the selection is left out."""
    for n in range(25):
        message = Message(body=b"{}", id=f"p{n:03d}")
        journal.received(ROUTES[0], message)
        journal.event(ROUTES[0], message, "dead_lettered")
    monkeypatch.setattr(replay, "PAGE", 10)
    statements: list[str] = []
    sa.event.listen(journal._read(), "before_cursor_execute", lambda *a: statements.append(a[2]))
    since = utcnow() - timedelta(hours=1)
    chosen = select(journal, NO_PROJECT, Selection(route=ROUTES[0], since=since, state="dead_lettered"))
    assert len(chosen) == 25
    assert [sql for sql in statements if "messages" in sql] == [], "the selection reads no message row"
    assert [r.id for r in chosen] == [f"p{n:03d}" for n in range(25)]
    assert len([sql for sql in statements if "FROM messages" in sql]) == 3, "25 records: 3 pages"
    assert {r.state for r in chosen} == {"dead_lettered"}
    with journal._read().begin() as conn:  # a dead letter pruned meanwhile (as the prune deletes it)
        conn.exec_driver_sql(
            "DELETE FROM events WHERE message_seq = (SELECT seq FROM messages WHERE id = 'p012')"
        )
        conn.exec_driver_sql("DELETE FROM messages WHERE id = 'p012'")
    again = Paged(journal, chosen.refs, "dead_lettered") if isinstance(chosen, Paged) else None
    assert again is not None
    assert len(again) == 25
    assert [r.id for r in again] == [f"p{n:03d}" for n in range(25) if n != 12]
    with pytest.raises(LookupError, match="p012"):
        again[12]


def test_the_window_of_dead_letters_is_one_range_of_a_covering_index(journal: Journal) -> None:
    """The statement of the selection reads the window's range of ``ix_dead_letters_received_at`` as a
    covering index, newest first, and no other table: no message row, no event."""
    since = utcnow() - timedelta(days=1)
    flt = queries.Filter(route=ROUTES[0], since=since, until=utcnow(), state="dead_lettered")
    engine = sa.create_engine(journal.url)
    try:
        with engine.connect() as conn:
            compiled = queries.dead_letter_refs_statement(flt, 1000).compile(
                conn, compile_kwargs={"literal_binds": True}
            )
        steps = plan(engine, str(compiled))
    finally:
        engine.dispose()
    assert "SEARCH dead_letters USING COVERING INDEX ix_dead_letters_received_at" in steps, steps
    assert "messages" not in steps, steps
    assert "events" not in steps, steps
    assert "TEMP B-TREE FOR ORDER BY" not in steps, "newest first is the index's order: no full sort"


def test_other_selections_still_read_their_records_with_find(
    journal: Journal, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A selection narrowed by id, correlation or key, or by another state, is a list from ``find``."""
    start = utcnow() - timedelta(days=12)
    fill(journal, monkeypatch, start, 60)
    until = start + timedelta(days=11)
    narrowed: list[dict[str, Any]] = [
        {"message_ids": ("m0003",), "state": "dead_lettered"},
        {"correlation_id": "m0003", "state": "dead_lettered"},
        {"route": ROUTES[0], "since": start, "until": until, "state": "delivered"},
        {"route": ROUTES[0], "since": start, "until": until},
    ]
    for fields in narrowed:
        assert isinstance(select(journal, NO_PROJECT, Selection(**fields)), list), fields
