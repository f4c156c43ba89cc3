"""Making the journal's SQLAlchemy engine, and turning database errors into the hub's error tree.

SQLite: WAL, ``synchronous=NORMAL``, a busy timeout and foreign keys on every pooled connection, and
SQLAlchemy (not the ``sqlite3`` module) emits ``BEGIN``: ``BEGIN IMMEDIATE`` on the writing engine, so
that two writers never both hold a read lock and then deadlock upgrading it (``SQLITE_BUSY`` that no busy
timeout can wait out), and a plain deferred ``BEGIN`` for readers, which WAL never blocks. An engine's
writing transactions in this process take turns on a lock first (held from ``BEGIN IMMEDIATE`` to the
commit or rollback), so they wait for each other without SQLite's busy-handler sleeps.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy import event, exc
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.pool import StaticPool

from esb import sqlitebind
from esb.exceptions import ConfigError, TransportError, mask_url
from esb.files import create_private
from esb.journal.constants import BUSY_TIMEOUT_MS as BUSY_TIMEOUT_MS  # re-exported: where it was first
from esb.journal.constants import PG_OPTIONS

_HOLDS_WRITE = "esb_holds_write_lock"
_WRITE_OPTION = "esb_journal_write"


def json_default(value: Any) -> Any:
    """orjson's ``default`` for the journal's JSON: bytes as text (bad bytes escaped), else ``str``."""
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).decode("utf-8", "backslashreplace")
    return str(value)


def dumps_json_bytes(value: Any) -> bytes:
    """Serialise a header or detail dict for a JSON column, as UTF-8 (bytes and odd types become text)."""
    return orjson.dumps(value, default=json_default, option=orjson.OPT_NON_STR_KEYS)


def dumps_json(value: Any) -> str:
    """:func:`dumps_json_bytes` as text: the engine's JSON serialiser."""
    return dumps_json_bytes(value).decode("utf-8")


def is_memory_sqlite(url: str) -> bool:
    """Return True for an in-memory SQLite URL (one database per connection unless shared)."""
    try:
        parsed = make_url(url)
    except exc.ArgumentError:
        return False
    return parsed.get_backend_name() == "sqlite" and parsed.database in (None, "", ":memory:")


def create_journal_engine(url: str, *, pool_size: int = 8) -> Engine:
    """Return an engine for ``url``, tuned for many short transactions from several threads."""
    try:
        parsed = make_url(url)
    except exc.ArgumentError as error:
        raise ConfigError(f"journal url {mask_url(url)!r} is not a database URL: {error}") from None
    kwargs: dict[str, Any] = {"hide_parameters": True, "json_serializer": dumps_json}
    kwargs["json_deserializer"] = orjson.loads
    if parsed.get_backend_name() != "sqlite":
        kwargs.update(pool_size=pool_size, max_overflow=pool_size * 4, pool_pre_ping=True)
        if parsed.get_backend_name() == "postgresql":
            kwargs["connect_args"] = {"options": PG_OPTIONS}
        return _create(parsed, kwargs)
    if is_memory_sqlite(url):
        kwargs.update(poolclass=StaticPool, connect_args={"check_same_thread": False})
    else:
        try:  # the file exists 0600 before SQLite opens it: its -wal and -shm files take its mode
            create_private(Path(parsed.database or "").expanduser())
        except (OSError, TransportError) as error:
            raise TransportError(f"journal connect: cannot create its file: {error}", endpoint=url) from error
        kwargs.update(pool_size=pool_size, max_overflow=pool_size * 4, pool_timeout=60)
    engine = _create(parsed, kwargs)
    _tune_sqlite(engine)
    return engine


def _create(url: URL, kwargs: dict[str, Any]) -> Engine:
    try:
        return sa.create_engine(url, **kwargs)
    except (exc.NoSuchModuleError, ModuleNotFoundError) as error:
        hint = " (pip install 'psycopg[binary]')" if url.get_backend_name() == "postgresql" else ""
        raise ConfigError(f"journal: no driver for {url.drivername!r}{hint}: {error}") from None


def _tune_sqlite(engine: Engine) -> None:
    sqlitebind.register()  # None and bytes parameters bound without sqlite3's adapter search

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # SQLAlchemy emits BEGIN itself (see _on_begin)
        cursor = dbapi_conn.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            # a new file gives pruned pages back (Journal.prune); an existing one needs one VACUUM for it.
            # Only on an empty file: on one with tables the pragma waits for the write lock (a connection
            # opened while another writes would wait out the busy timeout)
            if cursor.execute("PRAGMA page_count").fetchone()[0] == 0:
                cursor.execute("PRAGMA auto_vacuum = INCREMENTAL")
            cursor.execute("PRAGMA journal_mode = WAL")
            cursor.execute("PRAGMA synchronous = NORMAL")
            cursor.execute("PRAGMA foreign_keys = ON")
        finally:
            cursor.close()

    # This process's writers queue on a lock, woken the moment the writer before them commits, instead of
    # in SQLite's busy handler, which sleeps 1, 2, 5 ... 100 ms between tries (the tail of four callers
    # at once: bench/README.md, status queries). Waiting longer than the busy timeout falls back to it.
    writing = threading.RLock()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: sa.Connection) -> None:
        immediate = conn.get_execution_options().get(_WRITE_OPTION, False)
        if immediate and writing.acquire(timeout=BUSY_TIMEOUT_MS / 1000):
            conn.info[_HOLDS_WRITE] = conn.info.get(_HOLDS_WRITE, 0) + 1
        # straight to the driver: the hot path pays for three BEGINs per message
        try:
            conn.connection.driver_connection.execute("BEGIN IMMEDIATE" if immediate else "BEGIN")  # type: ignore[union-attr]
        except BaseException:
            _release(conn)
            raise

    def _release(conn: sa.Connection) -> None:
        held = conn.info.get(_HOLDS_WRITE, 0)
        if held:
            conn.info[_HOLDS_WRITE] = held - 1
            writing.release()

    # SQLAlchemy fires these events *before* it commits or rolls back on the driver: end the transaction
    # here first, so the next writer of this process is let in only once SQLite's lock is free (else its
    # BEGIN IMMEDIATE met a database still locked and slept in the busy handler). The driver's own
    # commit()/rollback() that follow find no transaction open and do nothing.
    @event.listens_for(engine, "commit")
    def _on_commit(conn: sa.Connection) -> None:
        try:
            _end(conn, "COMMIT")
        finally:
            _release(conn)

    @event.listens_for(engine, "rollback")
    def _on_rollback(conn: sa.Connection) -> None:
        try:
            _end(conn, "ROLLBACK")
        finally:
            _release(conn)

    def _end(conn: sa.Connection, statement: str) -> None:
        if conn.info.get(_HOLDS_WRITE, 0):
            driver = conn.connection.driver_connection
            if driver is not None and driver.in_transaction:
                driver.execute(statement)


def writer(engine: Engine) -> Engine:
    """Return a view of ``engine`` (same pool) whose transactions take SQLite's write lock up front."""
    return engine.execution_options(**{_WRITE_OPTION: True})


def reader(engine: Engine) -> Engine:
    """Return a view of ``engine`` (same pool) whose transactions only read: a deferred ``BEGIN`` on
    SQLite, which WAL never blocks, even on a view made by :func:`writer`."""
    return engine.execution_options(**{_WRITE_OPTION: False})


class DatabaseErrors:
    """A context manager turning SQLAlchemy errors into :class:`TransportError` with the URL masked.

    The message carries the driver's text only: never the statement's parameters (bodies).
    For in-memory SQLite (one shared connection) it also serialises callers with a lock.
    """

    def __init__(self, url: str, *, serialise: bool = False) -> None:
        self.url = url
        self._lock = threading.RLock() if serialise else None

    @contextlib.contextmanager
    def __call__(self, what: str) -> Iterator[None]:
        """Run the block; a database error becomes ``TransportError('journal <what>: ...')``."""
        lock = self._lock or contextlib.nullcontext()
        with lock:
            try:
                yield
            except exc.SQLAlchemyError as error:
                raise TransportError(f"journal {what}: {describe(error)}", endpoint=self.url) from error


def describe(error: exc.SQLAlchemyError) -> str:
    """Return the class and driver text of ``error``, without the SQL statement or its parameters."""
    if isinstance(error, exc.DBAPIError) and error.orig is not None:
        text = str(error.orig).strip().splitlines()[0] if str(error.orig).strip() else ""
        return f"{type(error.orig).__name__}: {text}"
    return f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"


def open_with_tables(url: str, *tables: sa.Table, pool_size: int = 1) -> Engine:
    """Return an engine on ``url`` with ``tables`` created if missing: the small stores that keep a table
    of their own beside the journal (route control, the console's audit). Several processes may race to
    create them: on PostgreSQL the loser's ProgrammingError means the table is there."""
    engine = create_journal_engine(url, pool_size=pool_size)
    try:
        with writer(engine).begin() as conn:
            for table in tables:
                table.create(conn, checkfirst=True)
    except (sa.exc.ProgrammingError, sa.exc.IntegrityError):
        # PostgreSQL: another process created it first ("already exists", or a unique violation on
        # pg_type when both CREATE TABLEs ran at the same moment): the table is there either way
        pass
    except BaseException:
        engine.dispose()
        raise
    return engine
