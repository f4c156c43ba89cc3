"""The journal's read queries for operators (find, history, trace, counts), one connection each."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from datetime import datetime
from functools import cache
from typing import Any, cast

import sqlalchemy as sa

from esb.journal import conversation as walk
from esb.journal.conversation import CHUNK as CHUNK
from esb.journal.conversation import MAX_CONVERSATION as MAX_CONVERSATION
from esb.journal.records import EventRecord, MessageRecord
from esb.journal.schema import business_keys, events, messages

#: Index entries counted at most on each side when choosing how to select dead letters in a window.
PROBE = 5_000
_chunks = walk.chunks


@dataclasses.dataclass(frozen=True, slots=True)
class Filter:
    """The filters of :meth:`Journal.find`; None means "any"."""

    message_id: str | None = None
    correlation_id: str | None = None
    key: tuple[str, str] | None = None
    route: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    state: str | None = None


def _latest_state() -> Any:
    return (
        sa.select(events.c.state)
        .where(events.c.message_id == messages.c.id, events.c.route == messages.c.route)
        .order_by(events.c.id.desc())
        .limit(1)
        .scalar_subquery()
    )


def _dead_lettered_since(flt: Filter) -> Any:
    """``(id, route) IN`` the messages dead-lettered since the window's start (on its route, if given).

    The select reads only ``ix_events_dead_lettered`` (partial, holding ``at, id, message_id,
    route, state``): one index entry per dead letter since then, no event row.
    """
    return sa.tuple_(messages.c.id, messages.c.route).in_(_dead_since(flt))


def _dead_since(flt: Filter) -> Any:
    """The (message id, route) of each dead-letter event since ``flt.since`` (on ``flt.route``)."""
    e = events.c
    dead = sa.select(e.message_id, e.route).where(e.state == "dead_lettered", e.at >= flt.since)
    return dead.where(e.route == flt.route) if flt.route is not None else dead


def _few_dead_letters(conn: sa.Connection, flt: Filter) -> bool:
    """Whether to start a window's selection by state ``dead_lettered`` from the dead letters since its
    start rather than from the messages received in it: when there are fewer of them (each side counted
    up to :data:`PROBE` entries of an index, about a millisecond).

    A message is dead-lettered after it is received, so the dead letters since the window's start hold
    every answer; but for a window a month old they are every dead letter of the month (100,000 at 10
    million messages), each a random look-up of its message, while the window's messages are read in
    order of time, newest first, until ``limit`` are found (bench/README.md "The journal at scale").
    """
    dead = _dead_since(flt).limit(PROBE).subquery()
    received = sa.select(messages.c.received_at).where(messages.c.received_at >= flt.since)
    if flt.until is not None:
        received = received.where(messages.c.received_at < flt.until)
    window = received.limit(PROBE).subquery()
    n_dead = conn.execute(sa.select(sa.func.count()).select_from(dead)).scalar_one()
    n_window = conn.execute(sa.select(sa.func.count()).select_from(window)).scalar_one()
    return bool(n_dead < PROBE and n_dead < n_window)


def find_statement(
    flt: Filter, limit: int | sa.BindParameter[int], extra: Iterable[Any] = (), *, dead_first: bool = False
) -> sa.Select[Any]:
    """The statement of :func:`find` (``limit`` a number or a bind parameter); ``dead_first`` starts a
    window's selection by state ``dead_lettered`` from the dead letters since its start (see
    :func:`_few_dead_letters`, which decides it for :func:`find`)."""
    state = _latest_state().label("state")
    columns = [c for c in messages.c if c.name != "body"]
    stmt = sa.select(*columns, messages.c.body.is_not(None).label("has_body"), state)
    conditions: list[Any] = []
    if flt.message_id is not None:
        conditions.append(messages.c.id == flt.message_id)
    if flt.correlation_id is not None:
        conditions.append(messages.c.correlation_id == flt.correlation_id)
    if flt.key is not None:
        name, value = flt.key
        keyed = sa.select(business_keys.c.message_id).where(
            business_keys.c.name == name, business_keys.c.value == str(value)
        )
        conditions.append(messages.c.id.in_(keyed))
    if flt.route is not None:
        conditions.append(messages.c.route == flt.route)
    if flt.since is not None:
        conditions.append(messages.c.received_at >= flt.since)
    if flt.until is not None:
        conditions.append(messages.c.received_at < flt.until)
    if flt.state is not None:
        conditions.append(_latest_state() == flt.state)
    if dead_first:
        conditions.append(_dead_lettered_since(flt))
    conditions.extend(extra)
    return stmt.where(*conditions).order_by(messages.c.received_at.desc(), messages.c.id).limit(limit)


def find(conn: sa.Connection, flt: Filter, limit: int, extra: Iterable[Any] = ()) -> list[MessageRecord]:
    """Return the messages matching ``flt`` and the ``extra`` conditions, newest first, at most ``limit``."""
    columns = [c for c in messages.c if c.name != "body"]
    dead_first = flt.state == "dead_lettered" and flt.since is not None and _few_dead_letters(conn, flt)
    rows = conn.execute(find_statement(flt, limit, extra, dead_first=dead_first)).mappings().all()
    keys = _keys_of(conn, {row["id"] for row in rows})
    return [
        MessageRecord(
            **{c.name: row[c.name] for c in columns if c.name != "headers"},
            headers=row["headers"] or {},
            state=row["state"],
            has_body=bool(row["has_body"]),
            business_keys=keys.get(row["id"], {}),
        )
        for row in rows
    ]


def dead_letters(
    conn: sa.Connection, route: str | None, before: tuple[datetime, int] | None, limit: int
) -> tuple[list[MessageRecord], tuple[datetime, int] | None]:
    """Return a page of messages whose latest state is ``dead_lettered``, newest dead letter first, and
    the cursor of the next page (None after the last). Walks the dead-letter events backwards (a partial
    index), so a page costs the same on a journal of any size."""
    found: list[MessageRecord] = []
    seen: set[tuple[str, str]] = set()
    cursor = before
    while len(found) < limit:
        stmt = sa.select(events.c.message_id, events.c.route, events.c.at, events.c.id).where(
            events.c.state == "dead_lettered"
        )
        if route is not None:
            stmt = stmt.where(events.c.route == route)
        if cursor is not None:
            stmt = stmt.where(sa.tuple_(events.c.at, events.c.id) < sa.tuple_(
                sa.literal(cursor[0], events.c.at.type), sa.literal(cursor[1])))
        rows = conn.execute(stmt.order_by(events.c.at.desc(), events.c.id.desc()).limit(limit * 2)).all()
        if not rows:
            return found, None
        cursor = (rows[-1][2], rows[-1][3])
        wanted = [(mid, r) for mid, r, _, _ in rows if (mid, r) not in seen]
        seen.update(wanted)
        records: dict[tuple[str, str], MessageRecord] = {}
        for r, ids in _group(wanted).items():
            flt = Filter(route=r, state="dead_lettered")
            for record in find(conn, flt, len(ids), [messages.c.id.in_(ids)]):
                records[(record.id, record.route)] = record
        found.extend(records[pair] for pair in wanted if pair in records)
    return found[:limit], cursor


def _group(pairs: list[tuple[str, str]]) -> dict[str, list[str]]:
    grouped: dict[str, list[str]] = {}
    for mid, route in pairs:
        grouped.setdefault(route, []).append(mid)
    return grouped


def _keys_of(conn: sa.Connection, ids: set[str]) -> dict[str, dict[str, str]]:
    out: dict[str, dict[str, str]] = {}
    for batch in _chunks(sorted(ids)):
        stmt = sa.select(business_keys).where(business_keys.c.message_id.in_(batch))
        for mid, name, value in conn.execute(stmt):
            out.setdefault(mid, {})[name] = value
    return out


@cache
def cold_statements() -> dict[str, sa.Select[Any]]:
    """The statements cold commands also run without SQLAlchemy, by name: ``esb trace``'s (walked by
    :mod:`esb.journal.conversation`; ``key`` the traced value, ``ids`` a list of message ids) and
    ``esb dlq list``'s ``dead_lettered`` (:func:`find`'s statement for ``route`` and the state
    ``dead_lettered``, at most ``limit``). esb/journal/sqltext.py holds them compiled for SQLite, and a
    unit test fails when it differs from a fresh compile."""
    key = sa.bindparam("key", type_=sa.String())
    ids = sa.bindparam("ids", expanding=True, type_=sa.String())
    columns = [c for c in events.c if c.name != "body"]
    return {
        "keyed": sa.select(business_keys.c.message_id).where(business_keys.c.value == key),
        "seed": sa.select(messages.c.id).where(
            sa.or_(messages.c.id == key, messages.c.correlation_id == key)
        ),
        "linked": sa.select(messages.c.correlation_id, messages.c.causation_id).where(messages.c.id.in_(ids)),
        "children": sa.select(messages.c.id).where(messages.c.causation_id.in_(ids)),
        "correlated": sa.select(messages.c.id).where(messages.c.correlation_id.in_(ids)),
        "history": sa.select(*columns, events.c.body.is_not(None).label("has_body")).where(
            events.c.message_id.in_(ids)
        ),
        "dead_lettered": find_statement(
            Filter(route=cast(str, sa.bindparam("route", type_=sa.String())), state="dead_lettered"),
            sa.bindparam("limit", type_=sa.Integer()),
        ),
    }


def runner(conn: sa.Connection) -> walk.Run:
    """Run :func:`cold_statements` on ``conn`` (for :mod:`esb.journal.conversation`)."""
    statements = cold_statements()

    def run(name: str, params: dict[str, Any]) -> list[dict[str, Any]]:
        return [dict(row) for row in conn.execute(statements[name], params).mappings()]

    return run


def history(conn: sa.Connection, message_ids: Iterable[str]) -> list[EventRecord]:
    """Return the events of ``message_ids`` on every route, ordered by time (then by insertion)."""
    return walk.history(runner(conn), message_ids)


def conversation(conn: sa.Connection, key: str) -> set[str]:
    """Return the ids of every message linked to ``key`` by id, correlation, causation or business key."""
    return walk.conversation(runner(conn), key)


def ingress_body(conn: sa.Connection, message_id: str) -> bytes | None:
    """Return the body stored when ``message_id`` first entered the hub (on any route)."""
    stmt = (
        sa.select(messages.c.body)
        .where(messages.c.id == message_id, messages.c.body.is_not(None))
        .order_by(messages.c.received_at)
        .limit(1)
    )
    body = conn.execute(stmt).scalar()
    return bytes(body) if body is not None else None


def event_body(conn: sa.Connection, event_id: int) -> bytes | None:
    """Return the body stored with one event, or None."""
    body = conn.execute(sa.select(events.c.body).where(events.c.id == event_id)).scalar()
    return bytes(body) if body is not None else None


def counts(
    conn: sa.Connection, route: str | None, since: datetime | None, until: datetime | None
) -> dict[str, dict[str, int]]:
    """Return ``{route: {state: number of events}}`` for events in ``[since, until)``."""
    stmt = sa.select(events.c.route, events.c.state, sa.func.count()).group_by(events.c.route, events.c.state)
    if route is not None:
        stmt = stmt.where(events.c.route == route)
    if since is not None:
        stmt = stmt.where(events.c.at >= since)
    if until is not None:
        stmt = stmt.where(events.c.at < until)
    out: dict[str, dict[str, int]] = {}
    for name, state, number in conn.execute(stmt):
        out.setdefault(name, {})[state] = int(number)
    return out
