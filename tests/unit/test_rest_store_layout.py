"""The resource store's inbox layout: a rowid table, and a store written with the earlier WITHOUT ROWID
inbox rebuilt once when opened, its orders in flight kept."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import orjson

from adapters.rest.store import ResourceStore

OLD_INBOX = """CREATE TABLE inbox (
    kind TEXT NOT NULL, id TEXT NOT NULL, event_id TEXT NOT NULL, body BLOB NOT NULL, headers TEXT NOT NULL,
    correlation_id TEXT, created REAL NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,
    due REAL NOT NULL DEFAULT 0, owner TEXT, lease REAL NOT NULL DEFAULT 0,
    PRIMARY KEY (kind, id)) WITHOUT ROWID"""


def _inbox_sql(path: Path) -> str:
    with sqlite3.connect(path) as db:
        return str(db.execute("SELECT sql FROM sqlite_schema WHERE name = 'inbox'").fetchone()[0])


def _create(store: ResourceStore, ident: str) -> int | None:
    event = {"eventId": f"E-{ident}", "eventType": "ProductOrderCreateEvent"}
    doc = orjson.dumps({"id": ident})
    return store.create("productOrder", ident, doc, event, ident, b"x" * 1500, "{}", None, time.time())


def test_a_new_store_keeps_its_inbox_in_a_rowid_table(tmp_path: Path) -> None:
    """A new store's inbox is a rowid table (an order's ~1.5 KB row stays in its leaf page)."""
    ResourceStore(tmp_path / "rest.db").open().close()
    assert "WITHOUT ROWID" not in _inbox_sql(tmp_path / "rest.db").upper()


def test_an_older_stores_inbox_is_rebuilt_with_its_orders(tmp_path: Path) -> None:
    """A store whose inbox is WITHOUT ROWID is rebuilt at open: same rows, the create trigger works."""
    path = tmp_path / "rest.db"
    ResourceStore(path).open().close()
    with sqlite3.connect(path) as db:  # the earlier layout, with an order waiting in it
        db.executescript(f"DROP TRIGGER new_resource; DROP TABLE inbox; {OLD_INBOX};")
        db.execute("INSERT INTO inbox (kind, id, event_id, body, headers, correlation_id, created, attempts, "
                   "due, owner, lease) VALUES ('productOrder', 'PO-1', 'E-1', x'7b7d', '{}', 'C', 1.0, 2, 0, "
                   "NULL, 0)")  # fmt: skip
    assert "WITHOUT ROWID" in _inbox_sql(path).upper()
    store = ResourceStore(path).open()
    assert "WITHOUT ROWID" not in _inbox_sql(path).upper()
    assert store.inbox() == [{"id": "PO-1", "kind": "productOrder", "attempts": 2, "owner": None}]
    assert _create(store, "PO-2") == 0
    assert _create(store, "PO-2") is None
    claimed = store.claim("me", time.time(), time.time() + 30, 10)
    assert sorted((row.id, row.body[:2]) for row in claimed) == [("PO-1", b"{}"), ("PO-2", b"xx")]
    store.close()
