"""The journal's read queries for operators (find, history, trace, counts), one connection each."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from datetime import datetime
from functools import cache
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

from esb.journal import conversation as walk
from esb.journal import lookups
from esb.journal.constants import STUCK_LIMIT as STUCK_LIMIT
from esb.journal.conversation import CHUNK as CHUNK
from esb.journal.conversation import MAX_CONVERSATION as MAX_CONVERSATION
from esb.journal.minutes import whole_minutes_from
from esb.journal.records import EventRecord, MessageRecord, MessageRef
from esb.journal.schema import business_keys, events, in_flight, messages, route_minutes
from esb.journal.schema import dead_letters as dead_letter_rows

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


def latest_state() -> Any:
    """Return the scalar subquery of the latest state of the ``messages`` row of the enclosing query."""
    return (
        sa.select(events.c.state)
        .where(events.c.message_seq == messages.c.seq)
        .order_by(events.c.id.desc())
        .limit(1)
        .scalar_subquery()
    )


def ids_with_key(where: Any) -> Any:
    """Return the query of the message ids with a business key matching ``where``: a key is indexed on
    one row of an id, and finds the id on every route."""
    keyed = messages.alias("keyed")
    return (
        sa.select(keyed.c.id)
        .select_from(business_keys.join(keyed, keyed.c.seq == business_keys.c.message_seq))
        .where(where)
    )


def uses_lookups(conn: sa.Connection) -> bool:
    """Whether look-ups by id or business key on ``conn`` go through the look-up tables (PostgreSQL, whose
    journal at head is partitioned: esb/journal/lookups.py)."""
    return conn.dialect.name == "postgresql"


def seqs_for(conn: sa.Connection, flt: Filter) -> list[int] | None:
    """On PostgreSQL (:func:`uses_lookups`), the seqs of the message rows ``flt``'s id and business key
    select, from the look-up tables (esb/journal/lookups.py); None elsewhere or when ``flt`` has neither.
    A key's rows are those of the ids it is indexed on, on every route (:func:`ids_with_key`)."""
    if not uses_lookups(conn) or (flt.message_id is None and flt.key is None):
        return None
    found: set[int] | None = None
    if flt.message_id is not None:
        found = set(lookups.seqs_of_ids(conn, [flt.message_id]))
    if flt.key is not None:
        name, value = flt.key
        ids = lookups.ids_of_seqs(conn, lookups.seqs_of_key(conn, str(value), name))
        keyed = set(lookups.seqs_of_ids(conn, ids))
        found = keyed if found is None else found & keyed
    return sorted(found or ())


def _by_dead_letters(flt: Filter) -> bool:
    """Whether :func:`find` selects from ``dead_letters``: for the state ``dead_lettered`` unless an id,
    correlation id or business key already narrows it to a few message rows (their own indexes)."""
    narrowed = flt.message_id is not None or flt.correlation_id is not None or flt.key is not None
    return flt.state == "dead_lettered" and not narrowed


def find_statement(
    flt: Filter,
    limit: int | sa.BindParameter[int],
    extra: Iterable[Any] = (),
    *,
    dead_first: bool = False,
    with_state: bool = True,
    seqs: list[int] | None = None,
) -> sa.Select[Any]:
    """The statement of :func:`find` (``limit`` a number or a bind parameter), its rows with the
    message's ``seq``. ``dead_first`` (what :func:`find` does for the state ``dead_lettered``) selects
    from ``dead_letters``, which holds exactly the message rows whose latest state is ``dead_lettered``
    (migration 0014): no event is read. Without it the latest state of each candidate is read from
    ``events`` (the reference the differential tests compare with), unless ``with_state`` is False and
    no state is asked for: then the rows' ``state`` is NULL and no event is read (replay's selection).
    ``seqs`` (:func:`seqs_for`, PostgreSQL) replaces ``flt``'s id and key: the rows they select, by seq."""
    dead_first = dead_first and flt.state == "dead_lettered"
    state: Any
    if dead_first:
        state = sa.literal(flt.state).label("state")
    elif with_state or flt.state is not None:
        state = latest_state().label("state")
    else:  # saves one probe of events a row (its own partition's pages on PostgreSQL) nobody reads
        state = sa.null().label("state")
    columns = [c for c in messages.c if c.name not in ("body", "seq")]
    stmt = sa.select(messages.c.seq, *columns, messages.c.body.is_not(None).label("has_body"), state)
    conditions: list[Any] = []
    if seqs is not None:
        conditions.append(messages.c.seq.in_(seqs))
    elif flt.message_id is not None:
        conditions.append(messages.c.id == flt.message_id)
    if flt.correlation_id is not None:
        conditions.append(messages.c.correlation_id == flt.correlation_id)
    if flt.key is not None and seqs is None:
        name, value = flt.key
        key = sa.and_(business_keys.c.name == name, business_keys.c.value == str(value))
        conditions.append(messages.c.id.in_(ids_with_key(key)))
    if flt.route is not None and not dead_first:  # dead_first: dead_letters' own copy of the route
        conditions.append(messages.c.route == flt.route)
    newest_first: Any = messages.c.received_at
    if dead_first:
        # driven by the window's range of dead_letters' index, newest first: its received_at is the
        # message's, so the order's first part is the index's and the database stops after ``limit``
        # rows (sorting only the ties on id) instead of reading every dead letter of the window
        dead = dead_letter_rows.c
        stmt = stmt.select_from(dead_letter_rows.join(messages, messages.c.seq == dead.message_seq))
        conditions.extend(_dead_letters_of(flt))
        newest_first = dead.received_at
    else:
        if flt.since is not None:
            conditions.append(messages.c.received_at >= flt.since)
        if flt.until is not None:
            conditions.append(messages.c.received_at < flt.until)
    if flt.state is not None and not dead_first:
        conditions.append(latest_state() == flt.state)
    conditions.extend(extra)
    return stmt.where(*conditions).order_by(newest_first.desc(), messages.c.id).limit(limit)


def dead_letter_refs_statement(flt: Filter, limit: int | sa.BindParameter[int]) -> sa.Select[Any]:
    """The statement of :func:`dead_letter_refs`: the window's range of ``ix_dead_letters_received_at``
    on ``flt``'s route, newest first then by id (:func:`find_statement`'s order), at most ``limit``; the
    index holds every column read (migration 0018): no message row, no event."""
    d = dead_letter_rows.c
    stmt = sa.select(d.message_seq, d.message_id, d.route, d.received_at).where(*_dead_letters_of(flt))
    return stmt.order_by(d.received_at.desc(), d.message_id).limit(limit)


class Unindexed(FunctionElement[Any]):
    """A column as a term no index may serve in SQLite's plan (``+column``: SQLite's documented way to
    disqualify a term from driving an index), the plain column elsewhere.

    Replay's window of dead letters names its route: without statistics SQLite's planner prefers
    ``ix_dead_letters_route`` (0020) for ``route = ?`` to the window's range of
    ``ix_dead_letters_received_at``, then reads and sorts the route's every dead letter. Marked, the route
    is checked in the covering index's range as before (tests/unit/test_replay_paged.py reads the plan).
    PostgreSQL chooses by cost from its statistics and keeps the window's range at 10 M for every shape
    measured (docs/journal.md "Since migration 0020"); an expression there (``route || ''``) would hide the
    route's statistics and turn its wide windows into a scan of the table, so it gets the column."""

    inherit_cache = True

    def __init__(self, column: sa.ColumnElement[Any]) -> None:
        super().__init__(column)
        self.type = column.type


def _column_of(element: Unindexed, compiler: SQLCompiler, **kw: Any) -> str:
    return str(compiler.process(element.clauses.clauses[0], **kw))


@compiles(Unindexed)
def _unindexed(element: Unindexed, compiler: SQLCompiler, **kw: Any) -> str:
    return _column_of(element, compiler, **kw)


@compiles(Unindexed, "sqlite")
def _unindexed_sqlite(element: Unindexed, compiler: SQLCompiler, **kw: Any) -> str:
    return "+" + _column_of(element, compiler, **kw)


def _dead_letters_of(flt: Filter) -> list[Any]:
    """The conditions on ``dead_letters`` of ``flt``'s window and route (the route's term kept off
    ``ix_dead_letters_route``: :class:`Unindexed`)."""
    d = dead_letter_rows.c
    conditions: list[Any] = []
    if flt.since is not None:
        conditions.append(d.received_at >= flt.since)
    if flt.until is not None:
        conditions.append(d.received_at < flt.until)
    if flt.route is not None:
        conditions.append(Unindexed(d.route) == flt.route)
    return conditions


def dead_letter_refs(conn: sa.Connection, flt: Filter, limit: int) -> list[MessageRef]:
    """The message rows :func:`find` selects for ``flt``'s window and route with the state
    ``dead_lettered`` (its other filters ignored), as references read from ``dead_letters`` alone (same
    rows, same order); :func:`records_of` reads the records afterwards."""
    rows = conn.execute(dead_letter_refs_statement(flt, limit))
    return [MessageRef(seq, mid, route, received_at) for seq, mid, route, received_at in rows]


def records_of(conn: sa.Connection, refs: list[MessageRef], state: str | None) -> dict[int, MessageRecord]:
    """The records of the message rows ``refs`` (a page: one statement), by seq, without business keys,
    ``state`` given as their latest state (what the caller selected them by, not read again); a row
    pruned since is missing. By primary key (PostgreSQL: the partitions of those seqs alone)."""
    if not refs:
        return {}
    extra = [messages.c.seq.in_([ref.seq for ref in refs])]
    found = _find(conn, Filter(), len(refs), extra, with_keys=False, with_state=False, known_state=state)
    return dict(found)


def find(
    conn: sa.Connection,
    flt: Filter,
    limit: int,
    extra: Iterable[Any] = (),
    *,
    with_keys: bool = True,
    with_state: bool = True,
) -> list[MessageRecord]:
    """Return the messages matching ``flt`` and the ``extra`` conditions, newest first, at most ``limit``;
    ``with_keys`` False leaves every record's ``business_keys`` empty (see :func:`_keys_of` for why a
    caller that does not show them, as replay's selection, should not read them); ``with_state`` False
    leaves ``state`` None when ``flt`` asks for no state (:func:`find_statement`)."""
    found = _find(conn, flt, limit, extra, with_keys=with_keys, with_state=with_state)
    return [record for _, record in found]


def _find(
    conn: sa.Connection,
    flt: Filter,
    limit: int,
    extra: Iterable[Any] = (),
    *,
    with_keys: bool = True,
    with_state: bool = True,
    known_state: str | None = None,
) -> list[tuple[int, MessageRecord]]:
    """:func:`find`, each record with its row's seq (``known_state``: every record's state, not read)."""
    columns = [c for c in messages.c if c.name not in ("body", "seq")]
    stmt = find_statement(
        flt, limit, extra, dead_first=_by_dead_letters(flt), with_state=with_state, seqs=seqs_for(conn, flt)
    )
    rows = conn.execute(stmt).mappings().all()
    keys = _keys_of(conn, {row["id"] for row in rows}) if with_keys else {}
    return [
        (
            row["seq"],
            MessageRecord(
                **{c.name: row[c.name] for c in columns if c.name != "headers"},
                headers=row["headers"] or {},
                state=row["state"] if known_state is None else known_state,
                has_body=bool(row["has_body"]),
                business_keys=keys.get(row["id"], {}),
            ),
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
    seen: set[int] = set()
    cursor = before
    while len(found) < limit:
        stmt = sa.select(events.c.message_seq, events.c.at, events.c.id)
        stmt = stmt.where(events.c.state == "dead_lettered")
        if route is not None:
            stmt = stmt.where(events.c.route == route)
        if cursor is not None:
            stmt = stmt.where(
                sa.tuple_(events.c.at, events.c.id)
                < sa.tuple_(sa.literal(cursor[0], events.c.at.type), sa.literal(cursor[1]))
            )
        rows = conn.execute(stmt.order_by(events.c.at.desc(), events.c.id.desc()).limit(limit * 2)).all()
        if not rows or (rows[-1][1], rows[-1][2]) == cursor:  # the end (or a cursor that did not move)
            return found, None
        cursor = (rows[-1][1], rows[-1][2])
        wanted = list(dict.fromkeys(seq for seq, _, _ in rows if seq not in seen))
        seen.update(wanted)
        flt = Filter(state="dead_lettered")
        records = dict(_find(conn, flt, len(wanted), [messages.c.seq.in_(wanted)]))
        found.extend(records[seq] for seq in wanted if seq in records)
    return found[:limit], cursor


def dead_lettered_count_statement(route: Any, limit: Any) -> sa.Select[Any]:
    """The statement of :func:`dead_lettered_count`: the rows of ``dead_letters`` on ``route``, at most
    ``limit`` (the table holds exactly the message rows whose latest state is ``dead_lettered``, migration
    0014: neither their message rows nor their events are read)."""
    d = dead_letter_rows.c
    rows = sa.select(d.message_seq).where(d.route == route).limit(limit).subquery()
    return sa.select(sa.func.count().label("number")).select_from(rows)


def dead_lettered_count(conn: sa.Connection, route: str, limit: int) -> int:
    """How many message rows of ``route`` have ``dead_lettered`` as their latest state, at most ``limit``:
    ``len(find(Filter(route=route, state="dead_lettered"), limit))`` without reading the rows."""
    return int(conn.execute(dead_lettered_count_statement(route, limit)).scalar_one())


def dead_lettered_counts_statement(routes: Any) -> sa.Select[Any]:
    """The statement of :func:`dead_lettered_counts`: the rows of ``dead_letters`` per route of ``routes``
    (``route``, ``number``), one range of ``ix_dead_letters_route`` per route (migration 0020: the index
    alone; before it the statement read the whole table once, which a statement per route did 26 times
    for ``esb dlq list`` on the demo project)."""
    d = dead_letter_rows.c
    return sa.select(d.route, sa.func.count().label("number")).where(d.route.in_(routes)).group_by(d.route)


def dead_lettered_counts(conn: sa.Connection, routes: list[str], limit: int) -> dict[str, int]:
    """:func:`dead_lettered_count` of every route of ``routes`` (at most ``limit`` each) in one statement."""
    found = {route: int(n) for route, n in conn.execute(dead_lettered_counts_statement(routes))}
    return {route: min(found.get(route, 0), limit) for route in routes}


def _keys_of(conn: sa.Connection, ids: set[str]) -> dict[str, dict[str, str]]:
    """Return the business keys of each message id (indexed on any of its routes' rows).

    By id, not by the rows' ``seq``: a key indexed on another route's row of the id counts too. On a
    partitioned PostgreSQL journal that is one probe of each week's ``(id, route)`` index per id (no bound
    on ``seq`` can narrow it): 60-180 ms for replay's 1,000 rows at 10 M messages over 6 weeks, against
    8-16 ms for their own rows' keys by ``seq`` (bench/README.md "PostgreSQL at 10 M, partitioned"); since
    migration 0017 the rows of the ids come from ``lookup_ids`` (esb/journal/lookups.py)."""
    out: dict[str, dict[str, str]] = {}
    joined = business_keys.join(messages, messages.c.seq == business_keys.c.message_seq)
    lookup = uses_lookups(conn)
    for batch in _chunks(sorted(ids)):
        stmt = sa.select(messages.c.id, business_keys.c.name, business_keys.c.value).select_from(joined)
        if lookup:
            seqs = lookups.seqs_of_ids(conn, batch)
            stmt = stmt.where(messages.c.seq.in_(seqs), business_keys.c.message_seq.in_(seqs))
        else:
            stmt = stmt.where(messages.c.id.in_(batch))
        for mid, name, value in conn.execute(stmt):
            out.setdefault(mid, {})[name] = value
    return out


@cache
def cold_statements() -> dict[str, sa.Select[Any]]:
    """The statements cold commands also run without SQLAlchemy, by name: ``esb trace``'s (walked by
    :mod:`esb.journal.conversation`; ``key`` the traced value, ``ids`` a list of message ids) and
    ``esb dlq``'s ``dead_lettered_counts`` (:func:`dead_lettered_counts`). esb/journal/sqltext.py holds them
    compiled for SQLite, and a unit test fails when it differs from a fresh compile."""
    return _walk_statements(lookup=False)


@cache
def lookup_statements() -> dict[str, sa.Select[Any]]:
    """:func:`cold_statements` as PostgreSQL runs them (:func:`runner`): ``keyed``, ``seed``, ``linked``
    and ``history`` select the rows by ``seqs`` (a list), which the runner finds first in the look-up
    tables (esb/journal/lookups.py) from ``key`` or ``ids``: the same rows, planned on their partitions.
    ``key_seqs`` (by ``key``, a business key's value) and ``id_seqs`` (by ``ids``) are those look-ups
    (:func:`walk.over_lookups`). esb/journal/sqltext.py holds them compiled for PostgreSQL."""
    return _walk_statements(lookup=True)


def _walk_statements(*, lookup: bool) -> dict[str, sa.Select[Any]]:
    key = sa.bindparam("key", type_=sa.String())
    ids = sa.bindparam("ids", expanding=True, type_=sa.String())
    columns = [c for c in events.c if c.name not in ("body", "message_seq")]
    joined = events.join(messages, messages.c.seq == events.c.message_seq)
    seed: Any = sa.select(messages.c.id).where(sa.or_(messages.c.id == key, messages.c.correlation_id == key))
    keyed = ids_with_key(business_keys.c.value == key)
    rows: Any = messages.c.id.in_(ids)
    of_rows: Any = rows
    if lookup:  # the rows by their seqs, which lookup_walk's runner found first
        seqs = sa.bindparam("seqs", expanding=True, type_=sa.BigInteger())
        rows = messages.c.seq.in_(seqs)
        of_rows = sa.and_(rows, events.c.message_seq.in_(seqs))
        keyed = sa.select(messages.c.id).where(rows)
        seed = sa.union(
            sa.select(messages.c.id).where(rows),
            sa.select(messages.c.id).where(messages.c.correlation_id == key),
        )
    found: dict[str, Any] = {
        "keyed": keyed,
        "seed": seed,
        "linked": sa.select(messages.c.correlation_id, messages.c.causation_id).where(rows),
        "children": sa.select(messages.c.id).where(messages.c.causation_id.in_(ids)),
        "correlated": sa.select(messages.c.id).where(messages.c.correlation_id.in_(ids)),
        "history": sa.select(
            *columns, messages.c.id.label("message_id"), events.c.body.is_not(None).label("has_body")
        )
        .select_from(joined)
        .where(of_rows),
        "dead_lettered_counts": dead_lettered_counts_statement(
            sa.bindparam("routes", expanding=True, type_=sa.String())
        ),
    }
    if lookup:  # lookups.seqs_of_key (any name) and seqs_of_ids
        found["key_seqs"] = sa.select(lookups.lookup_keys.c.seq).where(lookups.lookup_keys.c.value == key)
        found["id_seqs"] = sa.select(lookups.lookup_ids.c.seq).where(lookups.lookup_ids.c.id.in_(ids))
    return found


def runner(conn: sa.Connection) -> walk.Run:
    """Run :func:`cold_statements` on ``conn`` (for :mod:`esb.journal.conversation`)."""
    return lookup_runner(conn) if uses_lookups(conn) else _run_on(conn, cold_statements())


def lookup_runner(conn: sa.Connection) -> walk.Run:
    """:func:`runner` on PostgreSQL: :func:`lookup_statements` run as :func:`walk.over_lookups` asks (the
    seqs of a statement's ``key`` or ``ids`` looked up first), as the cold path runs them."""
    return walk.over_lookups(_run_on(conn, lookup_statements()))


def _run_on(conn: sa.Connection, statements: dict[str, sa.Select[Any]]) -> walk.Run:
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
        .where(_of_id(conn, message_id), messages.c.body.is_not(None))
        .order_by(messages.c.received_at)
        .limit(1)
    )
    body = conn.execute(stmt).scalar()
    return bytes(body) if body is not None else None


def _of_id(conn: sa.Connection, message_id: str) -> Any:
    """The condition on ``messages`` of the rows of ``message_id``: by their seqs on PostgreSQL."""
    if uses_lookups(conn):
        return messages.c.seq.in_(lookups.seqs_of_ids(conn, [message_id]))
    return messages.c.id == message_id


def event_body_statement(event_id: int, seqs: list[int] | None = None) -> sa.Select[Any]:
    """The statement of :func:`event_body`: by the event's id, within the message rows ``seqs`` if given
    (then a range of the primary key ``(message_seq, id)`` in the partitions of those seqs alone)."""
    stmt = sa.select(events.c.body).where(events.c.id == event_id)
    return stmt if seqs is None else stmt.where(events.c.message_seq.in_(seqs))


def event_body(conn: sa.Connection, event_id: int, message_id: str | None = None) -> bytes | None:
    """Return the body stored with one event, or None. ``message_id``, the event's message (as listed by
    ``history``), bounds the look-up by the rows of that id (:func:`_of_id`):
    on the partitioned PostgreSQL journal, whose ``events`` has no index on ``id`` alone (primary key
    ``(message_seq, id)``), the look-up by ``id`` alone reads every event (docs/journal.md)."""
    seqs = None
    if message_id is not None:
        if uses_lookups(conn):  # a stale entry's seq (esb/journal/lookups.py) finds no event: harmless
            seqs = lookups.seqs_of_ids(conn, [message_id])
        else:
            seqs = list(conn.execute(sa.select(messages.c.seq).where(messages.c.id == message_id)).scalars())
        if not seqs:
            return None
    body = conn.execute(event_body_statement(event_id, seqs)).scalar()
    return bytes(body) if body is not None else None


def counts_statement(route: Any = None, since: Any = None, until: Any = None) -> sa.Select[Any]:
    """The statement of :func:`counts`: events per route and state, each filter left out when None."""
    stmt = sa.select(events.c.route, events.c.state, sa.func.count().label("number")).group_by(
        events.c.route, events.c.state
    )
    if route is not None:
        stmt = stmt.where(events.c.route == route)
    if since is not None:
        stmt = stmt.where(events.c.at >= since)
    if until is not None:
        stmt = stmt.where(events.c.at < until)
    return stmt


def counts(
    conn: sa.Connection, route: str | None, since: datetime | None, until: datetime | None
) -> dict[str, dict[str, int]]:
    """Return ``{route: {state: number of events}}`` for events in ``[since, until)``."""
    out: dict[str, dict[str, int]] = {}
    for name, state, number in conn.execute(counts_statement(route, since, until)):
        out.setdefault(name, {})[state] = int(number)
    return out


def dead_lettered_since_statement(since: Any, whole_from: Any) -> sa.Select[Any]:
    """The statement of :func:`dead_lettered_since`: ``dead_lettered`` events per route (``route``,
    ``number``) at or after ``since``, the whole minutes from ``whole_from`` counted in ``route_minutes``
    (a day is routes x 1,440 minutes x figures rows, whatever the traffic) and the events of
    ``[since, whole_from)`` read through the partial index ``ix_events_dead_lettered``."""
    r = route_minutes.c
    whole = sa.select(r.route, r.count.label("n")).where(r.figure == "dead_lettered", r.minute >= whole_from)
    part = sa.select(events.c.route, sa.literal(1, sa.BigInteger()).label("n")).where(
        events.c.state == "dead_lettered", events.c.at >= since, events.c.at < whole_from
    )
    both = sa.union_all(whole, part).subquery()
    return sa.select(both.c.route, sa.func.sum(both.c.n).label("number")).group_by(both.c.route)


def dead_lettered_since(conn: sa.Connection, since: datetime) -> dict[str, int]:
    """Return ``{route: dead_lettered events at or after since}``: ``counts(since=since)``'s
    ``dead_lettered`` figures, read from the per-minute figures instead of every event of the window."""
    stmt = dead_lettered_since_statement(since, whole_minutes_from(since))
    return {route: int(number) for route, number in conn.execute(stmt)}


def stuck_statement(received_before: Any) -> sa.Select[Any]:
    """The ingress messages in flight (``in_flight``, migration 0016) received before ``received_before``
    with their latest state, oldest first, at most :data:`STUCK_LIMIT`: one range of its index, then each
    listed message's row and latest event by key (:func:`stuck_count_statement` counts them all)."""
    f = in_flight.c
    return (
        sa.select(messages.c.id, f.route, f.received_at, latest_state().label("state"))
        .select_from(in_flight.join(messages, messages.c.seq == f.message_seq))
        .where(f.received_at < received_before)
        .order_by(f.received_at)
        .limit(STUCK_LIMIT)
    )


def stuck_count_statement(received_before: Any) -> sa.Select[Any]:
    """How many ingress messages in flight were received before ``received_before`` (a range of
    ``ix_in_flight_received_at``, no other table)."""
    return sa.select(sa.func.count().label("number")).where(in_flight.c.received_at < received_before)
