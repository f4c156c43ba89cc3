"""A kombu virtual transport on SQLite (WAL) with leases: the hub's embedded, serverless queue broker.

``Connection("sqlite:////abs/path/queues.db")`` once :func:`register` has run (importing this module or
making a connection with ``adapters.queue.config.broker_connection`` does it). Every process on the
machine that opens the same file shares the queues. Counting and peeking without kombu:
:mod:`adapters.queue.sqlite_read` (the same statements).

How a message lives (one row of ``esb_messages``):

* ``_put`` inserts the row and commits before returning: a published message survives a SIGKILL
  (inside ``batched_puts()``, the block's rows are inserted and committed together at its end). The
  body is stored as is in the ``body`` BLOB (``body_encoding`` None; older rows keep kombu's base64 in
  the JSON payload and are read as before). A ``x-delay`` header (milliseconds) makes it invisible until
  then ("not before").
* ``_get`` claims the oldest visible rows (as many as the consumer's prefetch window has left, at most
  ``CLAIM_MAX``) in one ``BEGIN IMMEDIATE`` transaction and hands them out one per call: each becomes
  invisible for ``visibility_timeout`` seconds (the lease, as SQS / the Redis transport do), and its
  ``delivery_count`` goes up by one. The count is given to the consumer in
  ``message.delivery_info["delivery_count"]`` (1 the first time). Rows claimed and not handed out go
  back as they were when the consumer is cancelled or the channel closes.
* ``basic_ack`` deletes the row (with ``hold_acks``, set by the queue source: at the next claim or at
  close, the held ones in one transaction); ``basic_reject(requeue=True)`` and closing the channel make
  it visible at once; a consumer that dies holding it (SIGKILL, power cut) loses the lease when it
  expires, and the message is handed out again with a higher count.
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

import contextlib
import itertools
import os
import sqlite3
import time
from collections import deque
from collections.abc import Iterator
from pathlib import Path
from queue import Empty
from typing import Any, NamedTuple

import orjson
from kombu.transport import virtual

from adapters.queue import sqlite_read
from adapters.queue.sqlite_read import ALIAS, register
from esb import sqlitebind
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
        enqueued_at REAL NOT NULL,
        body BLOB)""",
    "CREATE INDEX IF NOT EXISTS esb_messages_ready ON esb_messages (queue, visible_at)",
)
#: The rows a claim takes, oldest first (their delivery count once claimed), then the claim itself: the
#: same rows, as the claim holds the write lock from the first statement on.
_CLAIMABLE = """SELECT id, payload, delivery_count + 1, body, visible_at FROM esb_messages
    WHERE queue = ? AND visible_at <= ? ORDER BY visible_at, id LIMIT ?"""
_CLAIM = """UPDATE esb_messages SET visible_at = ?, in_flight = 1, delivery_count = delivery_count + 1
    WHERE id IN (SELECT id FROM esb_messages WHERE queue = ? AND visible_at <= ? ORDER BY visible_at, id
                 LIMIT ?)"""
#: Gives back a row claimed and never handed out: as it was before the claim (its place in the queue,
#: its delivery count).
_UNCLAIM = """UPDATE esb_messages SET visible_at = ?, in_flight = 0, delivery_count = delivery_count - 1
    WHERE id = ? AND delivery_count = ?"""
#: Rows claimed and not handed out yet: id, payload, delivery count, body, visible_at before the claim.
Claimed = tuple[int, bytes, int, bytes | None, float]
#: The most rows one claim takes (within the consumer's prefetch window).
CLAIM_MAX = 50
_INSERT = "INSERT INTO esb_messages (queue, payload, visible_at, enqueued_at, body) VALUES (?, ?, ?, ?, ?)"
#: One ``_INSERT``'s parameters: queue, payload, visible_at, enqueued_at, body.
Row = tuple[str, bytes, float, float, bytes | None]
_DELETE = "DELETE FROM esb_messages WHERE id = ?"
_HAS_READY = "SELECT EXISTS (SELECT 1 FROM esb_messages WHERE queue = ? AND visible_at <= ?)"


def message_row(queue: str, message: dict[str, Any], now: float) -> Row:
    """The ``_INSERT`` parameters of kombu's virtual ``message`` published to ``queue`` at ``now``.

    A body kombu left unencoded (``body_encoding`` None) goes to the ``body`` BLOB as bytes (a str as
    UTF-8, as kombu's base64 codec would have encoded it), and the payload keeps ``"body": null``; a body
    encoded by a codec stays in the payload, as kombu made it.
    """
    delay = (message.get("headers") or {}).get("x-delay")
    visible_at = now + float(delay) / 1000.0 if delay else now
    body = message.get("body")
    if body is None or (message.get("properties") or {}).get("body_encoding"):
        return queue, orjson.dumps(message), visible_at, now, None
    raw = body.encode("utf-8") if isinstance(body, str) else bytes(body)
    return queue, orjson.dumps({**message, "body": None}), visible_at, now, raw


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
    sqlitebind.register()  # None and bytes parameters bound without sqlite3's adapter search
    create_private(Path(os.path.abspath(path)))  # 0600 before SQLite opens it (-wal/-shm follow)
    db = sqlite3.connect(path, timeout=busy_timeout, isolation_level=None)
    db.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
    _use_wal(db, busy_timeout)
    db.execute(f"PRAGMA synchronous = {sync}")
    db.execute("BEGIN IMMEDIATE")
    try:
        for statement in _SCHEMA:
            db.execute(statement)
        _add_body_column(db)
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise
    return db


def _add_body_column(db: sqlite3.Connection) -> None:
    """Give a queue file made before the ``body`` column its column (inside the schema's transaction):
    its rows keep their base64 bodies in the payload and are read as before."""
    columns = {row[1] for row in db.execute("PRAGMA table_info(esb_messages)")}
    if "body" not in columns:
        db.execute("ALTER TABLE esb_messages ADD COLUMN body BLOB")


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

    #: Bodies are stored as they are, in the row's ``body`` BLOB, not base64 in the JSON payload
    #: (kombu's default); ``transport_options={"body_encoding": "base64"}`` restores the old rows' form.
    body_encoding = None  # type: ignore[assignment]  # kombu stubs say str; None is its "no codec"
    visibility_timeout: float = 30.0
    busy_timeout: float = 10.0
    synchronous: str = "NORMAL"
    #: Set by a consumer that settles in batches (the queue source): acked rows are deleted together at
    #: the next claim or at close, as the AMQP source holds its acks until its next read.
    hold_acks = False
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
        self._batch: list[Row] | None = None
        self._claimed: dict[str, deque[Claimed]] = {}
        self._acks_held: list[Lease] = []
        self._published = itertools.count()
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
        """Insert ``message`` into ``queue``; committed (durable) when this returns (or, inside
        :meth:`batched_puts`, when the batch is)."""
        row = message_row(queue, message, time.time())
        if self._batch is not None:
            self._batch.append(row)
        else:
            self.db.execute(_INSERT, row)

    @contextlib.contextmanager
    def batched_puts(self) -> Iterator[None]:
        """Hold the rows published inside the block and insert them in one transaction at its end: all
        committed when the block returns, none if it raises."""
        if self._batch is not None:
            raise RuntimeError("batched_puts() does not nest")
        self._batch = []
        try:
            yield
            rows, self._batch = self._batch, None
            if rows:
                db = self.db
                db.execute("BEGIN IMMEDIATE")
                try:
                    db.executemany(_INSERT, rows)
                    db.execute("COMMIT")
                except BaseException:
                    db.execute("ROLLBACK")
                    raise
        finally:
            self._batch = None

    def basic_publish(self, message: dict[str, Any], exchange: str, routing_key: str, **kwargs: Any) -> None:
        """Publish ``message``: to the queue ``routing_key`` names on the default exchange (the hub's
        sinks), through kombu's exchange routing otherwise.

        The default exchange's path is kombu's own written out for a body left unencoded: the same keys
        set on the message in the same order (so the same payload is stored), without its calls in between.
        """
        if exchange or self.body_encoding is not None:
            return super().basic_publish(message, exchange, routing_key, **kwargs)  # type: ignore[no-any-return]
        props = message["properties"]
        props["body_encoding"] = None
        props["delivery_tag"] = self._next_delivery_tag()
        info = props["delivery_info"]
        info["exchange"] = exchange
        info["routing_key"] = routing_key
        self._put(routing_key, message)
        return None

    def _next_delivery_tag(self) -> str:
        """The publish's tag in the stored payload (kombu's uuid4 each time): :meth:`_get` replaces it."""
        return f"p{next(self._published)}"

    def _get(self, queue: str, timeout: float | None = None) -> dict[str, Any]:
        """Hand out the oldest message of ``queue`` claimed under a lease, or raise Empty.

        A consumer with a prefetch window claims up to :data:`CLAIM_MAX` rows of it in one transaction
        and this channel hands them out one per call; they are leased (and renewed) from the claim on,
        as the deliveries a broker pushes ahead under a prefetch are.
        """
        self.keep_leases()
        waiting = self._claimed.get(queue)
        if not waiting:
            waiting = self._claimed[queue] = deque(self._claim(queue, self._claim_size()))
        row_id, payload, count, body, _ = waiting.popleft()
        message: dict[str, Any] = orjson.loads(payload)
        if body is not None:
            message["body"] = body
        tag = f"{row_id}.{count}"  # unique: ids are never reused and each claim counts one more
        props = message.setdefault("properties", {})
        props["delivery_tag"] = tag
        info = props.setdefault("delivery_info", {})
        info.update(delivery_count=count, redelivered=count > 1, sqlite_id=row_id)
        message["redelivered"] = count > 1
        self._leases[tag] = Lease(row_id, count)
        return message

    def _claim_size(self) -> int:
        """How many rows the next claim may take: what the prefetch window has left (1 without one)."""
        room = self.qos.can_consume_max_estimate()
        return max(1, min(room, CLAIM_MAX)) if room is not None else 1

    def _claim(self, queue: str, limit: int) -> list[Claimed]:
        """Claim up to ``limit`` of the oldest visible rows of ``queue`` in one transaction, oldest
        first; raise Empty when none is visible."""
        self.flush_acks()
        db = self.db
        (ready,) = db.execute(_HAS_READY, (queue, time.time())).fetchone()
        if not ready:
            raise Empty()
        db.execute("BEGIN IMMEDIATE")
        try:
            now = time.time()
            rows: list[Claimed] = db.execute(_CLAIMABLE, (queue, now, limit)).fetchall()
            if rows:
                db.execute(_CLAIM, (now + self.visibility_timeout, queue, now, limit))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        if not rows:
            raise Empty()
        return rows

    def basic_ack(self, delivery_tag: str, multiple: bool = False) -> None:
        """Delete the acked message's row (even if its lease ran out: it was processed); with
        ``hold_acks``, at the next :meth:`flush_acks` (the next claim, or closing)."""
        lease = self._leases.pop(delivery_tag, None)
        try:
            if lease is not None and self.hold_acks:
                self._acks_held.append(lease)
            elif lease is not None:
                self.db.execute(_DELETE, (lease.row_id,))
        finally:
            super().basic_ack(delivery_tag, multiple)
        self.keep_leases()

    def flush_acks(self) -> None:
        """Delete the rows of the acks held, in one transaction."""
        held, self._acks_held = self._acks_held, []
        if not held:
            return
        db = self.db
        db.execute("BEGIN IMMEDIATE")
        try:
            db.executemany(_DELETE, [(lease.row_id,) for lease in held])
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            self._acks_held[:0] = held  # still leased: the next flush (or the lease's expiry) settles them
            raise

    def basic_reject(self, delivery_tag: str, requeue: bool = False) -> None:
        """Requeue: make the row visible at once. No requeue: delete it (the message is dropped)."""
        lease = self._leases.pop(delivery_tag, None)
        try:
            if lease is not None and requeue:
                self._release(lease)
            elif lease is not None:
                self.db.execute(_DELETE, (lease.row_id,))
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

    def _held(self) -> list[Lease]:
        """Every lease this channel holds: deliveries handed out and rows claimed but not handed out."""
        held = [*self._leases.values(), *self._acks_held]
        for waiting in self._claimed.values():
            held.extend(Lease(row[0], row[2]) for row in waiting)
        return held

    def renew_leases(self) -> int:
        """Extend every lease this channel holds to a full ``visibility_timeout``; return how many held."""
        leases = self._held()
        if not leases:
            return 0
        until = time.time() + self.visibility_timeout
        db = self.db
        db.execute("BEGIN IMMEDIATE")
        try:
            held = 0
            for lease in leases:
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
        holding = bool(self._leases) or bool(self._acks_held) or any(self._claimed.values())
        if holding and now >= self._next_renewal:
            self.renew_leases()
            self._next_renewal = now + self.visibility_timeout / 2
        elif not holding:
            self._next_renewal = now + self.visibility_timeout / 2

    def _release_claimed(self, queue: str | None = None) -> None:
        """Give back the rows claimed and not handed out (of ``queue``, or all) as they were before the
        claim: visible again, in their place, their delivery count unchanged."""
        queues = [queue] if queue is not None else list(self._claimed)
        rows = [row for name in queues for row in self._claimed.pop(name, ())]
        if rows:  # never handed out: their claim does not count as a delivery
            self.db.executemany(_UNCLAIM, [(row[4], row[0], row[2]) for row in rows])

    def basic_cancel(self, consumer_tag: str) -> None:
        """Cancel the consumer; the rows its queue had claimed ahead go back when no consumer is left."""
        queue = self._tag_to_queue.get(consumer_tag)
        super().basic_cancel(consumer_tag)
        if queue is not None and queue not in self._active_queues and self._db is not None:
            self._release_claimed(queue)

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
        self._claimed.pop(queue, None)

    def close(self) -> None:
        """Give back unacked deliveries, then close the SQLite connection."""
        try:
            try:
                if self._db is not None and not self.closed:
                    self.flush_acks()
                    self._release_claimed()
            finally:
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

    def drain_events(self, connection: Any, timeout: Any = None, **kwargs: Any) -> Any:
        """Deliver one message, as kombu's ``drain_events`` does.

        When one channel consumes, from one queue, and that queue has a row claimed ahead, the row is
        handed out at once: what kombu's two round-robin cycles (over channels, then over the channel's
        queues) would come to, without their layers of calls per delivery. Anything else (several
        channels or queues, nothing claimed, a full prefetch window) goes through kombu's own loop.
        """
        consuming = [channel for channel in self.channels if channel._consumers]
        if len(consuming) == 1 and not kwargs:
            channel = consuming[0]
            queues = channel._active_queues
            if len(queues) == 1 and channel._claimed.get(queues[0]) and channel.qos.can_consume():
                self._deliver(channel._get(queues[0]), queues[0])
                return None
        return super().drain_events(connection, timeout, **kwargs)

    def driver_version(self) -> str:
        """The SQLite library's version."""
        return sqlite3.sqlite_version


register()
