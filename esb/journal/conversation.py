"""How ``esb trace`` walks the journal: the conversation a key belongs to, and its events in time order.

The walk is written once, over a ``run(statement name, parameters) -> rows`` function, so that the
SQLAlchemy path (:mod:`esb.journal.queries`, every database) and the cold path of ``esb trace`` on
SQLite (:mod:`esb.journal.sqliteread`, the statements compiled to SQL text beforehand) execute the same
statements in the same order. The statements themselves are defined in one place,
:func:`esb.journal.queries.cold_statements`. This module imports no SQLAlchemy.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

from esb.journal.records import EventRecord

#: Runs the named statement of :func:`esb.journal.queries.cold_statements` with its parameters and
#: returns its rows as mappings of column name to Python value.
Run = Callable[[str, dict[str, Any]], list[dict[str, Any]]]

#: Ids per ``IN (...)`` list (SQLite's default limit on bound parameters is far above this).
CHUNK = 500
#: A conversation larger than this is cut short (a runaway correlation id must not load the database).
MAX_CONVERSATION = 10_000


def chunks(values: Iterable[str]) -> Iterator[list[str]]:
    """Yield ``values`` in lists of at most :data:`CHUNK`."""
    batch: list[str] = []
    for value in values:
        batch.append(value)
        if len(batch) >= CHUNK:
            yield batch
            batch = []
    if batch:
        yield batch


def _first(rows: list[dict[str, Any]]) -> Iterator[Any]:
    return (next(iter(row.values())) for row in rows)


def conversation(run: Run, key: str) -> set[str]:
    """Return the ids of every message linked to ``key`` by id, correlation, causation or business key."""
    ids: set[str] = set(_first(run("keyed", {"key": key})))
    ids.update(_first(run("seed", {"key": key})))
    correlations: set[str] = set()
    frontier = set(ids)
    while frontier and len(ids) < MAX_CONVERSATION:
        grown: set[str] = set()
        for batch in chunks(sorted(frontier)):
            for row in run("linked", {"ids": batch}):
                correlations.add(row["correlation_id"])
                if row["causation_id"]:
                    grown.add(row["causation_id"])
            grown.update(_first(run("children", {"ids": batch})))
        for batch in chunks(sorted(correlations)):
            grown.update(_first(run("correlated", {"ids": batch})))
        frontier = grown - ids
        ids |= frontier
    return ids


def over_lookups(run: Run) -> Run:
    """``run`` as the walk asks it on PostgreSQL, whose :func:`esb.journal.queries.lookup_statements` read
    ``keyed``, ``seed``, ``linked`` and ``history`` by ``seqs``: those are found first in the look-up
    tables (esb/journal/lookups.py), from ``key`` as a business key (``key_seqs``) or as a message id,
    and from ``ids`` (``id_seqs``); every other statement is run as it is asked."""

    def seqs(name: str, params: dict[str, Any]) -> list[int]:
        return sorted({row["seq"] for row in run(name, params)})

    def looked_up(name: str, params: dict[str, Any]) -> list[dict[str, Any]]:
        if name == "keyed":
            params = {"seqs": seqs("key_seqs", {"key": params["key"]})}
        elif name == "seed":
            params = {**params, "seqs": seqs("id_seqs", {"ids": [params["key"]]})}
        elif name in ("linked", "history"):
            params = {"seqs": seqs("id_seqs", {"ids": params["ids"]})}
        return run(name, params)

    return looked_up


def history(run: Run, message_ids: Iterable[str]) -> list[EventRecord]:
    """Return the events of ``message_ids`` on every route, ordered by time (then by insertion)."""
    found: list[EventRecord] = []
    for batch in chunks(sorted(set(message_ids))):
        for row in run("history", {"ids": batch}):
            found.append(EventRecord(**{**row, "has_body": bool(row["has_body"])}))
    found.sort(key=lambda e: (e.at, e.id))
    return found
