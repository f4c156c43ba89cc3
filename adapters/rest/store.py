"""The listener's own state: the TMF resources it created, the event hub's listeners and events to post.

One SQLite database per endpoint, ``settings.data_dir/rest/<system.endpoint>.db`` (WAL; created 0600 in
a 0700 folder through :mod:`esb.files`, never through a link). It is shared by the endpoint's source
(which serves and creates resources and posts events) and its sink (which applies state changes and
queues their events), in one process or several.

A POSTed resource is written with its create event in ONE statement before it is handed to the route
(:meth:`ResourceStore.create`, through the ``new_resources`` view's trigger): its id is taken from then
on (a second POST of the same id is a conflict, across processes too) and it is durable before the 201.
The event waits ``held`` for every listener whose query it matches until the route accepts the resource
(:meth:`~ResourceStore.publish`, only when some listener matched); an order the route refuses (dead-lettered)
takes its failed state, its held create event is released and the state change queued, and its inbox row
goes, in one transaction (:meth:`~ResourceStore.refuse`): the rare path pays the second write.
An event is kept once per registered listener until it is delivered, or given up after the configured
attempts; then for ``store.events_keep``. A resource whose order reached a final state (``settled``) is
kept for ``store.resources_keep``: ``retention.py`` prunes both. A store written by an older hub gets
the ``settled`` column and the indexes when it is opened (:meth:`ResourceStore._upgrade`).
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import orjson

from esb.context import AdapterContext
from esb.files import create_private
from esb.pids import pid_alive

#: The durable inbox's columns. A rowid table (its key a separate index): the order's body and headers
#: (~1.5 KB) fit in a table leaf, where a WITHOUT ROWID row over ~1 KB spills to an overflow page that
#: each create allocates and each settling frees (measured: 21.5 -> 16.3 writes to the WAL per order,
#: ~12 µs of CPU less; docs/rest.md *Speed*). A store written before is rebuilt once (``_rebuild_inbox``).
_INBOX_COLUMNS = """
    kind TEXT NOT NULL, id TEXT NOT NULL, event_id TEXT NOT NULL, body BLOB NOT NULL, headers TEXT NOT NULL,
    correlation_id TEXT, created REAL NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,
    due REAL NOT NULL DEFAULT 0, owner TEXT, lease REAL NOT NULL DEFAULT 0,
    PRIMARY KEY (kind, id)"""
_INBOX_NAMES = "kind, id, event_id, body, headers, correlation_id, created, attempts, due, owner, lease"
_SCHEMA = """
CREATE TABLE IF NOT EXISTS resources (
    kind TEXT NOT NULL, id TEXT NOT NULL, status TEXT NOT NULL, created REAL NOT NULL, doc TEXT NOT NULL,
    settled REAL,
    PRIMARY KEY (kind, id));
CREATE TABLE IF NOT EXISTS listeners (
    id TEXT PRIMARY KEY, callback TEXT NOT NULL, query TEXT, created REAL NOT NULL);
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, event_id TEXT NOT NULL, listener_id TEXT NOT NULL,
    callback TEXT NOT NULL, body TEXT NOT NULL, resource_id TEXT, correlation_id TEXT,
    attempts INTEGER NOT NULL DEFAULT 0, due REAL NOT NULL, status TEXT NOT NULL, error TEXT,
    UNIQUE (event_id, listener_id));
CREATE INDEX IF NOT EXISTS events_of_resource ON events (resource_id, status);
CREATE TABLE IF NOT EXISTS inbox ({_INBOX_COLUMNS});
CREATE TABLE IF NOT EXISTS jobs (
    name TEXT NOT NULL, owner TEXT NOT NULL, runs INTEGER NOT NULL, started REAL NOT NULL,
    last_run REAL NOT NULL, outcome TEXT NOT NULL, detail TEXT, PRIMARY KEY (name, owner));
BEGIN IMMEDIATE;
DROP TRIGGER IF EXISTS new_resource;
DROP VIEW IF EXISTS new_resources;
CREATE VIEW new_resources AS SELECT NULL AS kind, NULL AS id, NULL AS created, NULL AS doc,
    NULL AS event_id, NULL AS event, NULL AS correlation_id, NULL AS body, NULL AS headers, NULL AS owner,
    NULL AS lease;
CREATE TRIGGER new_resource INSTEAD OF INSERT ON new_resources BEGIN
    INSERT INTO resources (kind, id, status, created, doc)
        VALUES (NEW.kind, NEW.id, 'created', NEW.created, NEW.doc);
    INSERT OR IGNORE INTO events (event_id, listener_id, callback, body, resource_id, correlation_id, due,
        status)
        SELECT NEW.event_id, l.id, l.callback, NEW.event, NEW.id, NEW.correlation_id, NEW.created, 'held'
        FROM listeners AS l WHERE esb_event_matches(l.query, NEW.event);
    INSERT INTO inbox (kind, id, event_id, body, headers, correlation_id, created, attempts, owner, lease)
        VALUES (NEW.kind, NEW.id, NEW.event_id, NEW.body, NEW.headers, NEW.correlation_id, NEW.created,
                NEW.owner IS NOT NULL, NEW.owner, coalesce(NEW.lease, 0));
END;
COMMIT;
""".replace("{_INBOX_COLUMNS}", _INBOX_COLUMNS)
#: Created after :meth:`ResourceStore._upgrade` (``resources_settled`` needs the ``settled`` column a store
#: written before it lacks). Partial indexes: only the few rows waiting for delivery are in
#: ``events_pending`` (what the notifier's ``_DUE`` reads every round), only settled rows in the two the
#: prune reads; a POST writes held events and an unsettled resource, so it adds no entry to them. It adds
#: one to ``resources_listed``, the order of a GET list (``_PAGE``): at the right edge of the index, as
#: ``created`` grows (measured: docs/rest.md, *Listing*).
_INDEXES = """
CREATE INDEX IF NOT EXISTS events_pending ON events (due) WHERE status = 'pending';
CREATE INDEX IF NOT EXISTS events_done ON events (due) WHERE status IN ('delivered', 'failed');
CREATE INDEX IF NOT EXISTS resources_settled ON resources (settled) WHERE settled IS NOT NULL;
CREATE INDEX IF NOT EXISTS resources_listed ON resources (kind, created, id);
"""
#: The states in which a served resource's order has ended (TMF622 ProductOrderStateType and the
#: TaskStateType of a CancelProductOrder): from then on the resource is kept for ``resources_keep``.
FINAL_STATES = frozenset({
    "rejected", "cancelled", "completed", "failed", "partial", "done", "terminatedWithError",
})  # fmt: skip
#: Rows of an upgraded store whose ``settled`` time is filled in per statement (a short write lock each).
UPGRADE_BATCH = 5_000
#: One statement, so one transaction in autocommit and one release of the GIL (SQLite's step): the
#: resource and its held create events, or nothing when the id exists (the primary key aborts it).
_CREATE = (
    "INSERT INTO new_resources (kind, id, created, doc, event_id, event, correlation_id, body, headers, "
    "owner, lease) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
#: Claim up to N due rows nobody holds (or whose holder's lease ran out) in one statement.
_CLAIM = (
    "UPDATE inbox SET owner = ?, lease = ?, attempts = attempts + 1 WHERE (kind, id) IN (SELECT kind, id "
    "FROM inbox WHERE due <= ? AND lease <= ? ORDER BY created LIMIT ?) "
    "RETURNING kind, id, event_id, body, headers, correlation_id, created, attempts"
)


_INSERT_EVENT = (
    "INSERT OR IGNORE INTO events (event_id, listener_id, callback, body, resource_id, correlation_id, due, "
    "status) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)
#: The route accepted (or refused) the resource: its held events (the create event, and any state change
#: written before the route settled it) may be posted, in the order they were written.
_RELEASE = "UPDATE events SET status = 'pending' WHERE resource_id = ? AND status = 'held'"
#: The settling of a batch of accepted rows (``_settle``), each row's key in one JSON array: the
#: inbox rows by primary key, the held events through ``events_of_resource`` (measured plans).
_SETTLE_ROWS = (
    "DELETE FROM inbox WHERE owner = ? AND (kind, id) IN (SELECT value ->> 0, value ->> 1 FROM json_each(?))"
)
_RELEASE_MANY = (
    "UPDATE events SET status = 'pending' WHERE status = 'held' "
    "AND resource_id IN (SELECT value FROM json_each(?))"
)
_HELD = "SELECT 1 FROM events WHERE resource_id = ? AND status = 'held' LIMIT 1"
#: A resource's new document; ``settled`` is when its order reached a final state (kept from the first
#: time it did), NULL while it is in flight.
_CHANGE = (
    "UPDATE resources SET doc = ?, settled = CASE WHEN ? THEN coalesce(settled, ?) END "
    "WHERE kind = ? AND id = ?"
)
_LISTENERS = "SELECT id, callback, query FROM listeners"
#: A GET list's page and count (``query``; ``where`` is fixed text, the values are bound). Every resource
#: row is ``created`` (the create trigger is the only writer of ``status``; a state change rewrites
#: ``doc``), so neither filters on it. The page walks ``resources_listed`` in order from its first
#: matching entry and stops after ``offset + limit`` matches; without filters the inner select is
#: covered by the index, so the rows an offset skips are index entries, never documents. The CROSS JOIN
#: keeps the page as the outer loop: its rows come in the inner select's order, no sort (the differential
#: test in tests/unit/test_rest_list.py pins it).
_PAGE = (
    "SELECT r.doc FROM (SELECT rowid AS listed FROM resources INDEXED BY resources_listed WHERE {where} "
    "ORDER BY created, id LIMIT ? OFFSET ?) AS p CROSS JOIN resources AS r ON r.rowid = p.listed"
)
_COUNT = "SELECT count(*) FROM resources WHERE {where}"


class InboxRow(NamedTuple):
    """An order in the durable inbox, as claimed for a route."""

    kind: str
    id: str
    event_id: str
    body: bytes
    headers: str
    correlation_id: str | None
    created: float
    attempts: int


#: Due events in order, without those queued behind their listener's oldest event still waiting to be
#: retried: a later event (a state change) must not overtake an earlier one (the create) in backoff.
#: Both read only the pending rows (``events_pending``): without INDEXED BY the planner, seeing ORDER BY
#: seq LIMIT, walks every row ever posted in seq order.
_DUE = (
    "WITH waiting AS (SELECT listener_id, MIN(seq) AS seq FROM events WHERE status = 'pending' AND due > ? "
    "GROUP BY listener_id) "
    "SELECT e.seq, e.event_id, e.listener_id, e.callback, e.body, e.resource_id, e.correlation_id, "
    "e.attempts FROM events AS e INDEXED BY events_pending "
    "LEFT JOIN waiting AS w ON w.listener_id = e.listener_id "
    "WHERE e.status = 'pending' AND e.due <= ? AND (w.seq IS NULL OR e.seq < w.seq) ORDER BY e.seq LIMIT ?"
)
#: Settled event rows in the order they settled, through ``events_done``.
_PRUNE_EVENTS = (
    "DELETE FROM events WHERE seq IN (SELECT seq FROM events WHERE status IN ('delivered', 'failed') "
    "AND due < ? ORDER BY due LIMIT ?)"
)
#: Ended orders through ``resources_settled``; never one the route has not accepted (its inbox row) or
#: with an event still to post (pending, or held behind the route).
_PRUNE_RESOURCES = (
    "DELETE FROM resources WHERE rowid IN (SELECT r.rowid FROM resources AS r WHERE r.settled < ? "
    "AND NOT EXISTS (SELECT 1 FROM inbox AS i WHERE i.kind = r.kind AND i.id = r.id) "
    "AND NOT EXISTS (SELECT 1 FROM events AS e WHERE e.resource_id = r.id "
    "AND e.status IN ('pending', 'held')) "
    "ORDER BY r.settled LIMIT ?)"
)


def _inbox_without_rowid(db: sqlite3.Connection) -> bool:
    """True when the store's inbox has the layout of a store written before 2026-12-07."""
    (sql,) = db.execute("SELECT sql FROM sqlite_schema WHERE type = 'table' AND name = 'inbox'").fetchone()
    return "WITHOUT ROWID" in str(sql).upper()


def store_path(context: AdapterContext) -> Path:
    """Where the endpoint's state database lives (under the hub's data_dir)."""
    settings = context.settings.resolve_paths(context.project_dir)
    return settings.data_dir / "rest" / f"{context.endpoint}.db"


class ResourceStore:
    """The state database of one REST endpoint; safe to use from several threads."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.lock = threading.Lock()
        self._db: sqlite3.Connection | None = None
        self._cursor: sqlite3.Cursor | None = None
        """Reused for the per-order writes (under ``lock``): no cursor object per request."""

    def open(self) -> ResourceStore:
        """Create the database (and its folder) if needed; return self."""
        create_private(self.path)  # 0600 before SQLite opens it: its -wal and -shm take its mode
        # autocommit (isolation_level None): a single statement is its own transaction, and the few
        # multi-statement writes say BEGIN IMMEDIATE themselves
        db = sqlite3.connect(self.path, timeout=10, check_same_thread=False, isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA busy_timeout=10000")
        # WAL + NORMAL: a commit is in the OS's hands (no fsync per commit), so it survives a crash of
        # the hub's process, not a power cut (the journal promises the same)
        db.execute("PRAGMA synchronous=NORMAL")
        db.create_function("esb_event_matches", 2, _event_matches, deterministic=True)
        db.executescript(_SCHEMA)
        if self._rebuild_inbox(db):
            db.executescript(_SCHEMA)  # the create trigger again, on the rebuilt inbox
        self._upgrade(db)
        db.executescript(_INDEXES)
        self._db = db
        self._cursor = db.cursor()
        return self

    @staticmethod
    def _rebuild_inbox(db: sqlite3.Connection) -> bool:
        """A store written before 2026-12-07 keeps its inbox WITHOUT ROWID: copy its rows (the orders in
        flight, usually few) into the rowid layout, once, whichever process opens it first; True then."""
        if not _inbox_without_rowid(db):
            return False
        db.execute("BEGIN IMMEDIATE")
        try:
            if not _inbox_without_rowid(db):  # another process rebuilt it meanwhile
                db.execute("COMMIT")
                return False
            db.execute("DROP TRIGGER IF EXISTS new_resource")  # (it names the inbox: recreated after)
            db.execute(f"CREATE TABLE inbox_rowid ({_INBOX_COLUMNS})")
            copy = f"INSERT INTO inbox_rowid ({_INBOX_NAMES}) SELECT {_INBOX_NAMES} FROM inbox"  # noqa: S608 - names
            db.execute(copy)
            db.execute("DROP TABLE inbox")
            db.execute("ALTER TABLE inbox_rowid RENAME TO inbox")
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        return True

    @staticmethod
    def _upgrade(db: sqlite3.Connection) -> None:
        """A store written before retention: add ``resources.settled`` (once, whichever process opens it
        first) and fill it in for the resources already in a final state, in short batches."""
        columns = {row[1] for row in db.execute("PRAGMA table_info(resources)")}
        if "settled" in columns:
            return
        db.execute("BEGIN IMMEDIATE")
        try:
            added = "settled" not in {row[1] for row in db.execute("PRAGMA table_info(resources)")}
            if added:
                db.execute("ALTER TABLE resources ADD COLUMN settled REAL")
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        if not added:
            return
        finals = ", ".join("?" * len(FINAL_STATES))
        last = int(db.execute("SELECT coalesce(max(rowid), 0) FROM resources").fetchone()[0])
        for start in range(0, last, UPGRADE_BATCH):
            db.execute(
                "UPDATE resources SET settled = created WHERE rowid > ? AND rowid <= ? "  # noqa: S608 - placeholders only
                f"AND json_extract(doc, '$.state') IN ({finals})",
                (start, start + UPGRADE_BATCH, *sorted(FINAL_STATES)),
            )

    def close(self) -> None:
        """Close the database. Safe to call twice."""
        if self._db is not None:
            self._db.close()
            self._db = self._cursor = None

    def _run(self, sql: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        assert self._db is not None, "open() first"
        with self.lock:
            return self._db.execute(sql, args).fetchall()

    # -- resources --------------------------------------------------------------------------------
    def create(
        self,
        kind: str,
        ident: str,
        doc: bytes,
        event: dict[str, Any],
        correlation_id: str | None,
        body: bytes = b"",
        headers: str = "{}",
        owner: tuple[str, float] | None = None,
        created: float | None = None,
    ) -> int | None:
        """Write a new resource (``doc``, its JSON), its create ``event`` held for every listener whose
        query it matches, and its inbox row (the message ``body`` and ``headers``, JSON, the route will
        get; claimed by ``owner`` until its lease when given), in one statement; return how many events
        are held, or None when ``ident`` exists (nothing written)."""
        who, lease = owner or (None, 0.0)
        row = (kind, ident, created or time.time(), doc.decode(), event["eventId"],
               orjson.dumps(event).decode(), correlation_id, body, headers, who, lease)  # fmt: skip
        with self.lock:
            assert self._db is not None, "open() first"
            assert self._cursor is not None
            before = self._db.total_changes  # counts the trigger's rows: resource, events, inbox row
            try:
                self._cursor.execute(_CREATE, row)
            except sqlite3.IntegrityError:
                return None
            return self._db.total_changes - before - 2

    def publish(self, event_id: str) -> None:
        """The route accepted the resource: its held create event may be posted to the listeners."""
        self._run("UPDATE events SET status = 'pending' WHERE event_id = ? AND status = 'held'", (event_id,))

    # -- the durable inbox (adapters/rest/inbox.py) -------------------------------------------------
    def claim(
        self, owner: str, now: float, lease: float, limit: int, done: list[InboxRow] | None = None
    ) -> list[InboxRow]:
        """Settle the rows in ``done`` (the route accepted them: deleted, their create events released),
        then claim up to ``limit`` due rows for ``owner`` until ``lease``; one transaction. Returns the
        claimed rows, oldest first."""
        assert self._db is not None, "open() first"
        with self.lock:
            if done:
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    self._settle(done, owner)
                    rows = self._db.execute(_CLAIM, (owner, lease, now, now, limit)).fetchall()
                    self._db.execute("COMMIT")
                except BaseException:
                    self._db.execute("ROLLBACK")
                    raise
            else:
                rows = self._db.execute(_CLAIM, (owner, lease, now, now, limit)).fetchall()
        return sorted((InboxRow(*r) for r in rows), key=lambda r: r.created)

    def _settle(self, done: list[InboxRow], owner: str) -> None:
        """Delete the accepted rows and release their held events: two statements whatever the batch
        (one SQLite step, so one release of the GIL, each; not one per row while the lock is held)."""
        assert self._db is not None
        self._db.execute(_SETTLE_ROWS, (owner, orjson.dumps([(r.kind, r.id) for r in done]).decode()))
        self._db.execute(_RELEASE_MANY, (orjson.dumps([r.id for r in done]).decode(),))

    def settle_inbox(self, done: list[InboxRow], owner: str) -> None:
        """Settle accepted rows without claiming more (the reader is closing)."""
        if not done:
            return
        assert self._db is not None, "open() first"
        with self.lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._settle(done, owner)
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def release(self, row: InboxRow, owner: str, due: float) -> None:
        """Give a claimed row back: due again at ``due`` (the route could not take it now)."""
        self._run(
            "UPDATE inbox SET owner = NULL, lease = 0, due = ? WHERE kind = ? AND id = ? AND owner = ?",
            (due, row.kind, row.id, owner),
        )

    def release_owner(self, owner: str) -> None:
        """Give back every row ``owner`` still holds (its reader is closing): due at once elsewhere."""
        self._run("UPDATE inbox SET owner = NULL, lease = 0 WHERE owner = ?", (owner,))

    def renew(self, owner: str, lease: float) -> None:
        """Extend the lease of every row ``owner`` holds."""
        self._run("UPDATE inbox SET lease = ? WHERE owner = ?", (lease, owner))

    def reclaim(self, host: str) -> int:
        """Release the rows held by processes of ``host`` that no longer run (killed hubs: their claims
        need not wait for the lease); return how many."""
        owners = self._run(
            "SELECT DISTINCT owner FROM inbox WHERE owner IS NOT NULL AND lease > ?", (time.time(),)
        )
        released = 0
        for (owner,) in owners:
            parts = str(owner).rsplit(":", 2)
            if len(parts) != 3 or parts[0] != host or not parts[1].isdigit() or pid_alive(int(parts[1])):
                continue
            self.release_owner(str(owner))
            released += 1
        return released

    def refuse(
        self, row: InboxRow, changes: dict[str, Any], event_for: Callable[[dict[str, Any]], dict[str, Any]]
    ) -> None:
        """The route dead-lettered the order: the resource takes ``changes`` (its failed state), its held
        create event is released, the state change ``event_for(resource)`` queued for the matching
        listeners, and its inbox row deleted; one transaction."""
        from adapters.rest.events import matches

        assert self._db is not None, "open() first"
        with self.lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                found = self._db.execute(
                    "SELECT doc FROM resources WHERE kind = ? AND id = ?", (row.kind, row.id)
                ).fetchall()
                if found:
                    before = _doc(found[0][0])
                    after = {**before, **changes}
                    self._db.execute(
                        _CHANGE, (orjson.dumps(after).decode(), *_settled(after), row.kind, row.id)
                    )
                    self._db.execute(_RELEASE, (row.id,))
                    if before.get("state") != after.get("state"):
                        event = event_for(after)
                        body = orjson.dumps(event).decode()
                        listeners = self._db.execute("SELECT id, callback, query FROM listeners").fetchall()
                        for ident, callback, query in listeners:
                            if matches(query, event):
                                args = (event["eventId"], ident, callback, body, row.id, row.correlation_id)
                                self._db.execute(_INSERT_EVENT, (*args, time.time(), "pending"))
                self._db.execute("DELETE FROM inbox WHERE kind = ? AND id = ?", (row.kind, row.id))
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def inbox(self) -> list[dict[str, Any]]:
        """Every order not accepted by a route yet: id, kind, attempts, owner (tests, diagnostics)."""
        rows = self._run("SELECT id, kind, attempts, owner FROM inbox ORDER BY created")
        return [dict(zip(("id", "kind", "attempts", "owner"), r, strict=True)) for r in rows]

    def get(self, kind: str, ident: str) -> dict[str, Any] | None:
        """Return a created resource, or None."""
        rows = self._run(
            "SELECT doc FROM resources WHERE kind = ? AND id = ? AND status = 'created'", (kind, ident)
        )
        return _doc(rows[0][0]) if rows else None

    def query(
        self, kind: str, filters: dict[str, str], offset: int, limit: int
    ) -> tuple[int, list[dict[str, Any]]]:
        """Return (how many match, the page ``offset``/``limit`` of them, oldest first).

        ``filters`` maps dotted attribute names (already checked to be names) to the value they equal.
        The page walks ``resources_listed`` in order and stops after ``offset + limit`` matches; the count
        is skipped when the page shows where the matches end (a short, non-empty page, or a short first
        page), else read from the same index (without filters) or from every document of the kind.
        """
        where = ["kind = ?"]
        args: list[Any] = [kind]
        for name, value in filters.items():
            where.append("CAST(json_extract(doc, ?) AS TEXT) = ?")
            args += [f"$.{name}", value]
        clause = " AND ".join(where)
        rows = self._run(_PAGE.format(where=clause), (*args, limit, offset))
        page = [_doc(r[0]) for r in rows]
        if len(page) < limit and (page or not offset):
            return offset + len(page), page
        total = int(self._run(_COUNT.format(where=clause), tuple(args))[0][0])
        return total, page

    def change(
        self, kind: str, ident: str, changes: dict[str, Any]
    ) -> tuple[dict[str, Any], dict[str, Any]] | None:
        """Apply ``changes`` (top-level attributes) to a created resource; return (before, after) or None."""
        assert self._db is not None, "open() first"
        with self.lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                rows = self._db.execute(
                    "SELECT doc FROM resources WHERE kind = ? AND id = ? AND status = 'created'",
                    (kind, ident),
                ).fetchall()
                if not rows:
                    self._db.execute("ROLLBACK")
                    return None
                before = _doc(rows[0][0])
                after = {**before, **changes}
                self._db.execute(_CHANGE, (orjson.dumps(after).decode(), *_settled(after), kind, ident))
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return before, after

    # -- event hub ----------------------------------------------------------------------------------
    def add_listener(self, ident: str, callback: str, query: str | None) -> None:
        """Register a listener's callback."""
        self._run(
            "INSERT INTO listeners (id, callback, query, created) VALUES (?, ?, ?, ?)",
            (ident, callback, query, time.time()),
        )

    def remove_listener(self, ident: str) -> bool:
        """Unregister a listener (and drop its undelivered events); False when there was none."""
        found = bool(self._run("SELECT 1 FROM listeners WHERE id = ?", (ident,)))
        self._run("DELETE FROM listeners WHERE id = ?", (ident,))
        self._run("DELETE FROM events WHERE listener_id = ? AND status IN ('pending', 'held')", (ident,))
        return found

    def listeners(self) -> list[tuple[str, str, str | None]]:
        """Every registered listener: (id, callback, query)."""
        return [(r[0], r[1], r[2]) for r in self._run("SELECT id, callback, query FROM listeners")]

    def enqueue(self, event: dict[str, Any], resource_id: str, correlation_id: str | None) -> int:
        """Keep ``event`` for every registered listener whose query it matches; return how many."""
        from adapters.rest.events import matches

        count = 0
        body = orjson.dumps(event).decode()
        assert self._db is not None, "open() first"
        with self.lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                # a change of a resource whose create event is still held (the route has not settled it
                # yet) waits with it: a listener never hears of a change before the creation
                held = self._db.execute(_HELD, (resource_id,)).fetchall()
                status = "held" if held else "pending"
                for ident, callback, query in self._db.execute(_LISTENERS).fetchall():
                    if not matches(query, event):
                        continue
                    args = (event["eventId"], ident, callback, body, resource_id, correlation_id)
                    self._db.execute(_INSERT_EVENT, (*args, time.time(), status))
                    count += 1
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return count

    def due(self, now: float, limit: int = 50) -> list[dict[str, Any]]:
        """Pending events whose next attempt is due, oldest first; none behind an older pending event of
        the same listener that waits for its retry (each listener gets its events in order)."""
        rows = self._run(_DUE, (now, now, limit))
        keys = (
            "seq",
            "event_id",
            "listener_id",
            "callback",
            "body",
            "resource_id",
            "correlation_id",
            "attempts",
        )
        return [dict(zip(keys, row, strict=True)) for row in rows]

    def settle(
        self, seq: int, status: str, attempts: int, error: str | None = None, due: float | None = None
    ) -> None:
        """Record an attempt: ``delivered``, ``failed`` (given up) or ``pending`` again at ``due``. A
        delivered or failed row's ``due`` becomes the time it settled (``events_keep`` counts from it)."""
        self._run(
            "UPDATE events SET status = ?, attempts = ?, error = ?, due = ? WHERE seq = ?",
            (status, attempts, error, time.time() if due is None else due, seq),
        )

    # -- retention (adapters/rest/retention.py) -----------------------------------------------------
    def prune_events(self, before: float, limit: int) -> int:
        """Delete up to ``limit`` delivered or given-up event rows settled before ``before``, oldest
        first, in one statement; return how many."""
        return self._delete(_PRUNE_EVENTS, (before, limit))

    def prune_resources(self, before: float, limit: int) -> int:
        """Delete up to ``limit`` resources whose order ended before ``before`` and that have no inbox row
        and no pending or held event, in one statement; return how many."""
        return self._delete(_PRUNE_RESOURCES, (before, limit))

    def _delete(self, sql: str, args: tuple[Any, ...]) -> int:
        assert self._db is not None, "open() first"
        with self.lock:
            return int(self._db.execute(sql, args).rowcount)

    def free_pages(self, pages: int) -> int:
        """Give up to ``pages`` free pages back to the file system when the file is incremental
        auto_vacuum (an operator's ``VACUUM`` made it so; the store does not: docs/rest.md, file size);
        return how many."""
        assert self._db is not None, "open() first"
        with self.lock:
            free = int(self._db.execute("PRAGMA freelist_count").fetchone()[0])
            if not free or not int(self._db.execute("PRAGMA auto_vacuum").fetchone()[0]):
                return 0
            # executescript steps the pragma through every page (execute would free one)
            self._db.executescript(f"PRAGMA incremental_vacuum({int(pages)});")
            return free - int(self._db.execute("PRAGMA freelist_count").fetchone()[0])

    def record_run(
        self, name: str, owner: str, started: float, outcome: str, detail: str | None = None
    ) -> None:
        """Record a run of job ``name`` by ``owner`` (this process) begun at ``started`` and ended now, for
        ``esb health`` and the tests."""
        self._run(
            "INSERT INTO jobs (name, owner, runs, started, last_run, outcome, detail) "
            "VALUES (?, ?, 1, ?, ?, ?, ?) ON CONFLICT (name, owner) DO UPDATE SET runs = runs + 1, "
            "started = excluded.started, last_run = excluded.last_run, outcome = excluded.outcome, "
            "detail = excluded.detail",
            (name, owner, started, time.time(), outcome, detail),
        )

    def runs(self, name: str) -> list[dict[str, Any]]:
        """The last recorded run of job ``name`` by each process that ran it, latest first: ``owner``,
        ``runs``, ``started``, ``last_run`` (when it ended), ``outcome``, ``detail``."""
        keys = ("owner", "runs", "started", "last_run", "outcome", "detail")
        rows = self._run(
            "SELECT owner, runs, started, last_run, outcome, detail FROM jobs WHERE name = ? "
            "ORDER BY last_run DESC",
            (name,),
        )
        return [dict(zip(keys, r, strict=True)) for r in rows]

    def forget_runs(self, before: float) -> None:
        """Drop the job records of processes that last ran before ``before`` (restarted hubs)."""
        self._run("DELETE FROM jobs WHERE last_run < ?", (before,))

    def events(self, status: str | None = None) -> list[dict[str, Any]]:
        """Every event row (for tests and ``esb health``-like checks), optionally of one ``status``."""
        rows = self._run(
            "SELECT event_id, listener_id, status, attempts, error FROM events WHERE ? IS NULL OR status = ?",
            (status, status),
        )
        return [
            dict(zip(("event_id", "listener_id", "status", "attempts", "error"), r, strict=True))
            for r in rows
        ]


def _event_matches(query: str | None, event: str) -> bool:
    """SQL function ``esb_event_matches(query, event JSON)``: the create trigger's listener filter."""
    from adapters.rest.events import matches

    return matches(query, orjson.loads(event))


def _settled(doc: dict[str, Any]) -> tuple[bool, float]:
    """``_CHANGE``'s arguments for ``settled``: whether ``doc``'s order has ended, and now."""
    return doc.get("state") in FINAL_STATES, time.time()


def _doc(text: str) -> dict[str, Any]:
    value: dict[str, Any] = orjson.loads(text)
    return value
