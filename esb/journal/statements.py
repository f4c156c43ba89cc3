"""The journal's write statements, built once per dialect (the hot path only binds parameters)."""

from __future__ import annotations

import dataclasses
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from esb.exceptions import ConfigError
from esb.journal.schema import FINAL_STATES, business_keys, deliveries, events, messages

SUPPORTED = ("sqlite", "postgresql")


def insert_ignore(dialect: str, table: sa.Table) -> Any:
    """Return ``INSERT ... ON CONFLICT DO NOTHING`` for ``table`` in ``dialect``."""
    if dialect == "sqlite":
        return sqlite.insert(table).on_conflict_do_nothing()
    if dialect == "postgresql":
        return postgresql.insert(table).on_conflict_do_nothing()
    raise ConfigError(f"journal: unsupported database {dialect!r} (use one of {', '.join(SUPPORTED)})")


@dataclasses.dataclass(frozen=True)
class Statements:
    """Prepared statements for one dialect."""

    add_message: Any
    add_new_message: Any
    add_event: Any
    add_keys: Any
    add_delivery: Any
    bump_delivery_count: Any
    final_state: Any
    was_delivered: Any
    existing_ids: Any

    @classmethod
    def build(cls, dialect: str) -> Statements:
        """Build every statement for ``dialect``."""
        dc = sa.bindparam("dc", type_=sa.Integer)
        bumped = sa.case((messages.c.delivery_count + 1 < dc, dc), else_=messages.c.delivery_count + 1)
        return cls(
            add_message=insert_ignore(dialect, messages),
            add_new_message=insert_ignore(dialect, messages).returning(messages.c.delivery_count),
            add_event=sa.insert(events),
            add_keys=insert_ignore(dialect, business_keys),
            add_delivery=insert_ignore(dialect, deliveries),
            bump_delivery_count=sa.update(messages)
            .where(messages.c.id == sa.bindparam("mid"), messages.c.route == sa.bindparam("r"))
            .values(delivery_count=bumped)
            .returning(messages.c.delivery_count),
            final_state=sa.select(events.c.state)
            .where(
                events.c.message_id == sa.bindparam("mid"),
                events.c.route == sa.bindparam("r"),
                events.c.state.in_([*FINAL_STATES, "replayed"]),
                # a delivery to one endpoint of a fan-out does not end the route; the route-level event does
                sa.or_(events.c.endpoint.is_(None), events.c.state != "delivered"),
            )
            .order_by(events.c.id.desc())
            .limit(1),
            existing_ids=sa.select(messages.c.id).where(
                messages.c.route == sa.bindparam("r"), messages.c.id.in_(sa.bindparam("ids", expanding=True))
            ),
            was_delivered=sa.select(sa.literal(1))
            .select_from(deliveries)
            .where(
                deliveries.c.route == sa.bindparam("r"),
                deliveries.c.message_id == sa.bindparam("mid"),
                deliveries.c.endpoint == sa.bindparam("ep"),
            ),
        )
