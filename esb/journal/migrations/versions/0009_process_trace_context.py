"""A process instance keeps the W3C trace context it was started in (issue 18).

``process_instances.traceparent`` and ``tracestate``: the trigger's span context, written when the
instance starts with tracing on (NULL otherwise). Each step's span is its child, read from the row, so
the steps of an instance waiting across a hub restart, or taken over by another hub, stay in the trace
their order started in (before: a context kept in the starting hub's memory only).

Revision ID: 0009_process_trace_context
Revises: 0008_sync_target_ids
Create Date: 2026-12-06

(0007 is the journal's, on a branch not yet merged: the lead re-chains this one after it.)
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009_process_trace_context"
down_revision = "0008_sync_target_ids"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add the two nullable trace-context columns (no row is rewritten)."""
    op.add_column("process_instances", sa.Column("traceparent", sa.String(), nullable=True))
    op.add_column("process_instances", sa.Column("tracestate", sa.String(), nullable=True))


def downgrade() -> None:
    """Drop the trace-context columns (steps of running instances then start new traces)."""
    op.drop_column("process_instances", "tracestate")  # SQLite 3.35+ drops a column in place
    op.drop_column("process_instances", "traceparent")
