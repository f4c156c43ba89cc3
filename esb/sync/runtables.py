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

#: Per (sync, key): the fingerprint of the extract record a resync last judged for the key (its raw bytes
#: and the rules that read them) and the key's state revision then. The same bytes again with the state
#: still at that revision is unchanged without parsing or mapping (esb/sync/fingerprints.py).
sync_lines = sa.Table(
    "sync_lines",
    metadata,
    sa.Column("name", sa.String(MAX_NAME), primary_key=True),
    sa.Column("key", sa.String(MAX_KEY), primary_key=True),
    sa.Column("line", sa.String(32), nullable=False),
    sa.Column("revision", sa.Integer(), nullable=False),
    sa.Index("ix_sync_lines_line", "name", "line"),
)
