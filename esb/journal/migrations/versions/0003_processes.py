"""The process engine's tables (issue 15): definitions, instances, business keys, steps, branches, inbox.

Revision ID: 0003_processes
Revises: 0002_one_time_keys
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from esb.journal.schema import JSONType, UTCDateTime

revision = "0003_processes"
down_revision = "0002_one_time_keys"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create the six process tables and their indexes."""
    op.create_table(
        "process_definitions",
        sa.Column("hash", sa.String(80), primary_key=True),
        sa.Column("process", sa.String(64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("body", JSONType, nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
    )
    op.create_table(
        "process_instances",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("process", sa.String(64), nullable=False),
        sa.Column("definition_hash", sa.String(80), nullable=False),
        sa.Column("trigger_id", sa.String(), nullable=False),
        sa.Column("state", sa.String(40), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("data", JSONType, nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("wake_at", UTCDateTime(), nullable=True),
        sa.Column("lease_owner", sa.String(), nullable=True),
        sa.Column("lease_until", UTCDateTime(), nullable=True),
        sa.Column("fence", sa.Integer(), nullable=False),
        sa.Column("partial", sa.Boolean(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["definition_hash"], ["process_definitions.hash"], name="fk_instances_def"),
        sa.UniqueConstraint("process", "trigger_id", name="uq_process_instances_trigger"),
    )
    op.create_index("ix_process_instances_status_wake_at", "process_instances", ["status", "wake_at"])
    op.create_table(
        "process_keys",
        sa.Column("process", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("value", sa.String(), primary_key=True),
        sa.Column("instance_id", sa.String(64), primary_key=True),
        sa.ForeignKeyConstraint(["instance_id"], ["process_instances.id"], name="fk_keys_instance"),
    )
    op.create_table(
        "process_steps",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("instance_id", sa.String(64), nullable=False),
        sa.Column("path", sa.String(), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("idempotency_key", sa.String(), nullable=True),
        sa.Column("result", JSONType, nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("deadline", UTCDateTime(), nullable=True),
        sa.Column("started_at", UTCDateTime(), nullable=False),
        sa.Column("ended_at", UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(["instance_id"], ["process_instances.id"], name="fk_steps_instance"),
    )
    op.create_index("ix_process_steps_instance_id", "process_steps", ["instance_id"])
    op.create_table(
        "process_branches",
        sa.Column("instance_id", sa.String(64), primary_key=True),
        sa.Column("path", sa.String(), primary_key=True),
        sa.Column("parent", sa.String(64), nullable=False),
        sa.Column("idx", sa.Integer(), nullable=False),
        sa.Column("item_key", sa.String(), nullable=True),
        sa.Column("item", JSONType, nullable=True),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("state", sa.String(40), nullable=True),
        sa.Column("wake_at", UTCDateTime(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["instance_id"], ["process_instances.id"], name="fk_branches_instance"),
    )
    op.create_table(
        "process_inbox",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("process", sa.String(64), nullable=False),
        sa.Column("correlation_key", sa.String(), nullable=False),
        sa.Column("reply_name", sa.String(), nullable=False),
        sa.Column("message_id", sa.String(), nullable=False),
        sa.Column("message", JSONType, nullable=False),
        sa.Column("received_at", UTCDateTime(), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("consumed_by", sa.String(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.UniqueConstraint("message_id", name="uq_process_inbox_message_id"),
    )
    op.create_index(
        "ix_process_inbox_lookup", "process_inbox", ["process", "correlation_key", "reply_name", "status"]
    )


def downgrade() -> None:
    """Drop the process tables."""
    for table in ("inbox", "branches", "steps", "keys", "instances", "definitions"):
        op.drop_table(f"process_{table}")
