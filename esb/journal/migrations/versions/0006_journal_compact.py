"""A compact journal (issue 19): body dictionaries, one copy of key and delivery rows, a dead-letter index.

- ``journal_dictionaries``: what compressed bodies name (esb/journal/bodies.py). Bodies written before
  stay as they are: a stored body without the format marker is the original bytes.
- ``ix_business_keys_name_value`` dropped: ``ix_business_keys_value`` serves both searches.
- SQLite: ``deliveries`` and ``business_keys`` rebuilt ``WITHOUT ROWID`` (the primary key is the table,
  instead of a table plus an index holding the same columns again); their rows are copied.
- ``ix_events_dead_lettered``: a partial index on ``at`` for dead-lettered events.
- ``ix_messages_causation_id`` partial (``causation_id IS NOT NULL``): SQLite's ANALYZE counted every NULL
  as one value and the planner then scanned every message for ``causation_id IN (...)`` (esb trace).
- ``ix_events_route_at`` becomes ``ix_events_at`` (the route repeated in four index entries per message
  was ~65 bytes of it; windows by time read the rows of the window and check the route).

Revision ID: 0006_journal_compact
Revises: 0005_sync_runs
Create Date: 2026-12-06

(On branches not yet merged, 0004_sync_state and 0005 exist: the lead re-chains this one after them.)
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from esb.journal.schema import UTCDateTime

revision = "0006_journal_compact"
down_revision = "0005_sync_runs"
branch_labels = None
depends_on = None

_SQLITE_REBUILDS = {
    "deliveries": (
        "CREATE TABLE deliveries_compact (route VARCHAR NOT NULL, message_id VARCHAR NOT NULL,"
        " endpoint VARCHAR NOT NULL, at DATETIME NOT NULL, PRIMARY KEY (route, message_id, endpoint),"
        " CONSTRAINT fk_deliveries_message FOREIGN KEY(message_id, route) REFERENCES messages (id, route))"
        " WITHOUT ROWID",
        "INSERT INTO deliveries_compact (route, message_id, endpoint, at)"
        " SELECT route, message_id, endpoint, at FROM deliveries",
    ),
    "business_keys": (
        "CREATE TABLE business_keys_compact (message_id VARCHAR NOT NULL, name VARCHAR NOT NULL,"
        " value VARCHAR NOT NULL, PRIMARY KEY (message_id, name, value)) WITHOUT ROWID",
        "INSERT INTO business_keys_compact (message_id, name, value)"
        " SELECT message_id, name, value FROM business_keys",
    ),
}


def upgrade() -> None:
    """Add the dictionary table and the dead-letter index; compact the key and delivery tables."""
    op.create_table(
        "journal_dictionaries",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_journal_dictionaries_kind", "journal_dictionaries", ["kind"])
    op.drop_index("ix_business_keys_name_value", table_name="business_keys")
    if op.get_bind().dialect.name == "sqlite":
        op.drop_index("ix_business_keys_value", table_name="business_keys")
        for table, (create, copy) in _SQLITE_REBUILDS.items():
            op.execute(create)
            op.execute(copy)
            op.execute(f"DROP TABLE {table}")
            op.execute(f"ALTER TABLE {table}_compact RENAME TO {table}")
        op.create_index("ix_business_keys_value", "business_keys", ["value"])
    op.drop_index("ix_messages_causation_id", table_name="messages")
    caused = sa.text("causation_id IS NOT NULL")
    op.create_index(
        "ix_messages_causation_id", "messages", ["causation_id"], sqlite_where=caused, postgresql_where=caused
    )
    op.drop_index("ix_events_route_at", table_name="events")
    op.create_index("ix_events_at", "events", ["at"])
    where = sa.text("state = 'dead_lettered'")
    op.create_index("ix_events_dead_lettered", "events", ["at"], sqlite_where=where, postgresql_where=where)


def downgrade() -> None:
    """Drop the dictionary table and the dead-letter index; restore the name-and-value index.

    (Compressed bodies need their dictionaries: downgrade only a journal written before this revision.)
    """
    op.drop_index("ix_events_dead_lettered", table_name="events")
    op.drop_index("ix_events_at", table_name="events")
    op.drop_index("ix_messages_causation_id", table_name="messages")
    op.create_index("ix_messages_causation_id", "messages", ["causation_id"])
    op.create_index("ix_events_route_at", "events", ["route", "at"])
    op.create_index("ix_business_keys_name_value", "business_keys", ["name", "value"])
    op.drop_table("journal_dictionaries")
