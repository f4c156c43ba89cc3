"""The REST listener's resource store: group commit of the order path's writes."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from adapters.rest.store import ResourceStore

KIND = "productOrder"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[ResourceStore]:
    """An open store in a temporary folder."""
    made = ResourceStore(tmp_path / "rest" / "channel.rest_orders.db").open()
    yield made
    made.close()


def _together(store: ResourceStore, calls: list[Callable[[], Any]]) -> list[Any]:
    """Run ``calls`` in threads that all queue their write while the connection is held, then let go:
    return each call's result (or the exception it raised)."""
    results: list[Any] = [None] * len(calls)

    def run(i: int) -> None:
        try:
            results[i] = calls[i]()
        except Exception as exc:  # the test looks at it
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    with store.lock:
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 10
        while len(store._queued) < len(calls) and time.monotonic() < deadline:
            time.sleep(0.001)
        assert len(store._queued) == len(calls), "the writers never queued"
    for thread in threads:
        thread.join(10)
    return results


def test_writes_queued_together_commit_in_one_transaction(store: ResourceStore) -> None:
    """Writes that several threads queue at the same moment are committed by one group commit."""
    before = store.groups
    results = _together(
        store, [lambda i=i: store.reserve(KIND, f"PO-{i}", {"id": f"PO-{i}"}) for i in range(6)]
    )
    assert results == [True] * 6
    assert store.groups - before == 1
    seen = sqlite3.connect(store.path).execute("SELECT count(*) FROM resources").fetchone()[0]
    assert seen == 6  # committed: another connection sees every row once the callers returned


def test_the_same_id_in_one_group_is_reserved_once(store: ResourceStore) -> None:
    """Two reservations of one id in the same group: one gets it, the other is told it exists."""
    results = _together(store, [lambda: store.reserve(KIND, "PO-1", {"id": "PO-1"})] * 2)
    assert sorted(results) == [False, True]


def test_a_failing_write_fails_only_its_caller(store: ResourceStore) -> None:
    """A write that raises in a group is retried alone: the others commit, only its caller gets the error."""
    store.add_listener("L1", "http://127.0.0.1:9/cb", None)
    store.reserve(KIND, "PO-1", {"id": "PO-1"})
    results = _together(
        store,
        [
            lambda: store.reserve(KIND, "PO-2", {"id": "PO-2"}),
            lambda: store.confirm(KIND, "PO-1", {"no": "eventId"}, None),  # no eventId: KeyError
            lambda: store.reserve(KIND, "PO-3", {"id": "PO-3"}),
        ],
    )
    assert results[0] is True
    assert results[2] is True
    assert isinstance(results[1], KeyError)
    assert store.get(KIND, "PO-1") is None  # its confirmation was rolled back
    rows = sqlite3.connect(store.path).execute("SELECT id, status FROM resources ORDER BY id").fetchall()
    assert rows == [("PO-1", "reserved"), ("PO-2", "reserved"), ("PO-3", "reserved")]


def test_confirm_and_release_settle_reservations(store: ResourceStore) -> None:
    """A confirmed reservation is found with its event queued; a released one is gone and free again."""
    store.add_listener("L1", "http://127.0.0.1:9/cb", None)
    assert store.reserve(KIND, "PO-1", {"id": "PO-1"})
    assert store.reserve(KIND, "PO-2", {"id": "PO-2"})
    assert not store.reserve(KIND, "PO-1", {"id": "PO-1"})
    store.confirm(KIND, "PO-1", {"eventId": "E1"}, "C1")
    store.release(KIND, "PO-2")
    assert store.get(KIND, "PO-1") == {"id": "PO-1"}
    assert [e["event_id"] for e in store.events("pending")] == ["E1"]
    assert store.reserve(KIND, "PO-2", {"id": "PO-2"})  # released: the id can be taken again
