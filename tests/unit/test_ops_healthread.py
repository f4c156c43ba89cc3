"""esb health's reads without SQLAlchemy answer what the SQLAlchemy path answers on SQLite: the journal's
counts, route control's states, the messages stuck in flight, the process status counts (on PostgreSQL:
tests/integration/test_journal_coldread_pg.py)."""

from __future__ import annotations

import sqlite3
from dataclasses import asdict
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import sqlite

from esb.journal import Journal
from esb.journal.schema import UTCDateTime
from esb.journal.sqliteread import sqlite_utc
from esb.message import Message
from esb.ops import health
from esb.ops.health import _stuck_rows, check_journal, check_routes, check_stuck, stuck_in_flight
from esb.ops.healthread import (
    ColdJournal,
    Rows,
    cold_rows,
    counts_from,
    process_counts_from,
    route_states_from,
    stuck_from,
)
from esb.ops.processes import open_store, status_counts
from esb.process.engine import ProcessStore, Runner
from esb.runtime.control import RouteControl
from tests.unit.test_ops_health_processes import project_with_process
from tests.unit.test_process_cli import ended, stuck
from tests.unit.test_process_engine import Clock, FakeResources


@pytest.fixture
def url(tmp_path: Path) -> str:
    """A journal (SQLite file at head) with finished, unfinished and body-less messages on three routes."""
    url = f"sqlite:///{tmp_path / 'journal.db'}"
    with Journal(url) as journal:
        for index in range(5):
            done = Message(body=b"<order/>", id=f"done-{index}")
            journal.received("orders", done)
            journal.mark_delivered("orders", done, "iom.orders_in", event=True, finish=done)
        waiting = Message(body=b"<order/>", id="waiting")
        journal.received("orders", waiting)
        journal.event("orders", waiting, "transformed", body=b"{}")
        failed = Message(body=b"x", id="failed-then-dead")
        journal.received("billing", failed)
        journal.event("billing", failed, "failed", error="down")
        journal.event("billing", failed, "dead_lettered", error="still down: 超时")
        journal.received("billing", Message(body=None, id="no-body"))
        journal.received("replies", Message(body=b"ok", id="only-received"))
    return url


def _refused(url: str) -> Rows:
    """A cold reader that never answers (the path refused, as where it does not apply)."""
    return lambda name, params: None


def _stored(url: str, column: str) -> list[datetime]:
    """Every stored value of ``column`` (``events.at``, ``messages.received_at``) as an aware datetime."""
    table, name = column.split(".")
    with sqlite3.connect(url.removeprefix("sqlite:///")) as conn:
        rows = conn.execute(f"SELECT {name} FROM {table} ORDER BY {name}").fetchall()
    return [datetime.fromisoformat(r[0]).replace(tzinfo=UTC) for r in rows]


@pytest.mark.parametrize(
    "when",
    [
        pytest.param(datetime(2026, 1, 2, 3, 4, 5, 0, tzinfo=UTC), id="no-microseconds"),
        pytest.param(datetime(2026, 1, 2, 3, 4, 5, 60, tzinfo=UTC), id="microseconds"),
        pytest.param(datetime(2026, 1, 2, 11, 4, 5, 7, tzinfo=timezone(timedelta(hours=8))), id="Beijing"),
        pytest.param(datetime(999, 12, 31, 23, 59, 59, tzinfo=UTC), id="year-999"),
    ],
)
def test_timestamps_are_bound_as_sqlalchemy_binds_them(when: datetime) -> None:
    """sqlite_utc writes the text SQLAlchemy's UTCDateTime binds on SQLite (the comparisons are textual)."""
    dialect = sqlite.dialect()
    to_db = sa.DateTime().dialect_impl(dialect).bind_processor(dialect)
    assert to_db is not None
    assert sqlite_utc(when) == to_db(UTCDateTime().process_bind_param(when, dialect))


def test_the_counts_are_the_journals_at_every_boundary(url: str) -> None:
    """The cold counts are Journal.counts(since=since), with since on, just after and before an event."""
    times = _stored(url, "events.at")
    windows = [
        times[0] - timedelta(days=1),
        *times,
        times[3] + timedelta(microseconds=1),
        times[-1] + timedelta(1),
    ]
    with Journal(url) as journal:
        for since in windows:
            assert counts_from(cold_rows(url), since) == journal.counts(since=since), since
        assert journal.counts(since=windows[0])["billing"] == {"received": 2, "failed": 1, "dead_lettered": 1}


def test_the_route_states_are_route_controls(url: str) -> None:
    """The cold route states are RouteControl.states() field for field; a suspended route degrades health."""
    with RouteControl(url) as control:
        control.set_state("orders", "suspended", "peak hour: 高峰")
        control.set_state("billing", "suspended")
        control.set_state("billing", "running")
        expected = {name: asdict(state) for name, state in control.states().items()}
    assert route_states_from(cold_rows(url)) == expected
    assert expected["orders"]["changed_at"].tzinfo is not None


def test_a_missing_route_control_table_goes_to_route_control(url: str) -> None:
    """Before any operator suspended a route the table does not exist: sqlite3 says None, and health's
    reading through RouteControl creates it (as before) and finds nothing suspended."""
    assert route_states_from(cold_rows(url)) is None
    assert health.route_states(url) == {}
    assert route_states_from(cold_rows(url)) == {}


def test_the_stuck_messages_are_the_sqlalchemy_querys(url: str) -> None:
    """The cold stuck rows and count are the SQLAlchemy statements' (ids, routes, aware times, latest state),
    for ends that fall before, on, just after and after the stored receipt times."""
    received = _stored(url, "messages.received_at")
    tiny = timedelta(microseconds=1)
    for before in (received[0] - timedelta(1), received[5], received[5] + tiny, received[-1] + tiny):
        assert stuck_from(cold_rows(url), before) == _stuck_rows(url, before), before
    everything, count = stuck_from(cold_rows(url), received[-1] + tiny) or ([], 0)
    assert {r["id"] for r in everything} == {"waiting", "only-received", "no-body"}
    assert count == 3
    assert all(r["received_at"].tzinfo is not None for r in everything)


def test_health_lists_the_same_stuck_messages_either_way(url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """stuck_in_flight answers the same through sqlite3 and, with that path refused, through SQLAlchemy."""
    cold = stuck_in_flight(url, timedelta(0))
    monkeypatch.setattr(health, "cold_rows", _refused)
    assert stuck_in_flight(url, timedelta(0)) == cold
    assert {"waiting", "only-received"} <= {s["message_id"] for s in cold}
    assert not {"done-0", "failed-then-dead"} & {s["message_id"] for s in cold}


def test_the_process_counts_are_the_stores(tmp_path: Path) -> None:
    """The cold process counts are status_counts(store): unended statuses' counts and the held instances."""
    project = project_with_process(tmp_path)
    url = project.settings.journal.url
    clock, fakes = Clock(), FakeResources()
    with ProcessStore(url) as store:
        runner = Runner(store, fakes, owner="r1", lease=60, clock=clock)
        ended(runner, "o-ok")
        assert process_counts_from(cold_rows(url), 20) == status_counts(store)
        stuck(runner, fakes, clock, "o-bad")
        stuck(runner, fakes, clock, "o-bad-2")
    with open_store(project) as store:
        for sample in (20, 1):
            assert process_counts_from(cold_rows(url), sample) == status_counts(store, sample)
    counts, held = process_counts_from(cold_rows(url), 20) or ({}, [])
    assert counts == {"stuck": 2}
    assert len(held) == 2


@pytest.mark.parametrize(
    "where",
    [
        pytest.param("postgresql://esb@localhost/esb?sslmode=require", id="postgresql-query-string"),
        pytest.param("mysql://esb@localhost/esb", id="mysql"),
        pytest.param("sqlite:///{tmp}/not-yet.db", id="no-file-yet"),
        pytest.param("sqlite:///:memory:", id="memory"),
    ],
)
def test_other_journals_take_the_sqlalchemy_path(where: str, tmp_path: Path) -> None:
    """A URL with a query string, another database, no journal yet, an in-memory one: every read says None."""
    url = where.format(tmp=tmp_path)
    now = datetime.now(UTC)
    assert ColdJournal.open(url) is None
    assert counts_from(cold_rows(url), now) is None
    assert route_states_from(cold_rows(url)) is None
    assert stuck_from(cold_rows(url), now) is None
    assert process_counts_from(cold_rows(url), 20) is None
    assert not (tmp_path / "not-yet.db").exists()


def test_a_broken_journal_opens_the_journal_which_reports_it(tmp_path: Path) -> None:
    """A file that is not a database is not this path: health opens the Journal, whose error says down."""
    path = tmp_path / "journal.db"
    path.write_bytes(b"not a database" * 100)
    url = f"sqlite:///{path}"
    assert ColdJournal.open(url) is None
    assert counts_from(cold_rows(url), datetime.now(UTC)) is None


def test_the_cold_journal_checks_like_the_journal(url: str, tmp_path: Path) -> None:
    """check_journal, check_routes and check_stuck give the same lines through ColdJournal and sqlite3 as
    through the Journal and SQLAlchemy."""
    project = project_with_process(tmp_path)
    project.settings.journal.url = url
    with RouteControl(url) as control:
        control.set_state("orders", "suspended", "maintenance")
    cold = ColdJournal.open(url)
    assert cold is not None
    got = [check_journal(cold), *check_routes(project), check_stuck(project, timedelta(0))]
    cold.close()
    with Journal(url) as journal, pytest.MonkeyPatch.context() as patch:
        patch.setattr(health, "cold_rows", _refused)
        expected = [check_journal(journal), *check_routes(project), check_stuck(project, timedelta(0))]
    assert got == expected
    assert got[-1].status == health.DEGRADED


def test_a_read_sqlite3_cannot_answer_goes_to_the_journal(url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """When a count cannot be read through sqlite3 after all, ColdJournal opens the Journal and asks it."""
    cold = ColdJournal.open(url)
    assert cold is not None
    since = datetime.now(UTC) - timedelta(days=1)
    expected = cold.counts(since=since)
    monkeypatch.setattr(cold, "rows", lambda name, params: None)
    assert cold.counts(since=since) == expected
    assert cold._journal is not None
    cold.close()
    cold.close()


def test_stuck_messages_beyond_the_listed_ones_are_all_counted(url: str, tmp_path: Path) -> None:
    """With more stuck messages than esb health lists (STUCK_LIMIT), every one is counted, through sqlite3
    and through the Journal's engine alike; the oldest are listed and the line says so."""
    with Journal(url) as journal:
        journal.received_many("busy", [(Message(body=b"{}", id=f"busy-{i}"), 1) for i in range(1200)])
    project = project_with_process(tmp_path)
    project.settings.journal.url = url
    cold = check_stuck(project, timedelta(0))
    with Journal(url) as journal:
        warm = check_stuck(project, timedelta(0), health.reader(journal))
    assert cold == warm
    assert cold.data is not None
    assert cold.data["count"] == 1203
    assert len(cold.data["stuck"]) == 1000
    assert cold.detail.startswith("1203 message(s) without a final state after 0 min: ")
    assert cold.detail.endswith("(the oldest 1,000 listed)")


def test_health_through_an_open_journal_opens_no_other_engine(
    url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """run_checks given an open Journal (PostgreSQL's path, the running hub's) reads route control, the
    process counts and the stuck messages on its engine: no other engine is created, and the lines are
    the sqlite3 path's."""
    project = project_with_process(tmp_path)
    project.settings.journal.url = url
    with RouteControl(url) as control:
        control.set_state("orders", "suspended", "maintenance")  # the table exists: read, not created
    cold = ColdJournal.open(url)
    assert cold is not None
    expected = health.run_checks(project, cold, timedelta(0))
    cold.close()
    made: list[str] = []
    real = sa.create_engine
    monkeypatch.setattr(health, "cold_rows", _refused)  # no cold path: as where it does not apply
    with Journal(url) as journal:
        monkeypatch.setattr(sa, "create_engine", lambda *a, **k: made.append(str(a[0])) or real(*a, **k))
        got = health.run_checks(project, journal, timedelta(0))
    assert made == []
    names = ("processes", "in flight")
    assert [c for c in got if c.component in names] == [c for c in expected if c.component in names]
    assert {c.component for c in got} >= set(names)
