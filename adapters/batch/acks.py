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
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from adapters.batch.config import BatchEndpoint
from adapters.batch.staging import endpoint_dirs
from esb.context import AdapterContext

#: sent files older than this are not checked any more (30 days)
LOOK_BACK = 30 * 86400.0


@dataclass(frozen=True)
class SentFile:
    """A file the endpoint uploaded: its name, records and when it was written (epoch seconds)."""

    name: str
    records: int
    created: int


#: The two reads of the state databases (tables of :mod:`adapters.batch.store`), run through ``sqlite3``
#: (a state database is always a SQLite file): a health check then imports neither SQLAlchemy nor the
#: store. tests/unit/test_batch_acks_read.py compares their rows with the same SQLAlchemy statements'.
SENT_SQL = (
    "SELECT file_name, records, created FROM batch_out_files WHERE status = 'uploaded' AND created >= ? "
    "ORDER BY created"
)
STAGED_SQL = "SELECT name, reconciliation FROM batch_files"


def _read(db: Path, sql: str, params: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
    """Rows of ``sql`` on the state database ``db`` opened read-only; none when it does not exist yet."""
    if not db.exists():
        return []
    conn = sqlite3.connect(f"file:{quote(str(db))}?mode=ro", uri=True)
    try:
        conn.row_factory = sqlite3.Row
        return conn.execute(sql, params).fetchall()
    except sqlite3.OperationalError:  # a table not created yet
        return []
    finally:
        conn.close()


def sent_files(context: AdapterContext, since: float) -> list[SentFile]:
    """Files the endpoint of ``context`` uploaded since ``since`` (epoch seconds), oldest first."""
    return [
        SentFile(row["file_name"], row["records"], row["created"])
        for row in _read(endpoint_dirs(context).state, SENT_SQL, (int(since),))
    ]


def acks_seen(context: AdapterContext, ack_endpoint: str) -> dict[str, dict[str, Any]]:
    """Every file the ack endpoint staged (whatever became of it), by name, with its header's fields once
    it was processed (empty before, or when its layout has no header)."""
    other = AdapterContext(context.settings, context.project_dir, ack_endpoint, context.services)
    seen: dict[str, dict[str, Any]] = {}
    for row in _read(endpoint_dirs(other).state, STAGED_SQL):
        try:
            header = json.loads(row["reconciliation"] or "{}").get("header") or {}
        except (ValueError, AttributeError):
            header = {}
        seen[row["name"]] = header if isinstance(header, dict) else {}
    return seen


@dataclass(frozen=True)
class AckReconciliation:
    """One sent file against its ack: the records sent, and the ack's received, accepted and rejected
    (None: no ack yet, or its layout names no such field); ``problems`` says what does not add up."""

    file: str
    sent: int
    ack: str
    acked: bool
    received: int | None
    accepted: int | None
    rejected: int | None
    problems: tuple[str, ...]

    def status(self) -> str:
        """``waiting`` (no ack yet), ``ok`` or ``mismatch``."""
        if not self.acked:
            return "waiting"
        return "mismatch" if self.problems else "ok"


def _count(header: dict[str, Any], field: str | None) -> int | None:
    """The integer of ``field`` in an ack's header (None when not named, absent or not a number)."""
    if field is None or header.get(field) is None:
        return None
    try:
        return int(str(header[field]).strip())
    except ValueError:
        return None


def _adds_up(received: int | None, accepted: int | None, rejected: int | None) -> bool:
    """False only when all three counts are known and accepted + rejected is not what was received."""
    if received is None or accepted is None or rejected is None:
        return True
    return accepted + rejected == received


def reconcile(
    endpoint: BatchEndpoint, context: AdapterContext, since: float | None = None
) -> list[AckReconciliation]:
    """Each file the endpoint sent since ``since`` (default: :data:`LOOK_BACK` ago) against its ack: the
    peer must have received every record sent (``count_field``) and accepted + rejected must be what it
    received (``accepted_field``, ``rejected_field``). None when the endpoint expects no acks."""
    ack = endpoint.outbound.ack if endpoint.outbound is not None else None
    if ack is None:
        return []
    seen = acks_seen(context, ack.endpoint)
    found = []
    for sent in sent_files(context, time.time() - LOOK_BACK if since is None else since):
        name = ack.name.format(file=sent.name)
        header = seen.get(name)
        counts = header or {}
        received = _count(counts, ack.count_field)
        accepted = _count(counts, ack.accepted_field)
        rejected = _count(counts, ack.rejected_field)
        problems = []
        if received is not None and received != sent.records:
            problems.append(f"received {received} of {sent.records} sent")
        if not _adds_up(received, accepted, rejected):
            problems.append(f"accepted {accepted} + rejected {rejected} is not the {received} received")
        found.append(
            AckReconciliation(
                sent.name,
                sent.records,
                name,
                header is not None,
                received,
                accepted,
                rejected,
                tuple(problems),
            )
        )
    return found


def miscounted_acks(endpoint: BatchEndpoint, context: AdapterContext) -> list[str]:
    """``<ack>: received N of M sent`` (``ack.count_field``), ``<ack>: accepted A + rejected R is not the N
    received`` (``accepted_field``, ``rejected_field``) for each ack that does not add up."""
    return [f"{r.ack}: {problem}" for r in reconcile(endpoint, context) for problem in r.problems]


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
