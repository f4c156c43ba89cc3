"""PostgreSQL: ``messages``, ``events`` and ``business_keys`` range-partitioned by day (issue 18).

The design is in esb/journal/partitions.py; the SQL this revision runs is frozen in
esb/journal/migrations/_frozen/r0012.py (as it was written). On SQLite this revision does nothing.

Upgrade converts a journal in place without copying its rows: the three tables are renamed ``*_legacy``
and moved to the schema ``journal_partitions``, partitioned tables of the old names are created, and the
old tables are attached to them as the ``legacy`` partition (``MINVALUE`` up to their last seq: the rows
keep their ``seq``). The indexes of the old tables are the legacy partition's (equal definitions are
attached, not built again); what is built: the events' primary key ``(message_seq, id)`` and the two
foreign keys' checks (scans: a journal of ten million messages takes a few minutes). Then the seq
function, the unique-id trigger, the default partition (rows of a day without its own partition wait
there) and today's and the next days' partitions.

Downgrade copies the rows back into plain tables (``INSERT ... SELECT``) with the indexes of 0010.

Revision ID: 0012_postgres_partitions
Revises: 0011_dead_letters_by_arrival
Create Date: 2026-12-07
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

from esb.journal.migrations._frozen import r0012
from esb.journal.migrations._frozen.r0012 import SCHEMA

revision = "0012_postgres_partitions"
down_revision = "0011_dead_letters_by_arrival"
branch_labels = None
depends_on = None

_CAUSED = sa.text("causation_id IS NOT NULL")
_DEAD = sa.text("state = 'dead_lettered'")
_PRIMARY = {"messages": "seq", "events": "message_seq, id", "business_keys": "message_seq, name, value"}


def _postgresql() -> bool:
    return op.get_bind().dialect.name == "postgresql"


def _indexes() -> None:
    """The secondary indexes of 0010 on the parents (every partition gets them), except the unique
    ``(id, route)``, which each partition has on its own (:func:`r0012.create_partitions`)."""
    op.create_index("ix_messages_correlation_id", "messages", ["correlation_id"])
    op.create_index("ix_messages_causation_id", "messages", ["causation_id"], postgresql_where=_CAUSED)
    op.create_index("ix_messages_received_at", "messages", ["received_at"])
    op.create_index("ix_events_message_seq", "events", ["message_seq"])
    op.create_index("ix_events_at", "events", ["at"])
    op.create_index(
        "ix_events_dead_lettered",
        "events",
        ["at", "id", "message_seq", "route", "state"],
        postgresql_where=_DEAD,
    )
    op.create_index("ix_business_keys_value", "business_keys", ["value"])


def _foreign_keys() -> None:
    op.create_foreign_key("fk_events_message", "events", "messages", ["message_seq"], ["seq"])
    op.create_foreign_key("fk_business_keys_message", "business_keys", "messages", ["message_seq"], ["seq"])


def _dead_letters_off() -> None:
    """0011's ``dead_letters`` let go of the tables being replaced: its trigger on ``events`` and its
    foreign key to ``messages`` (put back on the new tables by :func:`_dead_letters_on`)."""
    op.execute("DROP TRIGGER tr_events_dead_letters ON events")
    op.drop_constraint("fk_dead_letters_message", "dead_letters", type_="foreignkey")


def _dead_letters_on() -> None:
    """0011's trigger on the (partitioned) ``events`` and the foreign key to ``messages``, as 0011 made
    them (a row trigger on a partitioned table is cloned to every partition, present and future)."""
    op.execute(
        "CREATE TRIGGER tr_events_dead_letters AFTER INSERT ON events FOR EACH ROW"
        " WHEN (NEW.state = 'dead_lettered') EXECUTE FUNCTION esb_dead_letters_add()"
    )
    op.create_foreign_key(
        "fk_dead_letters_message", "dead_letters", "messages", ["message_seq"], ["seq"], ondelete="CASCADE"
    )


def _attach_legacy() -> int | None:
    """The old tables become the legacy partition (``MINVALUE`` to their last seq); empty, they are dropped
    (then every day's partition, past ones too, can be created). Returns the legacy partition's upper
    bound (None when dropped)."""
    last = op.get_bind().execute(sa.text(f"SELECT max(seq) FROM {SCHEMA}.messages_legacy")).scalar()  # noqa: S608
    if last is None:
        op.execute("DROP TABLE " + ", ".join(f"{SCHEMA}.{table}_legacy" for table in reversed(_PRIMARY)))
        return None
    for table in _PRIMARY:
        op.execute(
            f"ALTER TABLE {table} ATTACH PARTITION {SCHEMA}.{table}_legacy"
            f" FOR VALUES FROM (MINVALUE) TO ({last + 1})"
        )
    return int(last) + 1


def upgrade() -> None:
    """Partition the three tables by day; the rows there now become the legacy partition."""
    if not _postgresql():
        return
    op.drop_constraint("fk_events_message", "events", type_="foreignkey")
    op.drop_constraint("fk_business_keys_message", "business_keys", type_="foreignkey")
    _dead_letters_off()
    op.execute("ALTER TABLE messages ALTER COLUMN seq DROP DEFAULT")
    op.execute("ALTER TABLE events ALTER COLUMN id DROP DEFAULT")
    op.execute("ALTER SEQUENCE messages_seq_seq OWNED BY NONE")  # or it would move with the table
    op.execute("ALTER SEQUENCE events_id_seq OWNED BY NONE")
    op.execute("ALTER TABLE events DROP CONSTRAINT events_pkey")  # the parent's key holds message_seq
    op.execute(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}")
    for table in _PRIMARY:
        op.execute(f"ALTER TABLE {table} RENAME TO {table}_legacy")
        op.execute(f"ALTER TABLE {table}_legacy SET SCHEMA {SCHEMA}")
    op.execute(r0012.NEXT_SEQ_FUNCTION)
    for table, (_, key) in zip(_PRIMARY, r0012.TABLES, strict=True):
        op.execute(
            f"CREATE TABLE {table} (LIKE {SCHEMA}.{table}_legacy INCLUDING DEFAULTS)"
            f" PARTITION BY RANGE ({key})"
        )
        op.execute(f"ALTER TABLE {table} ADD CONSTRAINT {table}_pkey PRIMARY KEY ({_PRIMARY[table]})")
    op.execute("ALTER TABLE messages ALTER COLUMN seq SET DEFAULT journal_next_seq()")
    op.execute("ALTER TABLE events ALTER COLUMN id SET DEFAULT nextval('events_id_seq')")
    op.execute("ALTER SEQUENCE messages_seq_seq OWNED BY messages.seq")
    op.execute("ALTER SEQUENCE events_id_seq OWNED BY events.id")
    _indexes()
    legacy_end = _attach_legacy()
    _foreign_keys()
    _dead_letters_on()
    op.execute(r0012.UNIQUE_ID_FUNCTION)
    op.execute(r0012.UNIQUE_ID_TRIGGER)
    r0012.create_partitions(op.get_bind(), datetime.now(UTC).date(), legacy_end)


def downgrade() -> None:
    """Back to plain tables: the rows of every partition copied into them, the indexes of 0010."""
    if not _postgresql():
        return
    for table in _PRIMARY:
        op.execute(f"CREATE TABLE {table}_0010 (LIKE {table})")
        op.execute(f"INSERT INTO {table}_0010 SELECT * FROM {table}")  # noqa: S608 - constant names
    op.execute("ALTER SEQUENCE messages_seq_seq OWNED BY NONE")
    op.execute("ALTER SEQUENCE events_id_seq OWNED BY NONE")
    _dead_letters_off()
    op.execute("DROP TABLE business_keys, events, messages")  # with every partition
    op.execute("DROP FUNCTION journal_unique_id()")
    op.execute("DROP FUNCTION journal_next_seq()")
    op.execute(f"DROP SCHEMA {SCHEMA}")
    for table in _PRIMARY:
        op.execute(f"ALTER TABLE {table}_0010 RENAME TO {table}")
    for table, key in (("messages", "seq"), ("events", "id"), ("business_keys", "message_seq, name, value")):
        op.execute(f"ALTER TABLE {table} ADD CONSTRAINT {table}_pkey PRIMARY KEY ({key})")
    op.execute("ALTER TABLE messages ALTER COLUMN seq SET DEFAULT nextval('messages_seq_seq')")
    op.execute("ALTER TABLE events ALTER COLUMN id SET DEFAULT nextval('events_id_seq')")
    op.execute("ALTER SEQUENCE messages_seq_seq OWNED BY messages.seq")
    op.execute("ALTER SEQUENCE events_id_seq OWNED BY events.id")
    op.create_index("ux_messages_id_route", "messages", ["id", "route"], unique=True)
    _indexes()
    _foreign_keys()
    _dead_letters_on()
