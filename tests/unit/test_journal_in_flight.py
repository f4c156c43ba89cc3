"""The ``in_flight`` table (migration 0016) against what it stands for, computed from the events: the
ingress messages (a body) whose latest state is not settled. After a mixed workload through every write
path (batched arrivals and outcomes, the one-message path, redeliveries, replays by another journal,
purges) and unfinished messages of each kind, after the migration's fill, after a prune; replays and
dead letters move rows in and out. The PostgreSQL module runs the same checks against a real server."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from esb.exceptions import TransportError
from esb.journal import Journal, retention
from esb.journal.constants import SETTLED_STATES
from esb.journal.migrate import alembic_config
from esb.journal.schema import events, in_flight, messages
from esb.message import Message
from tests.unit.test_journal_rollup import BATCHED, SINGLE, _start, workload

Row = tuple[int, str, datetime]


@pytest.fixture
def journal(tmp_path: Path) -> Iterator[Journal]:
    """An empty journal in a SQLite file."""
    with Journal(f"sqlite:///{tmp_path / 'journal.db'}") as opened:
        yield opened


def table_rows(journal: Journal) -> set[Row]:
    """Every row of ``in_flight``."""
    return {(r["message_seq"], r["route"], r["received_at"]) for r in journal.read_rows(sa.select(in_flight))}


def expected_rows(journal: Journal) -> set[Row]:
    """The message rows with a body whose latest event's state is not settled, computed from the events."""
    latest = sa.select(sa.func.max(events.c.id).label("id")).group_by(events.c.message_seq).subquery()
    stmt = (
        sa.select(messages.c.seq, messages.c.route, messages.c.received_at)
        .select_from(
            latest.join(events, events.c.id == latest.c.id).join(
                messages, messages.c.seq == events.c.message_seq
            )
        )
        .where(messages.c.body.is_not(None), events.c.state.not_in(SETTLED_STATES))
    )
    return {(r["seq"], r["route"], r["received_at"]) for r in journal.read_rows(stmt)}


def unfinished(journal: Journal, other: Journal) -> set[str]:
    """Messages left in flight in each way (received only, batched or not; transformed; failed after a
    delivery to one endpoint of a fan-out; redelivered; a dead letter replayed and not yet taken again),
    and two that are not (a body-less row, a purged dead letter); return the ids in flight."""
    journal.received_many(BATCHED, [(Message(body=b"<order/>", id=f"waiting-{i}"), 1) for i in range(3)])
    journal.received(SINGLE, Message(body=b"{}", id="only-received"))
    transformed = Message(body=b"{}", id="transformed")
    journal.received(SINGLE, transformed)
    journal.event(SINGLE, transformed, "transformed")
    fanned = Message(body=b"{}", id="fanned")
    journal.received(SINGLE, fanned)
    journal.mark_delivered(SINGLE, fanned, "hub.tickets")
    journal.event(SINGLE, fanned, "failed", error=TransportError("second endpoint down"))
    again = Message(body=b"{}", id="redelivered-after-delivery")
    journal.received(SINGLE, again)
    journal.mark_delivered(SINGLE, again, "hub.tickets", finish=again)
    journal.received(SINGLE, again, delivery_count=2)
    dead = Message(body=b"{}", id="dead-replayed")
    journal.received(SINGLE, dead)
    journal.event(SINGLE, dead, "dead_lettered", endpoint="dlq.tickets")
    other.event(SINGLE, dead, "replayed", detail={"replay": 1})
    journal.event(SINGLE, Message(body=b"{}", id="no-body"), "transformed")  # a row without its body
    purged = Message(body=b"{}", id="purged")
    journal.received(SINGLE, purged)
    journal.event(SINGLE, purged, "dead_lettered", endpoint="dlq.tickets")
    other.event(SINGLE, purged, "purged", detail={"by": "test"})
    ids = {f"waiting-{i}" for i in range(3)}
    return ids | {"only-received", "transformed", "fanned", "redelivered-after-delivery", "dead-replayed"}


def ids_in_flight(journal: Journal) -> set[str]:
    """The message ids of the rows of ``in_flight``."""
    stmt = sa.select(messages.c.id).join(in_flight, in_flight.c.message_seq == messages.c.seq)
    return {r["id"] for r in journal.read_rows(stmt)}


def check_mixed_workload(journal: Journal, monkeypatch: pytest.MonkeyPatch) -> None:
    """After the workload and the unfinished messages, the table is exactly the events' answer."""
    with Journal(journal.url) as other:
        workload(journal, other, monkeypatch, _start())
        assert table_rows(journal) == expected_rows(journal) == set(), "the workload ends every message"
        waiting = unfinished(journal, other)
    assert table_rows(journal) == expected_rows(journal)
    assert ids_in_flight(journal) == waiting


def test_in_flight_equals_the_events_after_a_mixed_workload(
    journal: Journal, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every write path keeps in_flight equal to "a body, latest state not settled" from the events."""
    check_mixed_workload(journal, monkeypatch)


def drop_trigger(journal: Journal, name: str) -> None:
    """Drop one of the table's triggers (to show the differential check fails without it)."""
    postgres = journal.url.startswith("postgresql")
    with journal._read().begin() as conn:
        conn.exec_driver_sql(f"DROP TRIGGER {name}" + (" ON events" if postgres else ""))


@pytest.mark.parametrize("trigger", ["tr_events_in_flight", "tr_events_in_flight_settled"])
def test_a_missing_trigger_is_caught(journal: Journal, monkeypatch: pytest.MonkeyPatch, trigger: str) -> None:
    """With either trigger dropped on purpose, the differential check fails."""
    drop_trigger(journal, trigger)
    with pytest.raises(AssertionError):
        check_mixed_workload(journal, monkeypatch)


def check_fill(journal: Journal, monkeypatch: pytest.MonkeyPatch) -> None:
    """Down to 0015 (the table dropped) and up again: the migration's fill is what the triggers kept."""
    from alembic import command

    with Journal(journal.url) as other:
        workload(journal, other, monkeypatch, _start())
        unfinished(journal, other)
    kept = table_rows(journal)
    assert len(kept) >= 8
    with journal._read().begin() as conn:
        command.downgrade(alembic_config(conn), "0015_route_minutes")
        assert "in_flight" not in sa.inspect(conn).get_table_names()
        command.upgrade(alembic_config(conn), "head")
    assert table_rows(journal) == kept


def test_the_migration_fill_equals_what_the_triggers_kept(
    journal: Journal, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Migration 0016's fill from the events gives exactly the rows the triggers kept."""
    check_fill(journal, monkeypatch)


def check_replay_and_dead_letters(journal: Journal) -> None:
    """A dead letter leaves the table, its replay brings it back, its delivery takes it out; a retry that
    fails again and is dead-lettered takes it out again."""
    message = Message(body=b"<order/>", id="order-1")
    journal.received(BATCHED, message)
    assert ids_in_flight(journal) == {"order-1"}
    journal.event(BATCHED, message, "dead_lettered", endpoint="dlq.orders")
    assert ids_in_flight(journal) == set()
    journal.event(BATCHED, message, "replayed", detail={"replay": 1})
    assert ids_in_flight(journal) == {"order-1"}
    journal.event(BATCHED, message, "failed", error="still down")
    journal.event(BATCHED, message, "dead_lettered", endpoint="dlq.orders")
    assert ids_in_flight(journal) == set()
    journal.event(BATCHED, message, "replayed", detail={"replay": 2})
    journal.settle_many(BATCHED, [(message, "delivered", [(message, "iom.orders_in")])])
    assert ids_in_flight(journal) == set()
    assert table_rows(journal) == expected_rows(journal)


def test_replays_and_dead_letters_move_rows_in_and_out(journal: Journal) -> None:
    """Dead-lettered: out; replayed: in; dead-lettered again: out; replayed and delivered: out."""
    check_replay_and_dead_letters(journal)


def check_prune(journal: Journal, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, pruned: int = 100) -> None:
    """A prune of the workload's old messages (more than ``pruned``) leaves no row of a pruned message and
    the table exact."""
    start = _start() - timedelta(days=3)
    with Journal(journal.url) as other:
        workload(journal, other, monkeypatch, start)
        waiting = unfinished(journal, other)
    monkeypatch.undo()
    policy = retention.Policy(delivered_days=1, filtered_days=1, archive=tmp_path / "archive")
    result = journal.prune(policy, now=start + timedelta(days=2))
    assert result.messages > pruned
    assert table_rows(journal) == expected_rows(journal)
    assert ids_in_flight(journal) == waiting
    orphans = sa.select(in_flight.c.message_seq).where(
        in_flight.c.message_seq.not_in(sa.select(messages.c.seq))
    )
    assert journal.read_rows(orphans) == []


def test_a_prune_leaves_no_orphan(journal: Journal, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Pruned messages take their rows with them; the messages still in flight keep theirs."""
    check_prune(journal, tmp_path, monkeypatch)


def test_a_pruned_message_in_flight_takes_its_row(journal: Journal) -> None:
    """Deleting a message row in flight (as a prune does) deletes its in_flight row (the cascade)."""
    journal.received(SINGLE, Message(body=b"{}", id="gone"))
    assert ids_in_flight(journal) == {"gone"}
    with journal._read().begin() as conn:
        conn.execute(sa.delete(events))
        conn.execute(sa.delete(messages))
    assert table_rows(journal) == set()
