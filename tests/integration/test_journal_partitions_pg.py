"""The day-partitioned PostgreSQL journal (esb/journal/partitions.py, migration 0012): a message's rows in
its day's partitions, a message id unique across days, prune dropping whole days (moving what stays), the
conversion of a 0010 journal with rows and back, and the server-side bench fill against the client-side one.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command

from esb.journal import Journal, partitions
from esb.journal import journal as journal_module
from esb.journal import usage as usage_module
from esb.journal.migrate import alembic_config
from esb.journal.retention import Policy, read_archive
from esb.message import utcnow
from esb.ops.trace import build_trace
from tests.integration.pg_server import PostgresJournals
from tests.unit.test_journal import bodies_by_both_lookups
from tests.unit.test_journal_retention import deliver

pytestmark = pytest.mark.integration


@pytest.fixture
def journal_url(pg_journals: PostgresJournals) -> str:
    """A fresh PostgreSQL database on the throwaway server."""
    return pg_journals.database("partitions")


@pytest.fixture
def journal(pg_journals: PostgresJournals, journal_url: str) -> Journal:
    """A connected journal on a fresh database (migrated to head: partitioned)."""
    return pg_journals.journal(journal_url)


def today() -> date:
    """Today in UTC (the server's day of a new message)."""
    return datetime.now(UTC).date()


def written_at(monkeypatch: pytest.MonkeyPatch, days_ago: float) -> None:
    """Make the journal write its timestamps ``days_ago`` days back."""
    when = utcnow() - timedelta(days=days_ago)
    monkeypatch.setattr(journal_module, "utcnow", lambda: when)


def move_to_day(journal: Journal, ids: list[str], day: date) -> None:
    """Move the rows of messages ``ids`` into ``day``'s partitions (as if the server had written them then):
    same number within the day's block, events and keys with them."""
    with journal._read().begin() as conn:
        partitions.lock(conn)
        partitions.create(conn, partitions.day_partition(day))
        found = conn.execute(sa.text("SELECT seq FROM messages WHERE id = ANY(:i)"), {"i": ids})
        seqs = list(found.scalars())
        for table, key in partitions.TABLES:
            copy = f"CREATE TEMP TABLE mv_{table} ON COMMIT DROP AS SELECT * FROM {table}"
            copy += f" WHERE {key} = ANY(:s)"
            conn.execute(sa.text(copy), {"s": seqs})
        for table, key in reversed(partitions.TABLES):
            conn.execute(sa.text(f"DELETE FROM {table} WHERE {key} = ANY(:s)"), {"s": seqs})
        for table, key in partitions.TABLES:
            moved = f"{partitions.day_floor(day)} + mod({key}, {partitions.PER_DAY})"
            conn.exec_driver_sql(f"UPDATE mv_{table} SET {key} = {moved}")
            conn.exec_driver_sql(f"INSERT INTO {table} SELECT * FROM mv_{table}")


def seq_of(journal: Journal, message_id: str) -> list[int]:
    """The seqs of the rows of ``message_id``."""
    with journal._read().connect() as conn:
        query = sa.text("SELECT seq FROM messages WHERE id = :i ORDER BY seq")
        return list(conn.execute(query, {"i": message_id}).scalars())


def leaf_exists(journal: Journal, day: date, table: str = "messages") -> bool:
    """Whether ``day``'s partition of ``table`` exists."""
    with journal._read().connect() as conn:
        name = partitions.day_partition(day).leaf(table)
        return conn.execute(sa.text("SELECT to_regclass(:n)"), {"n": name}).scalar() is not None


def test_a_new_message_lands_in_todays_partition_and_the_next_days_exist(journal: Journal) -> None:
    """messages is partitioned; today's and AHEAD more days' partitions exist; a new row's seq is today's."""
    message = deliver(journal, 1)
    (seq,) = seq_of(journal, message.id)
    assert partitions.day_of(seq) == today()
    with journal._read().connect() as conn:
        assert partitions.is_partitioned(conn)
        suffixes = [part.suffix for part in partitions.existing(conn)]
    weeks = sorted({partitions.day_partition(today() + timedelta(days=n)).suffix for n in range(8)})
    assert suffixes == [partitions.DEFAULT, *weeks]  # this week's and the next one's
    with journal._read().connect() as conn:
        leaf = partitions.day_partition(today()).leaf("events")
        counted = conn.execute(sa.text(f"SELECT count(*) FROM {leaf}"))
        assert counted.scalar_one() == 3  # received, delivered to the endpoint, delivered: with their message


def test_a_message_id_stays_unique_on_its_route_across_partitions(journal: Journal) -> None:
    """A redelivery of a message first received in an earlier week adds an event to that row, no new row."""
    message = deliver(journal, 2, state="received")
    first = today() - timedelta(days=10)  # another week's partition
    move_to_day(journal, [message.id], first)
    assert journal.received("orders", message) is False
    (seq,) = seq_of(journal, message.id)
    assert partitions.day_of(seq) == first
    assert partitions.day_partition(first).suffix != partitions.day_partition(today()).suffix
    assert [e.state for e in journal.history(message.id)] == ["received", "redelivered"]
    assert journal.received("other-route", message) is True  # (id, route) is the key: another route's row
    assert len(seq_of(journal, message.id)) == 2


def test_ensure_ahead_creates_missing_weeks_once(journal: Journal) -> None:
    """Partitions for weeks further ahead are created when asked, and asking again creates nothing."""
    with journal._read().begin() as conn:
        made = partitions.ensure_ahead(conn, today(), ahead=partitions.AHEAD + 14)
        again = partitions.ensure_ahead(conn, today(), ahead=partitions.AHEAD + 14)
    later = [today() + timedelta(days=partitions.AHEAD + n) for n in (7, 14)]
    assert made == [partitions.day_partition(day).suffix for day in later]
    assert again == []
    assert all(leaf_exists(journal, day, table) for day in later for table in ("messages", "events"))


def test_a_day_without_its_partition_waits_in_the_default_one_until_it_is_created(journal: Journal) -> None:
    """With today's partitions gone, a message goes to the default partition; creating today's moves it
    there with its seq, events and keys."""
    with journal._read().begin() as conn:
        partitions.drop(conn, partitions.day_partition(today()))
    message = deliver(journal, 3)
    (seq,) = seq_of(journal, message.id)
    with journal._read().connect() as conn:
        waiting = conn.exec_driver_sql(f"SELECT count(*) FROM {partitions.SCHEMA}.events_default")
        assert waiting.scalar_one() == 3
    with journal._read().begin() as conn:
        assert partitions.ensure_ahead(conn, today()) == [partitions.day_partition(today()).suffix]
    with journal._read().connect() as conn:
        for table in ("messages", "events", "business_keys"):
            left = conn.exec_driver_sql(f"SELECT count(*) FROM {partitions.SCHEMA}.{table}_default")
            assert left.scalar_one() == 0
    assert seq_of(journal, message.id) == [seq]
    assert leaf_exists(journal, today())
    assert [e.state for e in journal.history(message.id)] == ["received", "delivered", "delivered"]
    assert {s.message_id for s in build_trace(journal, "SO00000003").steps} == {message.id}


def test_prune_drops_a_day_whose_messages_all_go(
    journal: Journal, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A day of old delivered and filtered messages is archived, then its partitions are dropped."""
    written_at(monkeypatch, 40)
    gone = [deliver(journal, n) for n in range(3)] + [deliver(journal, 10, state="filtered")]
    monkeypatch.undo()
    young = deliver(journal, 50)
    old_day = today() - timedelta(days=40)
    move_to_day(journal, [m.id for m in gone], old_day)
    archive = tmp_path / "archive"
    result = journal.prune(Policy(delivered_days=30, filtered_days=10, archive=archive, batch=2))
    assert result.dropped == [partitions.day_partition(old_day).suffix]
    assert result.messages == 4
    assert result.rows["messages"] == 4
    assert result.rows["business_keys"] == 4
    assert not leaf_exists(journal, old_day)
    assert {r["id"] for f in archive.iterdir() for r in read_archive(f)} == {m.id for m in gone}
    assert all(journal.find(message_id=m.id) == [] for m in gone)
    assert journal.body(young.id) == young.body_bytes()


def test_prune_moves_unhandled_dead_letters_into_a_new_partition_of_their_day(
    journal: Journal, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A day that mostly goes is dropped; its dead letter keeps its seq, events, keys and body in a new
    partition of that day, and is still found by its key."""
    written_at(monkeypatch, 40)
    gone = [deliver(journal, n) for n in range(4)]
    dead = deliver(journal, 20, state="dead_lettered")
    monkeypatch.undo()
    old_day = today() - timedelta(days=40)
    move_to_day(journal, [m.id for m in (*gone, dead)], old_day)
    (seq_before,) = seq_of(journal, dead.id)
    events_before = [(e.state, e.at) for e in journal.history(dead.id)]
    result = journal.prune(Policy(delivered_days=30, filtered_days=30, archive=tmp_path / "archive"))
    assert result.dropped == [partitions.day_partition(old_day).suffix]
    assert result.messages == 4
    assert seq_of(journal, dead.id) == [seq_before]
    assert [(e.state, e.at) for e in journal.history(dead.id)] == events_before
    assert journal.body(dead.id) == dead.body_bytes()
    assert [r.id for r in journal.find(state="dead_lettered")] == [dead.id]
    assert {s.message_id for s in build_trace(journal, "SO00000020").steps} == {dead.id}
    assert leaf_exists(journal, old_day)
    with journal._read().connect() as conn:
        left = conn.execute(sa.text(f"SELECT id FROM {partitions.day_partition(old_day).leaf('messages')}"))
        assert list(left.scalars()) == [dead.id]
    again = journal.prune(Policy(delivered_days=30, filtered_days=30, archive=tmp_path / "archive"))
    assert (again.messages, again.dropped) == (0, [])  # the dead letter alone: nothing to drop


def test_a_day_where_most_messages_stay_is_pruned_row_by_row(
    journal: Journal, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When more messages of a day must stay than may go, the day's partition stays and rows are deleted."""
    written_at(monkeypatch, 40)
    delivered = deliver(journal, 1)
    dead = [deliver(journal, n, state="dead_lettered") for n in (20, 21)]
    monkeypatch.undo()
    old_day = today() - timedelta(days=40)
    move_to_day(journal, [m.id for m in (delivered, *dead)], old_day)
    result = journal.prune(Policy(delivered_days=30, filtered_days=30, archive=tmp_path / "archive"))
    assert (result.messages, result.dropped) == (1, [])
    assert journal.find(message_id=delivered.id) == []
    assert sorted(r.id for r in journal.find(state="dead_lettered")) == sorted(m.id for m in dead)


def test_migration_0012_converts_a_0010_journal_with_rows_and_goes_back(
    journal_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Down to 0010 the rows are copied into plain tables; up again they become the legacy partition
    (seqs kept, still unique by id, traced, pruned whole) and new messages go to today's partition."""
    with Journal(journal_url) as journal:
        written_at(monkeypatch, 40)
        old = [deliver(journal, n) for n in range(3)]
        dead = deliver(journal, 20, state="dead_lettered")
        monkeypatch.undo()
        seqs = {m.id: seq_of(journal, m.id) for m in (*old, dead)}
    engine = sa.create_engine(journal_url)
    with engine.begin() as conn:
        command.downgrade(alembic_config(conn), "0010_dead_letter_index_covering")
        assert not partitions.is_partitioned(conn)
        assert conn.execute(sa.text("SELECT count(*) FROM messages")).scalar_one() == 4
        assert conn.execute(sa.text("SELECT count(*) FROM events")).scalar_one() == 3 * 3 + 2
        unique = "SELECT indisunique FROM pg_index WHERE indexrelid = 'ux_messages_id_route'::regclass"
        assert conn.execute(sa.text(unique)).scalar_one() is True
    engine.dispose()
    with Journal(journal_url) as journal:  # up again: 0012 on a 0010 journal with rows
        with journal._read().connect() as conn:
            assert partitions.existing(conn)[0].suffix == partitions.LEGACY
        assert {m.id: seq_of(journal, m.id) for m in (*old, dead)} == seqs
        steps = build_trace(journal, "SO00000001").steps
        assert [s.state for s in steps] == ["received", "delivered", "delivered"]
        fresh = deliver(journal, 60)
        assert partitions.day_of(seq_of(journal, fresh.id)[0]) == today()
        result = journal.prune(Policy(delivered_days=30, filtered_days=30, archive=tmp_path / "archive"))
        assert result.dropped == [partitions.LEGACY]
        assert result.messages == 3
        assert [r.id for r in journal.find(state="dead_lettered")] == [dead.id]
        assert journal.body(fresh.id) == fresh.body_bytes()
        assert journal.received("orders", dead) is False  # its legacy row is seen from today's partition
        assert seq_of(journal, dead.id) == seqs[dead.id]


def _templates() -> dict[str, object]:
    """Template rows as bench/journal_fill.py takes them from the real route (made up: no hub run)."""
    orders = []
    for k in range(100):
        message = {"source": "siebel.orders", "body": f"<order n='{k}'/>".encode()}
        evs = [{"state": "received", "endpoint": None, "body": None}]
        for ep in ("a.b", "c.d"):
            evs.append({"state": "delivered", "endpoint": ep, "body": f"<{ep} n='{k}'/>".encode()})
        evs.append({"state": "delivered", "endpoint": None, "body": None})
        orders.append((message, evs))
    return {"dictionaries": [], "orders": orders}


def test_the_server_side_fill_writes_the_rows_of_the_client_side_one(
    journal: Journal, journal_url: str
) -> None:
    """bench/journal_fill_pg.py generates the same messages, events and keys as Filler.rows (the slow
    path), each in the partition of its day; MSISDNs differ only in their digits; ``dead_letters`` holds
    every dead-lettered message, as 0011's trigger (off during the fill) would have written it (0018: with
    its id)."""
    from bench.journal_fill import Filler
    from bench.journal_fill_pg import generate
    from esb.runtime.leader import pg_connect

    n = 1000
    filler = Filler(_templates(), n, days=3)
    msgs, evs, keys = filler.rows(0, n)
    with pg_connect(journal_url) as conn:
        generate(conn, filler, lambda done, total: None)
        got_m = conn.execute("SELECT * FROM messages ORDER BY seq").fetchall()
        got_e = conn.execute("SELECT * FROM events ORDER BY id").fetchall()
        got_k = conn.execute("SELECT * FROM business_keys ORDER BY message_seq, name").fetchall()
        got_d = conn.execute("SELECT * FROM dead_letters ORDER BY message_seq").fetchall()
        dead = conn.execute(
            "SELECT DISTINCT m.seq, m.route, m.received_at, m.id FROM messages m JOIN events e"
            " ON e.message_seq = m.seq AND e.state = 'dead_lettered' ORDER BY 1"
        ).fetchall()
    assert dead
    assert got_d == dead
    seq_of_i = {row[0]: i for i, row in enumerate(msgs)}  # client-side seq -> i
    assert [row[1:] for row in got_m] == [(*row[1:9], bytes(row[9]), *row[10:]) for row in msgs]
    for i, row in enumerate(got_m):
        assert row[0] == partitions.day_floor(row[11].date()) + i + 1  # the seq of the day it arrived
    server_i = {row[0]: i for i, row in enumerate(got_m)}
    assert [(server_i[r[1]], *r[2:]) for r in got_e] == [(seq_of_i[r[1]], *r[2:]) for r in evs]
    mine = sorted((seq_of_i[s], name, value) for s, name, value in keys)
    theirs = sorted((server_i[s], name, value) for s, name, value in got_k)
    assert [(i, name) for i, name, _ in theirs] == [(i, name) for i, name, _ in mine]
    for (_, name, value), (_, _, expected) in zip(theirs, mine, strict=True):
        if name == "msisdn":
            assert (value[:3] in ("133", "153", "189"), len(value)) == (True, 11)
        else:
            assert value == expected
    assert len({partitions.day_of(row[0]) for row in got_m}) >= 3  # spread over the days' partitions


def test_stats_estimate_a_partitioned_journal_from_the_planner_not_from_seq_samples(
    journal: Journal, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`esb journal stats` on a partitioned journal (seq spans of 10^10 a day, mostly gaps) gives the rows
    of messages and keys from PostgreSQL's statistics, counted exactly before any ANALYZE."""
    written_at(monkeypatch, 40)
    old = [deliver(journal, n) for n in range(5)]
    monkeypatch.undo()
    for n in range(10, 30):
        deliver(journal, n)
    move_to_day(journal, [m.id for m in old], today() - timedelta(days=40))
    exact = journal.usage(exact=True)
    assert exact.rows["messages"] == 25
    before = journal.usage()
    assert (before.rows["messages"], before.rows["business_keys"]) == (25, exact.rows["business_keys"])
    with journal._read().connect() as conn:
        conn.exec_driver_sql("ANALYZE")
    after = journal.usage()
    assert after.estimated
    assert (after.rows["messages"], after.rows["business_keys"]) == (25, exact.rows["business_keys"])
    assert after.rows["events"] == exact.rows["events"]  # the planner's too, once analysed


#: The tables whose full scan `esb journal stats` must not make on a partitioned journal (95 s at 10 M).
BIG = ("messages", "events", "business_keys")


def _scans(plan: dict[str, object]) -> Iterator[dict[str, object]]:
    """Every node of an EXPLAIN (FORMAT JSON) plan."""
    yield plan
    for child in plan.get("Plans", []):  # type: ignore[attr-defined]
        yield from _scans(child)


def unbounded_scans(conn: sa.Connection, sql: str, params: object) -> list[str]:
    """The scans of a big table's partition in ``sql``'s plan (sequential scans off) that no condition on
    their index's first column bounds: a sequential scan, or an index read whole (but a partial one: the
    dead letters')."""
    conn.exec_driver_sql("SET enable_seqscan = off")
    plan = conn.exec_driver_sql("EXPLAIN (VERBOSE, FORMAT JSON) " + sql, params).scalar_one()[0]["Plan"]  # type: ignore[arg-type]
    found = []
    for node in _scans(plan):
        table = str(node.get("Relation Name", ""))
        if not table.startswith(BIG):
            continue
        probes = [n for n in _scans(node) if "Index Name" in n]  # a bitmap scan's are below it
        if not probes:
            found.append(f"{node['Node Type']} on {table}")
        for probe in probes:
            first, partial = conn.execute(
                sa.text(
                    "SELECT a.attname, i.indpred IS NOT NULL FROM pg_index AS i JOIN pg_attribute AS a"
                    " ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]"
                    " WHERE i.indexrelid = to_regclass(:ix)"
                ),
                {"ix": f"{partitions.SCHEMA}.{probe['Index Name']}"},
            ).one()
            if not partial and not re.search(rf"\b{first}\b", str(probe.get("Index Cond", ""))):
                found.append(
                    f"{probe['Node Type']} on {table} by {probe['Index Name']}: {probe.get('Index Cond')}"
                )
    conn.exec_driver_sql("RESET enable_seqscan")
    return found


def statements_of(journal: Journal, call: Callable[[], object]) -> list[tuple[str, object]]:
    """The SELECT statements (with their parameters) the journal runs during ``call()``."""
    run: list[tuple[str, object]] = []
    engine = journal._read()

    def capture(_conn: object, _cur: object, sql: str, params: object, *_: object) -> None:
        if sql.lstrip().upper().startswith("SELECT"):
            run.append((sql, params))

    sa.event.listen(engine, "before_cursor_execute", capture)
    try:
        call()
    finally:
        sa.event.remove(engine, "before_cursor_execute", capture)
    return run


def test_stats_of_a_partitioned_journal_scan_no_big_table_and_match_the_exact_counts(
    journal: Journal, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`esb journal stats` on a partitioned journal reads messages, events and keys through a bound on
    their index's first column only (no scan of `events` by `id`: 95 s at 10 M), and gives the exact
    figures on a small analysed journal."""
    written_at(monkeypatch, 40)
    old = [deliver(journal, n) for n in range(5)] + [deliver(journal, 5, state="dead_lettered")]
    monkeypatch.undo()
    for n in range(10, 30):
        deliver(journal, n)
    deliver(journal, 30, state="filtered")
    move_to_day(journal, [m.id for m in old], today() - timedelta(days=40))
    with journal._read().connect() as conn:
        conn.exec_driver_sql("ANALYZE")
    estimate, exact = journal.usage(), journal.usage(exact=True)
    assert estimate.estimated
    assert (estimate.rows, estimate.outcomes) == (exact.rows, exact.outcomes)
    assert (exact.outcomes["dead_lettered"], exact.outcomes["filtered"]) == (1, 1)
    # narrow ranges (a small journal's spans are otherwise counted whole, which a plan may read whole)
    monkeypatch.setattr(usage_module, "WINDOWS", 4)
    monkeypatch.setattr(usage_module, "OUTCOME_MESSAGES", 2)
    run = statements_of(journal, journal.usage)
    engine = journal._read()
    assert any("FROM events" in sql and "message_seq" in sql for sql, _ in run)
    with engine.connect() as conn:
        assert [(sql, unbounded_scans(conn, sql, params)) for sql, params in run] == [(s, []) for s, _ in run]


def test_event_body_by_message_id_reads_what_the_id_alone_reads_through_bounded_scans(
    journal: Journal,
) -> None:
    """On a partitioned journal ``event_body(id, message_id)`` returns what ``event_body(id)`` does for
    every event of an id on two routes, and its statement reads ``events`` by ``message_seq`` (the id alone
    scans every event's partition)."""
    pairs = bodies_by_both_lookups(journal)
    assert [alone for alone, _ in pairs] == [bounded for _, bounded in pairs]
    assert sum(1 for alone, _ in pairs if alone is not None) == 4
    with journal._read().connect() as conn:
        conn.exec_driver_sql("ANALYZE")
    event = next(e for e in journal.history(journal.find(key=("order_id", "1-DIFF"))[0].id) if e.has_body)
    bounded = statements_of(journal, lambda: journal.event_body(event.id, event.message_id))
    alone = statements_of(journal, lambda: journal.event_body(event.id))
    assert len(bounded) == 2  # the message's seqs, then its event
    with journal._read().connect() as conn:
        assert [unbounded_scans(conn, sql, params) for sql, params in bounded] == [[], []]
        assert unbounded_scans(conn, *alone[0]) != []  # what the dry run read before
