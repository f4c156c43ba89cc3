"""``dead_letters`` indexed by route on the real PostgreSQL server (migration 0020): ``esb dlq list``'s count
per route can be an index-only scan of ``ix_dead_letters_route``, replay's selection still scans
``ix_dead_letters_received_at``, and the migration goes down to 0019 and up again with rows."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa
from alembic import command

from esb.journal import Journal, queries
from esb.journal.migrate import alembic_config
from esb.journal.queries import Filter
from esb.message import utcnow
from tests.integration.pg_server import PostgresJournals
from tests.integration.test_replay_dead_letters_pg import dead_letter_rows, without_statistics
from tests.unit.test_journal_replay_selection import ROUTES, assert_counts_equal_the_slow_path, fill

pytestmark = pytest.mark.integration

INDEX = "ix_dead_letters_route"


@pytest.fixture
def journal(pg_journals: PostgresJournals) -> Journal:
    """A connected journal on a fresh PostgreSQL database (migrated to head)."""
    return pg_journals.journal("dead_by_route")


def scans(conn: sa.Connection, stmt: sa.Select[object]) -> list[tuple[str, str]]:
    """(node type, index or relation) of every scan in ``stmt``'s executed plan, index scans preferred."""
    sql = str(stmt.compile(conn, compile_kwargs={"literal_binds": True}))
    conn.exec_driver_sql("SET enable_seqscan = off")
    plan = conn.exec_driver_sql("EXPLAIN (ANALYZE, FORMAT JSON) " + sql).scalar_one()[0]["Plan"]
    found, stack = [], [plan]
    while stack:
        node = stack.pop()
        stack.extend(node.get("Plans", []))
        if "Scan" in node["Node Type"]:
            found.append((str(node["Node Type"]), str(node.get("Index Name", node.get("Relation Name")))))
    return found


def indexes(journal: Journal) -> set[str]:
    """The names of the indexes on ``dead_letters``."""
    with journal._read().connect() as conn:
        return {str(ix["name"]) for ix in sa.inspect(conn).get_indexes("dead_letters")}


def test_the_count_reads_the_route_index_and_replay_its_window_index(
    journal: Journal, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After ``VACUUM`` the count per route is an Index Only Scan of ``ix_dead_letters_route`` (no heap
    fetch); replay's window with a route is still one of ``ix_dead_letters_received_at``."""
    without_statistics(journal)
    start = utcnow() - timedelta(days=12)
    fill(journal, monkeypatch, start, 200)
    with journal._read().connect() as conn:
        conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql("VACUUM dead_letters")
    window = Filter(route=ROUTES[0], since=start, until=start + timedelta(days=5), state="dead_lettered")
    with journal._read().connect() as conn:
        counted = scans(conn, queries.dead_lettered_counts_statement(list(ROUTES)))
        replayed = scans(conn, queries.dead_letter_refs_statement(window, 1000))
        found = scans(conn, queries.find_statement(window, 1000, dead_first=True))
    assert counted == [("Index Only Scan", INDEX)], counted
    assert replayed == [("Index Only Scan", "ix_dead_letters_received_at")], replayed
    assert ("Index Only Scan", "ix_dead_letters_received_at") in found, found
    assert all(name != INDEX for _, name in found), found


def test_migration_0020_down_and_up_keeps_the_rows(journal: Journal, monkeypatch: pytest.MonkeyPatch) -> None:
    """Down to 0019: no route index, the rows kept; up again: the index, the same rows, the same counts."""
    start = utcnow() - timedelta(days=12)
    fill(journal, monkeypatch, start, 200)
    kept = dead_letter_rows(journal)
    assert len(kept) > 20
    with journal._read().begin() as conn:
        command.downgrade(alembic_config(conn), "0019_journal_rows_written")
    assert INDEX not in indexes(journal)
    assert dead_letter_rows(journal) == kept
    with journal._read().begin() as conn:
        command.upgrade(alembic_config(conn), "head")
    assert INDEX in indexes(journal)
    assert dead_letter_rows(journal) == kept
    assert assert_counts_equal_the_slow_path(journal) == len(kept)
