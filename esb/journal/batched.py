"""The journal's batched write path: many messages in one transaction (the route worker's batches).

Mixed into :class:`~esb.journal.journal.Journal`, whose connection and cache it uses. Two sequences:

- :meth:`BatchedWrites.journey_many` (the worker's batched path since issue 19): the first arrival of each
  message of a batch, what a transform warned about, every confirmed delivery and each outcome, in
  **one** commit, written once the outputs are confirmed and before the acks. :meth:`known_ids` (a read)
  tells first arrivals from redeliveries beforehand.
- :meth:`BatchedWrites.received_many` then :meth:`BatchedWrites.settle_many`: the arrivals in one commit
  before the steps, the outcomes in another (a batch that failed part-way journals its arrivals this way
  before its members take the one-message path).

Both write the same rows (tests/unit/test_journal_batched.py compares them). docs/journal.md, "One commit
per batch", gives the argument why the one-commit sequence keeps the hub's guarantees.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from esb.exceptions import TransportError
from esb.journal.bulk import MESSAGE_COLUMNS, BulkStatements
from esb.journal.engine import DatabaseErrors
from esb.journal.rows import Keys, keys_of, message_row
from esb.journal.seen import Known, Seen
from esb.journal.statements import Statements
from esb.message import Message, utcnow

#: ``(id, state, detail)`` of each arrival of a batch: ``received`` or ``redelivered``.
Arrival = tuple[str, str, dict[str, Any] | None]
#: ``(ingress message, state, [(output, endpoint), ...])``: one message's outcome in a batch.
Outcome = tuple[Message, str, list[tuple[Message, str]]]


@dataclass
class Journey:
    """One message of a batch from its arrival to its end, journaled in one commit (``journey_many``)."""

    message: Message
    delivery_count: int
    keys: Keys
    """Its business keys as it arrived (before the steps), indexed with its row."""
    state: str
    """``delivered`` or ``filtered``."""
    sent: list[tuple[Message, str]] = field(default_factory=list)
    """Every confirmed ``(output, endpoint)``, each journaled with the body sent."""
    detail: dict[str, Any] | None = None
    """Why a step filtered it (esb.processors.drops), with the ``filtered`` event."""
    warnings: list[str] | None = None
    """What a transform accepted with a warning: a ``transformed`` event, as ``journal_warnings`` writes."""
    warned_keys: Keys = frozenset()
    """Its business keys when the warnings were taken (indexed with the ``transformed`` event)."""


class BatchedWrites:
    """The batched write path of the journal (a mixin: the attributes below are the journal's)."""

    url: str
    keep_bodies: bool
    _seen: Seen
    _errors: DatabaseErrors

    def _write(self) -> tuple[Engine, Statements]:
        raise NotImplementedError  # the journal's

    def _read(self) -> Engine:
        raise NotImplementedError  # the journal's

    def _batched(self) -> BulkStatements:
        raise NotImplementedError  # the journal's

    def _encode(self, route: str, where: str | None, body: bytes | None) -> bytes | None:
        raise NotImplementedError  # the journal's

    def known_ids(self, route: str, ids: list[str]) -> set[str]:
        """Return which of ``ids`` the journal already holds on ``route`` (a read, no write transaction)."""
        engine = self._read()
        with self._errors("known_ids"):
            if engine.dialect.name == "sqlite":
                return known_on_sqlite(engine, route, ids, self.url)
            with engine.connect() as conn:
                return known_by_statement(conn, self._write()[1], route, ids)

    def journey_many(self, route: str, journeys: list[Journey], arrived_at: datetime) -> list[bool]:
        """Journal a batch's arrivals (at ``arrived_at``) and their ends in one transaction; return True
        for each first arrival.

        The same rows as :meth:`received_many` at ``arrived_at``, an ``event(transformed)`` per message
        with warnings, then :meth:`settle_many`, in that order. A message already there (another
        consumer's, in a race) is journaled as a redelivery, as ``received_many`` would.
        """
        engine, sql = self._write()
        bulk = self._batched()
        processed_at = bulk.events.processor("at")
        arrived, now = processed_at(arrived_at), processed_at(utcnow())
        items = [(j.message, j.delivery_count) for j in journeys]
        bodies = {
            j.message.id: self._encode(route, None, j.message.body_bytes()) if self.keep_bodies else None
            for j in journeys
        }
        stored = self._sent_bodies(route, [(j.message, j.state, j.sent) for j in journeys])
        try:
            with self._errors("journey"), engine.begin() as conn:
                ids = [message.id for message, _ in items]
                seqs: dict[str, int] = dict(conn.execute(sql.existing, {"r": route, "ids": ids}).all())
                arrivals, new_rows = self._arrivals(conn, sql, route, items, seqs, bodies, arrived_at)
                fresh = self._insert_arrivals(conn, new_rows, arrived_at)
                outputs = {
                    output.id: message_row(route, output, arrived_at, None)
                    for j in journeys
                    for output, _ in j.sent
                    if output.id not in seqs and output.id not in bodies
                }
                if outputs:  # their envelope, no body; before the events and keys that refer to them
                    conn.execute(sql.add_message, list(outputs.values()))
                if fresh or outputs:
                    wanted = [*fresh, *outputs]
                    seqs.update(conn.execute(sql.existing, {"r": route, "ids": wanted}).all())
                events, keys = _journey_rows(route, journeys, arrivals, seqs, stored, (arrived, now))
                bulk.events.execute(conn, events, fixed=("at",))
                bulk.keys.execute(conn, keys)
            return [state == "received" for _, state, _ in arrivals]
        finally:  # a journey ends here (or its members go alone): the cache keeps in-flight messages only
            for j in journeys:
                self._seen.forget(route, j.message.id)
                for output, _ in j.sent:
                    self._seen.forget(route, output.id)

    def _insert_arrivals(self, conn: sa.Connection, rows: list[dict[str, Any]], at: datetime) -> list[str]:
        """Insert the new messages' rows (one statement, received at ``at``); return their ids."""
        if not rows:
            return []
        bulk = self._batched()
        received = bulk.messages.processor("received_at")(at)
        for row in rows:
            row["received_at"] = received
        values = [tuple(row[c] for c in MESSAGE_COLUMNS) for row in rows]
        bulk.messages.execute(conn, values, fixed=("received_at",))
        return [row["id"] for row in rows]

    def received_many(self, route: str, items: list[tuple[Message, int]]) -> list[bool]:
        """Record several messages entering ``route`` in one transaction; True for each first arrival.

        The same as calling ``received`` for each ``(message, delivery_count)``, with one commit.
        """
        engine, sql = self._write()
        bulk = self._batched()
        now = utcnow()
        at = bulk.events.processor("at")(now)  # the batch's time, made a column value once
        ids = [message.id for message, _ in items]
        bodies = {
            message.id: self._encode(route, None, message.body_bytes()) if self.keep_bodies else None
            for message, _ in items
        }
        try:
            with self._errors("received"), engine.begin() as conn:
                # Rows already there are redeliveries; the rest are inserted in one statement. Writes are
                # serialised (BEGIN IMMEDIATE, or the row's unique key), so "already there" is exact.
                seqs: dict[str, int] = dict(conn.execute(sql.existing, {"r": route, "ids": ids}).all())
                arrivals, new_rows = self._arrivals(conn, sql, route, items, seqs, bodies, now)
                fresh = self._insert_arrivals(conn, new_rows, now)
                if fresh:  # then their seqs, in one look-up
                    seqs.update(conn.execute(sql.existing, {"r": route, "ids": fresh}).all())
                rows = [
                    (seqs[mid], route, state, None, None, None, None, why, None, at)
                    for mid, state, why in arrivals
                ]
                bulk.events.execute(conn, rows, fixed=("at",))
                bulk.keys.execute(
                    conn,
                    [(seqs[m.id], name, value) for m, _ in items for name, value in sorted(keys_of(m))],
                )
        except BaseException:
            for message, _ in items:
                self._seen.forget(route, message.id)
            raise
        for message, _ in items:
            self._seen.add(route, message.id, seqs[message.id], keys_of(message))
        return [state == "received" for _, state, _ in arrivals]

    def _arrivals(
        self,
        conn: sa.Connection,
        sql: Statements,
        route: str,
        items: list[tuple[Message, int]],
        seqs: dict[str, int],
        bodies: dict[str, bytes | None],
        now: datetime,
    ) -> tuple[list[Arrival], list[dict[str, Any]]]:
        """Return ``(id, state, detail)`` of each arrival and the rows of the new messages; bump the
        delivery count of rows already there."""
        arrivals: list[Arrival] = []
        pending: dict[str, dict[str, Any]] = {}
        for message, count in items:
            detail = {"delivery_count": count} if count > 1 else None
            if message.id in pending:  # the same id twice in one batch: the second is a redelivery
                row = pending[message.id]
                row["delivery_count"] = max(row["delivery_count"] + 1, count)
                arrivals.append((message.id, "redelivered", {"delivery_count": row["delivery_count"]}))
            elif message.id in seqs:
                bumped = conn.execute(sql.bump_delivery_count, {"mid": message.id, "r": route, "dc": count})
                arrivals.append((message.id, "redelivered", {"delivery_count": bumped.one()[1]}))
            else:
                row = message_row(route, message, now, bodies[message.id])
                row["delivery_count"] = count
                pending[message.id] = row
                arrivals.append((message.id, "received", detail))
        return arrivals, list(pending.values())

    def _sent_bodies(self, route: str, outcomes: list[Outcome]) -> dict[tuple[str, str], bytes | None]:
        """Return the stored body of every ``(output id, endpoint)`` sent (none without ``keep_bodies``)."""
        if not self.keep_bodies:
            return {}
        return {
            (output.id, endpoint): self._encode(route, endpoint, output.body_bytes())
            for _, _, sent in outcomes
            for output, endpoint in sent
        }

    def settle_many(
        self, route: str, outcomes: list[Outcome], details: dict[str, dict[str, Any]] | None = None
    ) -> None:
        """End several messages' journeys in one transaction.

        Each outcome is ``(ingress message, state, [(output, endpoint), ...])``: every confirmed delivery
        is recorded (a ``delivered`` event naming the endpoint, with the body sent), then the route-level
        ``state`` event of the ingress message, with ``details[its id]`` if given (why a step filtered it).
        """
        engine, sql = self._write()
        bulk = self._batched()
        now = utcnow()
        at = bulk.events.processor("at")(now)
        stored = self._sent_bodies(route, outcomes)
        known = {
            message.id: found
            for original, _, sent in outcomes
            for message in (original, *(output for output, _ in sent))
            if (found := self._seen.get(route, message.id)) is not None
        }
        with self._errors("settle"), engine.begin() as conn:
            seqs = self._settle_seqs(conn, sql, route, outcomes, known, now)
            events: list[tuple[Any, ...]] = []
            key_rows: list[tuple[int, str, str]] = []
            for original, state, sent in outcomes:
                for output, endpoint in sent:
                    seq, body = seqs[output.id], stored.get((output.id, endpoint))
                    events.append((seq, route, "delivered", endpoint, None, None, None, None, body, at))
                    indexed = known[output.id].keys if output.id in known else frozenset()
                    key_rows.extend((seq, name, value) for name, value in sorted(keys_of(output) - indexed))
                detail = details.get(original.id) if details else None
                events.append((seqs[original.id], route, state, None, None, None, None, detail, None, at))
            bulk.events.execute(conn, events, fixed=("at",))
            bulk.keys.execute(conn, key_rows)
        # Journeys over: forget them, so the cache holds in-flight messages only (flat memory under load).
        for original, _, sent in outcomes:
            self._seen.forget(route, original.id)
            for output, _ in sent:
                self._seen.forget(route, output.id)

    def _settle_seqs(
        self,
        conn: sa.Connection,
        sql: Statements,
        route: str,
        outcomes: list[Outcome],
        known: dict[str, Known],
        now: datetime,
    ) -> dict[str, int]:
        """Return the seq of every message of ``outcomes``: known here, or looked up after adding the rows
        of outputs not journaled yet (their envelope, no body)."""
        seqs = {mid: found.seq for mid, found in known.items()}
        new_rows = {
            output.id: message_row(route, output, now, None)
            for _, _, sent in outcomes
            for output, _ in sent
            if output.id not in seqs
        }
        if new_rows:  # the outputs' rows first: events and keys refer to them
            conn.execute(sql.add_message, list(new_rows.values()))
        missing = [mid for mid in {o.id for o, _, _ in outcomes} | new_rows.keys() if mid not in seqs]
        if missing:
            seqs.update(conn.execute(sql.existing, {"r": route, "ids": missing}).all())
        return seqs


def _journey_rows(
    route: str,
    journeys: list[Journey],
    arrivals: list[Arrival],
    seqs: dict[str, int],
    stored: dict[tuple[str, str], bytes | None],
    times: tuple[Any, Any],
) -> tuple[list[tuple[Any, ...]], list[tuple[int, str, str]]]:
    """Return the events (arrivals, then warnings, then deliveries and outcomes, in the order the
    two-commit sequence inserts them) and the business keys of a batch's journeys."""
    arrived, now = times
    events: list[tuple[Any, ...]] = [
        (seqs[mid], route, state, None, None, None, None, why, None, arrived) for mid, state, why in arrivals
    ]
    indexed: dict[int, set[tuple[str, str]]] = {}
    keys: list[tuple[int, str, str]] = []

    def index(seq: int, found: Keys) -> None:
        done = indexed.setdefault(seq, set())
        keys.extend((seq, name, value) for name, value in sorted(found - done))
        done.update(found)

    for j in journeys:
        index(seqs[j.message.id], j.keys)
    for j in journeys:
        if j.warnings:
            seq, warned = seqs[j.message.id], {"warnings": j.warnings}
            events.append((seq, route, "transformed", None, None, None, None, warned, None, now))
            index(seq, j.warned_keys)
    for j in journeys:
        for output, endpoint in j.sent:
            seq = seqs[output.id]
            body = stored.get((output.id, endpoint))
            events.append((seq, route, "delivered", endpoint, None, None, None, None, body, now))
            index(seq, keys_of(output))
        events.append((seqs[j.message.id], route, j.state, None, None, None, None, j.detail, None, now))
    return events, keys


def known_by_statement(conn: sa.Connection, sql: Statements, route: str, ids: list[str]) -> set[str]:
    """Return which of ``ids`` are journaled on ``route``, through SQLAlchemy (any database)."""
    return {str(row[0]) for row in conn.execute(sql.existing, {"r": route, "ids": ids})}


def known_on_sqlite(engine: Engine, route: str, ids: list[str], url: str) -> set[str]:
    """Return which of ``ids`` are journaled on ``route``, through the driver: on SQLite one ``SELECT``
    is its own read transaction, so the pooled connection's ``BEGIN``/``ROLLBACK`` and SQLAlchemy's
    execution events are skipped (106 -> 12 µs for a batch of 4; tests/unit/test_journal_batched.py
    compares it with :func:`known_by_statement`)."""
    if not ids:
        return set()
    marks = ", ".join("?" * len(ids))
    raw = engine.raw_connection()
    try:
        driver = raw.driver_connection
        assert driver is not None
        query = f"SELECT id FROM messages WHERE route = ? AND id IN ({marks})"  # noqa: S608 - placeholders only
        return {str(row[0]) for row in driver.execute(query, [route, *ids]).fetchall()}
    except sqlite3.Error as error:
        raise TransportError(f"journal known_ids: {type(error).__name__}: {error}", endpoint=url) from error
    finally:
        raw.close()
