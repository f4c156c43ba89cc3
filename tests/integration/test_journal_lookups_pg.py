"""The PostgreSQL journal's look-up tables (esb/journal/lookups.py, migration 0017): trace and find give what
the statements without them give, probe one partition, follow inserts, deletes, drops and the migration."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command

from esb.journal import Journal, partitions, queries
from esb.journal import conversation as walk
from esb.journal.migrate import alembic_config
from esb.journal.retention import Policy
from esb.message import Message
from esb.ops.trace import build_trace
from tests.integration.pg_server import PostgresJournals
from tests.integration.test_journal_partitions_pg import move_to_day, seq_of, today, written_at
from tests.unit.test_journal_retention import deliver, order_body

pytestmark = pytest.mark.integration

LOOKUPS = (
    "SELECT 'id', id, route, seq FROM lookup_ids"
    " UNION ALL SELECT 'key', value, name, seq FROM lookup_keys ORDER BY 1, 2, 3, 4"
)
FROM_ROWS = (
    "SELECT 'id', id, route, seq FROM messages"
    " UNION ALL SELECT 'key', value, name, message_seq FROM business_keys ORDER BY 1, 2, 3, 4"
)


@pytest.fixture
def journal_url(pg_journals: PostgresJournals) -> str:
    """A fresh PostgreSQL database on the throwaway server."""
    return pg_journals.database("lookups")


@pytest.fixture
def journal(pg_journals: PostgresJournals, journal_url: str) -> Journal:
    """A connected journal on a fresh database (migrated to head)."""
    return pg_journals.journal(journal_url)


def rows(journal: Journal, sql: str) -> list[tuple[Any, ...]]:
    """The rows of ``sql`` on the journal's database."""
    with journal._read().connect() as conn:
        return [tuple(row) for row in conn.exec_driver_sql(sql)]


def spread(journal: Journal) -> list[Message]:
    """Messages over three weeks: ids on two routes, a key shared by two orders, a correlated reply."""
    made = [deliver(journal, n) for n in range(6)]
    made.append(deliver(journal, 3, route="billing"))  # the id of order 3 on another route
    shared = Message(
        body=order_body(7), id="m00007", business_keys={"order_id": "SO00000001", "msisdn": "1337"}
    )
    journal.received("orders", shared)
    reply = Message(body=order_body(8), id="m00008", correlation_id="m00001", causation_id="m00001")
    journal.received("replies", reply)
    move_to_day(journal, ["m00000", "m00001"], today() - timedelta(days=20))
    move_to_day(journal, ["m00002", "m00003"], today() - timedelta(days=10))
    return [*made, shared, reply]


def walk_both(journal: Journal, key: str) -> tuple[Any, Any]:
    """The conversation and history of ``key`` by the statements without and with the look-up tables."""
    found = []
    with journal._read().connect() as conn:
        for statements in (queries.cold_statements(), None):

            def run(name: str, params: dict[str, Any], chosen: Any = statements) -> list[dict[str, Any]]:
                return [dict(row) for row in conn.execute(chosen[name], params).mappings()]

            ids = walk.conversation(run if statements else queries.lookup_runner(conn), key)
            found.append((sorted(ids), walk.history(run if statements else queries.lookup_runner(conn), ids)))
    return found[0], found[1]


@pytest.mark.parametrize("key", ["SO00000001", "SO00000003", "m00003", "m00001", "1337", "nothing"])
def test_the_walk_finds_what_the_statements_without_look_ups_find(journal: Journal, key: str) -> None:
    """esb trace's conversation and history of a key, an id on two routes, a correlation: the same through
    the look-up tables as through the partitions' own indexes (the statements before 0017)."""
    spread(journal)
    before, after = walk_both(journal, key)
    assert after == before
    assert (key == "nothing") == (before[0] == [])


@pytest.mark.parametrize(
    "flt",
    [
        queries.Filter(key=("order_id", "SO00000001")),
        queries.Filter(key=("order_id", "SO00000003")),
        queries.Filter(key=("msisdn", "1337")),
        queries.Filter(message_id="m00003"),
        queries.Filter(message_id="m00001", route="orders"),
        queries.Filter(key=("order_id", "SO00000002"), state="delivered"),
    ],
)
def test_find_returns_what_the_statement_without_look_ups_returns(
    journal: Journal, flt: queries.Filter
) -> None:
    """find by business key or message id: the same rows through the look-up tables."""
    spread(journal)
    with journal._read().connect() as conn:
        found = [
            [dict(r) for r in conn.execute(queries.find_statement(flt, 100, seqs=seqs)).mappings()]
            for seqs in (None, queries.seqs_for(conn, flt))
        ]
    assert found[1] == found[0]
    assert found[0]


def executed_probes(conn: sa.Connection, sql: str, params: Any) -> list[tuple[str, str]]:
    """(relation, index condition or else filter) of every scan of a messages, events or business_keys
    partition that ran in ``sql``'s plan (EXPLAIN ANALYZE: partitions pruned at run time never run)."""
    plan = conn.exec_driver_sql("EXPLAIN (ANALYZE, FORMAT JSON) " + sql, params).scalar_one()[0]["Plan"]
    found = []
    stack = [plan]
    while stack:
        node = stack.pop()
        stack.extend(node.get("Plans", []))
        table = str(node.get("Relation Name", ""))
        if table.startswith(("messages", "events", "business_keys")) and node.get("Actual Loops", 0) > 0:
            condition = node.get("Index Cond") or node.get("Recheck Cond") or node.get("Filter")
            found.append((table, str(condition or node["Node Type"])))
    return found


def statements_run(journal: Journal, call: Any) -> list[tuple[str, Any]]:
    """The statements (and parameters) the journal runs during ``call()``."""
    run: list[tuple[str, Any]] = []

    def capture(_conn: object, _cur: object, sql: str, params: Any, *_: object) -> None:
        if sql.lstrip().upper().startswith(("SELECT", "(SELECT")):
            run.append((sql, params))

    engine = journal._read()
    sa.event.listen(engine, "before_cursor_execute", capture)
    try:
        call()
    finally:
        sa.event.remove(engine, "before_cursor_execute", capture)
    return run


def test_trace_and_find_probe_the_partition_of_their_rows_alone(journal: Journal) -> None:
    """Every partition scan that runs in esb trace's and find's statements is bounded by seq (the look-up
    tables gave it): no probe of a partition's id, correlation or key index for an order's key and id,
    and the scans that run are those of the week that holds the rows. The plans are those of a big
    journal (a nested loop from the look-up table; on this tiny one hashing every partition is cheaper)."""
    spread(journal)
    with journal._read().connect() as conn:
        conn.exec_driver_sql("ANALYZE")
    old = partitions.day_partition(today() - timedelta(days=20)).suffix
    for call in (
        lambda: build_trace(journal, "SO00000000"),
        lambda: journal.find(key=("order_id", "SO00000000")),
        lambda: journal.find(message_id="m00000"),
    ):
        run = statements_run(journal, call)
        ran = 0
        with journal._read().connect() as conn:
            for setting in ("enable_seqscan", "enable_hashjoin", "enable_mergejoin", "enable_bitmapscan"):
                conn.exec_driver_sql(f"SET {setting} = off")
            for sql, params in run:
                if "correlation_id IN" in sql or "causation_id IN" in sql:
                    continue  # the walk's links by correlation and causation: no look-up table
                probes = [p for p in executed_probes(conn, sql, params) if "correlation_id" not in p[1]]
                ran += len(probes)
                for table, condition in probes:
                    assert "seq" in condition, (sql, table, condition)
                    assert table.endswith(old), (sql, table)
        assert ran  # the rows were read, by seq


def test_the_tables_follow_inserts_deletes_and_moves(journal: Journal) -> None:
    """After writes, a redelivery, moves between weeks and a row deleted, the look-up tables hold exactly
    the (id, route) and (value, name) of the rows there, with their seqs."""
    made = spread(journal)
    assert journal.received("orders", made[0]) is False  # a redelivery: no new row, no new entry
    with journal._read().begin() as conn:
        seq = conn.execute(sa.text("SELECT seq FROM messages WHERE id = 'm00004'")).scalar_one()
        for table in ("events", "business_keys"):
            conn.execute(sa.text(f"DELETE FROM {table} WHERE message_seq = :s"), {"s": seq})
        conn.execute(sa.text("DELETE FROM messages WHERE seq = :s"), {"s": seq})
    assert rows(journal, LOOKUPS) == rows(journal, FROM_ROWS)
    assert ("id", "m00004", "orders", seq) not in rows(journal, LOOKUPS)


def test_a_message_id_stays_unique_across_weeks_and_a_stale_entry_does_not_block_it(journal: Journal) -> None:
    """An id received again weeks later is skipped (its row found through lookup_ids); once its row is gone
    without its entry (a partition dropped, not yet forgotten), the id is journaled again."""
    message = deliver(journal, 1, state="received")
    move_to_day(journal, [message.id], today() - timedelta(days=15))
    assert journal.received("orders", message) is False
    (seq,) = seq_of(journal, message.id)
    with journal._read().begin() as conn:  # the row gone as a drop takes it: no delete trigger runs
        conn.exec_driver_sql("SET LOCAL session_replication_role = replica")
        for table, key in reversed(partitions.TABLES):
            conn.execute(sa.text(f"DELETE FROM {table} WHERE {key} = :s"), {"s": seq})
    assert rows(journal, "SELECT seq FROM lookup_ids") == [(seq,)]  # stale
    assert journal.received("orders", message) is True
    (again,) = seq_of(journal, message.id)
    assert again != seq
    assert rows(journal, "SELECT seq FROM lookup_ids") == [(again,)]


def test_prune_removes_the_entries_of_the_dropped_week_and_keeps_those_that_stay(
    journal: Journal, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A week dropped by the prune takes its messages' look-up entries with it (forgotten after the drop);
    the dead letter moved into the new partition keeps its entries and is still traced by its key."""
    written_at(monkeypatch, 40)
    gone = [deliver(journal, n) for n in range(4)]
    dead = deliver(journal, 20, state="dead_lettered")
    monkeypatch.undo()
    young = deliver(journal, 50)
    move_to_day(journal, [m.id for m in (*gone, dead)], today() - timedelta(days=40))
    result = journal.prune(Policy(delivered_days=30, filtered_days=30, archive=tmp_path / "archive"))
    assert result.messages == 4
    assert (result.rows["lookup_ids"], result.rows["lookup_keys"]) == (4, 4)
    assert rows(journal, LOOKUPS) == rows(journal, FROM_ROWS)
    assert {r[1] for r in rows(journal, LOOKUPS) if r[0] == "id"} == {dead.id, young.id}
    assert {s.message_id for s in build_trace(journal, "SO00000020").steps} == {dead.id}


def test_the_row_prune_removes_the_entries_of_the_rows_it_deletes(
    journal: Journal, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Messages pruned row by row (their week stays) leave the look-up tables by the delete triggers."""
    written_at(monkeypatch, 40)
    delivered = deliver(journal, 1)
    dead = [deliver(journal, n, state="dead_lettered") for n in (20, 21)]
    monkeypatch.undo()
    move_to_day(journal, [m.id for m in (delivered, *dead)], today() - timedelta(days=40))
    result = journal.prune(Policy(delivered_days=30, filtered_days=30, archive=tmp_path / "archive"))
    assert (result.messages, result.dropped) == (1, [])
    assert rows(journal, LOOKUPS) == rows(journal, FROM_ROWS)
    assert {r[1] for r in rows(journal, LOOKUPS) if r[0] == "id"} == {m.id for m in dead}


def test_migration_0017_fills_the_tables_from_the_rows_and_goes_back(journal_url: str) -> None:
    """Down to 0015 the look-up tables and triggers go (0012's de-duplication back); up again they are
    filled from the partitions' rows, and a trace gives what it gave."""
    with Journal(journal_url) as journal:
        spread(journal)
        traced = build_trace(journal, "SO00000001").steps
    engine = sa.create_engine(journal_url)
    with engine.begin() as conn:
        command.downgrade(alembic_config(conn), "0015_route_minutes")
        assert conn.execute(sa.text("SELECT to_regclass('lookup_ids')")).scalar() is None
        source = conn.execute(sa.text("SELECT prosrc FROM pg_proc WHERE proname = 'journal_unique_id'"))
        assert "pg_advisory_xact_lock" in source.scalar_one()
    engine.dispose()
    with Journal(journal_url) as journal:
        assert rows(journal, LOOKUPS) == rows(journal, FROM_ROWS)
        assert len(rows(journal, LOOKUPS)) == 9 + 9  # 9 message rows, 9 business keys
        assert build_trace(journal, "SO00000001").steps == traced
        assert journal.received("orders", Message(body=b"x", id="m00001")) is False


def test_the_server_side_fill_fills_the_look_up_tables(journal: Journal, journal_url: str) -> None:
    """bench/journal_fill_pg.py, whose session runs without triggers, fills the look-up tables after its
    rows as migration 0017 does."""
    from bench.journal_fill import Filler
    from bench.journal_fill_pg import generate
    from esb.runtime.leader import pg_connect
    from tests.integration.test_journal_partitions_pg import _templates

    with pg_connect(journal_url) as conn:
        generate(conn, Filler(_templates(), 300, days=3), lambda done, total: None)
    found = rows(journal, LOOKUPS)
    assert len([r for r in found if r[0] == "id"]) == 300
    assert found == rows(journal, FROM_ROWS)
