"""What the journal holds and what it costs (``esb journal stats``): rows, bytes, bytes per message, age.

Bytes are the database's own figures: on SQLite the file's pages (and how many are free, reusable after
a prune), on PostgreSQL ``pg_total_relation_size`` of each journal table (table, indexes and TOAST), summed
over its partitions (esb/journal/partitions.py).
Counting rows scans each table's smallest index: seconds on tens of millions of rows.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from esb.journal.schema import FINAL_STATES, business_keys, dictionaries, events, messages

TABLES = (messages, events, business_keys, dictionaries)


@dataclasses.dataclass
class Usage:
    """Rows per table, bytes, bytes per message, the oldest message and route-level outcomes."""

    rows: dict[str, int]
    bytes: int
    free_bytes: int
    messages: int
    bytes_per_message: float | None
    oldest: datetime | None
    newest: datetime | None
    outcomes: dict[str, int]
    auto_vacuum: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """Return the figures for ``--json``."""
        return dataclasses.asdict(self)


def usage(conn: sa.Connection) -> Usage:
    """Return the journal's usage figures (one read transaction)."""
    rows = {t.name: int(conn.execute(sa.select(sa.func.count()).select_from(t)).scalar_one()) for t in TABLES}
    span = sa.select(sa.func.min(messages.c.received_at), sa.func.max(messages.c.received_at))
    oldest, newest = conn.execute(span).one()
    final = sa.select(events.c.state, sa.func.count()).where(
        events.c.state.in_(FINAL_STATES), sa.or_(events.c.endpoint.is_(None), events.c.state != "delivered")
    )
    outcomes = {state: int(n) for state, n in conn.execute(final.group_by(events.c.state))}
    size, free, vacuum = _size(conn)
    count = rows["messages"]
    per_message = round(size / count, 1) if count else None
    return Usage(rows, size, free, count, per_message, oldest, newest, outcomes, vacuum)


def _size(conn: sa.Connection) -> tuple[int, int, str | None]:
    if conn.dialect.name == "sqlite":
        page = int(conn.exec_driver_sql("PRAGMA page_size").scalar_one())
        pages = int(conn.exec_driver_sql("PRAGMA page_count").scalar_one())
        free = int(conn.exec_driver_sql("PRAGMA freelist_count").scalar_one())
        mode = int(conn.exec_driver_sql("PRAGMA auto_vacuum").scalar_one())
        return page * pages, page * free, {0: "none", 1: "full", 2: "incremental"}.get(mode, str(mode))
    total = 0
    for table in TABLES:
        size = conn.execute(  # every partition of a partitioned table (issue 18), or the table itself
            sa.text("SELECT coalesce(sum(pg_total_relation_size(relid)), 0) FROM pg_partition_tree(:t)"),
            {"t": table.name},
        )
        total += int(size.scalar_one())
    return total, 0, None
