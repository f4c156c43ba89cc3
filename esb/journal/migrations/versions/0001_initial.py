"""Initial journal schema: messages, events, deliveries, business keys.

Revision ID: 0001_initial
Revises:
Create Date: 2025-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0001_initial"
down_revision = None
branch_labels = None
depends_on = None

_JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    """Create the four tables and their indexes."""
    op.create_table(
        "messages",
        sa.Column("id", sa.String(), primary_key=True),
        sa.Column("route", sa.String(), primary_key=True),
        sa.Column("correlation_id", sa.String(), nullable=False),
        sa.Column("causation_id", sa.String(), nullable=True),
        sa.Column("type", sa.String(), nullable=True),
        sa.Column("source", sa.String(), nullable=True),
        sa.Column("schema", sa.String(), nullable=True),
        sa.Column("headers", _JSON, nullable=True),
        sa.Column("body", sa.LargeBinary(), nullable=True),
        sa.Column("created_at", _TS, nullable=True),
        sa.Column("received_at", _TS, nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("delivery_count", sa.Integer(), nullable=False),
    )
    op.create_index("ix_messages_correlation_id", "messages", ["correlation_id"])
    op.create_index("ix_messages_causation_id", "messages", ["causation_id"])
    op.create_index("ix_messages_received_at", "messages", ["received_at"])
    op.create_table(
        "events",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("message_id", sa.String(), nullable=False),
        sa.Column("route", sa.String(), nullable=False),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("endpoint", sa.String(), nullable=True),
        sa.Column("error_class", sa.String(), nullable=True),
        sa.Column("error_reason", sa.String(), nullable=True),
        sa.Column("error_text", sa.Text(), nullable=True),
        sa.Column("detail", _JSON, nullable=True),
        sa.Column("body", sa.LargeBinary(), nullable=True),
        sa.Column("at", _TS, nullable=False),
        sa.ForeignKeyConstraint(
            ["message_id", "route"], ["messages.id", "messages.route"], name="fk_events_message"
        ),
    )
    op.create_index("ix_events_message_id", "events", ["message_id"])
    op.create_index("ix_events_route_at", "events", ["route", "at"])
    op.create_table(
        "deliveries",
        sa.Column("route", sa.String(), primary_key=True),
        sa.Column("message_id", sa.String(), primary_key=True),
        sa.Column("endpoint", sa.String(), primary_key=True),
        sa.Column("at", _TS, nullable=False),
        sa.ForeignKeyConstraint(
            ["message_id", "route"], ["messages.id", "messages.route"], name="fk_deliveries_message"
        ),
    )
    op.create_table(
        "business_keys",
        sa.Column("message_id", sa.String(), primary_key=True),
        sa.Column("name", sa.String(), primary_key=True),
        sa.Column("value", sa.String(), primary_key=True),
    )
    op.create_index("ix_business_keys_name_value", "business_keys", ["name", "value"])
    op.create_index("ix_business_keys_value", "business_keys", ["value"])


def downgrade() -> None:
    """Drop everything the upgrade created."""
    for table in ("business_keys", "deliveries", "events", "messages"):
        op.drop_table(table)
