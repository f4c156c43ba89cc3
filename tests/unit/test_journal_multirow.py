"""SQLite's multi-row inserts (esb/journal/bulk.py ``MultiValues``) against the one-row ``executemany`` they
replaced: the same batched workload leaves the same rows in every table."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from esb.journal import Journal, batched
from esb.journal.bulk import MultiValues
from esb.message import Message

ROUTE = "orders"
#: Every table the batched path writes, directly or through SQLite's triggers.
TABLES = ("messages", "events", "business_keys", "in_flight", "dead_letters", "route_minutes")
CREATED = datetime(2026, 12, 7, 16, 59, 0, 125000, tzinfo=UTC)


def order(n: int, prefix: str = "o") -> Message:
    """An ingress order with two or three business keys and a body worth compressing."""
    keys = {"order_id": f"SO{n}", "account_id": f"A{n % 7}"}
    if n % 2:
        keys["msisdn"] = f"1380000{n:04d}"
    body = b"<order>" + b"<line>item</line>" * (n % 5 + 4) + f"<n>{n}</n></order>".encode()
    return Message(
        body=body,
        id=f"{prefix}-{n}",
        type="order.submitted",
        source="crm",
        business_keys=keys,
        created_at=CREATED,
    )


def workload(journal: Journal) -> None:
    """Batches of 1, 3, 70 and 300 messages (past the largest chunk), a repeat inside a batch, a
    redelivery of a journaled row, and outcomes of every kind: delivered to two endpoints (one output a
    new message row with keys of its own), filtered with a detail, dead-lettered, failed, a dead letter
    handled later."""
    sizes = (1, 3, 70, 300)
    start = 0
    for size in sizes:
        items = [(order(n), 1) for n in range(start, start + size)]
        if size == 3:
            items.append((order(start), 2))  # the same id again in the batch: a redelivery
        journal.received_many(ROUTE, items)
        outcomes: list[batched.Outcome] = []
        details: dict[str, dict[str, Any]] = {}
        for message, _ in items[:size]:
            n = int(message.id.split("-")[1])
            if n % 10 == 3:
                outcomes.append((message, "filtered", []))
                details[message.id] = {"step": "only-mobile", "why": "no msisdn"}
            elif n % 10 == 7:
                outcomes.append((message, "dead_lettered", []))
            elif n % 10 == 9:
                outcomes.append((message, "failed", []))
            else:
                output = message.derive({"id": n, "lines": [n] * (n % 3)}, suffix="iom", created_at=CREATED)
                output.business_keys["iom_order"] = f"IOM{n}"
                outcomes.append((message, "delivered", [(message, "hub.orders"), (output, "iom.orders_in")]))
        journal.settle_many(ROUTE, outcomes, details)
        start += size
    again = [(order(n), 3) for n in (0, 7, 17)]  # redeliveries of journaled rows, two of them dead letters
    journal.received_many(ROUTE, again)
    journal.settle_many(ROUTE, [(m, "delivered", [(m, "hub.orders")]) for m, _ in again])


def one_row_at_a_time(journal: Journal) -> None:
    """Make ``journal``'s batched inserts use ``executemany`` and look ids up after inserting, as before
    ``MultiValues``."""
    bulk = journal._batched()
    for insert in (bulk.messages, bulk.outputs, bulk.events, bulk.keys, bulk.minutes):
        insert.values = None
        insert.values_returning = None


def tables(url: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of :data:`TABLES`, in a stable order."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return {
                t: [tuple(r) for r in conn.execute(sa.text(f"SELECT * FROM {t} ORDER BY 1, 2, 3"))]
                for t in TABLES
            }
    finally:
        engine.dispose()


def run(path: Path, *, multirow: bool, monkeypatch: pytest.MonkeyPatch) -> dict[str, list[tuple[Any, ...]]]:
    """Run :func:`workload` on a fresh journal at ``path`` (the clock restarted); return its tables."""
    ticks = itertools.count()
    start = datetime(2026, 12, 7, 17, 0, 0, 250000, tzinfo=UTC)
    monkeypatch.setattr(batched, "utcnow", lambda: start + timedelta(seconds=next(ticks)))
    url = f"sqlite:///{path}"
    with Journal(url) as journal:
        if not multirow:
            one_row_at_a_time(journal)
        workload(journal)
    return tables(url)


def test_multirow_inserts_write_the_rows_executemany_wrote(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A batched workload through multi-row statements leaves every table (message rows and their seqs,
    events with their ids in order, keys, in-flight rows, dead letters, per-minute figures) as the
    one-row ``executemany`` path does."""
    before = run(tmp_path / "executemany.db", multirow=False, monkeypatch=monkeypatch)
    after = run(tmp_path / "multirow.db", multirow=True, monkeypatch=monkeypatch)
    assert [len(before[t]) for t in TABLES] == [len(after[t]) for t in TABLES]
    assert len(before["events"]) > 1_000
    assert before["dead_letters"]
    assert before["in_flight"]
    for table in TABLES:
        assert after[table] == before[table], table


@pytest.mark.parametrize("count", [*range(0, 70), 255, 256, 257, 511, 600])
def test_chunks_cover_every_row_once_in_order(count: int) -> None:
    """A batch of any size is cut into power-of-two chunks, no larger than the largest, covering each row
    once and in order."""
    values = MultiValues("INSERT INTO t (a, b) VALUES (?, ?)", 2)
    chunks = values.chunks(count)
    assert [i for start, size in chunks for i in range(start, start + size)] == list(range(count))
    assert all(size & (size - 1) == 0 and size <= MultiValues.MAX_ROWS for _, size in chunks)


def test_chunks_stay_under_the_parameter_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    """A chunk never holds more parameters than SQLite takes."""
    monkeypatch.setattr(MultiValues, "MAX_PARAMETERS", 999)
    values = MultiValues(
        "INSERT INTO t (a, b, c, d, e, f, g, h, i, j) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", 10
    )
    assert max(size for _, size in values.chunks(500)) * 10 <= 999


def test_a_statement_that_is_not_a_one_row_insert_is_refused() -> None:
    """Only a one-row ``VALUES`` of exactly its parameters can be repeated."""
    with pytest.raises(ValueError, match="one-row INSERT"):
        MultiValues("INSERT INTO t (a, b) SELECT ?, ? FROM u", 2)


def test_seen_batch_methods_leave_what_one_at_a_time_leaves() -> None:
    """``add_many``, ``get_many`` and ``forget_many`` leave the cache (entries, starts kept for the same seq,
    LRU order and its cap) as ``add``, ``get`` and ``forget`` called in turn leave it, and return the same."""
    from esb.journal.seen import Seen

    start = datetime(2026, 12, 7, 17, 0, tzinfo=UTC)
    entries = [
        (f"m{n % 9}", n % 4, frozenset({("order_id", f"SO{n}")}), start if n % 3 else None) for n in range(14)
    ]
    lookups = ["m1", "m9", "m4", "m1", "m0"]
    one, many = Seen(size=6), Seen(size=6)
    for entry in entries:
        one.add(ROUTE, *entry)
    many.add_many(ROUTE, entries)
    found_one = {mid: known for mid in lookups if (known := one.get(ROUTE, mid)) is not None}
    assert many.get_many(ROUTE, lookups) == found_one
    assert list(many._items.items()) == list(one._items.items())
    for mid in ("m4", "m9", "m2"):
        one.forget(ROUTE, mid)
    many.forget_many(ROUTE, ["m4", "m9", "m2"])
    assert list(many._items.items()) == list(one._items.items())
    assert len(many) == 4
