"""esb/journal/pgarrays.py: a column encoded as PostgreSQL's binary array is the very bytes psycopg sends."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from psycopg.adapt import PyFormat, Transformer
from psycopg.types.json import Jsonb
from psycopg.types.numeric import Int4, Int8

from esb.journal import pgarrays
from esb.journal.engine import dumps_json

AT = datetime(2026, 12, 7, 23, 59, 58, 123456, tzinfo=UTC)


def psycopg_array(kind: str, values: list[Any]) -> tuple[int, bytes]:
    """(array oid, bytes) of ``values`` as psycopg's own list dumper sends them, each element typed as the
    column takes it (integers at the column's width, JSON through the engine's serialiser)."""
    wrap: dict[str, Any] = {"int4": Int4, "int8": Int8, "jsonb": lambda v: Jsonb(v, dumps=dumps_json)}
    typed = [None if v is None else wrap.get(kind, lambda x: x)(v) for v in values]
    dumper = Transformer().get_dumper(typed, PyFormat.BINARY)
    return dumper.oid, bytes(dumper.dump(typed))


def ours(kind: str, values: list[Any]) -> tuple[int, bytes]:
    """(array oid, bytes) of ``values`` encoded by pgarrays."""
    array = pgarrays.encode(kind, values)
    return array.oid, array.data


CASES = [
    pytest.param("text", ["SO-1", "订单-2", "", 'say "x"', "a\\b", "{1,2}", "a,b", "NULL"], id="text"),
    pytest.param("text", ["a", None, "", None], id="text-with-nulls"),
    pytest.param("text", ["crm-order-to-iom"] * 200, id="text-one-value"),
    pytest.param("bytea", [b"", b"\x00ejz\x02", bytes(range(256)) * 400, b"\xff"], id="bytea"),
    pytest.param("bytea", [None, b"x", None], id="bytea-with-nulls"),
    pytest.param("int4", [1, 0, -1, 2**31 - 1, -(2**31)], id="int4"),
    pytest.param("int8", [1, 2**40, -(2**63), 2**63 - 1, None], id="int8-with-null"),
    pytest.param("int8", [7] * 3, id="int8-one-value"),
    pytest.param(
        "timestamptz",
        [
            AT,
            datetime(1999, 12, 31, 23, 0, tzinfo=timezone(timedelta(hours=8))),
            datetime(1, 1, 1, tzinfo=UTC),
        ],
        id="timestamptz",
    ),
    pytest.param("timestamptz", [AT] * 50, id="timestamptz-one-value"),
    pytest.param("timestamptz", [None, AT], id="timestamptz-with-null"),
    pytest.param(
        "jsonb",
        [
            {"esb-来源": "crm", "n": 2},
            {"k": 'x"{,}\\'},
            [],
            {"step": "过滤", "n": [1, None]},
            None,
            {1: b"\xff"},
        ],
        id="jsonb",
    ),
]


@pytest.mark.parametrize(("kind", "values"), CASES)
def test_encoded_arrays_are_psycopgs_bytes(kind: str, values: list[Any]) -> None:
    """Each kind, with NULLs, odd text, one repeated value and extremes, encodes to psycopg's array bytes."""
    assert ours(kind, values) == psycopg_array(kind, values)


@given(st.lists(st.one_of(st.none(), st.text()), max_size=30))
def test_any_text_column_encodes_to_psycopgs_bytes(values: list[str | None]) -> None:
    """Any text column (every code point but NUL and lone surrogates, with NULLs) encodes as psycopg does
    (a column with no value at all is sent empty by the batched path, below: psycopg cannot type it)."""
    values = [v if v is None else v.replace("\x00", "") for v in values]
    values = [v for v in values if v is None or not any(0xD800 <= ord(c) <= 0xDFFF for c in v)]
    assume(any(v is not None for v in values))
    assert ours("text", values) == psycopg_array("text", values)


def test_an_empty_column_is_an_empty_array_of_its_type() -> None:
    """No values: an array of no dimension with the element's type (what ``unnest`` pads with NULLs)."""
    oid, data = ours("text", [])
    assert oid == 1009
    assert data == b"\x00\x00\x00\x00" * 2 + (25).to_bytes(4, "big")


def test_values_it_does_not_take_are_left_to_psycopg() -> None:
    """An integer wider than the column, a value of another type: ``encoded`` answers None (psycopg's turn);
    a naive timestamp is refused as the column's type refuses it."""
    assert pgarrays.encoded("int4", [2**31]) is None
    assert pgarrays.encoded("text", ["a", 3]) is None
    assert pgarrays.encoded("bytea", ["text"]) is None
    with pytest.raises(ValueError, match="timezone-aware"):
        pgarrays.encoded("timestamptz", [datetime(2026, 1, 1)])


@pytest.mark.parametrize(
    ("cast", "kind"),
    [
        ("VARCHAR", "text"), ("VARCHAR(20)", "text"), ("TEXT", "text"), ("BYTEA", "bytea"),
        ("INTEGER", "int4"), ("BIGINT", "int8"), ("TIMESTAMP WITH TIME ZONE", "timestamptz"),
        ("JSONB", "jsonb"), ("NUMERIC", None),
    ],
)  # fmt: skip
def test_kinds_follow_the_columns_sql_types(cast: str, kind: str | None) -> None:
    """A column's SQL type names the kind its array is encoded as (none for a type not encoded here)."""
    assert pgarrays.kind_of(cast) == kind
