"""The PostgreSQL driver of the cold reads (:mod:`esb.journal.coldread`): psycopg, without SQLAlchemy.

The statements are the PostgreSQL entries of esb/journal/sqltext.py: ``esb trace``'s as the journal runs
them there (:func:`esb.journal.queries.lookup_statements`: the rows by their ``seq``, found first in the
look-up tables, walked by :func:`esb.journal.conversation.over_lookups`), ``esb dlq list``'s and
``esb health``'s. The connection is made as the journal's engine makes it (the URL's user, password,
host, port and database, :data:`~esb.journal.constants.PG_OPTIONS`, JSON read by ``orjson``), read-only
and in autocommit: each statement its own snapshot, as the journal's read-committed reads see it, and no
transaction left open while ``esb health`` checks the other components (an idle transaction's locks
would make the running hub's partition maintenance wait, and the journal's writes behind it). Values are
bound and converted as SQLAlchemy's types do on PostgreSQL (timestamps aware, in UTC). A URL with a query
string or anything else SQLAlchemy's parser would have to interpret, a schema not at head or any error:
the journal is opened instead, as before.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote, urlsplit

import orjson

from esb.journal import conversation
from esb.journal.coldread import Driver, Refused, same, utc
from esb.journal.constants import PG_OPTIONS, VERSION_TABLE
from esb.journal.revisions import plain_head
from esb.journal.sqltext import POSTGRESQL

#: The session setting that makes every statement of the cold path read-only.
READ_ONLY = "-c default_transaction_read_only=on"

#: The URL schemes read here: SQLAlchemy's ``postgresql`` dialect with psycopg (its default driver).
SCHEMES = ("postgresql", "postgresql+psycopg")


def _bind(value: Any) -> Any:
    return value.astimezone(UTC) if isinstance(value, datetime) else value


#: PostgreSQL's driver: ``%s`` marks (a list's items carry SQLAlchemy's cast), an empty list as SQLAlchemy
#: writes it, psycopg's values (JSON already decoded, timestamps aware).
DRIVER = Driver(
    "%s", "(NULL) AND (1 != 1)", _bind, {"text": same, "int": same, "bool": same, "json": same, "utc": utc}
)


def connect_args(url: str) -> dict[str, Any] | None:
    """psycopg's connection arguments for a plain ``postgresql[+psycopg]://user:password@host:port/db``
    URL (each part optional, percent-escapes decoded as SQLAlchemy decodes them), else None."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in SCHEMES or parts.query or parts.fragment or "," in parts.netloc:
        return None
    args: dict[str, Any] = {
        "user": parts.username, "password": parts.password, "host": parts.hostname, "port": port,
        "dbname": parts.path.removeprefix("/") or None,
    }  # fmt: skip
    found = {key: unquote(value) if isinstance(value, str) else value for key, value in args.items()}
    return {key: value for key, value in found.items() if value is not None}


def applies(url: str) -> bool:
    """Whether ``url`` is a plain PostgreSQL URL (:func:`connect_args`), this driver's to read."""
    return connect_args(url) is not None


def _at_head(cursor: Any) -> bool:
    expected = plain_head()
    if expected is None:
        return False
    cursor.execute("SELECT to_regclass(%s) IS NOT NULL", (VERSION_TABLE,))
    if not cursor.fetchone()[0]:
        return False
    cursor.execute(f"SELECT version_num FROM {VERSION_TABLE}")  # noqa: S608 - a constant
    return [row[0] for row in cursor.fetchall()] == [expected]


@contextlib.contextmanager
def session(url: str) -> Iterator[conversation.Run | None]:
    """A runner of the PostgreSQL entries on one read-only autocommit connection to the journal at ``url``,
    or None when its schema is not at head; a database error (the server unreachable too) is a
    :class:`Refused`."""
    args = connect_args(url)
    if args is None:
        yield None
        return
    import psycopg  # here: only a PostgreSQL journal pays for its import
    from psycopg.types.json import set_json_loads

    try:
        conn = psycopg.connect(**args, options=f"{PG_OPTIONS} {READ_ONLY}", autocommit=True)
    except psycopg.Error as exc:
        raise Refused(str(exc)) from exc
    try:
        set_json_loads(orjson.loads, conn)  # as the journal's engine reads JSON
        cursor = conn.cursor()

        def execute(sql: str, values: list[Any]) -> list[tuple[Any, ...]]:
            try:
                cursor.execute(sql, values)
                return cursor.fetchall()
            except psycopg.Error as exc:  # autocommit: the next statement runs (no such table yet)
                raise Refused(str(exc)) from exc

        yield conversation.over_lookups(DRIVER.runner(execute, POSTGRESQL)) if _at_head(cursor) else None
    except psycopg.Error as exc:
        raise Refused(str(exc)) from exc
    finally:
        conn.close()
