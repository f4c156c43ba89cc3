"""Resync runs and reconciliation reports, in the journal's database (tables: :mod:`esb.sync.runtables`).

A run row is the resync's journal and its checkpoint: created ``running`` with the process id, moved on
after every chunk in one short transaction (checkpoint and counts together, so a run killed at any point
resumes after the last chunk it finished), and ended ``done`` or ``failed``. A report row holds a
reconciliation's counts; its keys (missing, extra, different) are rows of their own, written in bulk.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson
import sqlalchemy as sa

from esb.message import utcnow
from esb.pids import pid_alive
from esb.sync.runtables import sync_report_keys, sync_reports, sync_runs
from esb.sync.store import SyncStore

__all__ = ["COUNTS", "KINDS", "Report", "Run", "SyncRuns"]

#: What a run counts (journaled with every checkpoint).
COUNTS = ("read", "unchanged", "sent", "deleted", "excluded", "stale", "errors")
#: The kinds of key a reconciliation reports.
KINDS = ("missing", "extra", "different")
#: Record numbers of unreadable records kept in a run's counts (the first ones).
MAX_ERROR_SAMPLES = 50
_R = sync_runs.c
_P = sync_reports.c
_K = sync_report_keys.c
#: Report keys written per INSERT.
KEY_BATCH = 5000


def new_id(prefix: str) -> str:
    """A sortable, unique id: ``<prefix>-<UTC yyyymmddHHMMSS>-<6 hex>``."""
    return f"{prefix}-{utcnow():%Y%m%d%H%M%S}-{secrets.token_hex(3)}"


@dataclass
class Run:
    """One resync or repair run as stored."""

    id: str
    name: str
    kind: str
    source: str
    status: str
    checkpoint: int
    counts: dict[str, Any]
    error: str | None
    pid: int | None
    started_at: datetime
    updated_at: datetime
    ended_at: datetime | None = None

    def as_dict(self) -> dict[str, Any]:
        """The run for ``--json``."""
        return {
            "id": self.id,
            "name": self.name,
            "kind": self.kind,
            "source": self.source,
            "status": self.status,
            "checkpoint": self.checkpoint,
            "counts": self.counts,
            "error": self.error,
            "pid": self.pid,
            "started_at": self.started_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
            "ended_at": None if self.ended_at is None else self.ended_at.isoformat(),
        }


@dataclass
class Report:
    """One reconciliation: counts, and (when read with keys) the keys per kind."""

    id: str
    name: str
    extract: str
    counts: dict[str, int]
    created_at: datetime
    keys: dict[str, list[str]] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """The report for ``--json``."""
        return {
            "id": self.id,
            "name": self.name,
            "extract": self.extract,
            "counts": self.counts,
            "created_at": self.created_at.isoformat(),
            "keys": self.keys,
        }


def _run(row: Any) -> Run:
    return Run(
        row.id,
        row.name,
        row.kind,
        row.source,
        row.status,
        int(row.checkpoint),
        orjson.loads(row.counts),
        row.error,
        row.pid,
        row.started_at,
        row.updated_at,
        row.ended_at,
    )


class SyncRuns:
    """The run and report tables of one journal database (through an open :class:`SyncStore`)."""

    def __init__(self, store: SyncStore) -> None:
        self.store = store

    # -- runs -----------------------------------------------------------------------------------------
    def start(self, name: str, kind: str, source: str) -> Run:
        """Create a ``running`` run owned by this process, at checkpoint 0 with zero counts."""
        now = utcnow()
        run = Run(
            new_id(kind),
            name,
            kind,
            source,
            "running",
            0,
            dict.fromkeys(COUNTS, 0),
            None,
            os.getpid(),
            now,
            now,
        )
        row = {k: v for k, v in run.__dict__.items() if k != "counts"} | {
            "counts": orjson.dumps(run.counts).decode()
        }
        with self.store.errors("sync run"), self.store.write_engine().begin() as conn:
            conn.execute(sa.insert(sync_runs), row)
        return run

    def unfinished(self, name: str, kind: str, source: str) -> Run | None:
        """The latest ``running`` run of ``name`` over ``source`` whose process is gone (to resume)."""
        query = (
            sa.select(sync_runs)
            .where(_R.name == name, _R.kind == kind, _R.source == source, _R.status == "running")
            .order_by(_R.started_at.desc())
        )
        with self.store.errors("sync run"), self.store.read_engine().connect() as conn:
            for row in conn.execute(query):
                run = _run(row)
                if run.pid is None or run.pid == os.getpid() or not pid_alive(run.pid):
                    return run
        return None

    def adopt(self, run: Run) -> None:
        """Make this process the owner of ``run`` (resuming it)."""
        run.pid = os.getpid()
        with self.store.errors("sync run"), self.store.write_engine().begin() as conn:
            conn.execute(sa.update(sync_runs).where(_R.id == run.id).values(pid=run.pid, updated_at=utcnow()))

    def checkpoint(self, run: Run) -> None:
        """Store the run's checkpoint and counts (one short transaction, after each chunk)."""
        run.updated_at = utcnow()
        values = {
            "checkpoint": run.checkpoint,
            "counts": orjson.dumps(run.counts).decode(),
            "updated_at": run.updated_at,
        }
        with self.store.errors("sync run"), self.store.write_engine().begin() as conn:
            conn.execute(sa.update(sync_runs).where(_R.id == run.id).values(values))

    def finish(self, run: Run, error: str | None = None) -> None:
        """End the run: ``done``, or ``failed`` with ``error``; its counts as they are."""
        run.status = "failed" if error else "done"
        run.error = error
        run.ended_at = run.updated_at = utcnow()
        values = {
            "status": run.status,
            "error": error,
            "counts": orjson.dumps(run.counts).decode(),
            "checkpoint": run.checkpoint,
            "updated_at": run.updated_at,
            "ended_at": run.ended_at,
        }
        with self.store.errors("sync run"), self.store.write_engine().begin() as conn:
            conn.execute(sa.update(sync_runs).where(_R.id == run.id).values(values))

    def runs(self, name: str | None = None, limit: int = 10) -> list[Run]:
        """The latest runs (of ``name``, or of every sync), newest first."""
        query = sa.select(sync_runs).order_by(_R.started_at.desc()).limit(limit)
        if name is not None:
            query = query.where(_R.name == name)
        with self.store.errors("sync run"), self.store.read_engine().connect() as conn:
            return [_run(row) for row in conn.execute(query)]

    # -- reports --------------------------------------------------------------------------------------
    def save_report(
        self, name: str, extract: str, counts: dict[str, int], keys: Iterable[tuple[str, str]]
    ) -> str:
        """Store a reconciliation's counts and its ``(key, kind)`` rows; return the report's id."""
        report_id = new_id("report")
        with self.store.errors("sync report"), self.store.write_engine().begin() as conn:
            conn.execute(
                sa.insert(sync_reports),
                {
                    "id": report_id,
                    "name": name,
                    "extract": extract,
                    "counts": orjson.dumps(counts).decode(),
                    "created_at": utcnow(),
                },
            )
            batch: list[dict[str, str]] = []
            for key, kind in keys:
                batch.append({"report_id": report_id, "key": key, "kind": kind})
                if len(batch) >= KEY_BATCH:
                    conn.execute(sa.insert(sync_report_keys), batch)
                    batch = []
            if batch:
                conn.execute(sa.insert(sync_report_keys), batch)
        return report_id

    def report(self, report_id: str, *, keys: bool = True) -> Report | None:
        """A stored report (None: no such id), with its keys per kind when asked."""
        with self.store.errors("sync report"), self.store.read_engine().connect() as conn:
            row = conn.execute(sa.select(sync_reports).where(_P.id == report_id)).first()
            if row is None:
                return None
            report = Report(row.id, row.name, row.extract, orjson.loads(row.counts), row.created_at)
            if keys:
                report.keys = {kind: [] for kind in KINDS}
                query = sa.select(_K.key, _K.kind).where(_K.report_id == report_id).order_by(_K.key)
                for key, kind in conn.execute(query):
                    report.keys.setdefault(kind, []).append(key)
        return report

    def report_keys(self, report_id: str) -> Iterator[tuple[str, str]]:
        """A report's ``(key, kind)`` rows in key order."""
        stored = self.report(report_id)
        if stored is None:
            return
        for kind, keys in stored.keys.items():
            for key in keys:
                yield key, kind

    def reports(self, name: str | None = None, limit: int = 10) -> list[Report]:
        """The latest reports (without keys), newest first."""
        query = sa.select(sync_reports).order_by(_P.created_at.desc()).limit(limit)
        if name is not None:
            query = query.where(_P.name == name)
        with self.store.errors("sync report"), self.store.read_engine().connect() as conn:
            return [
                Report(r.id, r.name, r.extract, orjson.loads(r.counts), r.created_at)
                for r in conn.execute(query)
            ]

