"""The PostgreSQL journal's batched path writes the look-up, in-flight and dead-letter rows in its own
statements (esb/journal/pgrows.py, migration 0019): the same rows as the triggers, none of them run, one
row per id between two writers, a stale entry taken over."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from alembic import command

from esb.journal import Journal
from esb.journal.migrate import alembic_config
from esb.journal.rows import message_values
from esb.message import Message, utcnow
from tests.integration.pg_server import PostgresJournals
from tests.integration.test_journal_lookups_pg import FROM_ROWS, LOOKUPS, rows
from tests.unit.test_journal_in_flight import expected_rows, table_rows

pytestmark = pytest.mark.integration

ROUTE = "crm-order-to-iom"
#: The trigger functions the batched path claims (0019's WHEN clause skips them in its transactions).
CLAIMED = (
    "journal_unique_id",
    "journal_lookup_keys_add",
    "esb_in_flight_add",
    "esb_in_flight_settled",
    "esb_dead_letters_handled",
)
#: Their triggers.
TRIGGERS = (
    "journal_unique_id",
    "journal_lookup_keys_add",
    "tr_events_in_flight",
    "tr_events_in_flight_settled",
    "tr_events_dead_letters_handled",
)
#: The message rows whose latest event is ``dead_lettered``: what ``dead_letters`` holds (0014).
DEAD = (
    "SELECT m.seq FROM messages AS m WHERE (SELECT e.state FROM events AS e WHERE e.message_seq = m.seq"
    " ORDER BY e.id DESC LIMIT 1) = 'dead_lettered' ORDER BY 1"
)


@pytest.fixture
def journal(pg_journals: PostgresJournals) -> Journal:
    """A journal in a fresh database on the throwaway PostgreSQL server."""
    return pg_journals.journal("pgrows")


def order(n: int) -> Message:
    """An order with a body and three business keys."""
    keys = {"order_id": f"SO{n:06d}", "msisdn": f"1330755{n:04d}", "account_id": f"A{n % 7}"}
    return Message(body=f"<order n='{n}'/>".encode(), id=f"order-{n:04d}", business_keys=keys)


def output(message: Message) -> Message:
    """The order's output to the IOM (its own id, one key of its own)."""
    return Message(body=b"<iom/>", id=f"out-{message.id}", business_keys={"iom_ref": f"I-{message.id}"})


def batched_workload(journal: Journal) -> None:
    """What the route's batches write: arrivals, redeliveries (in a batch and across batches), deliveries
    with outputs, failures, filtered ones, dead letters, dead letters redelivered and then delivered."""
    first = [order(n) for n in range(40)]
    journal.received_many(ROUTE, [(m, 1) for m in first] + [(first[0], 2)])
    outcomes: list[Any] = [(m, "delivered", [(output(m), "iom.orders_in")]) for m in first[:20]]
    outcomes += [(m, "failed", []) for m in first[20:25]]
    outcomes += [(m, "dead_lettered", []) for m in first[25:30]]
    outcomes += [(m, "filtered", []) for m in first[30:33]]
    journal.settle_many(ROUTE, outcomes, {first[30].id: {"why": "test"}})
    again = [(m, 2) for m in first[18:28]] + [(order(n), 1) for n in range(40, 50)]
    journal.received_many(ROUTE, again)  # redelivered: settled, failed and dead-lettered ones, and new ones
    journal.settle_many(ROUTE, [(m, "delivered", [(output(m), "iom.orders_in")]) for m in first[26:28]])
    journal.settle_many(ROUTE, [(order(n), "dead_lettered", []) for n in range(40, 43)])


def assert_tables_exact(journal: Journal) -> None:
    """The look-up tables hold the rows' ids and keys, in_flight and dead_letters what the events say."""
    assert rows(journal, LOOKUPS) == rows(journal, FROM_ROWS)
    assert table_rows(journal) == expected_rows(journal)
    assert rows(journal, "SELECT message_seq FROM dead_letters ORDER BY 1") == rows(journal, DEAD)


def test_the_batched_path_keeps_the_tables_exact_without_their_triggers(journal: Journal) -> None:
    """With the claimed triggers' functions made to fail, the batched path still writes, and the look-up,
    in-flight and dead-letter tables equal what the rows and events say; the per-message path fails."""
    with journal._read().begin() as conn:
        for function in CLAIMED:
            conn.exec_driver_sql(
                f"CREATE OR REPLACE FUNCTION {function}() RETURNS trigger LANGUAGE plpgsql AS $$"
                f" BEGIN RAISE EXCEPTION '{function} ran'; END $$"
            )
    batched_workload(journal)
    assert_tables_exact(journal)
    # in flight: redelivered 18-19 and 25, failed 20-24, untouched 33-39, new 43-49
    assert len(rows(journal, "SELECT 1 FROM in_flight")) == 2 + 1 + 5 + 7 + 7
    assert len(rows(journal, "SELECT 1 FROM dead_letters")) == 2 + 3  # 28-29, 40-42
    with pytest.raises(Exception, match="journal_unique_id ran"):
        journal.received(ROUTE, order(99))


@pytest.mark.parametrize("first_ends", ["commit", "rollback"])
def test_two_writers_of_one_id_make_one_row(pg_journals: PostgresJournals, first_ends: str) -> None:
    """A batch inserting an id another transaction is inserting waits for it: once that one commits, the
    batch adds no second row (its events go to the first's row); once it rolls back, the batch's row is
    the only one. lookup_ids names the row either way."""
    url = pg_journals.database("race")
    first, second = pg_journals.journal(url), pg_journals.journal(url)
    message = order(1)
    done: list[list[bool]] = []
    engine = first._write()[0]
    conn = engine.connect()
    transaction = conn.begin()
    bulk = first._batched()
    bulk.claim(conn)
    now = utcnow()
    inserted, _ = first._insert_rows(
        conn, ROUTE, bulk.messages, [message_values(ROUTE, message, now, b"x")], now
    )
    batch = threading.Thread(target=lambda: done.append(second.received_many(ROUTE, [(message, 1)])))
    batch.start()
    waiting = (
        "SELECT count(*) FROM pg_stat_activity"
        " WHERE datname = current_database() AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()"
    )
    with first._read().connect() as watch:
        while watch.exec_driver_sql(waiting).scalar() == 0 and batch.is_alive():
            watch.rollback()  # a fresh snapshot of the activity on the next round
    (transaction.commit if first_ends == "commit" else transaction.rollback)()
    conn.close()
    batch.join()
    assert done == [[True]]  # its arrival was a first one when its batch began
    found = rows(first, f"SELECT seq FROM messages WHERE id = '{message.id}'")
    assert len(found) == 1
    assert (found[0][0] == inserted[message.id]) is (first_ends == "commit")
    assert rows(first, "SELECT seq FROM lookup_ids") == found
    assert rows(first, "SELECT DISTINCT message_seq FROM events") == found


def test_a_stale_entry_is_taken_over_and_a_live_one_is_not(journal: Journal) -> None:
    """An id whose lookup_ids entry names no row (its partition dropped, not yet forgotten) is journaled
    again by a batch, the entry moved to the new row; an id whose entry names a row is not inserted."""
    stale, live = order(1), order(2)
    journal.received_many(ROUTE, [(live, 1)])
    with journal._read().begin() as conn:
        conn.exec_driver_sql(f"INSERT INTO lookup_ids (id, route, seq) VALUES ('{stale.id}', '{ROUTE}', 42)")
    live_seq = rows(journal, f"SELECT seq FROM messages WHERE id = '{live.id}'")
    bulk = journal._batched()
    now = utcnow()
    with journal._write()[0].begin() as conn:
        bulk.claim(conn)
        made = [message_values(ROUTE, m, now, None) for m in (stale, live)]
        inserted, looked_up = journal._insert_rows(conn, ROUTE, bulk.outputs, made, now)
    assert looked_up == [live.id]
    assert inserted[live.id] == live_seq[0][0]
    assert rows(journal, f"SELECT seq FROM lookup_ids WHERE id = '{stale.id}'") == [(inserted[stale.id],)]
    assert inserted[stale.id] != 42
    assert rows(journal, LOOKUPS) == rows(journal, FROM_ROWS)


def test_migration_0019_gives_the_triggers_their_clause_and_takes_it_back(journal: Journal) -> None:
    """Down to 0017, the five triggers run for every transaction and journal_lookup_stale is gone; up again,
    each skips a transaction that claimed its rows."""

    def clauses() -> list[bool]:
        found = rows(
            journal,
            "SELECT tgname, pg_get_triggerdef(oid) FROM pg_trigger WHERE tgparentid = 0 AND NOT tgisinternal"
            " ORDER BY 1",
        )
        return ["esb.journal_rows" in definition for name, definition in found if name in TRIGGERS]

    assert clauses() == [True] * 5
    with journal._read().begin() as conn:
        command.downgrade(alembic_config(conn), "0017_lookup_tables")
    assert clauses() == [False] * 5
    assert rows(journal, "SELECT 1 FROM pg_proc WHERE proname = 'journal_lookup_stale'") == []
    with journal._read().begin() as conn:
        command.upgrade(alembic_config(conn), "head")
    assert clauses() == [True] * 5
    batched_workload(journal)
    assert_tables_exact(journal)
