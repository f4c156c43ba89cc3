"""``route_minutes``: each route's figures per minute, so ``esb stats`` and the console read routes x minutes
rows instead of every event of their window (issue 18).

The table is kept by the journal's write paths from now on (esb/journal/rollup.py); the upgrade creates it
and fills it from the events already there (:func:`_backfill`, frozen from ``esb.journal.rollup.backfill``
as of 2026-12-07: three ``INSERT ... SELECT ... GROUP BY`` run by the server; the latencies take one window
over the events in message order). Not partitioned: routes x minutes rows (docs/journal.md "Retention").
The downgrade drops it.

Revision ID: 0015_route_minutes
Revises: 0014_dead_letters_unhandled
Create Date: 2026-12-07
"""

from __future__ import annotations

import bisect
from datetime import datetime, timedelta

import sqlalchemy as sa
from alembic import op

from esb.journal.schema import UTCDateTime

revision = "0015_route_minutes"
down_revision = "0014_dead_letters_unhandled"
branch_labels = None
depends_on = None

#: Upper bound (µs, inclusive) of each latency bucket: four a doubling, 1 ms to 2^30 ms; above the last,
#: the overflow bucket ``len(_UPPER_US)``.
_UPPER_US = tuple(round(1000 * 2 ** (b / 4)) for b in range(30 * 4 + 1))
_US = timedelta(microseconds=1)

# Constants only (no value from outside), formatted with _SQLITE's or _POSTGRES's expressions alone; rows
# go in minute order.
_ENDING = "(state IN ('filtered', 'dead_lettered') OR (state = 'delivered' AND endpoint IS NULL))"
_COUNTS = (
    "INSERT INTO route_minutes (minute, route, figure, count)"  # noqa: S608  # constants only (above)
    " SELECT {minute} AS m, route, state, count(*) FROM events"
    f" WHERE state IN ('received', 'replayed', 'redelivered') OR {_ENDING}"
    " GROUP BY m, route, state ORDER BY m"
)
_ERRORS = (
    "INSERT INTO route_minutes (minute, route, figure, count)"
    " SELECT {minute} AS m, route, 'error:' || error_reason AS f, count(*) FROM events"
    " WHERE error_reason IS NOT NULL AND error_reason <> ''"
    " AND state IN ('redelivered', 'failed', 'dead_lettered')"
    " GROUP BY m, route, f ORDER BY m"
)
#: Each ending event with the start of its journey: the latest ``received``/``replayed`` event of its
#: message row before it (a window over the row's events in id order).
_LATENCIES = (
    "INSERT INTO route_minutes (minute, route, figure, count)"  # noqa: S608  # constants only
    " SELECT {minute} AS m, route, 'ms:' || {bucket} AS f, count(*) FROM ("
    "  SELECT route, state, endpoint, at, max(CASE WHEN state IN ('received', 'replayed') THEN at END)"
    "   OVER (PARTITION BY message_seq ORDER BY id ROWS UNBOUNDED PRECEDING) AS started FROM events"
    " ) AS e"
    f" WHERE started IS NOT NULL AND {_ENDING}"
    " GROUP BY m, route, f ORDER BY m"
)
_SQLITE = {"minute": "substr(at, 1, 16) || ':00.000000'", "bucket": "esb_latency_bucket(started, at)"}
_POSTGRES = {
    "minute": "date_trunc('minute', at)",
    "bucket": "width_bucket((extract(epoch FROM at - started) * 1000000)::bigint - 1,"
    " ARRAY[{bounds}]::bigint[])".format(bounds=", ".join(map(str, _UPPER_US))),
}


def _sqlite_bucket(started: str, at: str) -> int:
    """SQLite's ``esb_latency_bucket(started, at)``: the latency bucket between two stored timestamps."""
    latency = datetime.fromisoformat(at) - datetime.fromisoformat(started)
    return bisect.bisect_left(_UPPER_US, latency // _US)


def _backfill(conn: sa.Connection) -> None:
    """Fill the empty ``route_minutes`` from every event."""
    if conn.dialect.name == "postgresql":
        parts = _POSTGRES
    else:
        driver = conn.connection.driver_connection
        assert driver is not None
        driver.create_function("esb_latency_bucket", 2, _sqlite_bucket, deterministic=True)
        parts = _SQLITE
    for sql in (_COUNTS, _ERRORS, _LATENCIES):
        conn.exec_driver_sql(sql.format(**parts))


def upgrade() -> None:
    """Create ``route_minutes`` and fill it from the events."""
    op.create_table(
        "route_minutes",
        sa.Column("minute", UTCDateTime(), primary_key=True),
        sa.Column("route", sa.String(), primary_key=True),
        sa.Column("figure", sa.String(), primary_key=True),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sqlite_with_rowid=False,
    )
    _backfill(op.get_bind())


def downgrade() -> None:
    """Drop ``route_minutes``."""
    op.drop_table("route_minutes")
