"""The journal's migrations are frozen history: no revision imports live code (docs/journal.md)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
import sqlalchemy as sa

from esb.journal.constants import VERSION_TABLE
from esb.journal.revisions import MIGRATIONS

#: What a revision may import from ``esb``: stable column types, and the frozen SQL of earlier revisions.
ALLOWED = {"esb.journal.schema": {"JSONType", "UTCDateTime"}}
FROZEN = "esb.journal.migrations._frozen"
HISTORY = sorted((MIGRATIONS / "versions").glob("*.py")) + sorted((MIGRATIONS / "_frozen").glob("*.py"))


def live_imports(source: str) -> list[str]:
    """The imports of ``esb`` code in ``source`` outside :data:`ALLOWED` and the frozen modules (and every
    relative import), each as ``module:name``."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names if alias.name.split(".")[0] == "esb"]
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level:
                found.append("." * node.level + module)
            elif module == FROZEN or module.startswith(FROZEN + "."):
                continue
            elif module.split(".")[0] == "esb":
                allowed = ALLOWED.get(module, set())
                found += [f"{module}:{alias.name}" for alias in node.names if alias.name not in allowed]
    return found


@pytest.mark.parametrize("path", HISTORY, ids=lambda path: path.name)
def test_a_revision_imports_no_live_esb_module(path: Path) -> None:
    """A revision (or a frozen module) imports from esb only the column types and the frozen SQL."""
    assert live_imports(path.read_text(encoding="utf-8")) == []


def test_the_rule_catches_each_kind_of_live_import() -> None:
    """A live module imported in any spelling (in a function too) is found; the allowed ones are not."""
    source = """
import esb.journal.partitions
from esb.journal import lookups
from esb.journal.schema import UTCDateTime, messages
from esb.journal.migrations._frozen import r0012
from . import sibling

def upgrade():
    from esb.journal.pgrows import STALE_FUNCTION
"""
    assert live_imports(source) == [
        "esb.journal.partitions",
        "esb.journal:lookups",
        "esb.journal.schema:messages",
        ".",
        "esb.journal.pgrows:STALE_FUNCTION",
    ]


def test_every_revision_is_checked() -> None:
    """The check reads every revision file (not an empty glob) and the frozen modules."""
    names = {path.name for path in HISTORY}
    assert {"0001_initial.py", "0012_postgres_partitions.py", "0019_journal_rows_written.py"} <= names
    assert "r0012.py" in names


# -- every revision's downgrade, and the round trip ---------------------------------------------------

#: The first revision whose downgrade a journal with rows goes through here (0012 to 0019: the revisions
#: that ran live code before they were frozen, and those between).
DATA_FLOOR = "0010_dead_letter_index_covering"
#: On SQLite, 0006's downgrade leaves its tables ``WITHOUT ROWID`` (and so without their automatic
#: indexes): the revisions below it differ in that alone when reached from above. Older than the rule;
#: left as history (a revision is not edited to change what it does).
SQLITE_DRIFT = ["0001_initial", "0002_one_time_keys", "0003_processes", "0004_sync_state", "0005_sync_runs"]
#: The tables whose rows must come back the same from a round trip (the look-up tables: PostgreSQL only).
ROW_TABLES = ("messages", "events", "business_keys", "route_minutes", "dead_letters", "in_flight")


@pytest.fixture
def journal_url(tmp_path: Path) -> str:
    """A fresh SQLite database file (tests/integration/test_journal_migrations_pg.py: PostgreSQL)."""
    return f"sqlite:///{tmp_path / 'journal.db'}"


def chain() -> list[str]:
    """The revisions, oldest first."""
    from alembic.script import ScriptDirectory

    from esb.journal.migrate import alembic_config

    newest_first = ScriptDirectory.from_config(alembic_config()).walk_revisions()
    return [script.revision for script in newest_first][::-1]


def walk(url: str, floor: str) -> dict[tuple[str, str], list[tuple[str, ...]]]:
    """Down from head to ``floor`` (``base``: an empty database) and up again to head, one revision a
    transaction; return the schema after each step, by ``(downgrade or upgrade, revision)``."""
    from alembic import command

    from esb.journal.engine import create_journal_engine, writer
    from esb.journal.migrate import alembic_config

    revisions = ["base", *chain()]
    at = revisions.index(floor)
    seen = {}
    engine = create_journal_engine(url, pool_size=1)
    try:
        for action, steps in (("downgrade", revisions[at:-1][::-1]), ("upgrade", revisions[at + 1 :])):
            for step in steps:
                with writer(engine).begin() as conn:
                    getattr(command, action)(alembic_config(conn), step)
                seen[action, step] = schema(url)
    finally:
        engine.dispose()
    return seen


#: PostgreSQL's catalog of the journal's schemas: relations (and partition bounds), columns, indexes,
#: constraints, triggers and functions, without oids.
_PG_CATALOG = (
    "SELECT n.nspname || '.' || c.relname, c.relkind::text, coalesce(pg_get_expr(c.relpartbound, c.oid), '')"
    " FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
    " WHERE n.nspname IN ('public', 'journal_partitions')",
    "SELECT table_schema || '.' || table_name || '.' || column_name, data_type,"
    " is_nullable || ' ' || coalesce(column_default, '') FROM information_schema.columns"
    " WHERE table_schema IN ('public', 'journal_partitions')",
    "SELECT schemaname || '.' || indexname, tablename, indexdef FROM pg_indexes"
    " WHERE schemaname IN ('public', 'journal_partitions')",
    "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(c.oid) FROM pg_constraint c"
    " JOIN pg_namespace n ON n.oid = c.connamespace WHERE n.nspname IN ('public', 'journal_partitions')",
    "SELECT tgrelid::regclass::text, tgname, pg_get_triggerdef(oid) FROM pg_trigger WHERE NOT tgisinternal",
    "SELECT proname, '', pg_get_functiondef(oid) FROM pg_proc WHERE pronamespace = 'public'::regnamespace",
)


def _plain(sql: str) -> str:
    """SQLite's text of a table without what spelling alone changes: a table rebuilt by Alembic's batch
    mode reads ``CREATE TABLE IF NOT EXISTS "name" (`` where ``CREATE TABLE name (`` made it; white space
    folded."""
    sql = re.sub(r'"(\w+)"', r"\1", sql.replace("CREATE TABLE IF NOT EXISTS", "CREATE TABLE"))
    return re.sub(r"\s*([(),])\s*", r"\1 ", " ".join(sql.split())).strip()


def schema(url: str) -> list[tuple[str, ...]]:
    """The whole schema of the database at ``url``, sorted: SQLite's ``sqlite_master``, PostgreSQL's
    catalog (:data:`_PG_CATALOG`)."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            if conn.dialect.name == "sqlite":
                found = conn.exec_driver_sql("SELECT type, name, tbl_name, sql FROM sqlite_master")
                return sorted((kind, name, table, _plain(str(sql))) for kind, name, table, sql in found)
            return sorted(tuple(map(str, row)) for sql in _PG_CATALOG for row in conn.exec_driver_sql(sql))
    finally:
        engine.dispose()


def rows(url: str) -> dict[str, list[tuple[object, ...]]]:
    """Every row of the journal's tables (:data:`ROW_TABLES`, and the look-up tables where they are)."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            names = set(sa.inspect(conn).get_table_names())
            tables = [t for t in (*ROW_TABLES, "lookup_ids", "lookup_keys") if t in names]
            return {t: sorted(map(tuple, conn.exec_driver_sql(f"SELECT * FROM {t}"))) for t in tables}
    finally:
        engine.dispose()


def test_every_downgrade_gives_back_the_schema_its_revision_had(journal_url: str) -> None:
    """A fresh journal taken down to an empty database and up again, one revision at a time: at each
    revision the schema after the downgrade is the one after the upgrade (tables, columns, indexes,
    constraints, triggers, functions, partitions), nothing but the version table is left at the bottom,
    and at head the schema is the one it had."""
    from esb.journal import Journal

    with Journal(journal_url):
        pass
    before = schema(journal_url)
    assert any("route_minutes" in row[1] for row in before)
    seen = walk(journal_url, "base")
    assert seen["upgrade", chain()[-1]] == before
    kept = (VERSION_TABLE, "sqlite_sequence")  # SQLite's own table of AUTOINCREMENT counters stays
    left = [row for row in seen["downgrade", "base"] if not any(name in col for name in kept for col in row)]
    assert left == []  # every downgrade dropped what its upgrade made
    differ = [rev for rev in chain()[:-1] if seen["downgrade", rev] != seen["upgrade", rev]]
    assert differ == (SQLITE_DRIFT if journal_url.startswith("sqlite") else [])


def test_a_journal_with_rows_goes_down_to_0010_and_up_with_the_same_rows(journal_url: str) -> None:
    """Messages, events, keys, dead letters, in-flight rows and route figures survive 0019 to 0011's
    downgrades and their upgrades again unchanged (0015's backfill gives the same figures, 0017's fill the
    same look-up rows)."""
    from esb.journal import Journal
    from esb.message import Message

    with Journal(journal_url) as journal:
        for n in range(30):
            message = Message(body=b"<o/>", id=f"m{n:03d}", business_keys={"order_id": f"SO{n:06d}"})
            route = ("orders", "cancels")[n % 2]
            journal.received(route, message)
            if n % 5 == 0:
                journal.event(route, message, "failed", endpoint="iom", error=RuntimeError("down"))
            if n % 7 == 0:
                journal.event(route, message, "dead_lettered", error=ValueError("bad"))
            elif n % 3:
                journal.mark_delivered(route, message, "iom")
                journal.event(route, message, "delivered")
    before = rows(journal_url)
    assert all(before[table] for table in ("messages", "route_minutes", "dead_letters", "in_flight"))
    walk(journal_url, DATA_FLOOR)
    assert rows(journal_url) == before
