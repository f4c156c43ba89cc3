"""The REST listener's durable inbox: a stored order is handed to the route until the route settles it;
accepted ones are gone and announced, given-back ones come again with a higher count, dead-lettered
ones show TMF's failed state and are announced, and the claims of a reader that closed or died go back."""

from __future__ import annotations

import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import orjson
import pytest

from adapters.rest.inbox import StoreInbox
from adapters.rest.store import InboxRow, ResourceStore
from esb.exceptions import MessageError, TransportError

DOC = {"id": "PO-1", "state": "acknowledged", "category": "新装"}
BODY = orjson.dumps({"id": "PO-1", "category": "新装"})


@pytest.fixture
def store(tmp_path: Path) -> Iterator[ResourceStore]:
    """A fresh store with one listener of every event."""
    opened = ResourceStore(tmp_path / "rest.db").open()
    opened.add_listener("L-all", "http://127.0.0.1:9/all", None)
    yield opened
    opened.close()


def post(
    store: ResourceStore, ident: str = "PO-1", kind: str = "productOrder", reader: StoreInbox | None = None
) -> None:
    """What the listener writes for one accepted POST (claimed by ``reader`` and offered to it, if given)."""
    event = {"eventId": f"E-{ident}", "eventType": "ProductOrderCreateEvent", "event": {"productOrder": DOC}}
    headers = orjson.dumps({"tmf-resource": kind, "tmf-id": ident}).decode()
    doc = orjson.dumps({**DOC, "id": ident})
    claim = reader.claim_for_new() if reader is not None else None
    created = time.time()
    assert store.create(kind, ident, doc, event, f"C-{ident}", BODY, headers, claim, created) is not None
    if reader is not None and claim is not None:
        reader.offer(InboxRow(kind, ident, f"E-{ident}", BODY, headers, f"C-{ident}", created, 1))


def inbox(store: ResourceStore, lease: float = 30.0) -> StoreInbox:
    """An inbox reader of ``store`` (source system ``channel``) that scans the store at every look."""
    return StoreInbox(store, "channel", "order.requested", lease=lease, scan=0)


def test_an_order_posted_here_is_handed_out_from_memory_claimed(store: ResourceStore) -> None:
    """An order written claimed by this reader is handed out without a scan, once; others cannot take it."""
    reader = StoreInbox(store, "channel", "order.requested", scan=3600)
    reader._scanned = time.monotonic()  # no scan for an hour: only what is offered in memory
    post(store, reader=reader)
    delivery = reader.get(0)
    assert delivery is not None
    assert (delivery.message.id, delivery.delivery_count) == ("PO-1", 1)
    assert reader.get(0) is None
    assert inbox(store).get(0) is None  # claimed by the first reader's process
    assert store.inbox()[0]["owner"] == reader.owner


def test_a_stored_order_is_handed_out_as_the_message_the_client_sent(store: ResourceStore) -> None:
    """The delivery carries the client's bytes, the id, headers, type, source and correlation id."""
    post(store)
    delivery = inbox(store).get(0)
    assert delivery is not None
    message = delivery.message
    assert (message.id, message.body, message.type, message.source) == (
        "PO-1", BODY, "order.requested", "channel",
    )  # fmt: skip
    assert (message.correlation_id, message.headers["tmf-id"], delivery.delivery_count) == (
        "C-PO-1",
        "PO-1",
        1,
    )


def test_an_accepted_order_leaves_the_inbox_and_its_create_event_is_released(store: ResourceStore) -> None:
    """Delivered: gone from the inbox with the next claim, never handed out again, its event due."""
    post(store)
    reader = inbox(store)
    delivery = reader.get(0)
    assert delivery is not None
    assert store.events("held") != []
    delivery.ended("delivered").ack()
    assert reader.get(0) is None
    assert store.inbox() == []
    assert [e["status"] for e in store.events()] == ["pending"]
    assert store.get("productOrder", "PO-1") == DOC


def test_a_given_back_order_comes_again_with_a_higher_count(store: ResourceStore) -> None:
    """An ack with an error releases the claim; once its backoff is over it is handed out again."""
    post(store)
    reader = inbox(store)
    first = reader.get(0)
    assert first is not None
    first.ack(TransportError("the broker is down"))
    assert reader.get(0) is None  # due again after its backoff (1 s after the first attempt)
    again = reader.get(3.0)
    assert again is not None
    assert (again.message.id, again.delivery_count) == ("PO-1", 2)
    assert store.events("held") != []  # not announced while not accepted


def test_a_dead_lettered_order_shows_failed_and_is_announced(store: ResourceStore) -> None:
    """Refused by the route: state failed on GET, create and state-change events due, inbox empty."""
    post(store)
    delivery = inbox(store).get(0)
    assert delivery is not None
    delivery.ended("dead_lettered", MessageError("no such offering")).ack()
    assert store.get("productOrder", "PO-1") == {**DOC, "state": "failed"}
    assert store.inbox() == []
    due = [orjson.loads(row["body"]) for row in store.due(time.time() + 1)]
    assert [e["eventType"] for e in due] == ["ProductOrderCreateEvent", "ProductOrderStateChangeEvent"]
    assert due[1]["event"]["productOrder"]["state"] == "failed"


def test_a_dead_lettered_cancel_is_terminated_with_the_reason(store: ResourceStore) -> None:
    """A cancel request the route refused shows terminatedWithError and why, in stateChangeReason."""
    post(store, "CXL-1", kind="cancelProductOrder")
    delivery = inbox(store).get(0)
    assert delivery is not None
    delivery.ended("dead_lettered", MessageError("cancellationReason is required\nmore")).ack()
    shown = store.get("cancelProductOrder", "CXL-1")
    assert shown is not None
    assert (shown["state"], shown["stateChangeReason"]) == (
        "terminatedWithError",
        "cancellationReason is required",
    )


def test_claims_are_not_handed_out_twice_and_go_back_at_stop(store: ResourceStore) -> None:
    """Two readers never get the same order; what one held unsettled is the other's after it stopped."""
    post(store, "PO-1")
    post(store, "PO-2")
    first, second = inbox(store), inbox(store)
    taken = [first.get(0), first.get(0)]
    assert [d.message.id for d in taken if d is not None] == ["PO-1", "PO-2"]
    assert second.get(0) is None
    taken[0].ended("delivered").ack()  # type: ignore[union-attr]
    first.stop()
    again = second.get(0)
    assert again is not None
    assert (again.message.id, again.delivery_count) == ("PO-2", 2)
    assert second.get(0) is None


def test_a_post_wakes_a_sleeping_reader(store: ResourceStore) -> None:
    """A waiting reader is woken by the post itself (its store scan is an hour away), not by its timeout."""
    reader = StoreInbox(store, "channel", "order.requested", scan=3600.0)  # only a wake-up can deliver it
    reader._scanned = time.monotonic()
    got: list[str | None] = []

    def wait() -> None:
        delivery = reader.get(60.0)
        got.append(delivery.message.id if delivery is not None else None)

    thread = threading.Thread(target=wait)
    thread.start()
    time.sleep(0.2)
    post(store, reader=reader)
    thread.join(30.0)  # no wake-up: the reader would sleep on for its 60 s timeout
    assert not thread.is_alive()
    assert got == ["PO-1"]


def test_the_claims_of_a_dead_process_on_this_host_are_reclaimed(store: ResourceStore) -> None:
    """Start-up reconciliation: rows held by a process that no longer runs are due at once, not after
    the lease; rows of a live process are left alone."""
    post(store, "PO-1")
    post(store, "PO-2")
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    host = socket.gethostname()
    far = time.time() + 3600
    assert len(store.claim(f"{host}:{dead.stdout.strip()}:x", time.time(), far, 1)) == 1
    assert len(store.claim(f"{host}:{1}:y", time.time(), far, 1)) == 1  # pid 1 runs
    assert store.reclaim(host) == 1
    delivery = inbox(store).get(0)
    assert delivery is not None
    assert (delivery.message.id, delivery.delivery_count) == ("PO-1", 2)


def test_an_expired_lease_is_taken_again(store: ResourceStore) -> None:
    """A claim not renewed within its lease (a hub on another host died) is handed out again."""
    post(store)
    assert store.claim("elsewhere:1:z", time.time(), time.time() + 0.2, 10)
    reader = inbox(store)
    assert reader.get(0) is None
    time.sleep(0.3)
    delivery = reader.get(0)
    assert delivery is not None
    assert delivery.delivery_count == 2


def test_a_state_change_before_the_route_settled_waits_for_the_create_event(store: ResourceStore) -> None:
    """A change written while the order is still in the inbox is held with its create event, and both
    are posted in order once the route accepted the order: never a change before the creation."""
    post(store)
    change = {"eventId": "S-1", "eventType": "ProductOrderStateChangeEvent", "event": {"productOrder": DOC}}
    assert store.enqueue(change, "PO-1", "C-PO-1") == 1
    assert store.due(time.time() + 1) == []
    reader = inbox(store)
    delivery = reader.get(0)
    assert delivery is not None
    delivery.ended("delivered").ack()
    reader.stop()
    due = [orjson.loads(row["body"])["eventType"] for row in store.due(time.time() + 1)]
    assert due == ["ProductOrderCreateEvent", "ProductOrderStateChangeEvent"]


def test_an_outcome_the_store_cannot_take_hands_the_order_out_again(
    store: ResourceStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A dead-letter the store cannot record (locked, disk full) does not lose the order: it is handed
    out again with a higher count, and recorded once the store takes it."""
    post(store)
    reader = inbox(store)
    delivery = reader.get(0)
    assert delivery is not None
    refuse = store.refuse

    def locked(*args: object) -> None:
        raise sqlite3.OperationalError("database is locked")

    monkeypatch.setattr(store, "refuse", locked)
    monkeypatch.setattr("adapters.rest.inbox.time.sleep", lambda seconds: None)
    delivery.ended("dead_lettered", MessageError("refused")).ack()
    again = reader.get(0)
    assert again is not None
    assert (again.message.id, again.delivery_count) == ("PO-1", 2)
    monkeypatch.setattr(store, "refuse", refuse)
    again.ended("dead_lettered", MessageError("refused")).ack()
    assert store.inbox() == []
    assert store.get("productOrder", "PO-1") == {**DOC, "state": "failed"}


def test_a_store_that_cannot_be_read_is_a_transport_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The source turns the store's errors into a TransportError (the worker reconnects), not a crash."""
    from adapters.rest.source import RESTSource

    def unreadable(timeout: float) -> None:
        raise sqlite3.OperationalError("disk I/O error")

    source = RESTSource.__new__(RESTSource)
    source.server = SimpleNamespace(served=SimpleNamespace(inbox=SimpleNamespace(get=unreadable)))  # type: ignore[assignment]
    source.context = SimpleNamespace(endpoint="channel.rest_orders")  # type: ignore[assignment]
    with pytest.raises(TransportError, match="disk I/O error"):
        source.read(0)


def test_memory_and_store_hand_out_the_same_message(tmp_path: Path) -> None:
    """Differential: an order handed out from memory (posted here) and the same order found by a scan
    of the store (posted elsewhere, or left by a dead hub) are the same message, field for field."""
    here = ResourceStore(tmp_path / "here.db").open()
    there = ResourceStore(tmp_path / "there.db").open()
    try:
        fast = StoreInbox(here, "channel", "order.requested", scan=3600)
        fast._scanned = time.monotonic()  # memory only
        post(here, reader=fast)
        post(there)
        created = time.time()  # both rows get the same creation time for the comparison
        for store in (here, there):
            store._run("UPDATE inbox SET created = ?", (created,))
            store._run("UPDATE resources SET created = ?", (created,))
        fast._ready[0] = fast._ready[0]._replace(created=created)
        from_memory, from_store = fast.get(0), inbox(there).get(0)
        assert from_memory is not None
        assert from_store is not None
        fields = ("id", "body", "headers", "type", "source", "correlation_id", "created_at", "causation_id")
        assert [getattr(from_memory.message, f) for f in fields] == [
            getattr(from_store.message, f) for f in fields
        ]
        assert from_memory.delivery_count == from_store.delivery_count == 1
    finally:
        here.close()
        there.close()
