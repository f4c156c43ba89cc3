"""Schema migrations (Alembic), run from code: users need no ``alembic.ini``.

:func:`upgrade` runs inside one transaction that first takes a lock, so several processes starting at
once migrate exactly once: on SQLite the transaction is ``BEGIN IMMEDIATE`` (the database's write lock,
waited for through the busy timeout), on PostgreSQL ``pg_advisory_xact_lock``. Whoever comes second finds
the version table already at head and does nothing. That check reads the version table and the
revisions' files directly: Alembic is imported only when there is something to migrate (it costs an
operator's command about 60 ms).

For developers, a new revision is made with::

    python -c "from esb.journal.migrate import revision; revision('what changed', 'sqlite:///tmp/j.db')"
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from esb.exceptions import ConfigError, mask_url
from esb.journal import partitions
from esb.journal.engine import create_journal_engine, writer
from esb.journal.revisions import MIGRATIONS, plain_head
from esb.journal.schema import VERSION_TABLE
from esb.journal.statements import SUPPORTED

if TYPE_CHECKING:
    from alembic.config import Config

#: Key of the PostgreSQL advisory lock held while migrating ("esbjrnl" in ASCII).
ADVISORY_LOCK_KEY = 0x6573626A726E6C


def alembic_config(connection: sa.Connection | None = None) -> Config:
    """Return an Alembic config pointing at the journal's migrations, with ``connection`` to use."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("path_separator", "os")
    config.attributes["connection"] = connection
    return config


def head() -> str:
    """Return the revision the code expects the database to be at."""
    from alembic.script import ScriptDirectory

    found = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if found is None:  # pragma: no cover - the package always ships its migrations
        raise RuntimeError("esb.journal has no migrations")
    return found


def current(connection: sa.Connection) -> str | None:
    """Return the revision the database is at (None for a fresh database)."""
    from alembic.runtime.migration import MigrationContext

    context = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE})
    return context.get_current_revision()


def upgrade(connection: sa.Connection) -> None:
    """Upgrade the database behind ``connection`` to head, in its open transaction, under a lock.

    The caller opens the transaction (``BEGIN IMMEDIATE`` on SQLite) and commits it afterwards.
    """
    if connection.dialect.name == "postgresql":
        connection.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": ADVISORY_LOCK_KEY})
    if not _at_head(connection):
        from alembic import command

        command.upgrade(alembic_config(connection), "head")
    # PostgreSQL: the day-partitioned tables have today's partitions and the next days' (a no-op
    # query when they do; nothing before migration 0012 or on SQLite)
    partitions.ensure_ahead(connection, datetime.now(UTC).date())


def _at_head(connection: sa.Connection) -> bool:
    """Whether the database is already at head, read with one query (the common case: nothing to do)."""
    expected = plain_head()
    if expected is None:
        return current(connection) == head()
    if not sa.inspect(connection).has_table(VERSION_TABLE):
        return False  # a fresh database
    query = sa.text(f"SELECT version_num FROM {VERSION_TABLE}")  # noqa: S608 - a constant table name
    return list(connection.execute(query).scalars()) == [expected]


def revision(message: str, url: str) -> None:  # pragma: no cover - a developer's tool
    """Autogenerate a new revision from the difference between the tables and the database at ``url``."""
    from alembic import command

    engine = sa.create_engine(url)
    with engine.begin() as connection:
        command.upgrade(alembic_config(connection), "head")
        command.revision(alembic_config(connection), message=message, autogenerate=True)


def open_migrated(url: str, *, pool_size: int, owner: str) -> Engine:
    """Return an engine on the journal database ``url``, its schema upgraded to head (under the lock of
    :func:`upgrade`): what the journal, the process store, the sync store and the one-time keys open.
    A database other than SQLite or PostgreSQL is a ConfigError naming ``owner``."""
    engine = create_journal_engine(url, pool_size=pool_size)
    try:
        if engine.dialect.name not in SUPPORTED:
            raise ConfigError(f"{owner}: unsupported database {mask_url(url)!r} (use sqlite or postgresql)")
        with writer(engine).begin() as conn:
            upgrade(conn)
    except BaseException:
        engine.dispose()
        raise
    return engine
