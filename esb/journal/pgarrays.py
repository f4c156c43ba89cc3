"""PostgreSQL: a batch's column of values encoded as one binary array, with no Python work per element.

The batched path sends each column of a batch as one array parameter (``unnest(%(col)b::TYPE[], ...)``,
esb/journal/bulk.py). psycopg dumps a Python list element by element in Python (its ``ListBinaryDumper``:
a look for the first non-NULL element to pick the element's dumper, a second for integers' widest value,
then per element a dumper call, a ``struct.pack`` of its length and two appends): ~2,800 instructions an
element, ~50 elements a message on the CRM-order route, the largest part of the journal's CPU on
PostgreSQL (bench/README.md, "The journal's write path, third pass"). Here a column is encoded in
PostgreSQL's binary array format (``array_send``: a header, then each element's length and bytes) by C
loops (``map``, ``zip``, ``bytes.join``) over the whole column, and handed to psycopg as one value whose
dumper returns those bytes (:func:`register` on each connection).

The bytes are psycopg's own (tests/unit/test_pgarrays.py compares them with ``ListBinaryDumper``'s for
every type here, NULLs, empty strings, Chinese, quotes and braces); integers are sent at the width of
the column they go to (psycopg picks the narrowest that holds the list's values, the server widens it).
Text is UTF-8: the caller uses :func:`encoder` only on a connection whose client encoding is UTF-8.
"""

from __future__ import annotations

import functools
import struct
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from itertools import chain, repeat
from typing import Any

import sqlalchemy as sa

from esb.journal.engine import dumps_json_bytes

#: Element and array type oids (PostgreSQL's ``pg_type``) of the types the journal's columns use.
OIDS = {
    "text": (25, 1009),
    "bytea": (17, 1001),
    "int4": (23, 1007),
    "int8": (20, 1016),
    "timestamptz": (1184, 1185),
    "jsonb": (3802, 3807),
}
_HEAD = struct.Struct(">iiiii")  # dimensions, has NULLs, element oid, length, lower bound
_EMPTY = struct.Struct(">iii")  # dimensions (0), has NULLs, element oid
_LENGTH = struct.Struct(">i").pack
_NULL = _LENGTH(-1)
_INT4 = struct.Struct(">ii").pack  # an element's length (4) and value
_INT8 = struct.Struct(">iq").pack  # an element's length (8) and value
#: PostgreSQL's timestamps count microseconds from 2000-01-01 00:00 UTC.
_PG_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_JSONB_VERSION = b"\x01"  # jsonb's binary format: a version byte, then the JSON text
#: Key of a pooled connection's ``info``: whether it takes encoded arrays (see :func:`usable`).
_READY = "esb_encoded_arrays"


class EncodedArray:
    """One array parameter already in PostgreSQL's binary format (``data``), of the array type ``oid``."""

    __slots__ = ("data", "oid")

    def __init__(self, data: bytes, oid: int) -> None:
        self.data = data
        self.oid = oid


@functools.cache
def _dumper() -> type[Any]:
    """psycopg's dumper of :class:`EncodedArray` (psycopg is imported only here: an optional dependency)."""
    from psycopg import adapt, pq

    class EncodedArrayDumper(adapt.Dumper):
        """Hands an :class:`EncodedArray`'s bytes to the server as they are (binary format, its oid)."""

        format = pq.Format.BINARY

        def get_key(self, obj: Any, format: adapt.PyFormat) -> Any:
            """One dumper per array type (its oid)."""
            return (EncodedArray, obj.oid)

        def upgrade(self, obj: Any, format: adapt.PyFormat) -> adapt.Dumper:
            """The dumper of ``obj``'s array type."""
            dumper = EncodedArrayDumper(EncodedArray)
            dumper.oid = obj.oid
            return dumper

        def dump(self, obj: Any) -> bytes:
            """The encoded array."""
            data: bytes = obj.data
            return data

    return EncodedArrayDumper


def register(context: Any) -> None:
    """Let psycopg send :class:`EncodedArray` values on ``context`` (a psycopg connection, or its adapters
    map)."""
    context.adapters.register_dumper(EncodedArray, _dumper())


def _texts(values: Sequence[Any]) -> list[bytes]:
    return list(map(str.encode, values))


def _jsons(values: Sequence[Any]) -> list[bytes]:
    # the engine's JSON serialiser's text (esb/journal/engine.py), after jsonb's version byte
    return [_JSONB_VERSION + dumps_json_bytes(value) for value in values]


def _microseconds(values: Sequence[Any]) -> list[int]:
    for value in values:  # what the column's own processor refuses (UTCDateTime)
        if value.tzinfo is None:
            raise ValueError("journal timestamps must be timezone-aware")
    return [(value - _PG_EPOCH) // _MICROSECOND for value in values]


def _sized(pieces: list[bytes]) -> bytes:
    """Each element's length, then its bytes."""
    return b"".join(chain.from_iterable(zip(map(_LENGTH, map(len, pieces)), pieces, strict=True)))


#: kind -> the elements of a column without NULLs, each as its length and bytes
_ELEMENTS: dict[str, Callable[[Sequence[Any]], bytes]] = {
    "text": lambda values: _sized(_texts(values)),
    "bytea": lambda values: _sized(list(values)),
    "jsonb": lambda values: _sized(_jsons(values)),
    "int4": lambda values: b"".join(map(_INT4, repeat(4), values)),
    "int8": lambda values: b"".join(map(_INT8, repeat(8), values)),
    "timestamptz": lambda values: b"".join(map(_INT8, repeat(8), _microseconds(values))),
}


def encode(kind: str, values: Sequence[Any]) -> EncodedArray:
    """``values`` (None for NULL) as one array of ``kind`` (a key of :data:`OIDS`)."""
    element, array = OIDS[kind]
    count = len(values)
    if not count:
        return EncodedArray(_EMPTY.pack(0, 0, element), array)
    nulls = values.count(None)
    if nulls == 0:
        if count > 1 and values.count(values[0]) == count:  # one value in every row (a batch's time)
            body = _ELEMENTS[kind](values[:1]) * count
        else:
            body = _ELEMENTS[kind](values)
    else:
        present = [value for value in values if value is not None]
        encoded = iter(_split(kind, present))
        body = b"".join(_NULL if value is None else next(encoded) for value in values)
    return EncodedArray(_HEAD.pack(1, 1 if nulls else 0, element, count, 1) + body, array)


def _split(kind: str, values: list[Any]) -> list[bytes]:
    """Each of ``values`` (no NULL) as its length and bytes, one piece an element."""
    if kind in ("int4", "int8", "timestamptz"):
        width = 4 if kind == "int4" else 8
        data = _ELEMENTS[kind](values)
        step = 4 + width
        return [data[at : at + step] for at in range(0, len(data), step)]
    pieces = _texts(values) if kind == "text" else _jsons(values) if kind == "jsonb" else values
    return [_LENGTH(len(piece)) + piece for piece in pieces]


def encoded(kind: str, values: Sequence[Any]) -> EncodedArray | None:
    """:func:`encode`, or None for values it does not take (a value of another type, an integer wider than
    the column, text that UTF-8 cannot encode): the caller hands those to psycopg, which says what it says.
    Raises ``ValueError`` for a naive timestamp, as the column's type (``UTCDateTime``) does."""
    try:
        return encode(kind, values)
    except (struct.error, TypeError, AttributeError, UnicodeEncodeError, OverflowError):
        return None


def usable(conn: sa.Connection) -> bool:
    """True when ``conn`` (psycopg, PostgreSQL) takes :class:`EncodedArray` parameters: its client encoding
    is UTF-8 (the text encoded here); the dumper is registered on it the first time (kept in the pooled
    connection's ``info``)."""
    info = conn.info
    ready = info.get(_READY)
    if ready is None:
        driver = conn.connection.driver_connection
        ready = info[_READY] = getattr(getattr(driver, "info", None), "encoding", None) == "utf-8"
        if ready:
            register(driver)
    return bool(ready)


def parameter(conn: sa.Connection, kind: str, values: Sequence[Any]) -> Any:
    """``values`` as an array parameter for ``conn``: encoded here when it can be (:func:`encoded`,
    :func:`usable`), else the list for psycopg to dump."""
    array = encoded(kind, values) if usable(conn) else None
    return list(values) if array is None else array


def kind_of(cast: str) -> str | None:
    """The kind :func:`encode` takes for an array cast to ``cast[]`` (a type as PostgreSQL's SQL names it,
    e.g. ``VARCHAR(20)``, ``TIMESTAMP WITH TIME ZONE``); None for a type not encoded here."""
    name = cast.upper()
    if name.startswith(("VARCHAR", "TEXT")):
        return "text"
    return {
        "BYTEA": "bytea",
        "INTEGER": "int4",
        "BIGINT": "int8",
        "TIMESTAMP WITH TIME ZONE": "timestamptz",
        "JSONB": "jsonb",
    }.get(name)
