"""The journal's plain constants (states, version table, busy timeout): importable without SQLAlchemy."""

from __future__ import annotations

#: Every state a message can be in on a route, in the order a message usually meets them.
STATES = (
    "received",
    "transformed",
    "delivered",
    "filtered",
    "failed",
    "redelivered",
    "dead_lettered",
    "replayed",
    "aggregated",
    "purged",  # removed from the dead-letter endpoint by an operator (esb dlq purge), archived first
)
#: States that end a message's journey on a route (what :meth:`Journal.outcome` answers).
FINAL_STATES = ("delivered", "filtered", "dead_lettered")
#: States after which a message is not in flight: the final ones, and ``purged`` by an operator (the
#: ``in_flight`` table, migration 0016, holds the ingress messages whose latest state is none of these).
SETTLED_STATES = (*FINAL_STATES, "purged")

#: Name of Alembic's version table: prefixed so the journal can share a PostgreSQL database.
VERSION_TABLE = "journal_alembic_version"

#: PostgreSQL session settings. JIT off: on the day-partitioned journal (esb/journal/partitions.py) a
#: search's estimated cost, summed over every partition, passes ``jit_above_cost`` and compiling took
#: ~1 s of a query that runs in 2 ms (bench/README.md "The journal at scale").
PG_OPTIONS = "-c jit=off"

#: Milliseconds a SQLite writer waits for another writer (thread or process) before giving up.
BUSY_TIMEOUT_MS = 30_000

#: Stuck messages ``esb health`` lists, at most (oldest first; it counts them all).
STUCK_LIMIT = 1000
