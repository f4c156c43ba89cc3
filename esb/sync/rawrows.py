"""Rows of a big read straight from the driver's cursor: plain tuples, a page at a time.

SQLAlchemy's ``Row`` objects cost more than the query itself when a pass reads a million small rows (a
full resync's fingerprint load). :func:`raw_pages` compiles the SQLAlchemy query once with the
connection's dialect (the query stays one definition) and fetches its rows as the driver's tuples,
``page`` at a time. On PostgreSQL the cursor is a named (server-side) one, so the client never holds the
whole result: memory stays flat in the table's size. Only for columns that need no result processing
(strings, integers).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import sqlalchemy as sa


def raw_pages(conn: sa.Connection, query: sa.Select[Any], page: int, *, name: str) -> Iterator[list[Any]]:
    """Run ``query`` on ``conn``'s driver connection; yield its rows as tuples, ``page`` at a time.

    ``name`` names the server-side cursor where the database has them (PostgreSQL)."""
    compiled = query.compile(dialect=conn.dialect)
    params = compiled.construct_params()
    args: Any = tuple(params[key] for key in compiled.positiontup or ()) if compiled.positional else params
    driver: Any = conn.connection.driver_connection
    cursor = driver.cursor(name) if conn.dialect.name == "postgresql" else driver.cursor()
    try:
        cursor.execute(str(compiled), args)
        while rows := cursor.fetchmany(page):
            yield rows
    finally:
        cursor.close()
