"""The batched write path: one commit per batch (journey_many) writes what the two-commit sequence wrote."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from esb.exceptions import TransportError
from esb.journal import Journal
from esb.journal.batched import Journey
from esb.journal.rows import keys_of
from esb.journal.schema import business_keys, events, messages
from esb.message import Message
from esb.runtime.worker import RouteWorker
from esb.testing import BROKER
from tests.unit.routes_fixture import make_project

ROUTE = "orders"
ARRIVED = datetime(2026, 12, 7, 1, 2, 3, 456789, tzinfo=UTC)


@pytest.fixture
def journal_urls(tmp_path: Path) -> tuple[str, str]:
    """Two fresh SQLite files (tests/integration/test_journal_batched_pg.py: two PostgreSQL databases)."""
    return f"sqlite:///{tmp_path / 'two.db'}", f"sqlite:///{tmp_path / 'one.db'}"


@pytest.fixture
def journals(journal_urls: tuple[str, str]) -> Iterator[tuple[Journal, Journal]]:
    """Two connected journals on fresh databases: the two-commit sequence's and the one-commit's."""
    pair = (Journal(journal_urls[0]), Journal(journal_urls[1]))
    for journal in pair:
        journal.connect()
    yield pair
    for journal in pair:
        journal.close()


def content(journal: Journal) -> dict[str, Any]:
    """What the journal holds, without row numbers and commit times: per (id, route), the message row,
    its events in order and its keys (bodies decoded)."""
    engine = journal._read()
    m, e, k = messages.c, events.c, business_keys.c
    with engine.connect() as conn:
        rows = conn.execute(sa.select(messages).order_by(m.id, m.route)).mappings().all()
        by_seq = {row["seq"]: (row["id"], row["route"]) for row in rows}
        held: dict[Any, Any] = {
            by_seq[row["seq"]]: {
                "row": {
                    name: journal.decode_body(value) if name == "body" else value
                    for name, value in row.items()
                    if name not in ("seq", "received_at")
                },
                "events": [],
                "keys": set(),
            }
            for row in rows
        }
        for ev in conn.execute(sa.select(events).order_by(e.id)).mappings():
            held[by_seq[ev["message_seq"]]]["events"].append(
                (
                    ev["state"],
                    ev["endpoint"],
                    ev["error_class"],
                    ev["detail"],
                    journal.decode_body(ev["body"]),
                )
            )
        for key in conn.execute(sa.select(k.message_seq, k.name, k.value)):
            held[by_seq[key[0]]]["keys"].add((key[1], key[2]))
    return held


def a_batch() -> list[Journey]:
    """A batch of every kind: delivered under its own id, delivered as a derived message to two
    endpoints, filtered with a reason, warned about by a transform (its keys grown by the steps),
    a delivery count above one, Chinese keys and bodies."""
    plain = Message(
        body=b"<order>1</order>", id="m-plain", created_at=ARRIVED, business_keys={"order_id": "SO1"}
    )
    split = Message(
        body=b"<order>2</order>", id="m-split", created_at=ARRIVED, business_keys={"msisdn": "13307550001"}
    )
    part = split.derive({"part": 1, "城市": "深圳"}, suffix="1", created_at=ARRIVED)
    part.business_keys["city"] = "深圳"
    dropped = Message(body=b"draft", id="m-dropped", created_at=ARRIVED, business_keys={"order_id": "SO3"})
    warned = Message(
        body="订单 4".encode(), id="m-warned", created_at=ARRIVED, business_keys={"order_id": "SO4"}
    )
    arrival_keys = keys_of(warned)
    warned.business_keys["account_id"] = "ACC-4"  # found by a step after the arrival
    again = Message(body=b"<order>5</order>", id="m-again", created_at=ARRIVED)
    return [
        Journey(plain, 1, keys_of(plain), "delivered", [(plain.replace(body={"v": 1}), "iom.orders_in")]),
        Journey(split, 1, keys_of(split), "delivered", [(part, "iom.orders_in"), (part, "billing.in")]),
        Journey(dropped, 1, keys_of(dropped), "filtered", [], {"step": "filter", "why": "草稿"}),
        Journey(
            warned,
            1,
            arrival_keys,
            "delivered",
            [(warned.replace(body={"v": 4}), "iom.orders_in")],
            warnings=["state read as 'inProgress'"],
            warned_keys=keys_of(warned),
        ),
        Journey(again, 3, keys_of(again), "delivered", [(again, "iom.orders_in")]),
    ]


def two_commits(journal: Journal, batch: list[Journey]) -> None:
    """The sequence before issue 19's change: arrivals, warnings, then outcomes, in separate commits."""
    journal.received_many(ROUTE, [(j.message, j.delivery_count) for j in batch])
    for j in batch:
        if j.warnings:
            journal.event(ROUTE, j.message, "transformed", detail={"warnings": j.warnings})
    journal.settle_many(
        ROUTE,
        [(j.message, j.state, j.sent) for j in batch],
        {j.message.id: j.detail for j in batch if j.detail is not None},
    )


def test_one_commit_writes_the_rows_of_the_two_commit_sequence(journals: tuple[Journal, Journal]) -> None:
    """journey_many leaves the journal holding what received_many, event(transformed) and settle_many
    left: message rows, events in order, bodies, details and business keys."""
    old, new = journals
    two_commits(old, a_batch())
    firsts = new.journey_many(ROUTE, a_batch(), ARRIVED)
    assert firsts == [True] * 5
    assert content(new) == content(old)
    assert len(content(new)) == 6  # five arrivals and the derived part


def test_one_commit_keeps_the_arrival_time(journals: tuple[Journal, Journal]) -> None:
    """The arrival's event and received_at carry the batch's arrival time, the outcome the commit's."""
    _, new = journals
    new.journey_many(ROUTE, a_batch()[:1], ARRIVED)
    [record] = new.find(message_id="m-plain")
    assert record.received_at == ARRIVED
    states = [(e.state, e.at == ARRIVED) for e in new.history("m-plain")]
    assert states == [("received", True), ("delivered", False), ("delivered", False)]


def test_a_message_journaled_meanwhile_is_recorded_as_a_redelivery(journals: tuple[Journal, Journal]) -> None:
    """A message another consumer journaled after the batch's read is a redelivery in the one commit,
    as in the two-commit sequence, and its outcome is still recorded."""
    old, new = journals
    for journal in journals:
        again = Message(b"<order>5</order>", id="m-again", created_at=ARRIVED)
        journal.received(ROUTE, again, delivery_count=2)
    two_commits(old, a_batch())
    assert new.journey_many(ROUTE, a_batch(), ARRIVED) == [True, True, True, True, False]
    assert content(new) == content(old)
    assert new.outcome(ROUTE, "m-again") == "delivered"


def test_known_ids_reads_what_is_journaled_on_the_route(journals: tuple[Journal, Journal]) -> None:
    """known_ids answers the ids already journaled on that route only."""
    _, new = journals
    new.received(ROUTE, Message(body=b"x", id="here"))
    new.received("other", Message(body=b"x", id="elsewhere"))
    assert new.known_ids(ROUTE, ["here", "elsewhere", "nowhere"]) == {"here"}


# -- through the worker: the batched path against the one-message path ---------------------------------
ENDPOINTS = ["a.in", "b.out", "c.out", "dlq.r"]


class Sloppy:
    """A transform that accepts every other order with a warning and keys each by its body."""

    def apply(self, message: Message) -> Message:
        """Return the message with a business key; a warning for bodies ending in an even digit."""
        text = message.body_bytes().decode()
        message.business_keys["order_id"] = f"SO-{text}"
        headers = dict(message.headers)
        if text[-1] in "02468":
            headers["esb-warnings"] = ["state 'InProgress' read as 'inProgress'"]
        return message.replace(body={"order": text, "keep": not text.endswith("3")}, headers=headers)


def run_backlog(tmp_path: Path, batch_size: int, journal_url: str) -> Journal:
    """Run twelve waiting orders through the route with ``batch_size``; return the open journal."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    route = {
        "id": "r",
        "from": "a.in",
        "to": "b.out",
        "steps": [{"transform": "t/s"}, {"filter": "body.keep"}],
    }
    project = make_project(tmp_path, [route], ENDPOINTS, {"t/s": lambda b: b})
    project.transforms.transforms["t/s"] = Sloppy()
    project.settings.runtime.batch_size = batch_size
    project.settings.journal.url = journal_url
    BROKER.reset()
    BROKER.feed("a.in", *[Message(body=f"{i}".encode(), id=f"m{i}") for i in range(12)])
    journal = Journal(journal_url)
    journal.connect()
    worker = RouteWorker(project, project.routes[0], journal)
    worker.start()
    box = BROKER.box("a.in")
    for _ in range(1000):
        if len(box.acked) == 12:
            break
        worker.stop_event.wait(0.01)
    worker.stop()
    worker.join(5)
    assert len(box.acked) == 12
    return journal


def test_the_batched_path_journals_what_the_one_message_path_journals(tmp_path: Path) -> None:
    """A backlog through batches of 5 (one commit each) leaves the journal the one-message path leaves
    for the same orders: rows, events in order (warnings, filters, deliveries) and business keys."""
    alone = run_backlog(tmp_path / "alone", 1, f"sqlite:///{tmp_path / 'alone.db'}")
    batched = run_backlog(tmp_path / "batched", 5, f"sqlite:///{tmp_path / 'batched.db'}")
    try:
        expected, found = content(alone), content(batched)
    finally:
        alone.close()
        batched.close()
    for held in (*expected.values(), *found.values()):
        held["row"].pop("created_at")  # the envelope's own time, per run
    # Known difference, older than the one-commit sequence (the two-commit one had it too): the one-message
    # path's ``event(filtered)`` indexes the keys the steps found; the batched path indexes a filtered
    # message's keys as it arrived.
    assert expected[("m3", "r")].pop("keys") == {("order_id", "SO-3")}
    assert found[("m3", "r")].pop("keys") == set()
    assert found == expected
    assert [e[0] for e in found[("m3", "r")]["events"]] == ["received", "filtered"]
    assert (
        "transformed",
        None,
        None,
        {"warnings": ["state 'InProgress' read as 'inProgress'"]},
        None,
    ) in found[("m2", "r")]["events"]


def test_a_batch_whose_commit_fails_is_journaled_and_sent_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When the batch's one commit fails after its outputs were confirmed, its members are journaled
    on the one-message path with their confirmed deliveries: nothing is written twice, all end delivered."""
    calls: list[int] = []
    original = Journal.journey_many

    def fails_once(self: Journal, route: str, journeys: list[Journey], arrived_at: datetime) -> list[bool]:
        calls.append(len(journeys))
        if len(calls) == 1:
            raise TransportError("journal journey: database is locked")
        return original(self, route, journeys, arrived_at)

    monkeypatch.setattr(Journal, "journey_many", fails_once)
    journal = run_backlog(tmp_path, 5, f"sqlite:///{tmp_path / 'j.db'}")
    try:
        sent = [m.id for m in BROKER.written("b.out")]
        outcomes = {f"m{i}": journal.outcome("r", f"m{i}") for i in range(12)}
        first = [e.state for e in journal.history("m0")]
    finally:
        journal.close()
    assert calls, "the batched path was not taken"
    assert calls[0] > 1
    assert sorted(sent) == sorted(f"m{i}" for i in range(12) if i != 3)
    assert outcomes == {f"m{i}": "filtered" if i == 3 else "delivered" for i in range(12)}
    assert first[0] == "received"
    assert first[-1] == "delivered"


def test_known_ids_through_the_driver_answers_what_the_statement_answers(tmp_path: Path) -> None:
    """On SQLite, known_ids' driver-level SELECT finds the very ids the SQLAlchemy statement finds
    (other routes, Chinese ids, repeats, none known, a batch of 300)."""
    from esb.journal.batched import known_by_statement, known_on_sqlite

    journal = Journal(f"sqlite:///{tmp_path / 'j.db'}")
    journal.connect()
    try:
        for index in range(0, 300, 3):
            journal.received(ROUTE, Message(b"x", id=f"订单-{index}"))
        journal.received("other", Message(b"x", id="订单-1"))
        engine, sql = journal._read(), journal._write()[1]
        cases = [[f"订单-{i}" for i in range(300)], ["订单-0", "订单-0", "订单-1"], ["none"]]
        for ids in cases:
            with engine.connect() as conn:
                expected = known_by_statement(conn, sql, ROUTE, ids)
            assert known_on_sqlite(engine, ROUTE, ids, journal.url) == expected
        assert len(expected) == 0
        assert len(known_on_sqlite(engine, ROUTE, cases[0], journal.url)) == 100
    finally:
        journal.close()
