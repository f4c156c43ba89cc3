"""Retention: prune messages whose journey ended long enough ago, archiving them first; and usage figures.

A message on a route is pruned when its latest event is ``delivered`` (or ``purged``: a dead letter an
operator archived and removed) and it arrived before ``now - delivered_days``, or ``filtered`` and before
``now - filtered_days``. Dead letters, failures and messages in flight are kept, whatever their age,
until something handles them (a retry that delivers, a purge). Work goes in batches of ``batch``
messages, oldest first, one write transaction each: read the batch, append it to the archive (a gzip
member of ``<archive>/<day it arrived>.jsonl.gz``, flushed and fsync'ed), delete its rows, commit. A
batch whose commit fails after its archive was written is archived again at the next run (the archive
may hold a message twice; the database never loses one that is not in the archive).

Archive lines are JSON, one per message and route: the envelope, the original bytes (base64, already
decompressed: the archive needs no dictionary), every event with its body, deliveries and business keys.
"""

from __future__ import annotations

import base64
import dataclasses
import gzip
import os
from collections import defaultdict
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import sqlalchemy as sa

from esb.files import make_folder, open_file
from esb.journal.schema import UTCDateTime, business_keys, deliveries, events, messages

#: Messages per batch (one transaction and one archive member each).
BATCH = 2000
#: Latest states that let a message go once old enough, and which setting says how old.
PRUNABLE = {"delivered": "delivered", "purged": "delivered", "filtered": "filtered"}
_IN_RECORD = ("body", "message_id", "route")  # an event in an archive line: its message says these


@dataclasses.dataclass(frozen=True)
class Policy:
    """Days to keep per outcome (None keeps that outcome for ever) and where to archive (None: no archive)."""

    delivered_days: float | None
    filtered_days: float | None
    archive: Path | None
    batch: int = BATCH

    def cutoffs(self, now: datetime) -> dict[str, datetime]:
        """Return ``{outcome: arrived before this -> prunable}`` for the outcomes that are pruned at all."""
        days = {"delivered": self.delivered_days, "filtered": self.filtered_days}
        return {name: now - timedelta(days=value) for name, value in days.items() if value is not None}


@dataclasses.dataclass
class PruneResult:
    """What one prune did: messages and rows deleted per table, archive files written, and the time span."""

    messages: int = 0
    rows: dict[str, int] = dataclasses.field(default_factory=lambda: defaultdict(int))
    kept: int = 0
    archives: set[str] = dataclasses.field(default_factory=set)
    vacuumed_pages: int = 0

    def as_dict(self) -> dict[str, Any]:
        """Return the result for ``--json`` and logs."""
        return {
            "messages": self.messages,
            "rows": dict(self.rows),
            "kept_older": self.kept,
            "archives": sorted(self.archives),
            "vacuumed_pages": self.vacuumed_pages,
        }


Decode = Callable[[bytes | None], bytes | None]


def prune(engine: sa.Engine, policy: Policy, now: datetime, decode: Decode) -> PruneResult:
    """Prune (archiving first) every message ``policy`` lets go as of ``now``; see the module docstring."""
    result = PruneResult()
    cutoffs = policy.cutoffs(now)
    if not cutoffs:
        return result
    newest = max(cutoffs.values())
    after: tuple[datetime, str, str] | None = None
    while True:
        with engine.begin() as conn:
            batch = _candidates(conn, newest, after, policy.batch)
            if not batch:
                break
            after = batch[-1]
            latest = _latest_states(conn, batch)
            chosen = [
                (mid, route)
                for received_at, mid, route in batch
                if (outcome := PRUNABLE.get(latest.get((mid, route), ""))) in cutoffs
                and received_at < cutoffs[outcome]
            ]
            result.kept += len(batch) - len(chosen)
            if chosen:
                if policy.archive is not None:
                    result.archives.update(_archive(conn, chosen, policy.archive, decode))
                _delete(conn, chosen, result)
    return result


def _candidates(
    conn: sa.Connection, before: datetime, after: tuple[datetime, str, str] | None, limit: int
) -> list[tuple[datetime, str, str]]:
    order = (messages.c.received_at, messages.c.id, messages.c.route)
    stmt = sa.select(*order).where(messages.c.received_at < before)
    if after is not None:
        at, mid, route = after
        position = sa.tuple_(sa.literal(at, UTCDateTime()), sa.literal(mid), sa.literal(route))
        stmt = stmt.where(sa.tuple_(*order) > position)
    rows = conn.execute(stmt.order_by(*order).limit(limit))
    return [(row[0], row[1], row[2]) for row in rows]


def _by_route(pairs: Iterable[tuple[str, str]]) -> dict[str, list[str]]:
    grouped: dict[str, list[str]] = defaultdict(list)
    for mid, route in pairs:
        grouped[route].append(mid)
    return grouped


def _latest_states(conn: sa.Connection, batch: list[tuple[datetime, str, str]]) -> dict[tuple[str, str], str]:
    latest: dict[tuple[str, str], tuple[int, str]] = {}
    for route, ids in _by_route((mid, route) for _, mid, route in batch).items():
        stmt = sa.select(events.c.message_id, events.c.id, events.c.state).where(
            events.c.route == route, events.c.message_id.in_(ids)
        )
        for mid, event_id, state in conn.execute(stmt):
            known = latest.get((mid, route))
            if known is None or event_id > known[0]:
                latest[(mid, route)] = (event_id, state)
    return {ident: state for ident, (_, state) in latest.items()}


def _b64(body: bytes | None) -> str | None:
    return None if body is None else base64.b64encode(body).decode("ascii")


def _archive(conn: sa.Connection, chosen: list[tuple[str, str]], folder: Path, decode: Decode) -> set[str]:
    """Append the chosen messages to their day's archive file (fsync'ed); return the file names."""
    lines: dict[str, list[bytes]] = defaultdict(list)
    for route, ids in _by_route(chosen).items():
        evs: dict[str, list[dict[str, Any]]] = defaultdict(list)
        of_batch = sa.select(events).where(events.c.route == route, events.c.message_id.in_(ids))
        for row in conn.execute(of_batch.order_by(events.c.id)).mappings():
            item = {str(k): v for k, v in row.items() if k not in _IN_RECORD and v is not None}
            if row["body"] is not None:
                item["body"] = _b64(decode(row["body"]))
            evs[row["message_id"]].append(item)
        sent: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for mid, endpoint, at in conn.execute(
            sa.select(deliveries.c.message_id, deliveries.c.endpoint, deliveries.c.at).where(
                deliveries.c.route == route, deliveries.c.message_id.in_(ids)
            )
        ):
            sent[mid].append({"endpoint": endpoint, "at": at})
        keys: dict[str, dict[str, str]] = defaultdict(dict)
        of_ids = sa.select(business_keys).where(business_keys.c.message_id.in_(ids))
        for mid, name, value in conn.execute(of_ids):
            keys[mid][name] = value
        for row in conn.execute(
            sa.select(messages).where(messages.c.route == route, messages.c.id.in_(ids))
        ).mappings():
            record = {str(k): v for k, v in row.items() if k != "body" and v is not None}
            record["body"] = _b64(decode(row["body"]))
            record.update(events=evs[row["id"]], deliveries=sent[row["id"]], business_keys=keys[row["id"]])
            day = row["received_at"].strftime("%Y-%m-%d")
            lines[day].append(orjson.dumps(record, option=orjson.OPT_UTC_Z))
    make_folder(folder)
    for day, records in lines.items():
        with open_file(folder / f"{day}.jsonl.gz", "append") as raw:
            with gzip.GzipFile(fileobj=raw, mode="ab") as out:  # one gzip member per batch
                out.write(b"\n".join(records) + b"\n")
            raw.flush()
            os.fsync(raw.fileno())
    return {f"{day}.jsonl.gz" for day in lines}


def _delete(conn: sa.Connection, chosen: list[tuple[str, str]], result: PruneResult) -> None:
    for route, ids in _by_route(chosen).items():
        for table in (events, deliveries):
            gone = conn.execute(sa.delete(table).where(table.c.route == route, table.c.message_id.in_(ids)))
            result.rows[table.name] += gone.rowcount
        gone = conn.execute(sa.delete(messages).where(messages.c.route == route, messages.c.id.in_(ids)))
        result.rows["messages"] += gone.rowcount
        result.messages += gone.rowcount
        # business keys belong to a message id on every route: they go with its last row
        still = sa.select(sa.literal(1)).where(messages.c.id == business_keys.c.message_id).exists()
        gone = conn.execute(sa.delete(business_keys).where(business_keys.c.message_id.in_(ids), ~still))
        result.rows["business_keys"] += gone.rowcount


def read_archive(path: Path) -> list[dict[str, Any]]:
    """Return the records of one archive file (every gzip member), bodies still base64."""
    with open_file(path, "read") as raw, gzip.GzipFile(fileobj=raw, mode="rb") as data:
        return [orjson.loads(line) for line in data.read().splitlines() if line]


def archived_body(record: dict[str, Any]) -> bytes | None:
    """Return the original bytes of an archived message record."""
    body = record.get("body")
    return None if body is None else base64.b64decode(body)
