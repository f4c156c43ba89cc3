"""The cold commands' journal reads without SQLAlchemy: ``esb trace``, ``esb dlq list``, ``esb health``.

SQLAlchemy's import is about a third of a cold command. These run the statements of
:func:`esb.journal.queries.cold_statements` (on PostgreSQL :func:`~esb.journal.queries.lookup_statements`)
and of :func:`esb.ops.healthsql.health_statements` as compiled beforehand for each database
(esb/journal/sqltext.py, kept equal to a fresh compile by a unit test), through one of two drivers: the
``sqlite3`` module on a SQLite file (:mod:`esb.journal.sqliteread`) and psycopg on PostgreSQL
(:mod:`esb.journal.pgread`). A trace is walked by the same code as the journal's
(:mod:`esb.journal.conversation`) and each column converted as SQLAlchemy's types do (tests compare the
records of both paths on both databases).

:func:`session` yields None, and the caller opens the :class:`~esb.journal.Journal` as before, whenever
this path does not apply: a URL neither driver reads plainly, no file yet, a schema not at head (the
journal migrates it on connect); a database error on the way is a :class:`Refused` (the journal then
reports it as before).
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

from esb.journal import conversation
from esb.journal.records import EventRecord
from esb.journal.sqltext import Entry


class Refused(Exception):  # noqa: N818 - a signal to open the journal instead, not an error of its own
    """The cold path met a database error: the caller opens the journal, which reports it as before."""


def utc(value: Any) -> datetime | None:
    """A timestamp column as ``UTCDateTime`` returns it: aware, in UTC (SQLite gives naive text)."""
    if value is None:
        return None
    when = datetime.fromisoformat(value) if isinstance(value, str) else value
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


def same(value: Any) -> Any:
    """A column whose driver value is already SQLAlchemy's."""
    return value


def boolean(value: Any) -> bool | None:
    """A boolean column (SQLite gives 0 or 1)."""
    return None if value is None else bool(value)


#: A result column's kind (esb/journal/sqlgen.py) -> what turns the driver's value into SQLAlchemy's.
Converters = dict[str, Callable[[Any], Any]]


#: Runs one SQL text with its values and returns the rows (a database error raised as :class:`Refused`).
Execute = Callable[[str, list[Any]], Iterable[Sequence[Any]]]


class Driver:
    """How one database's driver runs an :data:`Entry`: its parameter mark, the text of an empty list,
    how a parameter is bound (timestamps as SQLAlchemy binds them there) and each column kind converted."""

    def __init__(self, mark: str, empty: str, bind: Callable[[Any], Any], convert: Converters) -> None:
        self.mark = mark
        self.empty = empty
        self.bind = bind
        self.convert = convert

    def expand(self, entry: Entry, params: dict[str, Any]) -> tuple[str, list[Any]]:
        """The entry's SQL with each expanding list written out, and the values in the order of the marks.

        An expanding list's place is ``(__[POSTCOMPILE_<name>])``, on PostgreSQL with the mark of one item
        between ``~~`` (``%s::BIGINT``: SQLAlchemy's bind cast), else the driver's plain mark; an empty
        list is the driver's :attr:`empty` text, as SQLAlchemy writes it."""
        sql, names, _, constants = entry
        values: list[Any] = []
        for name in names:
            value = params[name] if name in params else constants[name]
            found = re.search(rf"\(__\[POSTCOMPILE_{name}(?:~~(.*?)~~)?\]\)", sql)
            if found is None:
                values.append(self.bind(value))
                continue
            item = found.group(1) or self.mark
            text = "(" + ", ".join([item] * len(value)) + ")" if value else self.empty
            sql = sql[: found.start()] + text + sql[found.end() :]
            values.extend(self.bind(v) for v in value)
        return sql, values

    def runner(self, execute: Execute, entries: dict[str, Entry]) -> conversation.Run:
        """The :data:`~esb.journal.conversation.Run` of ``entries`` through ``execute`` (:data:`Execute`)."""

        def run(name: str, params: dict[str, Any]) -> list[dict[str, Any]]:
            entry = entries[name]
            sql, values = self.expand(entry, params)
            converters = [(column, self.convert[kind]) for column, kind in entry[2]]
            return [
                {column: convert(value) for (column, convert), value in zip(converters, row, strict=True)}
                for row in execute(sql, values)
            ]

        return run


@contextlib.contextmanager
def session(url: str) -> Iterator[conversation.Run | None]:
    """A runner of the cold statements in one read transaction on the journal at ``url``, or None when
    this path does not apply (see the module); a database error on the way is a :class:`Refused`."""
    from esb.journal import pgread, sqliteread  # each imports its driver only when the URL is its own

    for driver in (sqliteread, pgread):
        if driver.applies(url):
            with driver.session(url) as run:
                yield run
            return
    yield None


def read_trace(url: str, key: str) -> list[EventRecord] | None:
    """The events of ``key``'s conversation in time order, as :meth:`Journal.trace` returns them; None
    when this path does not apply (see the module) and the journal must be opened."""
    try:
        with session(url) as run:
            if run is None:
                return None
            return conversation.history(run, conversation.conversation(run, key))
    except Refused:
        return None


def count_dead_lettered(url: str, routes: list[str], limit: int) -> dict[str, int] | None:
    """For each route (or process group), how many messages the journal holds whose latest state is
    ``dead_lettered``, at most ``limit`` (:meth:`Journal.dead_lettered_counts`); None when this path does
    not apply and the journal must be opened."""
    try:
        with session(url) as run:
            if run is None:
                return None
            found = {r["route"]: int(r["number"]) for r in run("dead_lettered_counts", {"routes": routes})}
            return {route: min(found.get(route, 0), limit) for route in routes}
    except Refused:
        return None
