"""Schema migrations (Alembic), run from code: users need no ``alembic.ini``.

:func:`upgrade` runs inside one transaction that first takes a lock, so several processes starting at
once migrate exactly once: on SQLite the transaction is ``BEGIN IMMEDIATE`` (the database's write lock,
waited for through the busy timeout), on PostgreSQL ``pg_advisory_xact_lock``. Whoever comes second finds
the version table already at head and does nothing.

For developers, a new revision is made with::

    python -c "from esb.journal.migrate import revision; revision('what changed', 'sqlite:///tmp/j.db')"
"""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from esb.journal.schema import VERSION_TABLE

MIGRATIONS = Path(__file__).parent / "migrations"
#: Key of the PostgreSQL advisory lock held while migrating ("esbjrnl" in ASCII).
ADVISORY_LOCK_KEY = 0x6573626A726E6C


def alembic_config(connection: sa.Connection | None = None) -> Config:
    """Return an Alembic config pointing at the journal's migrations, with ``connection`` to use."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("path_separator", "os")
    config.attributes["connection"] = connection
    return config


def head() -> str:
    """Return the revision the code expects the database to be at."""
    found = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if found is None:  # pragma: no cover - the package always ships its migrations
        raise RuntimeError("esb.journal has no migrations")
    return found


def current(connection: sa.Connection) -> str | None:
    """Return the revision the database is at (None for a fresh database)."""
    context = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE})
    return context.get_current_revision()


def upgrade(connection: sa.Connection) -> None:
    """Upgrade the database behind ``connection`` to head, in its open transaction, under a lock.

    The caller opens the transaction (``BEGIN IMMEDIATE`` on SQLite) and commits it afterwards.
    """
    if connection.dialect.name == "postgresql":
        connection.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": ADVISORY_LOCK_KEY})
    if current(connection) == head():
        return
    command.upgrade(alembic_config(connection), "head")


def revision(message: str, url: str) -> None:  # pragma: no cover - a developer's tool
    """Autogenerate a new revision from the difference between the tables and the database at ``url``."""
    engine = sa.create_engine(url)
    with engine.begin() as connection:
        command.upgrade(alembic_config(connection), "head")
        command.revision(alembic_config(connection), message=message, autogenerate=True)
