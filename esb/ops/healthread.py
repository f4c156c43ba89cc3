"""``esb health``'s reads of the journal without SQLAlchemy, on SQLite and on PostgreSQL.

SQLAlchemy's import was about a quarter of a cold ``esb health``. On a journal at the head schema the
journal's counts, route control's states, the messages stuck in flight and the process status counts run
the statements of :func:`esb.ops.healthsql.health_statements` as compiled beforehand
(esb/journal/sqltext.py), through the same session, drivers and column conversions as ``esb trace``
(:mod:`esb.journal.coldread`: ``sqlite3`` on a SQLite file, psycopg on PostgreSQL). Each read answers None
whenever this path does not apply (another URL, no file yet, a schema not at head, a table not created
yet, any database error): the caller then reads through SQLAlchemy as before, which creates, migrates or
reports the error as it always did. A unit test (and an integration test on PostgreSQL) compares every
read with the SQLAlchemy path's answer.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from esb.journal import conversation
from esb.journal.coldread import Refused, session
from esb.journal.minutes import whole_minutes_from

if TYPE_CHECKING:
    from esb.journal import Journal


#: A reader of ``esb health``'s named statements (:func:`esb.ops.healthsql.health_statements`): their rows
#: for the parameters (timestamps as aware datetimes), or None when it cannot answer (the caller reads
#: another way, as before).
Rows = Callable[[str, dict[str, Any]], "list[dict[str, Any]] | None"]


def cold_rows(url: str) -> Rows:
    """The reader without SQLAlchemy of the journal at ``url``, a session per read (None wherever this
    path does not apply)."""

    def rows(name: str, params: dict[str, Any]) -> list[dict[str, Any]] | None:
        try:
            with session(url) as run:
                return None if run is None else run(name, params)
        except Refused:
            return None

    return rows


def _answering(run: conversation.Run) -> Rows:
    """``run`` as a :data:`Rows`: None for a statement the database refused (no such table yet)."""

    def rows(name: str, params: dict[str, Any]) -> list[dict[str, Any]] | None:
        try:
            return run(name, params)
        except Refused:
            return None

    return rows


@runtime_checkable
class ReadsRows(Protocol):
    """A journal that runs a read statement on its engine (:meth:`esb.journal.Journal.read_rows`)."""

    def read_rows(self, statement: Any, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        """The statement's rows as dicts."""
        ...


def warm_rows(journal: ReadsRows) -> Rows:
    """The reader through the open ``journal``'s engine (PostgreSQL, or the running hub's journal): every
    check of ``esb health`` on one engine; None on a database error (a table not created yet)."""
    from sqlalchemy.exc import SQLAlchemyError

    from esb.ops.healthsql import health_statements

    statements = health_statements()

    def rows(name: str, params: dict[str, Any]) -> list[dict[str, Any]] | None:
        try:
            return journal.read_rows(statements[name], params)
        except SQLAlchemyError:
            return None

    return rows


def counts_from(rows: Rows, since: datetime) -> dict[str, dict[str, int]] | None:
    """Events per route and state since ``since``, as ``Journal.counts(since=since)``; None: not read."""
    found = rows("counts_since", {"since": since})
    if found is None:
        return None
    out: dict[str, dict[str, int]] = {}
    for row in found:
        out.setdefault(row["route"], {})[row["state"]] = int(row["number"])
    return out


def dead_lettered_since_from(rows: Rows, since: datetime) -> dict[str, int] | None:
    """``dead_lettered`` events per route at or after ``since``, as ``Journal.dead_lettered_since(since)``;
    None: not read."""
    found = rows("dead_lettered_since", {"since": since, "whole_from": whole_minutes_from(since)})
    return None if found is None else {row["route"]: int(row["number"]) for row in found}


def route_states_from(rows: Rows) -> dict[str, dict[str, Any]] | None:
    """Route control's rows by route (the fields of ``RouteState``); None: not read (or no table yet)."""
    found = rows("route_states", {})
    return None if found is None else {row["route"]: row for row in found}


def stuck_from(rows: Rows, received_before: datetime) -> tuple[list[dict[str, Any]], int] | None:
    """The ingress messages in flight received before ``received_before`` (the oldest ``STUCK_LIMIT``, with
    id, route, received_at and latest state) and how many there are in all; None: not read."""
    params = {"received_before": received_before}
    listed = rows("stuck", params)
    counted = rows("stuck_count", params) if listed is not None else None
    return None if listed is None or counted is None else (listed, int(counted[0]["number"]))


def process_counts_from(rows: Rows, sample: int) -> tuple[dict[str, int], list[str]] | None:
    """``esb.ops.processes.status_counts``'s answer; None: not read."""
    counted = rows("process_counts", {})
    held = rows("process_held", {"sample": sample}) if counted is not None else None
    if counted is None or held is None:
        return None
    return {r["status"]: int(r["n"]) for r in counted}, [f"{r['id']} ({r['status']})" for r in held]


class ColdJournal:
    """What ``esb health`` asks of the journal (``counts(since=...)``, ``dead_lettered_since``, and every
    check's statements through :attr:`rows`) read without SQLAlchemy on one connection, held from
    :meth:`open` to :meth:`close`; the :class:`~esb.journal.Journal` is opened only if a read cannot be
    answered this way."""

    def __init__(self, url: str, rows: Rows, held: contextlib.ExitStack) -> None:
        self.url = url
        #: The reader of :func:`esb.ops.healthsql.health_statements` on the held connection.
        self.rows = rows
        self._held = held
        self._journal: Journal | None = None

    @classmethod
    def open(cls, url: str) -> ColdJournal | None:
        """A cold reader of the journal at ``url``, or None when this path does not apply there."""
        held = contextlib.ExitStack()
        try:
            run = held.enter_context(session(url))
        except Refused:
            run = None
        if run is None:
            held.close()
            return None
        return cls(url, _answering(run), held)

    def counts(self, *, since: datetime) -> dict[str, dict[str, int]]:
        """Events per route and state since ``since`` (``Journal.counts``)."""
        found = counts_from(self.rows, since)
        return found if found is not None else self._warm().counts(since=since)

    def dead_lettered_since(self, since: datetime) -> dict[str, int]:
        """``dead_lettered`` events per route at or after ``since`` (``Journal.dead_lettered_since``)."""
        found = dead_lettered_since_from(self.rows, since)
        return found if found is not None else self._warm().dead_lettered_since(since)

    def _warm(self) -> Journal:
        if self._journal is None:
            from esb.journal import Journal  # only when the cold path could not answer

            journal = Journal(self.url, pool_size=2)
            journal.connect()
            self._journal = journal
        return self._journal

    def close(self) -> None:
        """Close the held connection, and the journal if a read had to open it; harmless twice."""
        with contextlib.suppress(Refused):
            self._held.close()
        journal, self._journal = self._journal, None
        if journal is not None:
            journal.close()
