"""Replay's selection of a window's dead letters on the real PostgreSQL server (migration 0018): the records
the selection before 0018 gave, from ``dead_letters`` alone (no partition of ``messages`` or ``events`` in
its plan), and the migration's fill of an existing journal's ``message_id``."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command

from esb.journal import Journal, queries
from esb.journal.migrate import alembic_config
from esb.message import Message, utcnow
from tests.integration.pg_server import PostgresJournals
from tests.unit.test_journal_replay_selection import ROUTES, fill
from tests.unit.test_replay_paged import assert_the_selection_is_what_it_was, dead_at_one_instant

pytestmark = pytest.mark.integration


@pytest.fixture
def journal(pg_journals: PostgresJournals) -> Journal:
    """A connected journal on a fresh PostgreSQL database (migrated to head)."""
    return pg_journals.journal("replay_dead")


def test_the_selection_of_dead_letters_is_the_one_find_gave(
    journal: Journal, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Over old and recent windows, with and without a route, capped by ``--limit``, ties on the arrival:
    the same records in the same order as the selection before 0018 (every record read by ``find``)."""
    start = utcnow() - timedelta(days=12)
    fill(journal, monkeypatch, start, 300)
    ties = dead_at_one_instant(journal, monkeypatch, start + timedelta(days=4, minutes=30))
    assert assert_the_selection_is_what_it_was(journal, start, ties) > 200


def relations(conn: sa.Connection, sql: str) -> list[tuple[str, str]]:
    """(relation, node type) of every scan in ``sql``'s executed plan (EXPLAIN ANALYZE, JSON)."""
    plan = conn.exec_driver_sql("EXPLAIN (ANALYZE, FORMAT JSON) " + sql).scalar_one()[0]["Plan"]
    found, stack = [], [plan]
    while stack:
        node = stack.pop()
        stack.extend(node.get("Plans", []))
        if "Relation Name" in node:
            found.append((str(node["Relation Name"]), str(node["Node Type"])))
    return found


def without_statistics(journal: Journal) -> None:
    """No autovacuum on ``dead_letters``: its plans are chosen without column statistics, as on a new
    journal (analysed, a table of a few dozen rows may take either index: both cost well under a ms)."""
    with journal._read().begin() as conn:
        conn.exec_driver_sql("ALTER TABLE dead_letters SET (autovacuum_enabled = false)")


def test_the_selection_reads_no_message_row(journal: Journal, monkeypatch: pytest.MonkeyPatch) -> None:
    """The selection's statement scans ``dead_letters`` alone, and, an index chosen, only its covering
    index (Index Only Scan): no partition of ``messages`` or ``events``."""
    without_statistics(journal)  # analysed, this small a table may take ix_dead_letters_route (0020)
    start = utcnow() - timedelta(days=12)
    fill(journal, monkeypatch, start, 200)
    flt = queries.Filter(route=ROUTES[0], since=start, until=start + timedelta(days=5), state="dead_lettered")
    with journal._read().connect() as conn:
        sql = str(
            queries.dead_letter_refs_statement(flt, 1000).compile(
                conn, compile_kwargs={"literal_binds": True}
            )
        )
        scanned = relations(conn, sql)
        conn.exec_driver_sql("SET enable_seqscan = off")
        indexed = relations(conn, sql)
    assert [table for table, _ in scanned] == ["dead_letters"], scanned
    assert indexed == [("dead_letters", "Index Only Scan")], indexed


def dead_letter_rows(journal: Journal) -> list[tuple[Any, ...]]:
    """The rows of ``dead_letters``, by seq."""
    with journal._read().connect() as conn:
        return [tuple(row) for row in conn.exec_driver_sql("SELECT * FROM dead_letters ORDER BY 1")]


def test_migration_0018_fills_the_ids_of_an_existing_journal(
    journal: Journal, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Down to 0017 (no id) and up again: the same rows with their ids, and the trigger copies the id of
    a message dead-lettered afterwards."""
    start = utcnow() - timedelta(days=12)
    fill(journal, monkeypatch, start, 200)
    kept = dead_letter_rows(journal)
    assert len(kept) > 20
    with journal._read().begin() as conn:
        command.downgrade(alembic_config(conn), "0017_lookup_tables")
    assert dead_letter_rows(journal) == [row[:3] for row in kept]
    with journal._read().begin() as conn:
        command.upgrade(alembic_config(conn), "head")
    assert dead_letter_rows(journal) == kept
    with journal._read().connect() as conn:
        ids = dict(conn.exec_driver_sql("SELECT seq, id FROM messages").all())
    assert [row[3] for row in kept] == [ids[row[0]] for row in kept]
    message = Message(body=b"{}", id="dead-after-0018")
    journal.received(ROUTES[0], message)
    journal.event(ROUTES[0], message, "dead_lettered")
    received = journal.find(message_id=message.id)[0].received_at
    assert dead_letter_rows(journal)[-1][1:] == (ROUTES[0], received, "dead-after-0018")
