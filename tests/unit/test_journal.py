"""Behaviour of the message journal, run against SQLite here and PostgreSQL in
tests/integration/test_journal_postgres.py (which re-uses these cases with its own ``journal_url``)."""

from __future__ import annotations

import itertools
import logging
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from esb.exceptions import SchemaValidationError, TransportError
from esb.journal import Journal, partitions
from esb.journal.migrate import current, head
from esb.journal.schema import VERSION_TABLE, metadata
from esb.message import Message
from esb.process.engine import tables as _process_tables  # noqa: F401  # on the journal's metadata too
from esb.sync import runtables as _sync_run_tables  # noqa: F401  # on the journal's metadata too
from esb.sync import tables as _sync_tables  # noqa: F401  # on the journal's metadata too

BODY = b'<order id="1-ABC">secret-body-marker</order>'


@pytest.fixture
def journal_url(tmp_path: Path) -> str:
    """A fresh SQLite database file."""
    return f"sqlite:///{tmp_path / 'journal.db'}"


@pytest.fixture
def journal(journal_url: str) -> Iterator[Journal]:
    """A connected journal on a fresh database."""
    with Journal(journal_url) as j:
        yield j


def order(**keys: str) -> Message:
    """Return an order message at ingress with the given business keys."""
    return Message(body=BODY, type="order.submitted", source="crm", business_keys=dict(keys))


def test_fresh_database_is_created_by_the_migration(journal_url: str) -> None:
    """connect() on an empty database creates the four tables and stamps the head revision."""
    with Journal(journal_url) as j:
        engine = sa.create_engine(journal_url)
        try:
            with engine.connect() as conn:
                tables = set(sa.inspect(conn).get_table_names())
                assert {"messages", "events", "business_keys", VERSION_TABLE} <= tables
                assert "deliveries" not in tables, "deliveries are the delivered events since 0007"
                assert current(conn) == head()
        finally:
            engine.dispose()
        assert j.find() == []


def test_migrated_schema_matches_the_tables_in_code(journal: Journal, journal_url: str) -> None:
    """Comparing the metadata with the migrated database finds no drift (alembic check)."""
    engine = sa.create_engine(journal_url)
    try:
        with engine.connect() as conn:
            opts: dict[str, object] = {"version_table": VERSION_TABLE, "compare_type": True}
            include = partitions.comparable(conn)  # PostgreSQL: what partitioning adds by design
            if include is not None:
                opts["include_object"] = include
            context = MigrationContext.configure(conn, opts=opts)
            assert compare_metadata(context, metadata) == []
    finally:
        engine.dispose()


def test_second_connect_keeps_data_and_does_not_migrate_again(journal_url: str) -> None:
    """A journal opened again on a migrated database sees the earlier messages."""
    message = order()
    with Journal(journal_url) as first:
        first.received("orders", message)
    with Journal(journal_url) as second:
        assert [r.id for r in second.find()] == [message.id]


def test_received_stores_envelope_and_raw_body(journal: Journal) -> None:
    """received() keeps the envelope, headers, keys and the exact body bytes at ingress."""
    message = order(order_id="1-ABC", msisdn="13307550001")
    message.headers["x-channel"] = "web"
    journal.received("orders", message)
    (record,) = journal.find(message_id=message.id)
    assert (record.route, record.type, record.source, record.state) == (
        "orders",
        "order.submitted",
        "crm",
        "received",
    )
    assert record.headers == {"x-channel": "web"}
    assert record.business_keys == {"order_id": "1-ABC", "msisdn": "13307550001"}
    assert record.has_body
    assert record.delivery_count == 1
    assert journal.body(message.id) == BODY


def test_dict_body_is_stored_as_json(journal: Journal) -> None:
    """A canonical dict body is kept as its JSON bytes."""
    message = Message(body={"order": {"id": "1-ABC"}})
    journal.received("orders", message)
    assert journal.body(message.id) == b'{"order":{"id":"1-ABC"}}'


def test_redelivery_adds_an_event_not_a_second_message(journal: Journal) -> None:
    """Receiving the same id twice on a route keeps one message row and records 'redelivered'."""
    message = order()
    journal.received("orders", message)
    journal.received("orders", message, delivery_count=3)
    (record,) = journal.find(message_id=message.id)
    assert record.delivery_count == 3
    states = [(e.state, e.detail) for e in journal.history(message.id)]
    assert states == [("received", None), ("redelivered", {"delivery_count": 3})]


def test_same_id_on_two_routes_is_two_messages(journal: Journal) -> None:
    """A message forwarded to a second route keeps its id and is journaled once per route."""
    message = order()
    journal.received("ingress", message)
    journal.received("billing", message)
    assert sorted(r.route for r in journal.find(message_id=message.id)) == ["billing", "ingress"]


def test_keep_bodies_false_stores_no_body(journal_url: str) -> None:
    """With keep_bodies=False neither the ingress body nor event bodies are stored."""
    message = order()
    with Journal(journal_url, keep_bodies=False) as j:
        j.received("orders", message)
        j.event("orders", message, "transformed", body=b"{}")
        assert j.body(message.id) is None
        assert not any(e.has_body for e in j.history(message.id))


def test_event_records_error_class_reason_and_text(journal: Journal) -> None:
    """An error is stored as its class name, its machine reason and its text."""
    message = order()
    journal.received("orders", message)
    error = SchemaValidationError("order.v1", [("$.msisdn", "too short")])
    journal.event("orders", message, "failed", endpoint="billing", error=error, detail={"attempt": 2})
    journal.event("orders", message, "dead_lettered", error="gave up")
    failed, dead = journal.history(message.id)[1:]
    assert (failed.error_class, failed.error_reason, failed.endpoint) == (
        "SchemaValidationError",
        "schema-violation",
        "billing",
    )
    assert "$.msisdn: too short" in (failed.error_text or "")
    assert failed.detail == {"attempt": 2}
    assert (dead.error_class, dead.error_text) == (None, "gave up")


def test_unknown_state_is_refused(journal: Journal) -> None:
    """event() with a state outside the list raises ValueError naming the valid states."""
    with pytest.raises(ValueError, match="dead_lettered"):
        journal.event("orders", order(), "lost")


def test_event_for_a_derived_message_journals_it(journal: Journal) -> None:
    """A split part seen first in an event gets its own message row, linked to its parent."""
    parent = order(order_id="1-ABC")
    journal.received("orders", parent)
    child = parent.derive({"line": 1}, suffix="1")
    journal.event("orders", child, "transformed", body=b'{"line":1}')
    (record,) = journal.find(message_id=child.id)
    assert (record.causation_id, record.correlation_id) == (parent.id, parent.correlation_id)
    event = journal.history(child.id)[0]
    assert journal.event_body(event.id) == b'{"line":1}'
    assert journal.body(child.id) is None


def test_outcome_is_the_last_final_state(journal: Journal) -> None:
    """outcome() is None in flight, the final route-level state once reached, None again after a replay."""
    message = order()
    journal.received("orders", message)
    assert journal.outcome("orders", message.id) is None
    journal.event("orders", message, "failed", error="timeout")
    assert journal.outcome("orders", message.id) is None
    journal.event("orders", message, "dead_lettered")
    assert journal.outcome("orders", message.id) == "dead_lettered"
    assert journal.outcome("other", message.id) is None
    journal.event("orders", message, "replayed")
    assert journal.outcome("orders", message.id) is None
    journal.event("orders", message, "delivered", endpoint="billing")
    assert journal.outcome("orders", message.id) is None, "one endpoint of a fan-out does not end the route"
    journal.event("orders", message, "delivered")
    assert journal.outcome("orders", message.id) == "delivered"


def test_mark_delivered_is_per_endpoint_and_idempotent(journal: Journal) -> None:
    """was_delivered() answers per route and endpoint; marking twice is harmless."""
    message = order()
    journal.received("orders", message)
    assert not journal.was_delivered("orders", message.id, "billing")
    journal.mark_delivered("orders", message, "billing")
    journal.mark_delivered("orders", message, "billing")
    assert journal.was_delivered("orders", message.id, "billing")
    assert not journal.was_delivered("orders", message.id, "crm")
    assert not journal.was_delivered("other", message.id, "billing")


def test_business_keys_added_after_a_transform_are_indexed(journal: Journal) -> None:
    """Keys that appear later (after a transform) are found like the ones at ingress."""
    message = order(order_id="1-ABC")
    journal.received("orders", message)
    message.business_keys["account_id"] = "ACC-9"
    journal.event("orders", message, "transformed")
    message.business_keys["msisdn"] = "13307550001"
    journal.business_keys(message)
    assert [r.id for r in journal.find(key=("account_id", "ACC-9"))] == [message.id]
    assert [r.id for r in journal.find(key=("msisdn", "13307550001"))] == [message.id]
    assert journal.find(key=("msisdn", "1-ABC")) == []


def test_find_filters_and_orders_newest_first(journal: Journal) -> None:
    """find() combines route, correlation, state and time filters, newest first, up to limit."""
    first, second, third = order(), order(), order()
    second.correlation_id = first.correlation_id
    for message in (first, second, third):
        journal.received("orders", message)
    journal.received("billing", third)
    journal.event("orders", second, "dead_lettered")
    assert [r.id for r in journal.find(route="orders")] == [third.id, second.id, first.id]
    assert [r.id for r in journal.find(route="orders", limit=1)] == [third.id]
    assert [r.id for r in journal.find(correlation_id=first.correlation_id)] == [second.id, first.id]
    assert [r.id for r in journal.find(state="dead_lettered")] == [second.id]
    future = datetime.now(UTC) + timedelta(hours=1)
    assert journal.find(since=future) == []
    assert len(journal.find(until=future)) == 4


def test_history_spans_routes_in_time_order(journal: Journal) -> None:
    """history() lists a message's events on every route in the order they happened."""
    message = order()
    journal.received("ingress", message)
    journal.event("ingress", message, "delivered", endpoint="direct:billing")
    journal.received("billing", message)
    journal.event("billing", message, "delivered", endpoint="billing.accounts")
    events = journal.history(message.id)
    assert [(e.route, e.state) for e in events] == [
        ("ingress", "received"),
        ("ingress", "delivered"),
        ("billing", "received"),
        ("billing", "delivered"),
    ]
    assert all(a.at <= b.at for a, b in itertools.pairwise(events))
    assert all(e.at.tzinfo is not None and e.at.utcoffset() == timedelta(0) for e in events)


def test_trace_follows_correlation_and_causation(journal: Journal) -> None:
    """trace() by business key, correlation id or any message id returns the whole conversation."""
    request = order(order_id="1-ABC")
    journal.received("orders", request)
    part = request.derive({"line": 1}, suffix="1")
    journal.event("orders", part, "delivered", endpoint="billing")
    reply = Message(body=b"ok", correlation_id="other-conv", causation_id=part.id)
    journal.received("replies", reply)
    unrelated = order(order_id="2-XYZ")
    journal.received("orders", unrelated)
    expected = {request.id, part.id, reply.id}
    for key in ("1-ABC", request.correlation_id, reply.id, part.id):
        events = journal.trace(key)
        assert {e.message_id for e in events} == expected, key
        assert [e.id for e in events] == sorted(e.id for e in events)
    assert journal.trace("nothing-like-this") == []


def test_body_is_the_ingress_body(journal: Journal) -> None:
    """body() returns the bytes at ingress, not a later transformed body; None for unknown ids."""
    message = order()
    journal.received("orders", message)
    journal.event("orders", message, "transformed", body=b"changed")
    assert journal.body(message.id) == BODY
    assert journal.body("no-such-id") is None


def test_counts_per_route_and_state(journal: Journal) -> None:
    """counts() groups events by route and state, filtered by route and time."""
    a, b = order(), order()
    journal.received("orders", a)
    journal.received("orders", b)
    journal.event("orders", a, "delivered", endpoint="billing")
    journal.received("billing", a)
    assert journal.counts() == {"orders": {"received": 2, "delivered": 1}, "billing": {"received": 1}}
    assert journal.counts(route="billing") == {"billing": {"received": 1}}
    assert journal.counts(since=datetime.now(UTC) + timedelta(minutes=5)) == {}


def test_timestamps_come_back_in_utc(journal: Journal) -> None:
    """A created_at in another zone is stored and returned as the same instant in UTC."""
    shanghai = datetime(2025, 3, 1, 8, 0, tzinfo=UTC) + timedelta(hours=8)
    message = order()
    message.created_at = shanghai.astimezone(__import__("zoneinfo").ZoneInfo("Asia/Shanghai"))
    journal.received("orders", message)
    (record,) = journal.find(message_id=message.id)
    assert record.created_at == shanghai
    assert record.created_at.tzinfo == UTC


def test_closed_journal_refuses_calls_and_close_is_idempotent(journal_url: str) -> None:
    """Calls before connect() or after close() raise; close() twice is fine."""
    j = Journal(journal_url)
    with pytest.raises(RuntimeError, match="connect"):
        j.received("orders", order())
    j.connect()
    j.close()
    j.close()
    with pytest.raises(RuntimeError, match="connect"):
        j.find()


def test_database_error_is_a_transport_error_without_the_body(journal: Journal, journal_url: str) -> None:
    """A failing statement raises TransportError naming the journal; the body never appears in it."""
    engine = sa.create_engine(journal_url)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text("DROP TABLE business_keys"))
    finally:
        engine.dispose()
    with pytest.raises(TransportError) as caught:
        journal.received("orders", order(order_id="1-ABC"))
    assert caught.value.retryable
    assert "journal received" in str(caught.value)
    assert b"secret-body-marker".decode() not in str(caught.value)
    assert "secret-body-marker" not in str(caught.value.__cause__)


def test_bodies_never_reach_the_logs(journal_url: str, caplog: pytest.LogCaptureFixture) -> None:
    """Nothing the journal or its libraries log at DEBUG contains a body."""
    caplog.set_level(logging.DEBUG)
    with Journal(journal_url) as j:
        message = order(order_id="1-ABC")
        j.received("orders", message)
        j.event("orders", message, "transformed", body=BODY)
        j.history(message.id)
    assert caplog.records, "expected some log lines (migrations) to check"
    assert not any("secret-body-marker" in r.getMessage() for r in caplog.records)


def test_threads_write_concurrently(journal: Journal) -> None:
    """Eight threads journaling at once lose nothing and raise nothing."""
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            for i in range(25):
                message = order(order_id=f"T{n}-{i}")
                journal.received("orders", message)
                journal.event("orders", message, "transformed")
                journal.mark_delivered("orders", message, "billing")  # the delivered event naming it
        except BaseException as error:  # report it in the main thread
            errors.append(error)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert journal.counts()["orders"] == {"received": 200, "transformed": 200, "delivered": 200}


WORKER = """
import sys
from esb.journal import Journal
from esb.message import Message
url, prefix = sys.argv[1], sys.argv[2]
j = Journal(url)
j.connect()
for i in range(30):
    m = Message(body=b"x", id=f"{prefix}-{i}", business_keys={"order_id": f"{prefix}-{i}"})
    j.received("orders", m)
    j.mark_delivered("orders", m, "billing")
j.close()
"""


def test_processes_migrate_and_write_at_once(journal_url: str) -> None:
    """Four processes starting together on a fresh database migrate once and all their writes land."""
    procs = [
        subprocess.Popen([sys.executable, "-c", WORKER, journal_url, f"p{n}"], stderr=subprocess.PIPE)
        for n in range(4)
    ]
    failures = [p.stderr.read().decode() for p in procs if p.wait(timeout=120) != 0 and p.stderr]
    for p in procs:
        if p.stderr:
            p.stderr.close()
    assert failures == []
    with Journal(journal_url) as j:
        assert j.counts() == {"orders": {"received": 120, "delivered": 120}}
        assert j.was_delivered("orders", "p3-29", "billing")


def test_a_message_deleted_elsewhere_fails_once_then_is_journaled_again(
    journal: Journal, journal_url: str
) -> None:
    """If another process deleted a message row, the next write fails retryably and the retry succeeds."""
    message = order(order_id="1-ABC")
    journal.received("orders", message)
    engine = sa.create_engine(journal_url)
    try:
        with engine.begin() as conn:
            # in_flight too, as the cascade would: an orphan row of it (foreign keys off here) deleted by
            # the event's trigger would cancel SQLite's count of the event's own violation
            for table in ("events", "business_keys", "in_flight", "messages"):
                conn.execute(sa.text(f"DELETE FROM {table}"))
    finally:
        engine.dispose()
    with pytest.raises(TransportError):
        journal.event("orders", message, "delivered", endpoint="billing")
    journal.event("orders", message, "delivered", endpoint="billing")
    assert journal.outcome("orders", message.id) is None, "one endpoint of a fan-out does not end the route"
    journal.event("orders", message, "delivered")
    assert journal.outcome("orders", message.id) == "delivered"
    assert [r.id for r in journal.find(key=("order_id", "1-ABC"))] == [message.id]


def test_received_many_tells_first_arrivals_from_redeliveries(journal: Journal) -> None:
    """received_many journals a batch in one go: new ids are first, known ids (and repeats) redeliveries."""
    known, fresh = order(order_id="SO-1"), order(order_id="SO-2")
    journal.received("orders", known)
    firsts = journal.received_many("orders", [(known, 2), (fresh, 1), (fresh, 1)])
    assert firsts == [False, True, False]
    assert [e.state for e in journal.history(fresh.id)] == ["received", "redelivered"]
    assert journal.body(fresh.id) == BODY
    assert [r.id for r in journal.find(key=("order_id", "SO-2"))] == [fresh.id]


def test_settle_many_records_deliveries_and_outcomes(journal: Journal) -> None:
    """settle_many records each confirmed delivery and ends each message as delivered or filtered."""
    sent, dropped = order(order_id="SO-3"), order(order_id="SO-4")
    journal.received_many("orders", [(sent, 1), (dropped, 1)])
    output = sent.derive(
        {"iom": True}, suffix="0", business_keys={"order_id": "SO-3", "msisdn": "13300000001"}
    )
    journal.settle_many(
        "orders", [(sent, "delivered", [(output, "iom.orders_in")]), (dropped, "filtered", [])]
    )
    assert journal.outcome("orders", sent.id) == "delivered"
    assert journal.outcome("orders", dropped.id) == "filtered"
    assert journal.was_delivered("orders", output.id, "iom.orders_in")
    [delivered] = [e for e in journal.history(output.id) if e.state == "delivered"]
    assert delivered.endpoint == "iom.orders_in"
    assert journal.event_body(delivered.id) == b'{"iom":true}'
    assert [r.id for r in journal.find(key=("msisdn", "13300000001"))] == [output.id]


def test_write_cache_keeps_in_flight_messages_only(journal: Journal) -> None:
    """Once a message's journey ends (batched or not) the journal's write cache forgets it (flat memory)."""
    batched, single, dropped = order(order_id="SO-5"), order(order_id="SO-6"), order(order_id="SO-7")
    journal.received_many("orders", [(batched, 1), (dropped, 1)])
    journal.received("orders", single)
    assert len(journal._seen) == 3, "in-flight messages are remembered"
    output = batched.derive({"iom": True}, suffix="0")
    journal.settle_many("orders", [(batched, "delivered", [(output, "iom.orders_in")])])
    single_out = single.derive({"iom": True}, suffix="0")
    journal.mark_delivered("orders", single_out, "iom.orders_in", event=True, finish=single)
    journal.event("orders", dropped, "filtered")
    assert len(journal._seen) == 0
    outcomes = [journal.outcome("orders", m.id) for m in (batched, single, dropped)]
    assert outcomes == ["delivered", "delivered", "filtered"]


def test_write_cache_forgets_dead_letters_and_duplicates(journal: Journal) -> None:
    """A dead letter naming its endpoint, and a duplicate of a message that ended, leave no cache entry."""
    bad, done = order(order_id="SO-8"), order(order_id="SO-9")
    journal.received("orders", bad)
    journal.event("orders", bad, "dead_lettered", endpoint="crm.orders.dlq", error="invalid")
    journal.received("orders", done)
    journal.event("orders", done, "filtered")
    assert len(journal._seen) == 0
    journal.received("orders", done, delivery_count=2)  # the duplicate the worker then settles
    assert journal.outcome("orders", done.id) == "filtered"
    assert len(journal._seen) == 0
    fan_out = order(order_id="SO-10")
    journal.received("orders", fan_out)
    journal.event("orders", fan_out, "delivered", endpoint="iom.orders_in")  # one endpoint of several
    assert len(journal._seen) == 1, "a per-endpoint delivery does not end the journey"


def test_bulk_inserts_store_what_the_sqlalchemy_path_stores(journal: Journal) -> None:
    """The batched path's driver-level inserts (esb/journal/bulk.py) store the very values (as the database
    holds them) that SQLAlchemy's insert of the same rows stores: timestamps, JSON, bytes, NULLs, Chinese."""
    from esb.journal.bulk import EVENT_COLUMNS, KEY_COLUMNS, BulkStatements
    from esb.journal.schema import events

    fast_message, slow_message = order(), order()
    journal.received("orders", fast_message)
    journal.received("orders", slow_message)
    engine = journal._write()[0]
    bulk = BulkStatements.build(engine.dialect)
    at = datetime(2026, 12, 6, 23, 59, 58, 123456, tzinfo=UTC)
    with engine.connect() as conn:
        seqs = dict(conn.execute(sa.text("SELECT id, seq FROM messages")).all())
    fast, slow = seqs[fast_message.id], seqs[slow_message.id]

    def event_rows(seq: int) -> list[tuple[object, ...]]:
        return [
            (seq, "orders", "delivered", "iom.orders_in", None, None, None, None, b"\x00ejz\x01body", at),
            (seq, "orders", "filtered", None, None, None, None, {"step": "过滤", "n": [1, None]}, None, at),
            (
                seq,
                "orders",
                "failed",
                None,
                "SchemaValidationError",
                "schema-violation",
                "坏的 order",
                None,
                None,
                at,
            ),
            # what an array literal or a binary array must carry through: quotes, braces, commas,
            # backslashes, NULL as text, empty strings and bytes, a large body
            (seq, "orders", "failed", "", "a,b", '{"x"}', 'NULL \\ "q" {1,2}', {"k": 'x"{,}\\'}, b"", at),
            (seq, "orders", "delivered", "iom.orders_in", None, None, None, [], bytes(range(256)) * 400, at),
        ]

    keys = [("order_id", "SO1"), ("msisdn", "13307550001"), ("order_id", "SO1"), ("city", "深圳")]
    with engine.begin() as conn:
        processed = bulk.events.processor("at")(at)
        bulk.events.execute(conn, [(*row[:-1], processed) for row in event_rows(fast)], fixed=("at",))
        bulk.keys.execute(conn, [(fast, name, value) for name, value in keys])
        slow_rows = [dict(zip(EVENT_COLUMNS, row, strict=True)) for row in event_rows(slow)]
        conn.execute(sa.insert(events), slow_rows)
        add_keys = journal._write()[1].add_keys
        for name, value in keys:  # the slow path's insert-or-ignore, one row at a time
            conn.execute(add_keys, dict(zip(KEY_COLUMNS, (slow, name, value), strict=True)))
    columns = ", ".join(c for c in EVENT_COLUMNS if c != "message_seq")
    with engine.connect() as conn:  # the values as stored, without SQLAlchemy's result processing
        stored = {
            seq: conn.exec_driver_sql(
                f"SELECT {columns} FROM events WHERE message_seq = {seq} AND state != 'received' ORDER BY id"
            ).all()
            for seq in (fast, slow)
        }
        stored_keys = {
            seq: sorted(
                conn.exec_driver_sql(f"SELECT name, value FROM business_keys WHERE message_seq = {seq}")
            )
            for seq in (fast, slow)
        }
    assert len(stored[fast]) == 5
    assert stored[fast] == stored[slow]
    assert stored_keys[fast] == stored_keys[slow]
    assert ("city", "深圳") in stored_keys[fast]
    assert len(stored_keys[fast]) == 3, "the repeated key is ignored"
    [filtered] = [e for e in journal.history(fast_message.id) if e.state == "filtered"]
    assert filtered.detail == {"step": "过滤", "n": [1, None]}
    assert filtered.at == at


def test_bulk_insert_is_one_statement_per_batch(journal: Journal) -> None:
    """A batch's rows reach the database in few driver calls: one array statement on PostgreSQL (not a
    Bind/Execute per row) whose every column is already a binary array (esb/journal/pgarrays.py, not a list
    psycopg dumps element by element), multi-row statements of power-of-two sizes on SQLite."""
    from esb.journal.bulk import BulkStatements
    from esb.journal.pgarrays import EncodedArray

    message = order()
    journal.received("orders", message)
    engine = journal._write()[0]
    bulk = BulkStatements.build(engine.dialect)
    with engine.connect() as conn:
        seq = conn.execute(sa.text("SELECT seq FROM messages")).scalar_one()
    calls: list[tuple[str, bool]] = []
    parameters: list[object] = []

    def count(*event: object) -> None:  # conn, cursor, statement, parameters, context, executemany
        calls.append((str(event[2]), bool(event[5])))
        parameters.append(event[3])

    sa.event.listen(engine, "before_cursor_execute", count)
    try:
        with engine.begin() as conn:
            bulk.keys.execute(conn, [(seq, "order_id", f"SO{n}") for n in range(50)])
    finally:
        sa.event.remove(engine, "before_cursor_execute", count)
    inserts = [(statement, many) for statement, many in calls if statement.startswith(("INSERT", "WITH"))]
    postgres = engine.dialect.name == "postgresql"
    if postgres:
        assert inserts == [(bulk.keys.arrays_sql, False)]
        [sent] = [p for p, (sql, _) in zip(parameters, calls, strict=True) if sql.startswith("WITH")]
        assert isinstance(sent, dict)
        assert all(isinstance(value, EncodedArray) for value in sent.values()), sent
    else:
        assert bulk.keys.values is not None
        assert inserts == [(bulk.keys.values.text(size), False) for size in (32, 16, 2)]
    with engine.connect() as conn:
        stored = conn.execute(sa.text(f"SELECT count(*) FROM business_keys WHERE message_seq = {seq}"))
        assert stored.scalar() == 50


def test_bulk_message_rows_are_stored_as_sqlalchemy_stores_them(journal: Journal) -> None:
    """A new message row written by the batched path's driver-level insert holds the very values that
    SQLAlchemy's insert of the same row holds (headers JSON, timestamps, body bytes, NULLs)."""
    from esb.journal.bulk import MESSAGE_COLUMNS, BulkStatements
    from esb.journal.schema import messages

    engine = journal._write()[0]
    bulk = BulkStatements.build(engine.dialect)
    at = datetime(2026, 12, 6, 23, 59, 58, 5, tzinfo=UTC)
    row = {
        "route": "orders",
        "correlation_id": "c-1",
        "causation_id": None,
        "type": "order.submitted",
        "source": "crm",
        "schema": None,
        "headers": {"esb-来源": "crm", "n": 2},
        "body": b"\x00ejz\x01\xff",
        "created_at": at - timedelta(seconds=1),
        "received_at": at,
        "attempt": 1,
        "delivery_count": 3,
    }
    with engine.begin() as conn:
        received = bulk.messages.processor("received_at")(at)
        fast = {**row, "id": "fast", "received_at": received}
        bulk.messages.execute(conn, [tuple(fast[c] for c in MESSAGE_COLUMNS)], fixed=("received_at",))
        conn.execute(sa.insert(messages), [{**row, "id": "slow"}])
    columns = ", ".join(c for c in MESSAGE_COLUMNS if c != "id")
    with engine.connect() as conn:
        stored = {
            mid: conn.exec_driver_sql(f"SELECT {columns} FROM messages WHERE id = '{mid}'").one()
            for mid in ("fast", "slow")
        }
    assert stored["fast"] == stored["slow"]
    [record] = journal.find(message_id="fast")
    assert record.headers == {"esb-来源": "crm", "n": 2}
    assert record.received_at == at


#: Ids a look-up must match exactly: Chinese, quotes, a backslash, a comma, a JSON-looking and an empty one.
ODD_IDS = ["订单-1", "it's", 'say "x"', "a\\b", "a,b", '["x"]', "{1,2}", "", "NULL"]


def test_one_parameter_look_up_finds_what_the_expanding_in_finds(journal: Journal) -> None:
    """The batched path's id look-up (the whole list as one array or JSON parameter, through SQLAlchemy
    and handed to the driver as the batched path runs it) returns the very ``(id, seq)`` pairs of
    SQLAlchemy's expanding ``IN``: odd ids, ids of another route, unknown ids, repeats, and more ids than
    SQLite's old 999-parameter limit."""
    from esb.journal.schema import messages

    for mid in ODD_IDS:
        journal.received("orders", Message(id=mid or "-", body=BODY) if mid else order())
    stored_ids = [m.id for m in journal.find(limit=50)]
    journal.received("returns", Message(id="订单-1", body=BODY))  # the same id on another route
    engine, sql = journal._write()
    expanding = sa.select(messages.c.id, messages.c.seq).where(
        messages.c.route == sa.bindparam("r"), messages.c.id.in_(sa.bindparam("ids", expanding=True))
    )
    wanted = [*stored_ids, *stored_ids[:3], "unknown", *(f"missing-{n}" for n in range(1200))]
    with engine.connect() as conn:
        for route, ids in (("orders", wanted), ("returns", wanted), ("orders", ["none"]), ("orders", [])):
            one = sorted(conn.execute(sql.existing, {"r": route, "ids": ids}).all())
            driver = sorted(journal._batched().existing(conn, route, ids))
            slow = sorted(conn.execute(expanding, {"r": route, "ids": ids}).all()) if ids else []
            assert one == slow
            assert driver == [tuple(row) for row in slow]
    assert len(slow) == 0, "the last look-up was of no id"
    assert len(stored_ids) == len(ODD_IDS)


def test_one_parameter_look_up_reads_the_unique_index(journal: Journal) -> None:
    """On SQLite the look-up reads the ``(id, route)`` index, never a scan of every message."""
    engine, sql = journal._write()
    if engine.dialect.name != "sqlite":
        pytest.skip("SQLite's query plan")
    compiled = sql.existing.compile(dialect=engine.dialect)
    with engine.connect() as conn:
        plan = conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {compiled}", ("orders", '["a"]')).all()
    text = " ".join(str(row[-1]) for row in plan)
    assert "ux_messages_id_route" in text, text
    assert "SCAN messages" not in text, text


def test_bulk_output_rows_are_stored_as_sqlalchemy_stores_them(journal: Journal) -> None:
    """The outputs' message rows written by the batched path's driver-level insert-or-ignore hold what
    SQLAlchemy's insert-or-ignore of the same rows holds, skip a row already there, and report the seq of
    each row inserted (``RETURNING``: one array statement on PostgreSQL, multi-row ones on SQLite)."""
    from esb.journal.bulk import MESSAGE_COLUMNS, BulkStatements
    from esb.journal.rows import message_row

    engine, sql = journal._write()
    bulk = BulkStatements.build(engine.dialect)
    at = datetime(2026, 12, 7, 5, 30, 1, 250000, tzinfo=UTC)
    already = order()
    journal.received("orders", already)
    outputs = [
        Message(
            id=f"{kind}-{n}", body=b"", type="iom.order", headers={"来源": "crm", "n": n} if n else {},
            causation_id=already.id, correlation_id="c-7", created_at=at - timedelta(seconds=n),
        )
        for n in range(3)
        for kind in ("fast", "slow")
    ]
    with engine.begin() as conn:
        fast_rows = [message_row("orders", m, at, None) for m in outputs if m.id.startswith("fast")]
        returned = bulk.outputs.insert_returning(
            conn, [tuple(row[c] for c in MESSAGE_COLUMNS) for row in fast_rows]
        )
        ignored = bulk.outputs.insert_returning(
            conn, [tuple(message_row("orders", already, at, None)[c] for c in MESSAGE_COLUMNS)]
        )
        slow_rows = [message_row("orders", m, at, None) for m in outputs if m.id.startswith("slow")]
        conn.execute(sql.add_message, slow_rows)
        seqs = dict(conn.execute(sql.existing, {"r": "orders", "ids": [m.id for m in outputs]}).all())
    assert returned is not None
    assert sorted(returned) == sorted((r["id"], seqs[r["id"]]) for r in fast_rows)
    assert ignored == [], "a row already there returns nothing"
    columns = ", ".join(c for c in MESSAGE_COLUMNS if c != "id")
    with engine.connect() as conn:
        stored = {
            mid: conn.exec_driver_sql(f"SELECT {columns} FROM messages WHERE id = '{mid}'").one()
            for mid in seqs
        }
        count = conn.exec_driver_sql(f"SELECT count(*) FROM messages WHERE id = '{already.id}'").scalar()
    for n in range(3):
        assert stored[f"fast-{n}"] == stored[f"slow-{n}"]
    assert count == 1
    [record] = journal.find(message_id="fast-1")
    assert record.headers == {"来源": "crm", "n": 1}


def test_settle_many_journals_outputs_it_never_saw_and_ingress_it_did_not_receive(journal: Journal) -> None:
    """settle_many adds the rows of outputs with their own ids (once, even when named twice or already
    there) and finds an ingress message received by another journal (another hub process)."""
    elsewhere = order(order_id="SO-20")
    with Journal(journal.url) as other:
        other.received_many("orders", [(elsewhere, 1)])
    local = order(order_id="SO-21")
    journal.received_many("orders", [(local, 1)])
    first = local.derive({"iom": 1}, suffix="0", business_keys={"order_id": "SO-21"})
    again = elsewhere.derive({"iom": 2}, suffix="0")
    journal.received("orders", again)  # already journaled: the insert ignores its row
    journal.settle_many(
        "orders",
        [
            (local, "delivered", [(first, "iom.orders_in"), (first, "hub.product_orders")]),
            (elsewhere, "delivered", [(again, "iom.orders_in")]),
        ],
    )
    assert [journal.outcome("orders", m.id) for m in (local, elsewhere)] == ["delivered", "delivered"]
    endpoints = sorted(e.endpoint or "" for e in journal.history(first.id))
    assert endpoints == ["hub.product_orders", "iom.orders_in"]
    assert [e.state for e in journal.history(again.id)] == ["received", "delivered"]
    assert len(journal.find(message_id=first.id)) == 1
    assert sorted(r.id for r in journal.find(key=("order_id", "SO-21"))) == sorted([local.id, first.id])


def test_bulk_columns_null_in_every_row_are_stored_as_null(journal: Journal) -> None:
    """A batch whose nullable columns are NULL in every row (sent as empty arrays on PostgreSQL, which
    ``unnest`` pads) stores the very rows SQLAlchemy's insert stores: as many rows, NULLs where NULL."""
    from esb.journal.bulk import EVENT_COLUMNS, MESSAGE_COLUMNS, BulkStatements
    from esb.journal.schema import events, messages

    engine = journal._write()[0]
    bulk = BulkStatements.build(engine.dialect)
    at = datetime(2026, 12, 7, 5, 40, 0, 1, tzinfo=UTC)
    bare = {
        "route": "orders", "correlation_id": "c-9", "causation_id": None, "type": None, "source": None,
        "schema": None, "headers": None, "body": None, "created_at": None, "received_at": at, "attempt": 1,
        "delivery_count": 1,
    }
    with engine.begin() as conn:
        fast_rows = [{**bare, "id": f"fast-{n}"} for n in range(4)]
        returned = bulk.messages.insert_returning(
            conn, [tuple(row[c] for c in MESSAGE_COLUMNS) for row in fast_rows]
        )
        conn.execute(sa.insert(messages), [{**bare, "id": f"slow-{n}"} for n in range(4)])
        seqs = dict(conn.exec_driver_sql("SELECT id, seq FROM messages").all())
        bare_event = (None, None, None, None, None, None, at)  # endpoint .. body NULL, then ``at``
        bulk.events.execute(conn, [(seqs[f"fast-{n}"], "orders", "received", *bare_event) for n in range(4)])
        slow_events = [(seqs[f"slow-{n}"], "orders", "received", *bare_event) for n in range(4)]
        conn.execute(sa.insert(events), [dict(zip(EVENT_COLUMNS, row, strict=True)) for row in slow_events])
    assert returned is None or sorted(returned) == sorted((f"fast-{n}", seqs[f"fast-{n}"]) for n in range(4))
    message_columns = ", ".join(c for c in MESSAGE_COLUMNS if c != "id")
    event_columns = ", ".join(c for c in EVENT_COLUMNS if c != "message_seq")
    with engine.connect() as conn:
        for kind in ("fast", "slow"):
            stored_messages = {
                conn.exec_driver_sql(f"SELECT {message_columns} FROM messages WHERE id = '{kind}-{n}'").one()
                for n in range(4)
            }
            stored_events = {
                conn.exec_driver_sql(
                    f"SELECT {event_columns} FROM events WHERE message_seq = {seqs[f'{kind}-{n}']}"
                ).one()
                for n in range(4)
            }
            if kind == "fast":
                fast_messages, fast_events = stored_messages, stored_events
    assert fast_messages == stored_messages
    assert fast_events == stored_events
    assert len(fast_messages) == 1, "four identical rows"
    assert None in next(iter(fast_events))


def bodies_by_both_lookups(journal: Journal) -> list[tuple[bytes | None, bytes | None]]:
    """Journal one id on two routes with bodies; return each of their events' body read by event id alone
    and bounded by its message id (the dry run's look-up)."""
    message = order(order_id="1-DIFF")
    for route, body in (("orders", b'{"to":"iom"}'), ("billing", b'{"to":"bill"}')):
        journal.received(route, message)
        journal.event(route, message, "transformed", body=body)
        journal.mark_delivered(route, message, f"{route}.out", body=body + b" ", event=True, finish=message)
    return [
        (journal.event_body(e.id), journal.event_body(e.id, e.message_id))
        for e in journal.history(message.id)
    ]


def test_event_body_bounded_by_its_message_id_reads_what_the_id_alone_reads(journal: Journal) -> None:
    """``event_body(id, message_id)`` returns the body ``event_body(id)`` does for every event of an id on
    two routes, and nothing for an event of another message."""
    pairs = bodies_by_both_lookups(journal)
    assert [alone for alone, _ in pairs] == [bounded for _, bounded in pairs]
    assert sum(1 for alone, _ in pairs if alone is not None) == 4
    (transformed, *_) = journal.find(key=("order_id", "1-DIFF"))
    event = next(e for e in journal.history(transformed.id) if e.has_body)
    other = order(order_id="1-OTHER")
    journal.received("orders", other)
    assert journal.event_body(event.id, other.id) is None
