"""The journal's batched write path: many messages in one transaction (the route worker's batches).

Mixed into :class:`~esb.journal.journal.Journal`, whose connection and cache it uses:
:meth:`BatchedWrites.received_many` journals a batch's arrivals in one commit before its steps run, and
:meth:`BatchedWrites.settle_many` its confirmed deliveries and outcomes in one more, before the acks.
docs/journal.md, "A batch's commits and its crash windows", says why the arrivals stay before the steps.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from esb.journal import pgrows, rollup
from esb.journal.bulk import MESSAGE_COLUMNS, BulkInsert, BulkStatements
from esb.journal.engine import DatabaseErrors
from esb.journal.rows import keys_of, message_values
from esb.journal.seen import Known, Seen
from esb.journal.statements import Statements
from esb.message import Message, utcnow

#: ``(id, state, detail)`` of each arrival of a batch: ``received`` or ``redelivered``.
Arrival = tuple[str, str, dict[str, Any] | None]
#: ``(ingress message, state, [(output, endpoint), ...])``: one message's outcome in a batch.
Outcome = tuple[Message, str, list[tuple[Message, str]]]
#: Where a message row's values (esb/journal/rows.py, ``message_values``) hold these columns.
_ID, _RECEIVED_AT, _DELIVERY_COUNT = map(MESSAGE_COLUMNS.index, ("id", "received_at", "delivery_count"))


class BatchedWrites:
    """The batched write path of the journal (a mixin: the attributes below are the journal's)."""

    keep_bodies: bool
    _seen: Seen
    _errors: DatabaseErrors

    def _write(self) -> tuple[Engine, Statements]:
        raise NotImplementedError  # the journal's

    def _batched(self) -> BulkStatements:
        raise NotImplementedError  # the journal's

    def _encode(self, route: str, where: str | None, body: bytes | None) -> bytes | None:
        raise NotImplementedError  # the journal's

    def _add_figures(self, conn: sa.Connection, increments: rollup.Increments) -> None:
        """Add a transaction's per-minute figures (esb/journal/rollup.py): its last statement, so the rows
        it locks (PostgreSQL) are held for the commit alone."""
        if increments:
            self._batched().minutes.execute(conn, increments.rows())

    def _arrival_figures(self, route: str, now: datetime, arrivals: list[Arrival]) -> rollup.Increments:
        """Return the figures of a batch's arrivals (``received`` or ``redelivered``) at ``now``."""
        figures = rollup.Increments()
        figures.add_many(route, now, [state for _, state, _ in arrivals])
        return figures

    def _outcome_figures(
        self,
        conn: sa.Connection,
        route: str,
        now: datetime,
        outcomes: list[Outcome],
        seqs: dict[str, int],
        known: dict[str, Known],
    ) -> rollup.Increments:
        """Return the figures of a batch's outcomes at ``now``, with each journey's latency (its start
        known to this process, else read in one statement)."""
        ending = [o.id for o, state, _ in outcomes if state in rollup.ENDINGS]
        begun = {mid: found.start for mid in ending if (found := known.get(mid)) is not None and found.start}
        missing = {seqs[mid]: mid for mid in ending if mid not in begun}
        for seq, start in rollup.starts(conn, missing).items():
            begun[missing[seq]] = start
        figures = rollup.Increments()
        figures.add_many(route, now, [state for _, state, _ in outcomes], begun.values())
        return figures

    def _insert_rows(
        self,
        conn: sa.Connection,
        route: str,
        insert: BulkInsert,
        rows: list[list[Any]],
        at: datetime,
    ) -> tuple[dict[str, int], list[str]]:
        """Insert message ``rows`` (``message_values``: one statement, received at ``at``) and return
        ``{id: seq}`` of each:
        from the insert itself on PostgreSQL (``RETURNING``), from one look-up on SQLite; a row the insert
        ignored (``ON CONFLICT DO NOTHING``, or another writer's: already there) is looked up too. Also
        return the ids so looked up (every id on SQLite)."""
        if not rows:
            return {}, []
        received = insert.processor("received_at")(at)
        for row in rows:
            row[_RECEIVED_AT] = received
        returned = insert.insert_returning(conn, rows, fixed=("received_at",))
        seqs: dict[str, int] = dict(returned) if returned is not None else {}
        missing = [row[_ID] for row in rows if row[_ID] not in seqs]
        if missing:
            seqs.update(self._batched().existing(conn, route, missing))
        return seqs, missing

    def received_many(self, route: str, items: list[tuple[Message, int]]) -> list[bool]:
        """Record several messages entering ``route`` in one transaction; True for each first arrival.

        The same as calling ``received`` for each ``(message, delivery_count)``, with one commit.
        """
        engine, sql = self._write()
        bulk = self._batched()
        now = utcnow()
        at = bulk.events.processor("at")(now)  # the batch's time, made a column value once
        ids = [message.id for message, _ in items]
        keyed = [(message, keys_of(message)) for message, _ in items]  # each message's keys, built once
        bodies = {
            message.id: self._encode(route, None, message.body_bytes()) if self.keep_bodies else None
            for message, _ in items
        }
        try:
            with self._errors("received"), engine.begin() as conn:
                bulk.claim(conn)
                # Rows already there are redeliveries; the rest are inserted in one statement. Writes are
                # serialised (BEGIN IMMEDIATE, or the row's unique key), so "already there" is exact.
                seqs: dict[str, int] = dict(bulk.existing(conn, route, ids))
                arrivals, new_rows = self._arrivals(conn, sql, route, items, seqs, bodies, now)
                added, others = self._insert_rows(conn, route, bulk.messages, new_rows, now)
                fresh = set(added).difference(others)  # in flight by the insert itself (PostgreSQL)
                seqs.update(added)
                rows = [
                    (seqs[mid], route, state, None, None, None, None, why, None, at)
                    for mid, state, why in arrivals
                ]
                bulk.events.execute(conn, rows, fixed=("at",))
                if bulk.postgres:  # the rows inserted are in flight already (esb/journal/pgrows.py)
                    pgrows.follow_events(
                        conn, ((seqs[mid], state) for mid, state, _ in arrivals if mid not in fresh)
                    )
                bulk.keys.execute(
                    conn,
                    [(seqs[m.id], name, value) for m, keys in keyed for name, value in sorted(keys)],
                )
                self._add_figures(conn, self._arrival_figures(route, now, arrivals))
        except BaseException:
            self._seen.forget_many(route, ids)
            raise
        started = {mid for mid, state, _ in arrivals if state == "received"}
        self._seen.add_many(
            route,
            (
                (message.id, seqs[message.id], keys, now if message.id in started else None)
                for message, keys in keyed
            ),
        )
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
    ) -> tuple[list[Arrival], list[list[Any]]]:
        """Return ``(id, state, detail)`` of each arrival and the rows of the new messages; bump the
        delivery count of rows already there."""
        arrivals: list[Arrival] = []
        pending: dict[str, list[Any]] = {}
        for message, count in items:
            detail = {"delivery_count": count} if count > 1 else None
            if message.id in pending:  # the same id twice in one batch: the second is a redelivery
                row = pending[message.id]
                row[_DELIVERY_COUNT] = max(row[_DELIVERY_COUNT] + 1, count)
                arrivals.append((message.id, "redelivered", {"delivery_count": row[_DELIVERY_COUNT]}))
            elif message.id in seqs:
                bumped = conn.execute(sql.bump_delivery_count, {"mid": message.id, "r": route, "dc": count})
                arrivals.append((message.id, "redelivered", {"delivery_count": bumped.one()[1]}))
            else:
                pending[message.id] = message_values(route, message, now, bodies[message.id], count)
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
        engine, _ = self._write()
        bulk = self._batched()
        now = utcnow()
        at = bulk.events.processor("at")(now)
        stored = self._sent_bodies(route, outcomes)
        involved = [
            message.id for original, _, sent in outcomes for message in (original, *(o for o, _ in sent))
        ]
        known = self._seen.get_many(route, involved)
        with self._errors("settle"), engine.begin() as conn:
            bulk.claim(conn)
            seqs = self._settle_seqs(conn, route, outcomes, known, now)
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
            if bulk.postgres:
                pgrows.follow_events(conn, ((event[0], event[2]) for event in events))
            bulk.keys.execute(conn, key_rows)
            self._add_figures(conn, self._outcome_figures(conn, route, now, outcomes, seqs, known))
        # Journeys over: forget them, so the cache holds in-flight messages only (flat memory under load).
        self._seen.forget_many(route, involved)

    def _settle_seqs(
        self,
        conn: sa.Connection,
        route: str,
        outcomes: list[Outcome],
        known: dict[str, Known],
        now: datetime,
    ) -> dict[str, int]:
        """Return the seq of every message of ``outcomes``: known here, or looked up after adding the rows
        of outputs not journaled yet (their envelope, no body)."""
        seqs = {mid: found.seq for mid, found in known.items()}
        new_rows = {
            output.id: message_values(route, output, now, None)
            for _, _, sent in outcomes
            for output, _ in sent
            if output.id not in seqs
        }
        # the outputs' rows first (events and keys refer to them), a repeat ignored as SQLAlchemy's
        # insert-or-ignore did; then the ingress messages this process has not seen, in one look-up
        seqs.update(self._insert_rows(conn, route, self._batched().outputs, list(new_rows.values()), now)[0])
        missing = list({o.id for o, _, _ in outcomes if o.id not in seqs})
        if missing:
            seqs.update(self._batched().existing(conn, route, missing))
        return seqs
