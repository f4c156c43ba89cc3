"""``esb trace`` on a SQLite journal through the ``sqlite3`` module, without importing SQLAlchemy.

SQLAlchemy's import is about a third of a cold ``esb trace``. On the default journal (a SQLite file)
the trace runs the statements of :func:`esb.journal.queries.trace_statements` as compiled beforehand
(esb/journal/sqltext.py, kept equal to a fresh compile by a unit test), walked by the same code
(:mod:`esb.journal.conversation`), and converts each column as SQLAlchemy's types do (tested for
identical records). It answers None, and the caller opens the :class:`~esb.journal.Journal` as before,
whenever this path does not apply: another database, no file yet, a schema not at head (the journal
migrates it on connect), or any database error (the journal reports it as before).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
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

_EXPANDING = "(__[POSTCOMPILE_ids])"


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
    """The database file of a plain ``sqlite:///PATH`` URL (``sqlite+pysqlite`` too), else None."""
    scheme, sep, rest = url.partition(":///")
    if not sep or scheme not in ("sqlite", "sqlite+pysqlite") or not rest or "?" in rest:
        return None
    if rest == ":memory:":
        return None
    return Path(rest).expanduser()


def _runner(conn: sqlite3.Connection) -> conversation.Run:
    def run(name: str, params: dict[str, Any]) -> list[dict[str, Any]]:
        sql, names, columns = SQLITE[name]
        values: list[Any] = []
        for param in names:
            if param == "ids":
                sql = sql.replace(_EXPANDING, "(" + ", ".join("?" * len(params["ids"])) + ")", 1)
                values.extend(params["ids"])
            else:
                values.append(params[param])
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


def read_trace(url: str, key: str) -> list[EventRecord] | None:
    """The events of ``key``'s conversation in time order, as :meth:`Journal.trace` returns them; None
    when this path does not apply (see the module) and the journal must be opened."""
    path = sqlite_file(url)
    if path is None or not path.is_file():
        return None
    try:
        conn = sqlite3.connect(
            f"file:{quote(str(path))}?mode=rw", uri=True, timeout=BUSY_TIMEOUT_MS / 1000,
            isolation_level=None,
        )  # fmt: skip
    except sqlite3.Error:
        return None
    try:
        conn.execute("BEGIN")  # one snapshot for every statement, as the journal's read connection has
        if not _at_head(conn):
            return None
        run = _runner(conn)
        return conversation.history(run, conversation.conversation(run, key))
    except sqlite3.Error:
        return None
    finally:
        conn.close()
