"""Replay's selection by state over a time window and ``esb dlq``'s count: selecting from ``dead_letters``
(the message rows whose latest state is ``dead_lettered``, migrations 0011 and 0014) gives exactly what
the latest state of every message of the window gives (the slow path, the selection before 0014), also
on a journal upgraded from 0010 or 0013; ``dead_letters`` is kept by the database (triggers) and emptied
by pruning; the window's dead letters are read from their index alone, no event read."""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

import esb.journal.journal as journal_module
from esb.journal import Journal, queries
from esb.journal.coldread import count_dead_lettered
from esb.journal.migrate import alembic_config
from esb.journal.queries import Filter
from esb.journal.schema import route_minutes
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
    "dead, purged": [("dead_lettered", 0.02), ("purged", 20.0)],
}
#: Fates of the same message id on the other route too (a message forwarded with its id: two rows).
TWIN_FATES = ("dead at once", "delivered", "dead, replayed, delivered", "dead, replayed, dead again")


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
        if n % 7 == 0:  # the same id on the other route, with its own fate
            other = ROUTES[1] if route == ROUTES[0] else ROUTES[0]
            writes.append((received + timedelta(minutes=1), other, message, "received"))
            for state, hours in FATES[TWIN_FATES[n % 4]]:
                writes.append((received + timedelta(minutes=1, hours=hours), other, message, state))
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


def assert_every_window_equals_the_slow_path(journal: Journal, start: datetime) -> int:
    """Check old and recent windows of 1 h to 3 days, with and without a route; return the dead letters
    the windows held."""
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
    return checked


def assert_counts_equal_the_slow_path(journal: Journal) -> int:
    """Check ``esb dlq``'s count of each route (the journal's and the cold SQLite one) against the latest
    state of every message of the route, also when capped by ``limit``; return the dead letters."""
    total = 0
    for route in ROUTES:
        every = journal.find(route=route, limit=100_000)
        expected = sum(1 for r in every if r.state == "dead_lettered")
        assert journal.dead_lettered_count(route) == expected, route
        assert journal.dead_lettered_count(route, limit=3) == min(3, expected), route
        cold = count_dead_lettered(journal.url, [route], 100_000)
        assert cold in (None, {route: expected}), route  # None: not SQLite (the journal's path above)
        total += expected
    return total


def test_the_dead_letter_window_selection_equals_the_latest_state_of_every_message(
    journal: Journal, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Over old and recent windows, with and without a route: the same messages, in the same order as
    the slow path, including those dead-lettered days after the window, replayed and delivered since,
    dead-lettered twice, purged, and an id dead on one route and not the other."""
    start = utcnow() - timedelta(days=12)
    fill(journal, monkeypatch, start, 600)
    assert assert_every_window_equals_the_slow_path(journal, start) > 100, "dead letters of every kind"


def test_the_dlq_count_equals_the_latest_state_of_every_message(
    journal: Journal, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each route's dead-letter count is the number of its message rows whose latest state is
    dead_lettered (a replayed and delivered one not counted, a twice dead one once)."""
    fill(journal, monkeypatch, utcnow() - timedelta(days=12), 600)
    assert assert_counts_equal_the_slow_path(journal) > 100


def test_the_slow_path_is_what_the_selection_was_before(
    journal: Journal, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without ``dead_letters`` (the reference path, latest state read from events) the selection is the
    same: the differential tests compare two different statements."""
    start = utcnow() - timedelta(days=12)
    fill(journal, monkeypatch, start, 300)
    flt = Filter(route=ROUTES[0], since=start, until=start + timedelta(days=3), state="dead_lettered")
    with journal._read().connect() as conn:
        fast = conn.execute(queries.find_statement(flt, 1000, dead_first=True)).all()
        slow = conn.execute(queries.find_statement(flt, 1000, dead_first=False)).all()
    assert [row.id for row in fast] == [row.id for row in slow]
    assert fast, "the window holds dead letters"
    sql = str(queries.find_statement(flt, 1000, dead_first=True))
    assert "events" not in sql
    assert "dead_letters" in sql


def dead_letter_rows(engine: sa.Engine) -> list[tuple[Any, ...]]:
    """The rows of ``dead_letters``, by seq."""
    with engine.connect() as conn:
        return [tuple(row) for row in conn.exec_driver_sql("SELECT * FROM dead_letters ORDER BY 1")]


#: The message rows whose latest event is dead_lettered, as ``dead_letters`` holds them (0018: with the id).
UNHANDLED = (
    "SELECT seq, route, received_at, id FROM messages WHERE (SELECT state FROM events"
    " WHERE message_seq = seq ORDER BY id DESC LIMIT 1) = 'dead_lettered' ORDER BY seq"
)
#: The message rows ever dead-lettered (what ``dead_letters`` held before 0014, without the id of 0018).
EVER = (
    "SELECT seq, route, received_at FROM messages WHERE seq IN"
    " (SELECT message_seq FROM events WHERE state = 'dead_lettered') ORDER BY seq"
)


def rows_of(journal: Journal, sql: str) -> list[tuple[Any, ...]]:
    """The rows of ``sql`` on the journal."""
    with journal._read().connect() as conn:
        return [tuple(row) for row in conn.exec_driver_sql(sql)]


def test_the_triggers_keep_one_row_per_message_whose_latest_state_is_dead_lettered(
    journal: Journal, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each message row whose latest event is dead_lettered (once or twice) has one row, with its route
    received_at and id; one replayed, delivered or purged since has none, nor do the others."""
    start = utcnow() - timedelta(days=12)
    fill(journal, monkeypatch, start, 300)
    expected = rows_of(journal, UNHANDLED)
    assert len(expected) > 50
    assert len(rows_of(journal, EVER)) > len(expected) + 20, "handled dead letters in the fill"
    assert dead_letter_rows(journal._read()) == expected


def test_migration_0014_keeps_the_unhandled_and_its_downgrade_puts_back_every_dead_letter(
    journal: Journal, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Down to 0013: ``dead_letters`` holds every message row ever dead-lettered, and its trigger no longer
    removes rows; up again: the unhandled ones only, and the selection and counts equal the slow path."""
    from alembic import command

    start = utcnow() - timedelta(days=12)
    fill(journal, monkeypatch, start, 600)
    with journal._read().begin() as conn:
        command.downgrade(alembic_config(conn), "0013_events_id_bigint")
        route_minutes.create(conn)  # the head's write path below needs it (0015); dropped before upgrading
    assert dead_letter_rows(journal._read()) == rows_of(journal, EVER)
    message = Message(body=b"{}", id="after-downgrade")
    journal.received(ROUTES[0], message)
    journal.event(ROUTES[0], message, "dead_lettered")
    journal.event(ROUTES[0], message, "replayed")
    assert dead_letter_rows(journal._read()) == rows_of(journal, EVER), "0013: a handled one stays"
    with journal._read().begin() as conn:
        route_minutes.drop(conn)
        command.upgrade(alembic_config(conn), "head")
    assert dead_letter_rows(journal._read()) == rows_of(journal, UNHANDLED)
    assert assert_every_window_equals_the_slow_path(journal, start) > 100
    assert assert_counts_equal_the_slow_path(journal) > 100


def test_migration_0011_fills_dead_letters_of_an_existing_journal(
    journal: Journal, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A journal written before 0011 (downgraded, written to, upgraded again) gets the same rows the
    trigger writes, and every window's selection still equals the slow path."""
    from alembic import command

    start = utcnow() - timedelta(days=12)
    fill(journal, monkeypatch, start, 600)
    kept = dead_letter_rows(journal._read())
    with journal._read().begin() as conn:
        command.downgrade(alembic_config(conn), "0010_dead_letter_index_covering")
        assert "dead_letters" not in sa.inspect(conn).get_table_names()
        command.upgrade(alembic_config(conn), "head")
    assert dead_letter_rows(journal._read()) == kept
    assert assert_every_window_equals_the_slow_path(journal, start) > 100


def test_pruning_a_message_deletes_its_dead_letter_row(journal: Journal) -> None:
    """Deleting a dead-lettered message's rows (as the prune does) deletes its ``dead_letters`` row."""
    message = Message(body=b"{}", id="gone")
    journal.received(ROUTES[0], message)
    journal.event(ROUTES[0], message, "dead_lettered", error="bad")
    assert len(dead_letter_rows(journal._read())) == 1
    with journal._read().begin() as conn:
        conn.exec_driver_sql("DELETE FROM events")
        conn.exec_driver_sql("DELETE FROM messages")
    assert dead_letter_rows(journal._read()) == []


def plan(engine: sa.Engine, sql: str, params: Any = ()) -> str:
    """SQLite's query plan of ``sql``, its steps joined."""
    with engine.connect() as conn:
        return " ".join(row[3] for row in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}", params))


def test_the_window_dead_letters_are_read_from_their_index_alone(journal: Journal) -> None:
    """The selection from the dead letters reads the window's range of ``ix_dead_letters_received_at``
    as a covering index, newest first (no sort of every candidate), and each message by its key (no scan
    of the window's messages, no event); the dlq count reads ``dead_letters`` alone; a page of the
    dead-letter list (newest first, after a cursor) reads ``ix_events_dead_lettered`` in its order."""
    flt = Filter(route=ROUTES[0], since=utcnow() - timedelta(days=1), until=utcnow(), state="dead_lettered")
    engine = sa.create_engine(journal.url)
    statements: list[tuple[str, Any]] = []
    sa.event.listen(journal._read(), "before_cursor_execute", lambda *a: statements.append((a[2], a[3])))
    try:
        with engine.connect() as conn:
            selection = str(
                queries.find_statement(flt, 1000, dead_first=True).compile(
                    conn, compile_kwargs={"literal_binds": True}
                )
            )
            count = str(
                queries.dead_lettered_count_statement(ROUTES[0], 100_000).compile(
                    conn, compile_kwargs={"literal_binds": True}
                )
            )
        journal.dead_letters(route=ROUTES[0], before=(utcnow(), 10), limit=5)
        page = plan(engine, *statements[0])
        selected = plan(engine, selection)
        counted = plan(engine, count)
        assert "dead_letters" in counted, counted
        assert "events" not in counted, counted
        assert "messages" not in counted, counted
        assert "events" not in selected, selected
        assert "SEARCH messages USING INTEGER PRIMARY KEY (rowid=?)" in selected, selected
        assert "SEARCH dead_letters USING COVERING INDEX ix_dead_letters_received_at" in selected, selected
        assert "TEMP B-TREE FOR ORDER BY" not in selected, "newest first is the index's order: no full sort"
        assert "ix_messages_received_at" not in selected, selected
        assert "SEARCH events USING COVERING INDEX ix_events_dead_lettered" in page, page
        assert "TEMP B-TREE" not in page, page
    finally:
        engine.dispose()


def test_replay_selection_reads_the_same_records_without_their_business_keys(journal: Journal) -> None:
    """``with_keys=False`` (replay's selection) gives the records ``find`` gives, in the same order, with
    empty ``business_keys`` and no statement on ``business_keys``; with them, a forwarded id's record
    still shows the keys indexed on its other route's row."""
    for n in range(40):
        message = Message(body=b"{}", id=f"k{n:03d}", business_keys={"order_id": f"SO{n}"})
        journal.received(ROUTES[0], message)
        if n % 4 == 0:  # forwarded with its id, without its keys
            journal.received(ROUTES[1], Message(body=b"{}", id=message.id))
        journal.event(ROUTES[0], message, "dead_lettered" if n % 3 == 0 else "delivered")
    window = {"since": utcnow() - timedelta(hours=1), "until": utcnow() + timedelta(hours=1), "limit": 1000}
    statements: list[str] = []
    sa.event.listen(journal._read(), "before_cursor_execute", lambda *a: statements.append(a[2]))
    for extra in ({}, {"route": ROUTES[1]}, {"route": ROUTES[0], "state": "dead_lettered"}):
        keyed = journal.find(**window, **extra)
        statements.clear()
        bare = journal.find(**window, **extra, with_keys=False)
        assert not [sql for sql in statements if "business_keys" in sql]
        assert bare == [dataclasses.replace(record, business_keys={}) for record in keyed]
        assert keyed, extra
        assert all(record.business_keys for record in keyed), extra
    forwarded = journal.find(**window, route=ROUTES[1])
    expected = {f"k{n:03d}": {"order_id": f"SO{n}"} for n in range(0, 40, 4)}
    assert {r.id: r.business_keys for r in forwarded} == expected


def test_replay_selection_without_the_state_reads_no_event(journal: Journal) -> None:
    """``with_state=False`` (replay's selection) gives the records ``find`` gives, in the same order, with
    ``state`` None and no event read; a ``state`` filter still reads and returns the latest state."""
    for n in range(40):
        message = Message(body=b"{}", id=f"s{n:03d}")
        journal.received(ROUTES[n % 2], message)
        journal.event(ROUTES[n % 2], message, ("delivered", "dead_lettered", "failed")[n % 3])
    window = {"since": utcnow() - timedelta(hours=1), "until": utcnow() + timedelta(hours=1), "limit": 1000}
    statements: list[str] = []
    sa.event.listen(journal._read(), "before_cursor_execute", lambda *a: statements.append(a[2]))
    for extra in ({}, {"route": ROUTES[1]}):
        full = journal.find(**window, **extra, with_keys=False)
        statements.clear()
        bare = journal.find(**window, **extra, with_keys=False, with_state=False)
        assert not [sql for sql in statements if "events" in sql], statements
        assert bare == [dataclasses.replace(record, state=None) for record in full]
        assert {record.state for record in full} == {"delivered", "dead_lettered", "failed"}, extra
    for state in ("failed", "dead_lettered"):
        filtered = journal.find(**window, state=state, with_state=False)
        assert filtered == journal.find(**window, state=state), state
        assert filtered, state
        assert {record.state for record in filtered} == {state}, state
