"""``esb health``'s reads of a SQLite journal through ``sqlite3``, without importing SQLAlchemy.

SQLAlchemy's import was about a quarter of a cold ``esb health``. On the default journal (a SQLite file at
the head schema) the journal's counts, route control's states, the messages stuck in flight and the
process status counts run the statements of :func:`esb.ops.healthsql.health_statements` as compiled
beforehand (esb/journal/sqltext.py), through the same session and column conversions as ``esb trace``
(:mod:`esb.journal.sqliteread`). Each read answers None whenever this path does not apply (another
database, no file yet, a schema not at head, a table not created yet, any database error): the caller
then reads through SQLAlchemy as before, which creates, migrates or reports the error as it always did.
Timestamps are bound as SQLAlchemy binds ``UTCDateTime`` on SQLite (:func:`sqlite_utc`); a unit test
compares every read with the SQLAlchemy path's answer.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from esb.journal.minutes import whole_minutes_from
from esb.journal.sqliteread import Refused, session

if TYPE_CHECKING:
    from esb.journal import Journal


def sqlite_utc(when: datetime) -> str:
    """``when`` as SQLAlchemy stores a ``UTCDateTime`` on SQLite: the UTC wall clock, microseconds always."""
    w = when.astimezone(UTC)
    day = f"{w.year:04d}-{w.month:02d}-{w.day:02d}"
    return f"{day} {w.hour:02d}:{w.minute:02d}:{w.second:02d}.{w.microsecond:06d}"


def _read(url: str, name: str, params: dict[str, Any]) -> list[dict[str, Any]] | None:
    """The rows of the compiled statement ``name``, or None when this path does not apply."""
    try:
        with session(url) as run:
            return None if run is None else run(name, params)
    except Refused:
        return None


def applies(url: str) -> bool:
    """Whether the journal at ``url`` is a SQLite file at the head schema that ``sqlite3`` can read."""
    try:
        with session(url) as run:
            return run is not None
    except Refused:
        return False


def read_counts(url: str, since: datetime) -> dict[str, dict[str, int]] | None:
    """Events per route and state since ``since``, as ``Journal.counts(since=since)``; None: not this path."""
    rows = _read(url, "counts_since", {"since": sqlite_utc(since)})
    if rows is None:
        return None
    out: dict[str, dict[str, int]] = {}
    for row in rows:
        out.setdefault(row["route"], {})[row["state"]] = int(row["number"])
    return out


def read_dead_lettered_since(url: str, since: datetime) -> dict[str, int] | None:
    """``dead_lettered`` events per route at or after ``since``, as ``Journal.dead_lettered_since(since)``;
    None: not this path."""
    params = {"since": sqlite_utc(since), "whole_from": sqlite_utc(whole_minutes_from(since))}
    rows = _read(url, "dead_lettered_since", params)
    return None if rows is None else {row["route"]: int(row["number"]) for row in rows}


def read_route_states(url: str) -> dict[str, dict[str, Any]] | None:
    """Route control's rows by route (the fields of ``RouteState``); None: not this path (or no table yet)."""
    rows = _read(url, "route_states", {})
    return None if rows is None else {row["route"]: row for row in rows}


def read_stuck(url: str, received_from: datetime, received_before: datetime) -> list[dict[str, Any]] | None:
    """Ingress messages received in ``[received_from, received_before)`` with their latest state (id, route,
    received_at, state), oldest first; None: not this path."""
    params = {"received_from": sqlite_utc(received_from), "received_before": sqlite_utc(received_before)}
    return _read(url, "stuck", params)


def read_process_counts(url: str, sample: int) -> tuple[dict[str, int], list[str]] | None:
    """``esb.ops.processes.status_counts``'s answer; None: not this path."""
    counted = _read(url, "process_counts", {})
    held = _read(url, "process_held", {"sample": sample}) if counted is not None else None
    if counted is None or held is None:
        return None
    return {r["status"]: int(r["n"]) for r in counted}, [f"{r['id']} ({r['status']})" for r in held]


class ColdJournal:
    """What ``esb health`` asks of the journal (``counts(since=...)``, ``dead_lettered_since``) read
    through ``sqlite3``; the :class:`~esb.journal.Journal` is opened only if a read cannot be answered
    this way."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._journal: Journal | None = None

    @classmethod
    def open(cls, url: str) -> ColdJournal | None:
        """A cold reader of the journal at ``url``, or None when this path does not apply there."""
        return cls(url) if applies(url) else None

    def counts(self, *, since: datetime) -> dict[str, dict[str, int]]:
        """Events per route and state since ``since`` (``Journal.counts``)."""
        found = read_counts(self.url, since)
        return found if found is not None else self._warm().counts(since=since)

    def dead_lettered_since(self, since: datetime) -> dict[str, int]:
        """``dead_lettered`` events per route at or after ``since`` (``Journal.dead_lettered_since``)."""
        found = read_dead_lettered_since(self.url, since)
        return found if found is not None else self._warm().dead_lettered_since(since)

    def _warm(self) -> Journal:
        if self._journal is None:
            from esb.journal import Journal  # only when sqlite3 could not answer

            journal = Journal(self.url, pool_size=2)
            journal.connect()
            self._journal = journal
        return self._journal

    def close(self) -> None:
        """Close the journal if a read had to open it; harmless twice."""
        journal, self._journal = self._journal, None
        if journal is not None:
            journal.close()
