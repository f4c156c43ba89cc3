"""The cold path on PostgreSQL (psycopg, no SQLAlchemy) returns what the Journal returns, against a real
server: esb trace's records, esb dlq list's counts and esb health's reads (the differential tests of
tests/unit/test_journal_sqliteread.py and test_ops_healthread.py); a cold command imports no SQLAlchemy."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest

from esb.journal import Journal
from esb.journal.coldread import count_dead_lettered, read_trace
from esb.journal.constants import VERSION_TABLE
from esb.journal.pgread import connect_args
from esb.ops import health
from esb.ops.healthread import ColdJournal, cold_rows, warm_rows
from esb.ops.healthsql import health_statements
from esb.ops.processes import status_counts
from esb.process.engine import ProcessStore, Runner
from esb.runtime.control import RouteControl
from tests.integration.pg_server import PostgresServer
from tests.unit import test_journal_sqliteread as on_sqlite
from tests.unit.test_cold_commands import _modules_after
from tests.unit.test_ops_health_processes import project_with_process
from tests.unit.test_process_cli import ended, stuck
from tests.unit.test_process_engine import Clock, FakeResources

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def filled(postgres_server: PostgresServer) -> Iterator[str]:
    """A journal in a database with conversations of every shape esb trace follows, a suspended route,
    messages in flight and process instances (two stuck): filled once, the template of each test's."""
    url = postgres_server.create_database("coldread")
    on_sqlite.fill(url)
    with RouteControl(url) as control:
        control.set_state("orders", "suspended", "maintenance: 维护")
    clock, fakes = Clock(), FakeResources()
    with ProcessStore(url) as store:
        runner = Runner(store, fakes, owner="r1", lease=60, clock=clock)
        ended(runner, "o-ok")
        stuck(runner, fakes, clock, "o-bad")
        stuck(runner, fakes, clock, "o-bad-2")
    yield url
    postgres_server.drop_database(url)


@pytest.fixture
def url(postgres_server: PostgresServer, filled: str) -> Iterator[str]:
    """A copy of the filled journal's database for one test (which may change it)."""
    url = postgres_server.copy_database(filled, "coldread")
    yield url
    postgres_server.drop_database(url)


@pytest.mark.parametrize("key", on_sqlite.KEYS)
def test_the_cold_trace_is_the_journals_on_postgresql(url: str, key: str) -> None:
    """For every kind of key, psycopg's path gives the records (values, types, aware UTC times, JSON
    details) Journal.trace gives through the look-up tables."""
    on_sqlite.check_trace(url, key)


@pytest.mark.parametrize("limit", [100_000, 2])
def test_the_dead_letter_counts_are_the_journals_on_postgresql(url: str, limit: int) -> None:
    """esb dlq list's counts through psycopg are the journal's (an empty list of routes too)."""
    on_sqlite.check_dead_letter_counts(url, limit)


def test_every_health_read_is_sqlalchemys_on_postgresql(url: str) -> None:
    """Each of esb health's statements gives through psycopg the rows SQLAlchemy gives (converted alike),
    at several times; the held ColdJournal answers the journal's counts."""
    before = datetime.now(UTC) + timedelta(seconds=1)
    times = [before, before - timedelta(days=1), datetime(2020, 1, 1, tzinfo=UTC)]
    params = [{"since": t, "whole_from": t.replace(second=0, microsecond=0) + timedelta(minutes=1),
               "received_before": t, "sample": 1} for t in times]  # fmt: skip
    cold = ColdJournal.open(url)
    assert cold is not None
    with Journal(url) as journal:
        warm = warm_rows(journal)
        for name, statement in health_statements().items():
            wanted = {k: v for k, v in params[0].items() if k in statement.compile().params}
            for each in params:
                given = {k: each[k] for k in wanted}
                expected = warm(name, given)
                assert expected is not None, name
                assert cold_rows(url)(name, given) == expected, (name, given)
                assert cold.rows(name, given) == expected, (name, given)
        for when in times:
            assert cold.counts(since=when) == journal.counts(since=when)
            assert cold.dead_lettered_since(when) == journal.dead_lettered_since(when)
    assert cold._journal is None  # every read answered without the Journal
    cold.close()
    cold.close()


def test_health_checks_read_cold_as_through_the_journal_on_postgresql(
    url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """run_checks through the ColdJournal gives the lines it gives through an open Journal (the stuck
    processes and messages in flight); route control's states read cold are RouteControl's."""
    project = project_with_process(tmp_path)
    project.settings.journal.url = url
    cold = ColdJournal.open(url)
    assert cold is not None
    got = health.run_checks(project, cold, timedelta(0))
    cold.close()
    with Journal(url) as journal:
        monkeypatch.setattr(health, "cold_rows", lambda url: lambda name, params: None)
        expected = health.run_checks(project, journal, timedelta(0))
    assert got == expected
    by_name = {c.component: c for c in got}
    assert by_name["processes"].status == health.DEGRADED
    assert by_name["in flight"].status == health.DEGRADED
    with ProcessStore(url) as store:
        assert asdict(by_name["processes"])["data"]["counts"] == status_counts(store)[0]
    with RouteControl(url) as control:
        expected_states = {name: asdict(state) for name, state in control.states().items()}
    assert health.route_states(url) == expected_states
    assert expected_states["orders"]["state"] == "suspended"


def test_a_schema_not_at_head_or_a_refusing_server_goes_to_the_journal(
    url: str, postgres_server: PostgresServer
) -> None:
    """An older revision, no version table, a wrong password: every cold read answers None."""
    assert ColdJournal.open(postgres_server.url(url.rsplit("/", 1)[1], password="wrong")) is None
    assert read_trace(postgres_server.url(url.rsplit("/", 1)[1], password="wrong"), "req-1") is None
    with psycopg.connect(**(connect_args(url) or {}), autocommit=True) as conn:
        conn.execute(f"UPDATE {VERSION_TABLE} SET version_num = 'older'")
        assert read_trace(url, "req-1") is None
        assert count_dead_lettered(url, ["orders"], 10) is None
        assert ColdJournal.open(url) is None
        conn.execute(f"DROP TABLE {VERSION_TABLE}")
        assert read_trace(url, "req-1") is None


@pytest.mark.parametrize("command", [["trace", "req-1"], ["dlq", "list"], ["health"]])
def test_a_cold_command_on_postgresql_imports_no_sqlalchemy(
    url: str, command: list[str], tmp_path: Path
) -> None:
    """esb trace, esb dlq list and esb health on a PostgreSQL journal at head (route control and the
    process tables created by a first run) read it through psycopg: SQLAlchemy, Alembic and pydantic-settings
    stay unloaded."""
    code = (
        "import os\n"
        f"os.environ['ESB_JOURNAL__URL'] = {url!r}\n"
        "from esb.cli.main import main\n"
        "try:\n"
        f"    main({command!r})\n"
        "except SystemExit:\n"
        "    pass\n"
    )
    first = _modules_after(code, tmp_path)
    assert "psycopg" in first
    again = _modules_after(code, tmp_path)
    assert not {m for m in again if m.startswith(("sqlalchemy", "alembic", "pydantic_settings"))}
