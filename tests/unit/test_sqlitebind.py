"""The identity adapters of esb.sqlitebind store exactly what sqlite3 stores without them."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from typing import Any

import pytest

from esb import sqlitebind

VALUES: list[Any] = [
    None,
    b"",
    b"\x00\xff" * 300,
    memoryview(b"zstd\x00body"),
    7,
    1.5,
    "text",
    bytearray(b"ba"),
]


@pytest.fixture
def without_adapters() -> Iterator[None]:
    """The registry as Python ships it during the test; restored afterwards."""
    saved = dict(sqlite3.adapters)
    for kind in sqlitebind.ADAPTERS:
        sqlite3.adapters.pop((kind, sqlite3.PrepareProtocol), None)
    yield
    sqlite3.adapters.clear()
    sqlite3.adapters.update(saved)


def _stored() -> list[tuple[Any, str]]:
    db = sqlite3.connect(":memory:")
    db.execute("CREATE TABLE t (v)")
    db.executemany("INSERT INTO t VALUES (?)", [(value,) for value in VALUES])
    db.execute("INSERT INTO t VALUES (?)", (None,))
    db.execute("INSERT INTO t VALUES (:v)", {"v": b"named"})
    rows = db.execute("SELECT v, typeof(v) FROM t ORDER BY rowid").fetchall()
    db.close()
    return rows


def test_values_are_stored_as_without_the_adapters(without_adapters: None) -> None:
    """NULLs, BLOBs and the other types come back with the same values and storage classes."""
    before = _stored()
    sqlitebind.register()
    assert (type(None), sqlite3.PrepareProtocol) in sqlite3.adapters
    assert _stored() == before
    kinds = ["null", "blob", "blob", "blob", "integer", "real", "text", "blob", "null", "blob"]
    assert [kind for _, kind in before] == kinds


def test_register_leaves_an_applications_own_adapter(without_adapters: None) -> None:
    """An adapter already registered for one of the types is kept."""
    own = str
    sqlite3.register_adapter(bytes, own)
    sqlitebind.register()
    sqlitebind.register()
    assert sqlite3.adapters[(bytes, sqlite3.PrepareProtocol)] is own
