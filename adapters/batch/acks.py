"""Acks the peer owes: files an outbound endpoint sent whose ack file has not come in (``outbound.ack``).

A peer that answers every file with an ack (114 and the phone directory: ``ACK_<file>``, ``<file>.ack``)
names the inbound endpoint that picks the acks up. A sent file is **late** when it was uploaded more than
``within`` ago and no file of the expected ack name was ever staged by that endpoint (any outcome: a
refused ack still came, and is shown as refused by the ack endpoint's own journal entry). Files sent more
than :data:`LOOK_BACK` ago are not looked at. Both endpoints' state databases are read only (never
created): a health check writes nothing.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Row, Select

from adapters.batch.config import BatchEndpoint
from adapters.batch.source import endpoint_dirs
from adapters.batch.store import batches, files
from esb.context import AdapterContext

#: sent files older than this are not checked any more (30 days)
LOOK_BACK = 30 * 86400.0


@dataclass(frozen=True)
class SentFile:
    """A file the endpoint uploaded: its name, records and when it was written (epoch seconds)."""

    name: str
    records: int
    created: int


def _read(db: Path, query: Select[Any]) -> list[Row[Any]]:
    """Rows of ``query`` on the state database ``db`` opened read-only; none when it does not exist yet."""
    if not db.exists():
        return []
    engine = sa.create_engine(f"sqlite:///file:{db}?mode=ro&uri=true", poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            return list(conn.execute(query))
    except sa.exc.OperationalError:  # a table not created yet
        return []
    finally:
        engine.dispose()


def sent_files(context: AdapterContext, since: float) -> list[SentFile]:
    """Files the endpoint of ``context`` uploaded since ``since`` (epoch seconds), oldest first."""
    query = (
        sa.select(batches.c.file_name, batches.c.records, batches.c.created)
        .where(batches.c.status == "uploaded", batches.c.created >= int(since))
        .order_by(batches.c.created)
    )
    return [
        SentFile(row.file_name, row.records, row.created)
        for row in _read(endpoint_dirs(context).state, query)
    ]


def acks_seen(context: AdapterContext, ack_endpoint: str) -> dict[str, dict[str, Any]]:
    """Every file the ack endpoint staged (whatever became of it), by name, with its header's fields once
    it was processed (empty before, or when its layout has no header)."""
    other = AdapterContext(context.settings, context.project_dir, ack_endpoint, context.services)
    query = sa.select(files.c.name, files.c.reconciliation)
    seen: dict[str, dict[str, Any]] = {}
    for row in _read(endpoint_dirs(other).state, query):
        try:
            header = json.loads(row.reconciliation or "{}").get("header") or {}
        except (ValueError, AttributeError):
            header = {}
        seen[row.name] = header if isinstance(header, dict) else {}
    return seen


def miscounted_acks(endpoint: BatchEndpoint, context: AdapterContext) -> list[str]:
    """``<ack>: received N of M sent`` for each ack whose count (``ack.count_field``) differs from the sent
    file's records (none when the endpoint names no count field)."""
    ack = endpoint.outbound.ack if endpoint.outbound is not None else None
    if ack is None or ack.count_field is None:
        return []
    seen = acks_seen(context, ack.endpoint)
    found = []
    for sent in sent_files(context, time.time() - LOOK_BACK):
        name = ack.name.format(file=sent.name)
        received = seen.get(name, {}).get(ack.count_field)
        if received is not None and str(received) != str(sent.records):
            found.append(f"{name}: received {received} of {sent.records} sent")
    return found


def late_acks(endpoint: BatchEndpoint, context: AdapterContext, now: float | None = None) -> list[SentFile]:
    """Sent files whose ack is overdue (none when the endpoint expects no acks)."""
    ack = endpoint.outbound.ack if endpoint.outbound is not None else None
    if ack is None:
        return []
    now = time.time() if now is None else now
    seen = acks_seen(context, ack.endpoint)
    return [
        sent
        for sent in sent_files(context, now - LOOK_BACK)
        if sent.created <= now - ack.within and ack.name.format(file=sent.name) not in seen
    ]
