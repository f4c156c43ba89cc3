"""The tables of resyncs and reconciliations, in the journal's database (migration ``0005_sync_runs``).

- ``sync_runs``: one row per resync or repair run: the sync, what it read (``source``), its status
  (``running``, ``done``, ``failed``), the checkpoint (records of the extract finished, in order: a run
  that died resumes after it), the counts so far (JSON: read, unchanged, sent, deleted, excluded,
  errors) and the owner's process id and heartbeat.
- ``sync_reports``: one row per reconciliation: the sync, the target's extract, when, the counts (JSON).
- ``sync_report_keys``: the keys a report found missing, extra or different, one row each.
"""

from __future__ import annotations

import sqlalchemy as sa

from esb.journal.schema import UTCDateTime, metadata
from esb.sync.tables import MAX_KEY, MAX_NAME

sync_runs = sa.Table(
    "sync_runs",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("name", sa.String(MAX_NAME), nullable=False, index=True),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("source", sa.String(), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("checkpoint", sa.BigInteger(), nullable=False),
    sa.Column("counts", sa.Text(), nullable=False),
    sa.Column("error", sa.Text(), nullable=True),
    sa.Column("pid", sa.Integer(), nullable=True),
    sa.Column("started_at", UTCDateTime(), nullable=False),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
    sa.Column("ended_at", UTCDateTime(), nullable=True),
)

sync_reports = sa.Table(
    "sync_reports",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("name", sa.String(MAX_NAME), nullable=False, index=True),
    sa.Column("extract", sa.String(), nullable=False),
    sa.Column("counts", sa.Text(), nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False),
)

sync_report_keys = sa.Table(
    "sync_report_keys",
    metadata,
    sa.Column("report_id", sa.String(40), primary_key=True),
    sa.Column("key", sa.String(MAX_KEY), primary_key=True),
    sa.Column("kind", sa.String(16), nullable=False),
)
