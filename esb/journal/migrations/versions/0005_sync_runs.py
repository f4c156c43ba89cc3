"""Resync runs and reconciliation reports (issue 17): checkpoints, counts, the keys found to differ, and
the fingerprints of the extract records a resync last judged.

Revision ID: 0005_sync_runs
Revises: 0004_sync_state
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from esb.journal.schema import UTCDateTime

revision = "0005_sync_runs"
down_revision = "0004_sync_state"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create the run, report, report-key and line-fingerprint tables."""
    op.create_table(
        "sync_runs",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("name", sa.String(64), nullable=False),
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
    op.create_index("ix_sync_runs_name", "sync_runs", ["name"])
    op.create_table(
        "sync_reports",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("extract", sa.String(), nullable=False),
        sa.Column("counts", sa.Text(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_sync_reports_name", "sync_reports", ["name"])
    op.create_table(
        "sync_report_keys",
        sa.Column("report_id", sa.String(40), primary_key=True),
        sa.Column("key", sa.String(200), primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
    )
    op.create_table(
        "sync_lines",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("key", sa.String(200), primary_key=True),
        sa.Column("line", sa.String(32), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
    )
    op.create_index("ix_sync_lines_line", "sync_lines", ["name", "line"])


def downgrade() -> None:
    """Drop the run, report, report-key and line tables."""
    op.drop_index("ix_sync_lines_line", "sync_lines")
    op.drop_table("sync_lines")
    op.drop_table("sync_report_keys")
    op.drop_index("ix_sync_reports_name", "sync_reports")
    op.drop_table("sync_reports")
    op.drop_index("ix_sync_runs_name", "sync_runs")
    op.drop_table("sync_runs")
