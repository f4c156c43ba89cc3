"""The REST listener's resource store: a resource and its held create events in one write, the event
released only once the route accepted the resource, and the id's uniqueness across connections (as
across processes). The durable inbox's rows: tests/unit/test_rest_inbox.py."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from adapters.rest.store import ResourceStore

DOC = {"id": "PO-1", "state": "acknowledged", "category": "新装"}
EVENT = {"eventId": "E-1", "eventType": "ProductOrderCreateEvent", "event": {"productOrder": DOC}}


@pytest.fixture
def store(tmp_path: Path) -> Iterator[ResourceStore]:
    """A fresh store with two listeners, one of which selects only state changes."""
    opened = ResourceStore(tmp_path / "rest.db").open()
    opened.add_listener("L-all", "http://127.0.0.1:9/all", None)
    opened.add_listener("L-state", "http://127.0.0.1:9/state", "eventType=ProductOrderStateChangeEvent")
    yield opened
    opened.close()


def create(store: ResourceStore, ident: str = "PO-1", event_id: str = "E-1") -> int | None:
    """Create order ``ident`` with its create event ``event_id``."""
    return store.create("productOrder", ident, orjson.dumps({**DOC, "id": ident}),
                        {**EVENT, "eventId": event_id}, "C-1")  # fmt: skip


def test_create_holds_the_event_for_matching_listeners_only(store: ResourceStore) -> None:
    """One create stores the resource (GET finds it) and holds its event for the matching listener only."""
    assert create(store) == 1
    assert store.get("productOrder", "PO-1") == {**DOC, "id": "PO-1"}
    assert store.events() == [
        {"event_id": "E-1", "listener_id": "L-all", "status": "held", "attempts": 0, "error": None}
    ]
    assert store.due(time.time() + 60) == []


def test_publish_makes_the_held_event_due(store: ResourceStore) -> None:
    """Once the route accepted the resource its event is pending and due, with the body it was given."""
    create(store)
    store.publish("E-1")
    (row,) = store.due(time.time() + 1)
    assert (row["listener_id"], row["resource_id"], row["correlation_id"]) == ("L-all", "PO-1", "C-1")
    assert orjson.loads(row["body"]) == EVENT


def test_a_second_create_is_refused_and_writes_nothing(store: ResourceStore) -> None:
    """An existing id answers None and neither the resource nor the events change."""
    create(store)
    assert create(store, event_id="E-2") is None
    assert [e["event_id"] for e in store.events()] == ["E-1"]


def test_the_id_is_unique_across_connections(store: ResourceStore) -> None:
    """A second connection to the same file (as a second process has) cannot create the same id."""
    other = ResourceStore(store.path).open()
    try:
        assert create(store) == 1
        assert create(other, event_id="E-2") is None
        assert other.get("productOrder", "PO-1") is not None
    finally:
        other.close()


def test_no_listener_no_event_row(tmp_path: Path) -> None:
    """Without registered listeners a create holds no event (nothing to publish on success)."""
    alone = ResourceStore(tmp_path / "rest.db").open()
    try:
        assert create(alone) == 0
        assert alone.events() == []
    finally:
        alone.close()


def test_a_listener_removed_in_flight_gets_no_held_event(store: ResourceStore) -> None:
    """Removing a listener drops its held events too: publishing later does not post to it."""
    create(store)
    assert store.remove_listener("L-all")
    store.publish("E-1")
    assert store.due(time.time() + 1) == []


def state_change(event_id: str) -> dict[str, object]:
    """A state change event of PO-1."""
    return {**EVENT, "eventId": event_id, "eventType": "ProductOrderStateChangeEvent"}


def test_a_later_event_does_not_overtake_one_waiting_for_its_retry(store: ResourceStore) -> None:
    """A listener's event in backoff holds back its later events (not other listeners'), then both are due
    in order."""
    store.enqueue(EVENT, "PO-1", "C-1")
    (first,) = store.due(time.time())
    store.settle(first["seq"], "pending", 1, "HTTP 500", due=time.time() + 60)
    store.enqueue(state_change("E-2"), "PO-1", "C-1")
    assert [(r["event_id"], r["listener_id"]) for r in store.due(time.time())] == [("E-2", "L-state")]
    later = [(r["event_id"], r["listener_id"]) for r in store.due(time.time() + 61)]
    assert later == [("E-1", "L-all"), ("E-2", "L-all"), ("E-2", "L-state")]
