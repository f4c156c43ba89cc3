"""The SQLite driver of the cold reads (:mod:`esb.journal.coldread`): the ``sqlite3`` module on a plain file.

The statements are the SQLite entries of esb/journal/sqltext.py; values are bound and converted as
SQLAlchemy's types do on SQLite (timestamps stored as UTC wall-clock text, :func:`sqlite_utc`; booleans
as 0 and 1, JSON as text). Another URL, no file yet or a schema not at head: None, the journal is opened.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import orjson

from esb.journal import conversation
from esb.journal.coldread import Driver, Refused, boolean, same, utc
from esb.journal.constants import BUSY_TIMEOUT_MS, VERSION_TABLE
from esb.journal.revisions import plain_head
from esb.journal.sqltext import SQLITE


def sqlite_utc(when: datetime) -> str:
    """``when`` as SQLAlchemy stores a ``UTCDateTime`` on SQLite: the UTC wall clock, microseconds always."""
    w = when.astimezone(UTC)
    day = f"{w.year:04d}-{w.month:02d}-{w.day:02d}"
    return f"{day} {w.hour:02d}:{w.minute:02d}:{w.second:02d}.{w.microsecond:06d}"


def _bind(value: Any) -> Any:
    return sqlite_utc(value) if isinstance(value, datetime) else value


def _json(value: Any) -> Any:
    return None if value is None else orjson.loads(value)


#: SQLite's driver: ``?`` marks, an empty list as ``()`` (SQLite accepts it), SQLite's column values.
DRIVER = Driver("?", "()", _bind, {"text": same, "int": same, "bool": boolean, "json": _json, "utc": utc})


def sqlite_file(url: str) -> Path | None:
    """The database file of a plain ``sqlite:///PATH`` URL (``sqlite+pysqlite`` too), else None (a query
    string or an escaped character is left to SQLAlchemy's URL parser)."""
    scheme, sep, rest = url.partition(":///")
    if not sep or scheme not in ("sqlite", "sqlite+pysqlite") or not rest or "?" in rest or "%" in rest:
        return None
    if rest == ":memory:":
        return None
    return Path(rest).expanduser()


def _at_head(conn: sqlite3.Connection) -> bool:
    expected = plain_head()
    if expected is None:
        return False
    found = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (VERSION_TABLE,))
    if found.fetchone() is None:
        return False
    rows = conn.execute(f"SELECT version_num FROM {VERSION_TABLE}").fetchall()  # noqa: S608 - a constant
    return [row[0] for row in rows] == [expected]


def applies(url: str) -> bool:
    """Whether ``url`` is a plain SQLite file URL (:func:`sqlite_file`), this driver's to read."""
    return sqlite_file(url) is not None


@contextlib.contextmanager
def session(url: str) -> Iterator[conversation.Run | None]:
    """A runner of the SQLite entries in one read transaction on the file of ``url``, or None when there
    is no file yet or its schema is not at head; a database error on the way is a :class:`Refused`."""
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

        def execute(sql: str, values: list[Any]) -> list[Any]:
            try:
                return conn.execute(sql, values).fetchall()
            except sqlite3.Error as exc:
                raise Refused(str(exc)) from exc

        yield DRIVER.runner(execute, SQLITE) if _at_head(conn) else None
    except sqlite3.Error as exc:
        raise Refused(str(exc)) from exc
    finally:
        conn.close()
