"""``esb trace`` and ``esb dlq list`` on a SQLite journal through ``sqlite3``, without importing SQLAlchemy.

SQLAlchemy's import is about a third of a cold ``esb trace``. On the default journal (a SQLite file)
these run the statements of :func:`esb.journal.queries.cold_statements` as compiled beforehand
(esb/journal/sqltext.py, kept equal to a fresh compile by a unit test), the trace walked by the same
code as the journal's (:mod:`esb.journal.conversation`), and convert each column as SQLAlchemy's types
do (tested for identical records). They answer None, and the caller opens the
:class:`~esb.journal.Journal` as before, whenever this path does not apply: another database, no file
yet, a schema not at head (the journal migrates it on connect), or any database error (the journal
reports it as before).
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import orjson

from esb.journal import conversation
from esb.journal.constants import BUSY_TIMEOUT_MS, VERSION_TABLE
from esb.journal.records import EventRecord
from esb.journal.revisions import plain_head
from esb.journal.sqltext import SQLITE


def _utc(value: Any) -> datetime | None:
    if value is None:
        return None
    when = datetime.fromisoformat(value) if isinstance(value, str) else value
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


def _json(value: Any) -> Any:
    return None if value is None else orjson.loads(value)


def _bool(value: Any) -> bool | None:
    return None if value is None else bool(value)


def _same(value: Any) -> Any:
    return value


#: Column kind (esb/journal/sqlgen.py) -> what turns SQLite's value into SQLAlchemy's.
CONVERT: dict[str, Callable[[Any], Any]] = {
    "text": _same, "int": _same, "bool": _bool, "json": _json, "utc": _utc,
}  # fmt: skip


def sqlite_file(url: str) -> Path | None:
    """The database file of a plain ``sqlite:///PATH`` URL (``sqlite+pysqlite`` too), else None (a query
    string or an escaped character is left to SQLAlchemy's URL parser)."""
    scheme, sep, rest = url.partition(":///")
    if not sep or scheme not in ("sqlite", "sqlite+pysqlite") or not rest or "?" in rest or "%" in rest:
        return None
    if rest == ":memory:":
        return None
    return Path(rest).expanduser()


def _runner(conn: sqlite3.Connection) -> conversation.Run:
    def run(name: str, params: dict[str, Any]) -> list[dict[str, Any]]:
        sql, names, columns, constants = SQLITE[name]
        values: list[Any] = []
        for param in names:
            value = params[param] if param in params else constants[param]
            expanding = f"(__[POSTCOMPILE_{param}])"
            if expanding in sql:  # a list: one ``?`` per item
                sql = sql.replace(expanding, "(" + ", ".join("?" * len(value)) + ")", 1)
                values.extend(value)
            else:
                values.append(value)
        converters = [(column, CONVERT[kind]) for column, kind in columns]
        return [
            {column: convert(value) for (column, convert), value in zip(converters, row, strict=True)}
            for row in conn.execute(sql, values)
        ]

    return run


def _at_head(conn: sqlite3.Connection) -> bool:
    expected = plain_head()
    if expected is None:
        return False
    found = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (VERSION_TABLE,))
    if found.fetchone() is None:
        return False
    rows = conn.execute(f"SELECT version_num FROM {VERSION_TABLE}").fetchall()  # noqa: S608 - a constant
    return [row[0] for row in rows] == [expected]


@contextlib.contextmanager
def session(url: str) -> Iterator[conversation.Run | None]:
    """A runner of the cold statements in one read transaction on the journal at ``url``, or None when
    this path does not apply (see the module); a database error on the way is a :class:`Refused`."""
    path = sqlite_file(url)
    if path is None or not path.is_file():
        yield None
        return
    try:
        conn = sqlite3.connect(
            f"file:{quote(str(path))}?mode=rw", uri=True, timeout=BUSY_TIMEOUT_MS / 1000,
            isolation_level=None,
        )  # fmt: skip
    except sqlite3.Error:
        yield None
        return
    try:
        conn.execute("BEGIN")  # one snapshot for every statement, as the journal's read connection has
        yield _runner(conn) if _at_head(conn) else None
    except sqlite3.Error as exc:
        raise Refused(str(exc)) from exc
    finally:
        conn.close()


class Refused(Exception):  # noqa: N818 - a signal to open the journal instead, not an error of its own
    """The cold path met a database error: the caller opens the journal, which reports it as before."""


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
