"""Many rows of one INSERT handed to the driver with no per-row work by SQLAlchemy.

The batched hot path writes about eight rows a message (events and business keys). Through
``Connection.execute(insert, [dict, ...])`` SQLAlchemy builds a parameter dict per row and runs each
value through its type's bind processor (a timestamp: the ``UTCDateTime`` decorator, then the dialect's
own formatting), which was a third of the journal's CPU. Here the statement is compiled once per dialect,
each column's bind processor is taken from its SQLAlchemy type (so a value is stored exactly as the slow
path stores it), values the same in every row of a batch (the batch's timestamp) are processed once,
and the rows go to the driver through ``exec_driver_sql``: on SQLite as tuples to ``executemany``; on
PostgreSQL as **one statement per batch**, ``INSERT ... SELECT * FROM unnest(%(col)s::TYPE[], ...)``
with one array per column (the same table, columns, casts and ``ON CONFLICT`` clause). psycopg's
``executemany`` sends a Bind/Execute per row (pipelined, with a ``RETURNING`` the compiled insert carries
and nobody reads): per row, ~60 µs of the hub's CPU and ~25 µs of the server's; one array statement per
batch costs a fraction of that (``bench/journal_pg_batch.py``). A test writes the same rows both ways on
SQLite and PostgreSQL and compares the tables.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Sequence
from itertools import chain
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.engine import Dialect

from esb.journal import pgarrays, pgrows, rollup
from esb.journal.schema import business_keys, events, messages
from esb.journal.statements import existing_ids, insert_ignore

Processor = Callable[[Any], Any]


class BulkInsert:
    """An ``INSERT`` (or ``INSERT ... ON CONFLICT DO NOTHING``) of ``columns`` compiled for one dialect."""

    def __init__(
        self,
        statement: Any,
        columns: Sequence[str],
        dialect: Dialect,
        returning: Sequence[str] = (),
        postgres: Callable[[str], str] | None = None,
    ) -> None:
        table: sa.Table = statement.table
        compiled = statement.compile(dialect=dialect, column_keys=list(columns))
        self.sql = str(compiled)
        self.columns = tuple(columns)
        self._positional = compiled.positiontup is not None
        order = list(compiled.positiontup) if self._positional else list(columns)
        self._order = [self.columns.index(name) for name in order]
        self._names = order
        self._processors: list[Processor | None] = [
            None
            if _bound_as_is(table.c[name].type, dialect)
            else _bind_processor(table.c[name].type, dialect)
            for name in order
        ]
        #: PostgreSQL: each column's array encoded by esb/journal/pgarrays.py (None: by psycopg).
        self._kinds = [
            pgarrays.kind_of(str(table.c[name].type.compile(dialect=dialect)))
            if dialect.name == "postgresql"
            else None
            for name in order
        ]
        #: PostgreSQL: the whole batch as one statement, one array parameter per column (None elsewhere).
        self.arrays_sql = (
            _unnest_sql(statement, table, order, dialect) if dialect.name == "postgresql" else None
        )
        #: PostgreSQL: the same statement returning ``returning`` of each row it inserted (None elsewhere:
        #: SQLite's ``executemany`` returns no rows).
        self.returning_sql = (
            _unnest_sql(statement.returning(*(table.c[name] for name in returning)), table, order, dialect)
            if returning and dialect.name == "postgresql"
            else None
        )
        if postgres is not None and dialect.name == "postgresql":
            # the caller's statement around the same ``unnest`` of arrays (esb/journal/pgrows.py): it
            # returns ``returning`` when it has one
            self.arrays_sql = postgres(_unnest_call(table, order, dialect))
            self.returning_sql = self.arrays_sql if returning else None
        #: SQLite: the statement's rows as multi-row ``VALUES`` (None elsewhere, and for named parameters).
        self.values: MultiValues | None = None
        self.values_returning: MultiValues | None = None
        if dialect.name == "sqlite" and self._positional:
            self.values = MultiValues(self.sql, len(order))
            if returning and dialect.insert_returning:
                ret = statement.returning(*(table.c[name] for name in returning))
                self.values_returning = MultiValues(
                    str(ret.compile(dialect=dialect, column_keys=list(columns))), len(order)
                )

    def processor(self, column: str) -> Processor:
        """Return the bind processor of ``column`` (identity when its type has none): for a value shared by
        every row of a batch, processed once and passed as ``fixed``."""
        found = self._processors[self._names.index(column)]
        return found if found is not None else _same

    def execute(self, conn: sa.Connection, rows: Iterable[Sequence[Any]], fixed: Iterable[str] = ()) -> None:
        """Insert ``rows`` (values in ``columns`` order); columns named in ``fixed`` are already processed."""
        if self.arrays_sql is not None:
            listed = list(rows)
            if listed:
                skip = {self._names.index(name) for name in fixed}
                self._execute_arrays(conn, self.arrays_sql, listed, skip)
            return
        converted = self._converted(rows, fixed)
        if not converted:
            return
        if self.values is not None:  # SQLite: a few multi-row statements instead of a row at a time
            self.values.execute(conn, converted)
        elif self._positional:  # the driver takes tuples (SQLAlchemy refuses a list of lists)
            conn.exec_driver_sql(self.sql, [tuple(values) for values in converted])
        else:
            names = self._names
            conn.exec_driver_sql(self.sql, [dict(zip(names, values, strict=True)) for values in converted])

    def _converted(self, rows: Iterable[Sequence[Any]], fixed: Iterable[str]) -> list[Sequence[Any]]:
        """``rows`` as the statement's parameters: in its order, each value through its column's bind
        processor (but the ``fixed`` columns', already processed); the rows themselves when nothing
        changes (business keys: three strings)."""
        skip = {self._names.index(name) for name in fixed}
        steps = [(at, p) for at, p in enumerate(self._processors) if p is not None and at not in skip]
        identity = self._order == list(range(len(self._order)))
        if identity and not steps:
            return rows if isinstance(rows, list) else list(rows)
        converted: list[Sequence[Any]] = []
        for row in rows:
            values = list(row) if identity else [row[source] for source in self._order]
            for at, process in steps:  # a few columns have a processor (JSON, bytes, timestamps)
                if values[at] is not None:
                    values[at] = process(values[at])
            converted.append(values)
        return converted

    def insert_returning(
        self, conn: sa.Connection, rows: Sequence[Sequence[Any]], fixed: Iterable[str] = ()
    ) -> list[tuple[Any, ...]] | None:
        """Insert ``rows`` as :meth:`execute` does and return the ``returning`` columns of each row inserted
        (a row ignored by ``ON CONFLICT DO NOTHING`` returns nothing); None when this dialect cannot (SQLite):
        the rows are inserted all the same and the caller looks them up."""
        if self.values_returning is not None:  # SQLite: ``RETURNING`` of multi-row statements
            return self.values_returning.execute(conn, self._converted(rows, fixed)) if rows else []
        if self.returning_sql is None:
            self.execute(conn, rows, fixed)
            return None
        if not rows:
            return []
        skip = {self._names.index(name) for name in fixed}
        result = self._execute_arrays(conn, self.returning_sql, list(rows), skip)
        return [tuple(row) for row in result.all()]

    def _execute_arrays(
        self, conn: sa.Connection, sql: str, rows: list[Sequence[Any]], skip: set[int]
    ) -> sa.CursorResult[Any]:
        """PostgreSQL: the rows turned into one array per column and inserted by the one ``unnest``
        statement. A column is encoded as a binary array in C loops (esb/journal/pgarrays.py, which does its
        bind processor's work: JSON, UTC timestamps); a column it does not take goes as a list, each value
        through its bind processor, for psycopg to dump.

        A column NULL in every row is sent as an empty array: ``unnest`` of several arrays pads the shorter
        ones with NULLs (PostgreSQL's documented behaviour), and psycopg dumps no element of it (a list of
        ``None`` only is dumped element by element, in text). Most of an event's columns (error, detail,
        often endpoint and body) are NULL in a whole batch. A column with a value in some row keeps its
        full length, so at least one array (a NOT NULL column) gives the row count.
        """
        columns = list(zip(*rows, strict=True))  # in ``columns`` order; strict: every row is whole
        count = len(rows)
        encoded = pgarrays.usable(conn)
        params: dict[str, Any] = {}
        every_null = True
        for at, name in enumerate(self._names):
            values = columns[self._order[at]]
            kind = self._kinds[at] if encoded else None
            if values.count(None) == count:
                params[name] = [] if kind is None else pgarrays.encode(kind, ())
                continue
            every_null = False
            array = None if kind is None else pgarrays.encoded(kind, values)
            if array is not None:  # its processor's work done by the encoding (JSON, UTC timestamps)
                params[name] = array
                continue
            process = self._processors[at]
            if process is not None and at not in skip:
                params[name] = [None if value is None else process(value) for value in values]
            else:
                params[name] = list(values)
        if every_null:  # no table of ours allows it: let the database say so
            params = {name: [None] * count for name in params}
        return conn.exec_driver_sql(sql, params)


class MultiValues:
    """SQLite: an ``INSERT ... VALUES (?, ...)`` run as multi-row ``VALUES (...), (...)`` statements.

    ``executemany`` runs the one-row statement once per row (bind, step, reset, and the statement's end:
    its savepoint for the triggers and foreign keys); one statement of many rows pays that once. Its
    rows are inserted in their order, as ``executemany`` inserts them (events' ids follow it). A new
    SQL text per row count would be prepared again whenever the driver's statement cache lost it
    (preparing 50 rows of 10 columns costs about as much as inserting them), so a batch is cut into
    chunks of power-of-two sizes (50 rows: 32 + 16 + 2): a handful of texts per table, all cached.
    """

    #: The largest chunk: 256 rows, fewer when they would pass SQLite's default limit of parameters
    #: (32,766 since 3.32; ``RETURNING`` needs 3.35).
    MAX_ROWS = 256
    MAX_PARAMETERS = 32_766

    def __init__(self, sql: str, width: int) -> None:
        self.width = width
        self._one = "(" + ", ".join("?" * width) + ")"
        if sql.count(self._one) != 1:
            raise ValueError(f"not a one-row INSERT of {width} parameters: {sql}")
        self._sql = sql
        self._texts: dict[int, str] = {}
        fits = max(1, min(self.MAX_ROWS, self.MAX_PARAMETERS // width))
        self._largest = 1 << (fits.bit_length() - 1)  # a power of two

    def text(self, rows: int) -> str:
        """The statement of ``rows`` rows."""
        found = self._texts.get(rows)
        if found is None:
            found = self._texts[rows] = self._sql.replace(self._one, ", ".join([self._one] * rows), 1)
        return found

    def chunks(self, count: int) -> list[tuple[int, int]]:
        """``(start, size)`` of the statements for ``count`` rows: the largest chunk as often as it fits,
        then the power-of-two sizes of the rest, largest first."""
        found: list[tuple[int, int]] = []
        start = 0
        size = self._largest
        while start < count:
            while size > count - start:
                size >>= 1
            found.append((start, size))
            start += size
        return found

    def execute(self, conn: sa.Connection, rows: Sequence[Sequence[Any]]) -> list[tuple[Any, ...]]:
        """Insert ``rows`` (parameters, in the statement's order); return the rows the statement returns
        (none without ``RETURNING``)."""
        returned: list[tuple[Any, ...]] = []
        for start, size in self.chunks(len(rows)):
            flat = tuple(chain.from_iterable(rows[start : start + size]))
            result = conn.exec_driver_sql(self.text(size), flat)
            if result.returns_rows:
                returned.extend(tuple(row) for row in result)
        return returned


class IdLookup:
    """The ``(id, seq)`` of a route's rows among a list of ids, in one statement handed to the driver.

    :func:`~esb.journal.statements.existing_ids` compiled once for the dialect, the whole list as one
    parameter: on PostgreSQL a **binary** array (psycopg's text array format escapes each element through
    a regular expression in Python: 0.9 ms against 0.35 for 400 ids, and 2.5 for an expanding ``IN``), on
    SQLite the JSON text of the list. No SQLAlchemy result processing: both columns are plain values.
    """

    def __init__(self, dialect: Dialect) -> None:
        compiled = existing_ids(dialect.name).compile(dialect=dialect)
        self.sql = str(compiled).replace("%(ids)s::", "%(ids)b::")
        self._postgres = dialect.name == "postgresql"
        self._order = tuple(compiled.positiontup or ())

    def __call__(self, conn: sa.Connection, route: str, ids: Sequence[str]) -> list[tuple[str, int]]:
        """Return ``(id, seq)`` of each row of ``route`` whose id is in ``ids`` (none for an empty list)."""
        if not ids:
            return []
        if self._postgres:
            listed = pgarrays.parameter(conn, "text", ids)
            result = conn.exec_driver_sql(self.sql, {"r": route, "ids": listed})
        else:
            values = {"r": route, "ids": orjson.dumps(list(ids)).decode()}
            result = conn.exec_driver_sql(self.sql, tuple(values[name] for name in self._order))
        return [(row[0], row[1]) for row in result]


def _same(value: Any) -> Any:
    return value


def _bind_processor(column_type: sa.types.TypeEngine[Any], dialect: Dialect) -> Processor | None:
    """The bind processor SQLAlchemy runs for a value of ``column_type`` on ``dialect`` (None: none)."""
    return column_type.dialect_impl(dialect).bind_processor(dialect)


def _bound_as_is(column_type: sa.types.TypeEngine[Any], dialect: Dialect) -> bool:
    """True for a column whose values go to the driver unprocessed here: bytes on SQLite, which sqlite3
    binds as the same BLOB that SQLAlchemy's processor (a ``sqlite3.Binary`` view of them) gives, without
    a view made per value (esb/sqlitebind.py ends the driver's adapter search for ``bytes``)."""
    return dialect.name == "sqlite" and isinstance(column_type, sa.LargeBinary)


def _unnest_sql(statement: Any, table: sa.Table, columns: Sequence[str], dialect: Dialect) -> str:
    """``statement`` (an insert, maybe with ``ON CONFLICT``) taking its rows from ``unnest`` of one array
    parameter per column, named as the columns and cast to arrays of their types (SQLAlchemy renders it).

    The parameters are passed in psycopg's binary format (``%(name)b``): its text format escapes every
    array element through a regular expression in Python, which cost more than the rows it saved.
    """
    rows: sa.Select[Any] = sa.select(sa.literal_column("*")).select_from(_unnest(table, columns))
    return _binary(str(statement.from_select(list(columns), rows).compile(dialect=dialect)), columns)


def _unnest_call(table: sa.Table, columns: Sequence[str], dialect: Dialect) -> str:
    """``unnest(...)`` of one array parameter per column, as :func:`_unnest_sql` renders it."""
    return _binary(str(_unnest(table, columns).compile(dialect=dialect)), columns)


def _unnest(table: sa.Table, columns: Sequence[str]) -> Any:
    arrays = [sa.bindparam(name, type_=ARRAY(table.c[name].type)) for name in columns]
    return sa.func.unnest(*arrays)


def _binary(sql: str, columns: Sequence[str]) -> str:
    """``sql`` with the array parameters of ``columns`` in psycopg's binary format."""
    for name in columns:
        sql = sql.replace(f"%({name})s::", f"%({name})b::")
    return sql


#: Columns of an event row and of a business-key row, in the order the hot path gives their values.
EVENT_COLUMNS = tuple(column.name for column in events.c if column.name != "id")
KEY_COLUMNS = tuple(column.name for column in business_keys.c)
#: Columns of a message row but its ``seq`` (the database gives it).
MESSAGE_COLUMNS = tuple(column.name for column in messages.c if column.name != "seq")


@dataclasses.dataclass(frozen=True)
class BulkStatements:
    """The batched path's statements for one dialect: inserts of new messages (arrivals; outputs, whose
    repeats are ignored), events, business keys (repeats ignored), the look-up of rows by id, and the upsert
    of the per-minute figures (esb/journal/rollup.py). Message rows return ``(id, seq)`` on PostgreSQL.

    On PostgreSQL the inserts of messages and keys also write their look-up rows, the arrivals their
    in-flight rows, in the same statement (esb/journal/pgrows.py): a transaction using them calls
    :meth:`claim` first and :func:`~esb.journal.pgrows.follow_events` after its events."""

    messages: BulkInsert
    outputs: BulkInsert
    events: BulkInsert
    keys: BulkInsert
    existing: IdLookup
    minutes: BulkInsert
    postgres: bool

    @classmethod
    def build(cls, dialect: Dialect) -> BulkStatements:
        """Compile them for ``dialect``."""

        def message_rows(ignore: bool, in_flight: bool) -> Callable[[str], str]:
            return lambda unnest: pgrows.messages_sql(
                unnest, MESSAGE_COLUMNS, ignore=ignore, in_flight=in_flight
            )

        new_rows = message_rows(ignore=False, in_flight=True)
        return cls(
            messages=BulkInsert(
                sa.insert(messages), MESSAGE_COLUMNS, dialect, returning=("id", "seq"), postgres=new_rows
            ),
            outputs=BulkInsert(
                insert_ignore(dialect.name, messages),
                MESSAGE_COLUMNS,
                dialect,
                returning=("id", "seq"),
                postgres=message_rows(ignore=True, in_flight=False),
            ),
            events=BulkInsert(sa.insert(events), EVENT_COLUMNS, dialect),
            keys=BulkInsert(
                insert_ignore(dialect.name, business_keys), KEY_COLUMNS, dialect, postgres=pgrows.keys_sql
            ),
            existing=IdLookup(dialect),
            minutes=BulkInsert(rollup.upsert(dialect.name), rollup.COLUMNS, dialect),
            postgres=dialect.name == "postgresql",
        )

    def claim(self, conn: sa.Connection) -> None:
        """PostgreSQL: say that ``conn``'s transaction writes the look-up and in-flight rows itself, so
        their triggers skip it (esb/journal/pgrows.py); nothing on SQLite (its triggers stay)."""
        if self.postgres:
            pgrows.claim(conn)
