"""Group commit of the listener's creates: threads that wait for the store are written in one batch,
each gets its own outcome, and a failed batch fails (and writes) none of them."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from adapters.rest.combine import Combiner
from adapters.rest.store import ResourceStore

DOC = {"state": "acknowledged", "category": "新装"}


def _submit_while_locked(combiner: Combiner[Any, Any], items: list[Any]) -> dict[Any, Any]:
    """Submit ``items`` from one thread each while the combiner's lock is held, release it once all are
    queued; return each item's outcome (or the exception it raised)."""
    outcomes: dict[Any, Any] = {}

    def submit(item: Any) -> None:
        try:
            outcomes[item] = combiner.submit(item)
        except Exception as exc:  # the test looks at what each thread got
            outcomes[item] = exc

    threads = [threading.Thread(target=submit, args=(item,)) for item in items]
    with combiner.lock:
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 10
        while len(combiner._queue) < len(items) and time.monotonic() < deadline:
            time.sleep(0.001)
    for thread in threads:
        thread.join(10)
    return outcomes


def test_threads_waiting_for_the_lock_are_written_in_one_batch() -> None:
    """Items queued while the lock is held go in one write, and each thread gets its own item's outcome."""
    writes: list[list[int]] = []

    def write(items: list[int]) -> list[int]:
        writes.append(sorted(items))
        return [item * 10 for item in items]

    combiner = Combiner(threading.Lock(), write)
    assert _submit_while_locked(combiner, [1, 2, 3, 4]) == {1: 10, 2: 20, 3: 30, 4: 40}
    assert writes == [[1, 2, 3, 4]]
    assert (combiner.batches, combiner.items) == (1, 4)


def test_a_lone_item_is_written_alone() -> None:
    """Without contention every submit is its own write."""
    writes: list[list[str]] = []
    combiner = Combiner(threading.Lock(), lambda items: writes.append(items) or items)
    assert [combiner.submit("a"), combiner.submit("b")] == ["a", "b"]
    assert writes == [["a"], ["b"]]


def test_a_failed_batch_fails_every_item_in_it() -> None:
    """When the batch's write raises, every thread in it raises that error (none is told it succeeded)."""

    def write(items: list[int]) -> list[int]:
        raise sqlite3.OperationalError("disk I/O error")

    outcomes = _submit_while_locked(Combiner(threading.Lock(), write), [1, 2, 3])
    assert sorted(outcomes) == [1, 2, 3]
    assert all(isinstance(found, sqlite3.OperationalError) for found in outcomes.values())
    assert {str(found) for found in outcomes.values()} == {"disk I/O error"}


@pytest.fixture
def store(tmp_path: Path) -> Iterator[ResourceStore]:
    """A fresh store with one listener that takes every event."""
    opened = ResourceStore(tmp_path / "rest.db").open()
    opened.add_listener("L-all", "http://127.0.0.1:9/all", None)
    yield opened
    opened.close()


def _create(store: ResourceStore, ident: str) -> int | None:
    event = {"eventId": f"E-{ident}", "eventType": "ProductOrderCreateEvent"}
    return store.create("productOrder", ident, orjson.dumps({**DOC, "id": ident}), event, ident)


def test_a_batch_of_creates_keeps_each_ones_conflict(store: ResourceStore) -> None:
    """In one combined batch a taken id is refused (None) and the others are written with their events."""
    assert _create(store, "PO-0") == 1
    outcomes: dict[str, Any] = {}

    def create(ident: str) -> None:
        outcomes[ident] = _create(store, ident.split("#")[0])

    threads = [threading.Thread(target=create, args=(i,)) for i in ("PO-0", "PO-1", "PO-2", "PO-2#again")]
    with store.lock:
        for thread in threads:
            thread.start()
        while len(store.creates._queue) < len(threads):
            time.sleep(0.001)
    for thread in threads:
        thread.join(10)
    assert store.creates.batches == 2  # PO-0 alone first, then the four together
    assert outcomes["PO-0"] is None
    assert sorted([outcomes["PO-2"], outcomes["PO-2#again"]], key=str) == [1, None]
    assert outcomes["PO-1"] == 1
    assert [store.get("productOrder", i) is not None for i in ("PO-0", "PO-1", "PO-2")] == [True] * 3
    assert sorted(e["event_id"] for e in store.events()) == ["E-PO-0", "E-PO-1", "E-PO-2"]


def test_a_failed_batch_of_creates_writes_none_of_them(store: ResourceStore) -> None:
    """When one create of a batch fails (not a conflict), the transaction is rolled back: none is stored."""
    rows = [
        ("productOrder", ident, time.time(), "{}", f"E-{ident}", "{}", None, b"", "{}", None, 0.0)
        for ident in ("PO-1", "PO-2")
    ]
    broken = rows[1][:-1]  # a value short: the statement fails, and not as an id conflict
    with store.lock, pytest.raises(sqlite3.ProgrammingError):
        store._write_created([rows[0], broken])
    assert store.get("productOrder", "PO-1") is None
    assert store.events() == []
