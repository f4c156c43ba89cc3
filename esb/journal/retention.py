"""Retention: prune messages whose journey ended long enough ago, archiving them first; and usage figures.

A message on a route is pruned when its latest event is ``delivered`` (or ``purged``: a dead letter an
operator archived and removed) and it arrived before ``now - delivered_days``, or ``filtered`` and before
``now - filtered_days``. Dead letters, failures and messages in flight are kept, whatever their age,
until something handles them (a retry that delivers, a purge). Work goes in batches of ``batch``
messages, oldest first, one write transaction each: read the batch, append it to the archive (a gzip
member of ``<archive>/<day it arrived>.jsonl.gz``, flushed and fsync'ed), delete its rows, commit. A
batch whose commit fails after its archive was written is archived again at the next run (the archive
may hold a message twice; the database never loses one that is not in the archive).

On the partitioned PostgreSQL journal (esb/journal/partitions.py) the weeks that nearly all go are first
dropped whole, their remaining rows moved to a new partition of the week (esb/journal/day_prune.py); the
row prune then takes the rest, except the messages of the longest retention whose week has not ended
before it (they go with their week's partition). Every prune there also creates the next partitions, and
after a drop deletes the look-up tables' entries of the rows gone (esb/journal/lookups.py).

The per-minute figures (``route_minutes``) are not pruned with the messages: a minute's figures stay
whole while any of its outcomes is kept (they are what happened; counting from the rows left would give a
minute whose deliveries were pruned a 100 % error rate). They go when older than the longest retention,
when every outcome has one.

Archive lines are JSON, one per message and route: the envelope, the original bytes (base64, already
decompressed: the archive needs no dictionary), every event with its body, deliveries (the ``delivered``
events naming an endpoint, as the ``deliveries`` table held them before migration 0007) and business keys.
"""

from __future__ import annotations

import base64
import dataclasses
import gzip
import os
from collections import defaultdict
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import sqlalchemy as sa

from esb.files import make_folder, open_file
from esb.journal import day_prune, lookups, partitions
from esb.journal.schema import UTCDateTime, business_keys, events, messages, route_minutes

#: Messages per batch (one transaction and one archive member each).
BATCH = 2000
#: Latest states that let a message go once old enough, and which setting says how old.
PRUNABLE = {"delivered": "delivered", "purged": "delivered", "filtered": "filtered"}
_IN_RECORD = ("body", "message_seq", "route")  # an event in an archive line: its message says these


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
    #: PostgreSQL: the partitions dropped, by first day or `legacy` (rows that stay moved to new ones)
    dropped: list[str] = dataclasses.field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """Return the result for ``--json`` and logs."""
        return {
            "messages": self.messages,
            "rows": dict(self.rows),
            "kept_older": self.kept,
            "archives": sorted(self.archives),
            "vacuumed_pages": self.vacuumed_pages,
            "partitions_dropped": self.dropped,
        }


Decode = Callable[[bytes | None], bytes | None]


def prune(engine: sa.Engine, policy: Policy, now: datetime, decode: Decode) -> PruneResult:
    """Prune (archiving first) every message ``policy`` lets go as of ``now``; see the module docstring."""
    result = PruneResult()
    cutoffs = policy.cutoffs(now)
    partitioned = False
    if engine.dialect.name == "postgresql":
        with engine.begin() as conn:
            partitioned = partitions.is_partitioned(conn)
            partitions.ensure_ahead(conn, now.date())
        if partitioned and cutoffs:
            _drop_days(engine, policy, cutoffs, decode, result)
    if not cutoffs:
        return result
    _prune_figures(engine, policy, now, result)
    newest = max(cutoffs.values())
    oldest = min(cutoffs.values()) if partitioned else None
    after: tuple[datetime, int] | None = None
    while True:
        with engine.begin() as conn:
            batch = _candidates(conn, newest, after, policy.batch)
            if not batch:
                break
            after = batch[-1]
            latest = _latest_states(conn, [seq for _, seq in batch])
            chosen = [
                seq
                for received_at, seq in batch
                if (outcome := PRUNABLE.get(latest.get(seq, ""))) in cutoffs
                and received_at < cutoffs[outcome]
                and not (oldest and day_prune.waits_for_drop(seq, received_at, cutoffs[outcome], oldest))
            ]
            result.kept += len(batch) - len(chosen)
            if chosen:
                if policy.archive is not None:
                    result.archives.update(_archive(conn, chosen, policy.archive, decode))
                _delete(conn, chosen, result)
    return result


def _prune_figures(engine: sa.Engine, policy: Policy, now: datetime, result: PruneResult) -> None:
    """Delete the per-minute figures (``route_minutes``) older than the longest retention, when every
    outcome has one: the minutes whose delivered and filtered messages are all gone (their dead letters
    stay, but a minute's figures without its deliveries would show a false error rate). Figures of the
    minutes still in some retention are kept whole, whatever was pruned: they are what happened then."""
    cutoffs = policy.cutoffs(now)
    if set(cutoffs) != set(PRUNABLE.values()):  # an outcome kept for ever: its minutes' figures too
        return
    horizon = min(cutoffs.values())
    with engine.begin() as conn:
        gone = conn.execute(sa.delete(route_minutes).where(route_minutes.c.minute < horizon))
    result.rows["route_minutes"] += gone.rowcount


def _drop_days(
    engine: sa.Engine, policy: Policy, cutoffs: dict[str, datetime], decode: Decode, result: PruneResult
) -> None:
    """PostgreSQL: drop the partitions that (nearly) all may go, archived first (esb/journal/day_prune.py)."""

    def archive(conn: sa.Connection, seqs: list[int]) -> None:
        if policy.archive is not None:
            result.archives.update(_archive(conn, seqs, policy.archive, decode))

    for part in day_prune.candidates(engine, min(cutoffs.values())):
        go = day_prune.plan(engine, part, cutoffs, PRUNABLE)
        if go is None:
            continue
        for first in range(0, len(go), policy.batch):  # outside the drop's lock, as the row prune does
            with engine.connect() as conn:
                archive(conn, go[first : first + policy.batch])
        done = day_prune.replace_day(engine, part, cutoffs, PRUNABLE, set(go), archive)
        if done is None:
            continue  # a writer held the tables: the row prune below and the next run take the day
        gone, rows = done
        result.messages += gone
        for table, count in rows.items():
            result.rows[table] += count
        result.dropped.append(part.suffix)
        # the look-up tables' entries of the rows gone (the drop fired no trigger), after its lock
        for table, count in lookups.forget(engine, *partitions.seq_range(part.bound)).items():
            result.rows[table] += count


def _candidates(
    conn: sa.Connection, before: datetime, after: tuple[datetime, int] | None, limit: int
) -> list[tuple[datetime, int]]:
    """The next ``limit`` message rows received before ``before``, oldest first, from ``after`` on."""
    order = (messages.c.received_at, messages.c.seq)
    stmt = sa.select(*order).where(messages.c.received_at < before)
    if after is not None:
        position = sa.tuple_(sa.literal(after[0], UTCDateTime()), sa.literal(after[1]))
        stmt = stmt.where(sa.tuple_(*order) > position)
    rows = conn.execute(stmt.order_by(*order).limit(limit))
    return [(row[0], row[1]) for row in rows]


def _latest_states(conn: sa.Connection, seqs: list[int]) -> dict[int, str]:
    latest: dict[int, tuple[int, str]] = {}
    stmt = sa.select(events.c.message_seq, events.c.id, events.c.state).where(events.c.message_seq.in_(seqs))
    for seq, event_id, state in conn.execute(stmt):
        known = latest.get(seq)
        if known is None or event_id > known[0]:
            latest[seq] = (event_id, state)
    return {seq: state for seq, (_, state) in latest.items()}


def _b64(body: bytes | None) -> str | None:
    return None if body is None else base64.b64encode(body).decode("ascii")


def _archive(conn: sa.Connection, chosen: list[int], folder: Path, decode: Decode) -> set[str]:
    """Append the chosen messages to their day's archive file (fsync'ed); return the file names."""
    lines: dict[str, list[bytes]] = defaultdict(list)
    evs: dict[int, list[dict[str, Any]]] = defaultdict(list)
    sent: dict[int, list[dict[str, Any]]] = defaultdict(list)
    of_batch = sa.select(events).where(events.c.message_seq.in_(chosen))
    for row in conn.execute(of_batch.order_by(events.c.id)).mappings():
        item = {str(k): v for k, v in row.items() if k not in _IN_RECORD and v is not None}
        if row["body"] is not None:
            item["body"] = _b64(decode(row["body"]))
        evs[row["message_seq"]].append(item)
        if row["state"] == "delivered" and row["endpoint"] is not None:  # what a deliveries row was
            sent[row["message_seq"]].append({"endpoint": row["endpoint"], "at": row["at"]})
    keys: dict[int, dict[str, str]] = defaultdict(dict)
    of_keys = sa.select(business_keys).where(business_keys.c.message_seq.in_(chosen))
    for seq, name, value in conn.execute(of_keys):
        keys[seq][name] = value
    for row in conn.execute(sa.select(messages).where(messages.c.seq.in_(chosen))).mappings():
        record = {str(k): v for k, v in row.items() if k not in ("body", "seq") and v is not None}
        record["body"] = _b64(decode(row["body"]))
        seq = row["seq"]
        record.update(events=evs[seq], deliveries=sent[seq], business_keys=keys[seq])
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


def _delete(conn: sa.Connection, chosen: list[int], result: PruneResult) -> None:
    for table in (events, business_keys):
        gone = conn.execute(sa.delete(table).where(table.c.message_seq.in_(chosen)))
        result.rows[str(table.name)] += gone.rowcount
    gone = conn.execute(sa.delete(messages).where(messages.c.seq.in_(chosen)))
    result.rows["messages"] += gone.rowcount
    result.messages += gone.rowcount


def read_archive(path: Path) -> list[dict[str, Any]]:
    """Return the records of one archive file (every gzip member), bodies still base64."""
    with open_file(path, "read") as raw, gzip.GzipFile(fileobj=raw, mode="rb") as data:
        return [orjson.loads(line) for line in data.read().splitlines() if line]


def archived_body(record: dict[str, Any]) -> bytes | None:
    """Return the original bytes of an archived message record."""
    body = record.get("body")
    return None if body is None else base64.b64decode(body)
