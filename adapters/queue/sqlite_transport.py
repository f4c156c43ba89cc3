"""A kombu virtual transport on SQLite (WAL) with leases: the hub's embedded, serverless queue broker.

``Connection("sqlite:////abs/path/queues.db")`` once :func:`register` has run (importing this module or
making a connection with ``adapters.queue.config.broker_connection`` does it). Every process on the
machine that opens the same file shares the queues. Counting and peeking without kombu:
:mod:`adapters.queue.sqlite_read` (the same statements).

How a message lives (one row of ``esb_messages``):

* ``_put`` inserts the row and commits before returning: a published message survives a SIGKILL.
  A ``x-delay`` header (milliseconds) makes it invisible until then ("not before").
* ``_get`` claims the oldest visible row in one ``BEGIN IMMEDIATE`` transaction: it becomes invisible
  for ``visibility_timeout`` seconds (the lease, as SQS / the Redis transport do), and its
  ``delivery_count`` goes up by one. The count is given to the consumer in
  ``message.delivery_info["delivery_count"]`` (1 the first time).
* ``basic_ack`` deletes the row; ``basic_reject(requeue=True)`` and closing the channel make it visible
  at once; a consumer that dies holding it (SIGKILL, power cut) loses the lease when it expires, and
  the message is handed out again with a higher count.
* Leases held by a channel are renewed (to a full ``visibility_timeout`` again) whenever the channel
  polls or acks and half the lease has gone, so deliveries read ahead are not lost to expiry. A single
  step that takes longer than ``visibility_timeout`` is not covered: set the option above the slowest
  route's worst case.

Transport options: ``visibility_timeout`` (seconds, 30), ``polling_interval`` (seconds, 0.1),
``busy_timeout`` (seconds to wait for another process's write lock, 10), ``synchronous``
(``"NORMAL"``: survives process crashes, may lose the last commits on power loss; ``"FULL"``: fsync
at every commit, survives power loss). Direct exchanges only; no priorities.
"""

# mypy: disable-error-code="no-untyped-call"
# (kombu 5.7 ships without annotations for most of its API; every call into it is untyped)

from __future__ import annotations

import os
import sqlite3
import time
import uuid
from pathlib import Path
from queue import Empty
from typing import Any, NamedTuple

import orjson
from kombu.transport import virtual

from adapters.queue import sqlite_read
from adapters.queue.sqlite_read import ALIAS, register
from esb.files import create_private

__all__ = ["ALIAS", "Channel", "Transport", "open_database", "register"]
_SYNCHRONOUS = ("NORMAL", "FULL", "EXTRA")

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS esb_queues (name TEXT PRIMARY KEY, created_at REAL NOT NULL)",
    """CREATE TABLE IF NOT EXISTS esb_messages (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        queue TEXT NOT NULL,
        payload BLOB NOT NULL,
        visible_at REAL NOT NULL,
        in_flight INTEGER NOT NULL DEFAULT 0,
        delivery_count INTEGER NOT NULL DEFAULT 0,
        enqueued_at REAL NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS esb_messages_ready ON esb_messages (queue, visible_at)",
)
_CLAIM = """UPDATE esb_messages SET visible_at = ?, in_flight = 1, delivery_count = delivery_count + 1
    WHERE id = (SELECT id FROM esb_messages WHERE queue = ? AND visible_at <= ? ORDER BY visible_at, id
                LIMIT 1)
    RETURNING id, payload, delivery_count"""
_HAS_READY = "SELECT EXISTS (SELECT 1 FROM esb_messages WHERE queue = ? AND visible_at <= ?)"


class Lease(NamedTuple):
    """One claim on a row: the row id and the delivery count it was claimed at (together, the token)."""

    row_id: int
    delivery_count: int


def open_database(path: str, *, busy_timeout: float, synchronous: str) -> sqlite3.Connection:
    """Open (creating if needed) the queue database in WAL mode with the schema in place."""
    if not path or path == ":memory:":
        raise ValueError("the sqlite transport needs a file path: sqlite:////abs/path/queues.db")
    sync = synchronous.upper()
    if sync not in _SYNCHRONOUS:
        raise ValueError(f"synchronous must be one of {', '.join(_SYNCHRONOUS)}, not {synchronous!r}")
    create_private(Path(os.path.abspath(path)))  # 0600 before SQLite opens it (-wal/-shm follow)
    db = sqlite3.connect(path, timeout=busy_timeout, isolation_level=None)
    db.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
    _use_wal(db, busy_timeout)
    db.execute(f"PRAGMA synchronous = {sync}")
    db.execute("BEGIN IMMEDIATE")
    try:
        for statement in _SCHEMA:
            db.execute(statement)
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise
    return db


def _use_wal(db: sqlite3.Connection, busy_timeout: float) -> None:
    """Put the database in WAL mode (persistent: once set, later connections only read it).

    Switching needs the database to itself, and SQLite answers "database is locked" at once, without its
    busy handler, when another connection opens the fresh file at that moment (a hub's workers starting
    together): tried again for up to ``busy_timeout`` seconds.
    """
    deadline = time.monotonic() + busy_timeout
    while True:
        try:
            if str(db.execute("PRAGMA journal_mode").fetchone()[0]).lower() != "wal":
                db.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() >= deadline:
                raise
            time.sleep(0.01)


class Channel(virtual.Channel):
    """A virtual channel whose queues are rows in one SQLite file, claimed with leases."""

    visibility_timeout: float = 30.0
    busy_timeout: float = 10.0
    synchronous: str = "NORMAL"
    from_transport_options = (  # type: ignore[assignment]  # kombu's stub says exactly two names
        *virtual.Channel.from_transport_options,
        "visibility_timeout",
        "busy_timeout",
        "synchronous",
    )

    def __init__(self, connection: Any, **kwargs: Any) -> None:
        super().__init__(connection, **kwargs)
        self._db: sqlite3.Connection | None = None
        self._leases: dict[str, Lease] = {}
        self._next_renewal = 0.0
        self._known_queues: set[str] = set()
        self._db_closed = False
        self.visibility_timeout = float(self.visibility_timeout)
        self.busy_timeout = float(self.busy_timeout)

    @property
    def db(self) -> sqlite3.Connection:
        """The channel's own SQLite connection, opened on first use (not shared between threads)."""
        if self._db is None:
            if self._db_closed:
                raise sqlite3.ProgrammingError("the sqlite transport channel is closed")
            self._db = open_database(
                self.connection.client.virtual_host or "",
                busy_timeout=self.busy_timeout,
                synchronous=str(self.synchronous),
            )
        return self._db

    # -- writes -------------------------------------------------------------------------------------
    def _put(self, queue: str, message: dict[str, Any], **kwargs: Any) -> None:
        """Insert ``message`` into ``queue``; committed (durable) when this returns."""
        now = time.time()
        delay = (message.get("headers") or {}).get("x-delay")
        visible_at = now + float(delay) / 1000.0 if delay else now
        self.db.execute(
            "INSERT INTO esb_messages (queue, payload, visible_at, enqueued_at) VALUES (?, ?, ?, ?)",
            (queue, orjson.dumps(message), visible_at, now),
        )

    def _get(self, queue: str, timeout: float | None = None) -> dict[str, Any]:
        """Claim the oldest visible message of ``queue`` under a lease, or raise Empty."""
        self.keep_leases()
        now = time.time()
        db = self.db
        (ready,) = db.execute(_HAS_READY, (queue, now)).fetchone()
        if not ready:
            raise Empty()
        db.execute("BEGIN IMMEDIATE")
        try:
            row = db.execute(_CLAIM, (time.time() + self.visibility_timeout, queue, time.time())).fetchone()
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        if row is None:
            raise Empty()
        row_id, payload, count = row
        message: dict[str, Any] = orjson.loads(payload)
        tag = uuid.uuid4().hex
        props = message.setdefault("properties", {})
        props["delivery_tag"] = tag
        info = props.setdefault("delivery_info", {})
        info.update(delivery_count=count, redelivered=count > 1, sqlite_id=row_id)
        message["redelivered"] = count > 1
        self._leases[tag] = Lease(row_id, count)
        return message

    def basic_ack(self, delivery_tag: str, multiple: bool = False) -> None:
        """Delete the acked message's row (even if its lease ran out: it was processed)."""
        lease = self._leases.pop(delivery_tag, None)
        try:
            if lease is not None:
                self.db.execute("DELETE FROM esb_messages WHERE id = ?", (lease.row_id,))
        finally:
            super().basic_ack(delivery_tag, multiple)
        self.keep_leases()

    def basic_reject(self, delivery_tag: str, requeue: bool = False) -> None:
        """Requeue: make the row visible at once. No requeue: delete it (the message is dropped)."""
        lease = self._leases.pop(delivery_tag, None)
        try:
            if lease is not None and requeue:
                self._release(lease)
            elif lease is not None:
                self.db.execute("DELETE FROM esb_messages WHERE id = ?", (lease.row_id,))
        finally:
            super().basic_reject(delivery_tag, requeue=False)

    def _restore(self, message: Any) -> None:
        """Give an unacked delivery back (channel closed): visible again at once."""
        lease = self._leases.pop(message.delivery_tag, None)
        if lease is None:
            super()._restore(message)
        else:
            self._release(lease)

    def _release(self, lease: Lease) -> None:
        self.db.execute(
            "UPDATE esb_messages SET visible_at = ?, in_flight = 0 WHERE id = ? AND delivery_count = ?",
            (time.time(), lease.row_id, lease.delivery_count),
        )

    def renew_leases(self) -> int:
        """Extend every lease this channel holds to a full ``visibility_timeout``; return how many held."""
        if not self._leases:
            return 0
        until = time.time() + self.visibility_timeout
        db = self.db
        db.execute("BEGIN IMMEDIATE")
        try:
            held = 0
            for lease in list(self._leases.values()):
                cur = db.execute(
                    "UPDATE esb_messages SET visible_at = ?"
                    " WHERE id = ? AND delivery_count = ? AND in_flight = 1",
                    (until, lease.row_id, lease.delivery_count),
                )
                held += cur.rowcount
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        return held

    def keep_leases(self) -> None:
        """Renew the leases this channel holds once half of ``visibility_timeout`` has gone (cheap)."""
        now = time.monotonic()
        if self._leases and now >= self._next_renewal:
            self.renew_leases()
            self._next_renewal = now + self.visibility_timeout / 2
        elif not self._leases:
            self._next_renewal = now + self.visibility_timeout / 2

    # -- queues -------------------------------------------------------------------------------------
    def _new_queue(self, queue: str, **kwargs: Any) -> None:
        if queue not in self._known_queues:
            self.db.execute(
                "INSERT OR IGNORE INTO esb_queues (name, created_at) VALUES (?, ?)", (queue, time.time())
            )
            self._known_queues.add(queue)

    def _has_queue(self, queue: str, **kwargs: Any) -> bool:
        row = self.db.execute("SELECT 1 FROM esb_queues WHERE name = ?", (queue,)).fetchone()
        return row is not None

    def _size(self, queue: str) -> int:
        """Messages ready to be handed out (AMQP's ``message_count``)."""
        (n,) = self.db.execute(
            "SELECT COUNT(*) FROM esb_messages WHERE queue = ? AND visible_at <= ?", (queue, time.time())
        ).fetchone()
        return int(n)

    def queue_stats(self, queue: str) -> dict[str, int]:
        """Return ``{"ready", "in_flight", "delayed"}`` counts of ``queue``."""
        return sqlite_read.queue_stats(self.db, queue)

    def peek(self, queue: str, limit: int = 10) -> list[dict[str, Any]]:
        """Return up to ``limit`` raw messages of ``queue`` in hand-out order, without claiming them."""
        return sqlite_read.peek_payloads(self.db, queue, limit)

    def _purge(self, queue: str) -> int:
        """Delete the messages of ``queue`` that nobody holds; return how many."""
        cur = self.db.execute(
            "DELETE FROM esb_messages WHERE queue = ? AND NOT (in_flight = 1 AND visible_at > ?)",
            (queue, time.time()),
        )
        return int(cur.rowcount)

    def _delete(self, queue: str, *args: Any, **kwargs: Any) -> None:
        self.db.execute("DELETE FROM esb_messages WHERE queue = ?", (queue,))
        self.db.execute("DELETE FROM esb_queues WHERE name = ?", (queue,))
        self._known_queues.discard(queue)

    def close(self) -> None:
        """Give back unacked deliveries, then close the SQLite connection."""
        try:
            super().close()
        finally:
            self._db_closed = True
            if self._db is not None:
                self._db.close()
                self._db = None


class Transport(virtual.Transport):
    """The embedded SQLite transport (``sqlite:////abs/path/queues.db``)."""

    Channel = Channel
    polling_interval = 0.1
    driver_type = "sqlite"
    driver_name = "sqlite3"
    connection_errors = (  # type: ignore[assignment]  # kombu's stub says a 1-tuple
        *virtual.Transport.connection_errors,
        sqlite3.OperationalError,
    )
    channel_errors = (  # type: ignore[assignment]  # kombu's stub says a 1-tuple
        *virtual.Transport.channel_errors,
        sqlite3.DatabaseError,
    )
    implements = virtual.Transport.implements.extend(exchange_type=frozenset(["direct"]))

    def driver_version(self) -> str:
        """The SQLite library's version."""
        return sqlite3.sqlite_version


register()
