"""The REST listener store's indexes and retention: the notifier's due query reads only pending rows, an
older store file gets the indexes and the ``settled`` column on open, and a prune removes settled event
rows and ended orders after their time, never what is still in flight. Across processes:
tests/integration/test_rest_store_processes.py."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from adapters.rest import RESTAdapter
from adapters.rest.config import RESTEndpoint, StoreOptions
from adapters.rest.retention import Pruner, prune
from adapters.rest.store import _DUE, ResourceStore, store_path
from esb.config.settings import Settings
from esb.context import AdapterContext

DAY = 86400.0
OPTIONS = StoreOptions(events_keep="7d", resources_keep="30d", prune_batch=2, prune_pause=0)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[ResourceStore]:
    """A fresh store with one listener that takes every event."""
    opened = ResourceStore(tmp_path / "rest.db").open()
    opened.add_listener("L", "http://127.0.0.1:9/all", None)
    yield opened
    opened.close()


def order(store: ResourceStore, ident: str, state: str = "acknowledged", accepted: bool = True) -> None:
    """Create order ``ident`` (its create event held for the listener); ``accepted``: the route took it
    (inbox row gone, event released), then its state becomes ``state``."""
    doc = {"id": ident, "state": "acknowledged"}
    event = {"eventId": f"E-{ident}", "eventType": "ProductOrderCreateEvent", "event": {"productOrder": doc}}
    store.create("productOrder", ident, orjson.dumps(doc), event, None)
    claimed = store.claim("route", time.time(), time.time() + 60, 1000)
    if accepted:
        store.settle_inbox([row for row in claimed if row.id == ident], "route")
    store.release_owner("route")
    if state != "acknowledged":
        store.change("productOrder", ident, {"state": state})


def deliver_all(store: ResourceStore, at: float) -> None:
    """Every pending event delivered at ``at``."""
    for row in store.due(time.time() + 1, limit=1000):
        store.settle(row["seq"], "delivered", 1, due=at)


def plan(db: sqlite3.Connection, sql: str, args: tuple[Any, ...]) -> list[str]:
    """The details of ``sql``'s query plan."""
    return [str(row[3]) for row in db.execute("EXPLAIN QUERY PLAN " + sql, args)]


def test_due_reads_only_the_pending_rows(store: ResourceStore) -> None:
    """The notifier's due query searches events through the pending-only index, never scans the table."""
    assert store._db is not None
    details = plan(store._db, _DUE, (1.0, 1.0, 50))
    assert [d for d in details if d.startswith("SCAN")] == []
    assert sum("USING INDEX events_pending" in d for d in details) == 2


def test_an_older_store_gets_the_new_column_and_indexes_on_open(tmp_path: Path) -> None:
    """A store written before retention opens with ``settled`` filled in for its ended orders only, and
    with the new indexes (the GET list's ``resources_listed`` too)."""
    path = tmp_path / "old.db"
    db = sqlite3.connect(path)
    db.executescript(
        "CREATE TABLE resources (kind TEXT NOT NULL, id TEXT NOT NULL, status TEXT NOT NULL, "
        "created REAL NOT NULL, doc TEXT NOT NULL, PRIMARY KEY (kind, id));"
        "CREATE TABLE events (seq INTEGER PRIMARY KEY AUTOINCREMENT, event_id TEXT NOT NULL, "
        "listener_id TEXT NOT NULL, callback TEXT NOT NULL, body TEXT NOT NULL, resource_id TEXT, "
        "correlation_id TEXT, attempts INTEGER NOT NULL DEFAULT 0, due REAL NOT NULL, status TEXT NOT NULL, "
        "error TEXT, UNIQUE (event_id, listener_id));"
    )
    db.executemany(
        "INSERT INTO resources VALUES ('productOrder', ?, 'created', ?, ?)",
        [("PO-done", 100.0, '{"state": "completed"}'), ("PO-open", 200.0, '{"state": "inProgress"}')],
    )
    db.commit()
    db.close()
    opened = ResourceStore(path).open()
    try:
        assert opened._run("SELECT id, settled FROM resources ORDER BY id") == [
            ("PO-done", 100.0),
            ("PO-open", None),
        ]
        names = {r[0] for r in opened._run("SELECT name FROM sqlite_master WHERE type = 'index'")}
        assert {"events_pending", "events_done", "resources_settled", "resources_listed"} <= names
    finally:
        opened.close()


def fill_ended(store: ResourceStore, prefix: str, count: int) -> None:
    """``count`` orders that ended 31 days ago, their events delivered 8 days ago: all prunable."""
    for index in range(count):
        order(store, f"{prefix}-{index}", "completed")
    deliver_all(store, time.time() - 8 * DAY)
    store._run("UPDATE resources SET settled = ?", (time.time() - 31 * DAY,))
    store._run("PRAGMA wal_checkpoint(TRUNCATE)")


def test_pruned_pages_are_reused_by_new_rows(store: ResourceStore) -> None:
    """A store as created (no auto_vacuum): what a prune freed holds the next rows, the file does not grow."""
    fill_ended(store, "A", 300)
    pages = store._run("PRAGMA page_count")[0][0]
    result = prune(store, StoreOptions(prune_pause=0))
    assert (result.events, result.resources, result.pages) == (300, 300, 0)
    assert store._run("PRAGMA freelist_count")[0][0] > 0
    fill_ended(store, "B", 300)
    assert store._run("PRAGMA page_count")[0][0] <= pages


def test_an_incremental_store_gives_pruned_pages_back(tmp_path: Path) -> None:
    """A store an operator made incremental auto_vacuum (VACUUM) shrinks after a prune."""
    opened = ResourceStore(tmp_path / "big.db").open()
    try:
        opened._run("PRAGMA auto_vacuum = INCREMENTAL")
        opened._run("VACUUM")
        opened.add_listener("L", "http://127.0.0.1:9/all", None)
        fill_ended(opened, "A", 300)
        pages = opened._run("PRAGMA page_count")[0][0]
        result = prune(opened, StoreOptions(prune_pause=0))
        assert (result.events, result.resources) == (300, 300)
        assert result.pages > 0
        assert opened._run("PRAGMA page_count")[0][0] < pages
    finally:
        opened.close()


def test_a_state_change_to_a_final_state_settles_the_resource_once(store: ResourceStore) -> None:
    """``settled`` is set when the order reaches a final state and kept when it changes again."""
    order(store, "PO-1", "inProgress")
    assert store._run("SELECT settled FROM resources") == [(None,)]
    store.change("productOrder", "PO-1", {"state": "completed"})
    (first,) = store._run("SELECT settled FROM resources")[0]
    assert first is not None
    store.change("productOrder", "PO-1", {"description": "later note"})
    assert store._run("SELECT settled FROM resources") == [(first,)]


def test_settled_event_rows_go_after_events_keep(store: ResourceStore) -> None:
    """Delivered and given-up rows older than events_keep go; recent ones, pending and held ones stay."""
    now = time.time()
    for ident in ("PO-old", "PO-failed", "PO-new", "PO-pending"):
        order(store, ident)
    order(store, "PO-held", accepted=False)
    rows = {r["resource_id"]: r["seq"] for r in store.due(now + 1, limit=100)}
    store.settle(rows["PO-old"], "delivered", 1, due=now - 8 * DAY)
    store.settle(rows["PO-failed"], "failed", 20, "HTTP 500", due=now - 8 * DAY)
    store.settle(rows["PO-new"], "delivered", 1, due=now - 6 * DAY)
    result = prune(store, OPTIONS, now=now)
    assert result.events == 2
    assert sorted(store._run("SELECT resource_id, status FROM events")) == [
        ("PO-held", "held"),
        ("PO-new", "delivered"),
        ("PO-pending", "pending"),
    ]


def test_a_delivered_row_settles_at_the_time_of_delivery(store: ResourceStore) -> None:
    """settle() without ``due`` stamps a delivered row with now (events_keep counts from it)."""
    order(store, "PO-1")
    (row,) = store.due(time.time() + 1)
    before = time.time()
    store.settle(row["seq"], "delivered", 1)
    assert store._run("SELECT due FROM events")[0][0] >= before


def test_ended_orders_go_after_resources_keep_never_in_flight_ones(store: ResourceStore) -> None:
    """An order ended more than resources_keep ago goes (GET None); one ended recently, one still in
    progress, one the route has not accepted and one with an event to post stay (GET answers)."""
    now = time.time()
    order(store, "PO-gone", "completed")
    order(store, "PO-recent", "completed")
    order(store, "PO-running", "inProgress")
    order(store, "PO-unaccepted", accepted=False)
    order(store, "PO-to-post", "failed")
    deliver_all(store, now - 8 * DAY)
    order(store, "PO-to-post-2", "completed")  # its create and state-change events are pending
    store._run("UPDATE resources SET settled = ?, created = ?", (now - 31 * DAY, now - 40 * DAY))
    store._run("UPDATE resources SET settled = ? WHERE id = 'PO-recent'", (now - 29 * DAY,))
    store._run("UPDATE resources SET settled = NULL WHERE id = 'PO-running'")
    result = prune(store, OPTIONS, now=now)
    assert result.resources == 2  # PO-gone and PO-to-post (its events delivered)
    assert store.get("productOrder", "PO-gone") is None
    assert store.get("productOrder", "PO-to-post") is None
    for kept in ("PO-recent", "PO-running", "PO-unaccepted", "PO-to-post-2"):
        assert store.get("productOrder", kept) is not None, kept


def test_a_prune_deletes_in_batches_until_done_and_stops_when_asked(store: ResourceStore) -> None:
    """Batches of prune_batch rows run until none is left; a set stop event ends it after one batch."""
    for index in range(7):
        order(store, f"PO-{index}", "completed")
    deliver_all(store, time.time() - 8 * DAY)
    stop = threading.Event()
    calls: list[int] = []
    original = store.prune_events

    def counted(before: float, limit: int) -> int:
        calls.append(limit)
        stop.set()
        return original(before, limit)

    store.prune_events = counted  # type: ignore[method-assign]
    stopped = prune(store, OPTIONS, stop=stop)
    assert (stopped.events, stopped.stopped, calls) == (2, True, [2])
    store.prune_events = original  # type: ignore[method-assign]
    assert prune(store, OPTIONS).events == 5


def test_no_retention_keeps_everything(store: ResourceStore) -> None:
    """events_keep and resources_keep null: nothing is deleted however old."""
    order(store, "PO-1", "completed")
    deliver_all(store, 0.0)
    store._run("UPDATE resources SET settled = 0")
    result = prune(store, StoreOptions(events_keep=None, resources_keep=None), now=time.time())
    assert (result.events, result.resources) == (0, 0)


class FakeElection:
    """An election whose result the test sets."""

    def __init__(self, leader: bool) -> None:
        self.elected = threading.Event()
        self.leader = leader
        self.stopped = False

    @property
    def is_leader(self) -> bool:
        """As set."""
        return self.leader

    def stop(self) -> None:
        """Record the stop."""
        self.stopped = True


class FakeServices:
    """Engine services handing out one election."""

    def __init__(self, election: FakeElection) -> None:
        self.election = election
        self.names: list[str] = []

    def elect(self, name: str, *, wait: float = 0.0) -> FakeElection:
        """Record the name, return the election."""
        self.names.append(name)
        return self.election


@pytest.mark.parametrize("leader", [True, False])
def test_the_scheduled_prune_runs_only_where_elected(
    store: ResourceStore, tmp_path: Path, leader: bool
) -> None:
    """The job joins the endpoint's election and prunes (recording its run) only while leading."""
    order(store, "PO-1", "completed")
    deliver_all(store, 0.0)
    services = FakeServices(FakeElection(leader))
    context = AdapterContext(Settings(data_dir=tmp_path), tmp_path, "channel.orders", services=services)  # type: ignore[arg-type]
    pruner = Pruner(store, StoreOptions(prune_every=3600), context)
    pruner.start()
    try:
        pruner.scheduled()
    finally:
        pruner.stop()
    assert services.names == ["rest-store:channel.orders"]
    assert services.election.stopped
    runs = store.runs("prune")
    assert [(r["runs"], r["outcome"]) for r in runs] == ([(1, "ok")] if leader else [])
    assert store._run("SELECT count(*) FROM events")[0][0] == (0 if leader else 1)


def served(store: dict[str, Any]) -> RESTEndpoint:
    """A served endpoint with these ``store`` options."""
    users = [{"username": "channel", "password_env": "UNUSED"}]
    return RESTEndpoint.model_validate({"listen": {"port": 0, "auth": {"users": users}, "store": store}})


def test_health_shows_the_prune_job_and_its_last_run(tmp_path: Path) -> None:
    """esb health's jobs: the prune job, never run before the store exists, then its last run and next
    run; overdue when the last run is far older than the schedule; none when nothing expires."""
    context = AdapterContext(Settings(data_dir=tmp_path), tmp_path, "channel.rest_orders")
    adapter = RESTAdapter()
    (job,) = adapter.jobs(served({"prune_every": "1h"}), context)
    assert (job["job"], job["last_run"], job["runs"], job["overdue"]) == ("prune", None, 0, False)
    store = ResourceStore(store_path(context)).open()
    try:
        store.record_run("prune", "host:1", time.time() - 5, "ok", "1 events, 0 resources, 0 pages freed")
        (job,) = adapter.jobs(served({"prune_every": "1h"}), context)
        assert (job["outcome"], job["runs"], job["overdue"]) == ("ok", 1, False)
        assert 3590 < (job["next_run"] - job["last_run"]).total_seconds() < 3610
        store._run("UPDATE jobs SET last_run = ?", (time.time() - 3 * 3600,))
        assert adapter.jobs(served({"prune_every": "1h"}), context)[0]["overdue"]
    finally:
        store.close()
    assert adapter.jobs(served({"events_keep": None, "resources_keep": None}), context) == []
