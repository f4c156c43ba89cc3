"""Alembic environment for the journal: always given an open connection by ``esb.journal.migrate``."""

from __future__ import annotations

from alembic import context

from esb.journal.schema import VERSION_TABLE, metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run the journal's migrations through esb.journal.migrate, which passes a connection")

context.configure(
    connection=connection,
    target_metadata=metadata,
    version_table=VERSION_TABLE,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
