"""The message journal: every message at ingress and every change of its state, on SQLite or PostgreSQL.

Each write is one short transaction (``BEGIN IMMEDIATE`` on SQLite) so that worker threads and several
processes can share one database. Bodies are stored, never logged; a database failure surfaces as a
retryable :class:`~esb.exceptions.TransportError` naming the masked URL.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from esb.journal import queries, retention, rollup, usage
from esb.journal.batched import BatchedWrites
from esb.journal.bodies import BodyCodec, kind_of
from esb.journal.bulk import BulkStatements
from esb.journal.engine import DatabaseErrors, is_memory_sqlite, writer
from esb.journal.migrate import open_migrated
from esb.journal.records import EventRecord, MessageRecord, MessageRef
from esb.journal.rows import Keys, error_columns, event_row, index_keys, keys_of, message_row
from esb.journal.schema import FINAL_STATES, STATES, dictionaries
from esb.journal.seen import Seen
from esb.journal.statements import Statements
from esb.message import Message, utcnow

#: Notes a message row's seq, its keys indexed and (a journey starting) its start, kept in the :class:`Seen`
#: cache after the commit.
Remember = Callable[[int, Keys, datetime | None], None]


class Journal(BatchedWrites):
    """The message journal. The constructor stores configuration; :meth:`connect` opens and migrates.

    The batched write path (``received_many``, ``settle_many``) is in
    :mod:`esb.journal.batched`.
    """

    def __init__(self, url: str, *, keep_bodies: bool = True, pool_size: int = 8) -> None:
        self.url = url
        self.keep_bodies = keep_bodies
        self.pool_size = pool_size
        self._engine: Engine | None = None
        self._writer: Engine | None = None
        self._sql: Statements | None = None
        self._bulk: BulkStatements | None = None
        self._errors = DatabaseErrors(url, serialise=is_memory_sqlite(url))
        self._seen = Seen()
        self._codec = BodyCodec(self._save_dictionary, self._latest_dictionary, self._dictionary)

    def __enter__(self) -> Journal:
        self.connect()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def connect(self) -> None:
        """Create the engine and upgrade the schema to head (safe when several processes start at once)."""
        if self._engine is not None:
            return
        with self._errors("connect"):
            engine = open_migrated(self.url, pool_size=self.pool_size, owner="journal")
        self._sql = Statements.build(engine.dialect.name)
        self._bulk = BulkStatements.build(engine.dialect)
        self._engine, self._writer = engine, writer(engine)

    def close(self) -> None:
        """Dispose of the engine's connections; calling it twice is harmless."""
        engine, self._engine, self._writer = self._engine, None, None
        if engine is not None:
            engine.dispose()

    def _write(self) -> tuple[Engine, Statements]:
        if self._writer is None or self._sql is None:
            raise RuntimeError("Journal.connect() has not been called (or close() was)")
        return self._writer, self._sql

    def _batched(self) -> BulkStatements:
        if self._bulk is None:
            raise RuntimeError("Journal.connect() has not been called (or close() was)")
        return self._bulk

    def _read(self) -> Engine:
        if self._engine is None:
            raise RuntimeError("Journal.connect() has not been called (or close() was)")
        return self._engine

    def received(self, route: str, message: Message, *, delivery_count: int = 1) -> bool:
        """Record ``message`` entering ``route``: once per (route, id); a redelivery only adds an event.

        Returns True the first time the message enters the route, False for a redelivery.
        """
        engine, sql = self._write()
        now = utcnow()
        body = self._encode(route, None, message.body_bytes() if self.keep_bodies else None)
        row = message_row(route, message, now, body)
        row["delivery_count"] = delivery_count
        keys = keys_of(message)
        remembering = self._remembering(route, message.id)
        with self._errors("received"), remembering as remember, engine.begin() as conn:
            state, detail = "received", {"delivery_count": delivery_count} if delivery_count > 1 else None
            seq = conn.execute(sql.add_new_message, row).scalar()
            first = seq is not None
            if seq is None:  # the row was there already
                bumped = conn.execute(
                    sql.bump_delivery_count, {"mid": message.id, "r": route, "dc": delivery_count}
                ).one()
                seq, state, detail = bumped[0], "redelivered", {"delivery_count": bumped[1]}
            conn.execute(sql.add_event, event_row(route, seq, state, now, detail=detail))
            index_keys(conn, sql, seq, keys)
            figures = rollup.Increments()
            figures.add(route, now, state)
            self._add_figures(conn, figures)
            remember(seq, keys, now if first else None)
        return first

    def event(
        self,
        route: str,
        message: Message,
        state: str,
        *,
        endpoint: str | None = None,
        error: BaseException | str | None = None,
        body: bytes | None = None,
        detail: dict[str, Any] | None = None,
    ) -> None:
        """Record a change of state of ``message`` on ``route`` (a message not yet journaled is added)."""
        if state not in STATES:
            raise ValueError(f"unknown journal state {state!r} (one of {', '.join(STATES)})")
        engine, sql = self._write()
        now = utcnow()
        stored = self._encode(route, endpoint or state, body if self.keep_bodies else None)
        keys, known = keys_of(message), self._seen.get(route, message.id)
        with self._errors(state), self._remembering(route, message.id) as remember, engine.begin() as conn:
            seq = known.seq if known is not None else self._ensure_row(conn, sql, route, message, now)
            row = event_row(route, seq, state, now, endpoint=endpoint, detail=detail)
            row.update(error_columns(error))
            row["body"] = stored
            conn.execute(sql.add_event, row)
            indexed = known.keys if known is not None else frozenset()
            index_keys(conn, sql, seq, keys - indexed)
            self._add_figures(conn, self._event_figures(conn, route, message.id, seq, row))
            remember(seq, keys | indexed, now if state == "replayed" else None)
        if state in FINAL_STATES and (endpoint is None or state != "delivered"):
            # its journey on the route is over (the test of ``final_state``: a dead letter names its
            # endpoint, while a fan-out's per-endpoint ``delivered`` does not end the journey)
            self._seen.forget(route, message.id)

    def mark_delivered(
        self,
        route: str,
        message: Message,
        endpoint: str,
        *,
        body: bytes | None = None,
        event: bool = True,
        finish: Message | None = None,
    ) -> None:
        """Record that ``message`` reached ``endpoint``: a ``delivered`` event naming the endpoint.

        ``body`` (what was sent) is kept with the event unless ``event=False`` (the delivery alone). With
        ``finish``, the route-level ``delivered`` event of that (ingress) message is written in the same
        transaction: the last delivery of a message ends its journey on the route in one commit. Calling
        it again for the same endpoint adds another event and changes nothing else (``was_delivered``).
        """
        engine, sql = self._write()
        now = utcnow()
        known = self._seen.get(route, message.id)
        keys = keys_of(message)
        stored = self._encode(route, endpoint, body if self.keep_bodies and event else None)
        with (
            self._errors("mark_delivered"),
            self._remembering(route, message.id) as remember,
            engine.begin() as conn,
        ):
            seq = known.seq if known is not None else self._ensure_row(conn, sql, route, message, now)
            row = event_row(route, seq, "delivered", now, endpoint=endpoint)
            row["body"] = stored
            rows = [row]
            if finish is not None:
                ended = seq if finish.id == message.id else self._seq_of(conn, sql, route, finish, now)
                rows.append(event_row(route, ended, "delivered", now))
            conn.execute(sql.add_event, rows)
            indexed = known.keys if known is not None else frozenset()
            index_keys(conn, sql, seq, keys - indexed)
            if finish is not None:
                self._add_figures(conn, self._event_figures(conn, route, finish.id, ended, rows[-1]))
            remember(seq, keys | indexed, None)
        if finish is not None:  # the journey is over: nothing more will be written for these
            self._seen.forget(route, finish.id)
            self._seen.forget(route, message.id)

    def _ensure_row(
        self, conn: sa.Connection, sql: Statements, route: str, message: Message, now: datetime
    ) -> int:
        """Return the seq of the message's row on ``route``, adding the row (no body) if there is none."""
        seq = conn.execute(sql.add_new_message, message_row(route, message, now, None)).scalar()
        if seq is None:
            seq = conn.execute(sql.seq, {"mid": message.id, "r": route}).scalar_one()
        return int(seq)

    def _seq_of(
        self, conn: sa.Connection, sql: Statements, route: str, message: Message, now: datetime
    ) -> int:
        known = self._seen.get(route, message.id)
        return known.seq if known is not None else self._ensure_row(conn, sql, route, message, now)

    def _event_figures(
        self, conn: sa.Connection, route: str, message_id: str, seq: int, row: dict[str, Any]
    ) -> rollup.Increments:
        """Return the figures of one event ``row`` of message ``message_id`` (row ``seq``), with the
        journey's start when it ends one."""
        state, endpoint = row["state"], row["endpoint"]
        start = None
        if rollup.is_ending(state, endpoint):
            known = self._seen.get(route, message_id)
            start = known.start if known is not None and known.seq == seq else None
            start = start or rollup.starts(conn, [seq]).get(seq)
        figures = rollup.Increments()
        figures.add(route, row["at"], state, endpoint=endpoint, reason=row["error_reason"], start=start)
        return figures

    @contextlib.contextmanager
    def _remembering(self, route: str, message_id: str) -> Iterator[Remember]:
        """Yield ``remember(seq, keys, start)``, kept once the block's transaction committed; forget on
        error."""
        noted: list[tuple[int, frozenset[tuple[str, str]], datetime | None]] = []
        try:
            yield lambda seq, keys, start: noted.append((seq, keys, start))
        except BaseException:
            self._seen.forget(route, message_id)
            raise
        for seq, keys, start in noted:
            self._seen.add(route, message_id, seq, keys, start)

    # -- compressed bodies (esb/journal/bodies.py) --------------------------------------------------
    def _encode(self, route: str, where: str | None, body: bytes | None) -> bytes | None:
        """Return ``body`` as stored (compressed); call it before opening the write transaction."""
        return None if body is None else self._codec.encode(kind_of(route, where), body)

    def decode_body(self, stored: bytes | None) -> bytes | None:
        """Return the original bytes of a body column's value (for readers outside this class)."""
        return self._codec.decode(stored)

    def _save_dictionary(self, kind: str, data: bytes) -> int:
        engine, _ = self._write()
        row = {"kind": kind, "data": data, "created_at": utcnow()}
        with self._errors("dictionary"), engine.begin() as conn:
            return int(conn.execute(sa.insert(dictionaries).returning(dictionaries.c.id), row).scalar_one())

    def _latest_dictionary(self, kind: str) -> tuple[int, bytes] | None:
        stmt = sa.select(dictionaries.c.id, dictionaries.c.data).where(dictionaries.c.kind == kind)
        with self._errors("dictionary"), self._read().connect() as conn:
            row = conn.execute(stmt.order_by(dictionaries.c.id.desc()).limit(1)).first()
        return None if row is None else (int(row[0]), bytes(row[1]))

    def _dictionary(self, ident: int) -> bytes | None:
        stmt = sa.select(dictionaries.c.data).where(dictionaries.c.id == ident)
        with self._errors("dictionary"), self._read().connect() as conn:
            data = conn.execute(stmt).scalar()
        return None if data is None else bytes(data)

    def was_delivered(self, route: str, message_id: str, endpoint: str) -> bool:
        """Return True if ``message_id`` on ``route`` has already been delivered to ``endpoint``."""
        engine, sql = self._read(), self._write()[1]
        with self._errors("was_delivered"), engine.connect() as conn:
            params = {"r": route, "mid": message_id, "ep": endpoint}
            return conn.execute(sql.was_delivered, params).first() is not None

    def outcome(self, route: str, message_id: str) -> str | None:
        """Return the last final state (delivered, filtered, dead_lettered) of the message on ``route``.

        None while the message is in flight, and again after it was replayed.
        """
        engine, sql = self._read(), self._write()[1]
        with self._errors("outcome"), engine.connect() as conn:
            state = conn.execute(sql.final_state, {"mid": message_id, "r": route}).scalar()
        if state in (None, "replayed"):
            return None
        self._seen.forget(route, message_id)  # a duplicate of a message that ended: settled without writes
        return str(state)

    def business_keys(self, message: Message) -> None:
        """Index ``message.business_keys`` now on every row of its id (``received`` and ``event`` already
        index them on their route's row); nothing is indexed for an id not journaled yet."""
        engine, sql = self._write()
        rows = [{"mid": message.id, "name": name, "value": value} for name, value in sorted(keys_of(message))]
        with self._errors("business_keys"), engine.begin() as conn:
            if rows:
                conn.execute(sql.add_keys_of_id, rows)

    def find(
        self,
        *,
        message_id: str | None = None,
        correlation_id: str | None = None,
        key: tuple[str, str] | None = None,
        route: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        state: str | None = None,
        limit: int = 100,
        with_keys: bool = True,
        with_state: bool = True,
    ) -> list[MessageRecord]:
        """Return messages matching every filter given, newest first (``state`` is the latest state);
        ``with_keys`` False: every record's ``business_keys`` left empty, not read; ``with_state`` False:
        without a ``state`` filter every record's ``state`` left None, not read (replay's selection)."""
        flt = queries.Filter(message_id, correlation_id, key, route, since, until, state)
        with self._errors("find"), self._read().connect() as conn:
            return queries.find(conn, flt, limit, with_keys=with_keys, with_state=with_state)

    def dead_letter_refs(
        self,
        *,
        route: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 100,
    ) -> list[MessageRef]:
        """The message rows ``find(route=, since=, until=, state="dead_lettered", limit=)`` returns, same
        order, as references read from ``dead_letters``' index alone (migration 0018): no message row;
        :meth:`records` reads their records (replay's selection, a page at a time)."""
        flt = queries.Filter(route=route, since=since, until=until, state="dead_lettered")
        with self._errors("dead_letter_refs"), self._read().connect() as conn:
            return queries.dead_letter_refs(conn, flt, limit)

    def records(self, refs: list[MessageRef], state: str | None = None) -> dict[int, MessageRecord]:
        """The records of ``refs`` by seq (one statement: pass a page), ``state`` as their state, no
        business keys; a message row pruned since is missing."""
        with self._errors("records"), self._read().connect() as conn:
            return queries.records_of(conn, refs, state)

    def dead_lettered_count(self, route: str, limit: int = 100_000) -> int:
        """How many message rows of ``route`` are dead-lettered (their latest state), at most ``limit``:
        counted in ``dead_letters`` alone (migration 0014)."""
        with self._errors("dead_lettered_count"), self._read().connect() as conn:
            return queries.dead_lettered_count(conn, route, limit)

    def dead_lettered_counts(self, routes: list[str], limit: int = 100_000) -> dict[str, int]:
        """:meth:`dead_lettered_count` of each route of ``routes`` in one pass over ``dead_letters``."""
        with self._errors("dead_lettered_count"), self._read().connect() as conn:
            return queries.dead_lettered_counts(conn, routes, limit)

    def dead_lettered_since(self, since: datetime) -> dict[str, int]:
        """Return the ``dead_lettered`` events per route at or after ``since`` (``counts(since=since)``'s
        figures of that state), read from the per-minute figures: the same cost for a day of any traffic."""
        with self._errors("dead_lettered_since"), self._read().connect() as conn:
            return queries.dead_lettered_since(conn, since)

    def dead_letters(
        self, *, route: str | None = None, before: tuple[datetime, int] | None = None, limit: int = 50
    ) -> tuple[list[MessageRecord], tuple[datetime, int] | None]:
        """Return a page of messages still dead-lettered (newest dead letter first) and the next page's
        cursor (pass it as ``before``; None after the last page). Same cost on a journal of any size."""
        with self._errors("dead_letters"), self._read().connect() as conn:
            return queries.dead_letters(conn, route, before, limit)

    def history(self, message_id: str) -> list[EventRecord]:
        """Return every event of ``message_id`` on every route, in time order."""
        with self._errors("history"), self._read().connect() as conn:
            return queries.history(conn, [message_id])

    def trace(self, key: str) -> list[EventRecord]:
        """Return the events of every message in the conversation ``key`` belongs to, in time order.

        ``key`` is a message id, a correlation id or any business key value; causation and correlation
        ids are followed to parents, children and siblings.
        """
        with self._errors("trace"), self._read().connect() as conn:
            return queries.history(conn, queries.conversation(conn, key))

    def body(self, message_id: str) -> bytes | None:
        """Return the original bytes of ``message_id`` at its first ingress (None if not kept)."""
        with self._errors("body"), self._read().connect() as conn:
            return self._codec.decode(queries.ingress_body(conn, message_id))

    def event_body(self, event_id: int, message_id: str | None = None) -> bytes | None:
        """Return the body stored with one event (e.g. after a transform), or None; pass the event's
        ``message_id`` (``EventRecord.message_id``): on partitioned PostgreSQL the look-up by id alone
        reads every event (``queries.event_body``)."""
        with self._errors("event_body"), self._read().connect() as conn:
            return self._codec.decode(queries.event_body(conn, event_id, message_id))

    def usage(self, *, exact: bool = False) -> usage.Usage:
        """Return rows per table, bytes, bytes per message, the oldest message and outcomes (the big
        tables' rows and the outcomes estimated from samples unless ``exact``: esb/journal/usage.py)."""
        with self._errors("usage"), self._read().connect() as conn:
            return usage.usage(conn, exact=exact)

    def prune(self, policy: retention.Policy, *, now: datetime | None = None) -> retention.PruneResult:
        """Archive then delete what ``policy`` lets go (esb/journal/retention.py); on SQLite, give the
        freed pages back to the file system when ``auto_vacuum`` is incremental."""
        engine, _ = self._write()
        with self._errors("prune"), self._read().connect() as conn:
            # every dictionary an old body can name exists now: load them before the write transactions
            every = conn.execute(sa.select(dictionaries.c.id, dictionaries.c.data))
            self._codec.remember({int(ident): bytes(data) for ident, data in every})
        with self._errors("prune"):
            result = retention.prune(engine, policy, now or utcnow(), self._codec.decode)
            if engine.dialect.name == "sqlite" and result.messages:
                result.vacuumed_pages = self._incremental_vacuum(engine)
        return result

    @staticmethod
    def _incremental_vacuum(engine: Engine) -> int:
        """SQLite: give the free pages back to the file system (when ``auto_vacuum`` is incremental);
        return how many. Outside a transaction: the pragma yields a row per page freed and the driver's
        ``executescript`` is what steps through them all (``execute`` would free one)."""
        raw = engine.raw_connection()
        try:
            driver = raw.driver_connection
            assert driver is not None
            free = int(driver.execute("PRAGMA freelist_count").fetchone()[0])
            driver.executescript("PRAGMA incremental_vacuum;")
            return free - int(driver.execute("PRAGMA freelist_count").fetchone()[0])
        finally:
            raw.close()

    def switch_on_incremental_vacuum(self) -> bool:
        """SQLite: set ``auto_vacuum=INCREMENTAL`` and rebuild the file (``VACUUM``: needs free disk as large
        as the file, and holds the database for the time it takes). False on other databases."""
        engine = self._read()
        if engine.dialect.name != "sqlite":
            return False
        with self._errors("vacuum"):
            raw = engine.raw_connection()
            try:
                driver = raw.driver_connection
                assert driver is not None
                driver.execute("PRAGMA auto_vacuum = INCREMENTAL")
                driver.execute("VACUUM")
            finally:
                raw.close()
        return True

    def counts(
        self, *, route: str | None = None, since: datetime | None = None, until: datetime | None = None
    ) -> dict[str, dict[str, int]]:
        """Return the number of events per route and state (``{"orders": {"delivered": 12, ...}}``)."""
        with self._errors("counts"), self._read().connect() as conn:
            return queries.counts(conn, route, since, until)

    def read_rows(
        self, statement: sa.Executable, params: dict[str, Any] | None = None
    ) -> list[dict[str, Any]]:
        """Run the read ``statement`` on the journal's engine; its rows as dicts. Database errors are raised
        as SQLAlchemy's (a caller that can read otherwise, as ``esb health`` does, decides)."""
        with self._read().connect() as conn:
            return [dict(row) for row in conn.execute(statement, params or {}).mappings()]
