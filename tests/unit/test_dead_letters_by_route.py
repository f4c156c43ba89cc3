"""``dead_letters`` indexed by route (migration 0020): ``esb dlq list``'s count per route reads
``ix_dead_letters_route`` alone, replay's window selection keeps the range of ``ix_dead_letters_received_at``
(the route's term kept off the new index on SQLite), and the migration goes up from 0019 with rows and
back down."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from sqlalchemy.dialects import postgresql, sqlite

from esb.journal import Journal, queries
from esb.journal.migrate import alembic_config
from esb.journal.queries import Filter
from esb.journal.sqltext import SQLITE
from esb.message import utcnow
from tests.unit.test_journal_replay_selection import (
    ROUTES,
    assert_counts_equal_the_slow_path,
    assert_every_window_equals_the_slow_path,
    dead_letter_rows,
    fill,
    plan,
)

INDEX = "ix_dead_letters_route"


@pytest.fixture
def journal(tmp_path: Path) -> Iterator[Journal]:
    """An empty journal in a SQLite file."""
    with Journal(f"sqlite:///{tmp_path / 'journal.db'}") as opened:
        yield opened


def indexes(journal: Journal) -> set[str]:
    """The names of the indexes on ``dead_letters``."""
    with journal._read().connect() as conn:
        return {str(ix["name"]) for ix in sa.inspect(conn).get_indexes("dead_letters")}


def sqlite_plan(journal: Journal, stmt: Any) -> str:
    """SQLite's plan of ``stmt`` (its values written in) on the journal."""
    engine = sa.create_engine(journal.url)
    try:
        with engine.connect() as conn:
            sql = str(stmt.compile(conn, compile_kwargs={"literal_binds": True}))
        return plan(engine, sql)
    finally:
        engine.dispose()


def test_the_count_per_route_reads_the_route_index_alone(journal: Journal) -> None:
    """``esb dlq list``'s statement (the cold path's SQL text) and the one route's count are one range of
    ``ix_dead_letters_route`` as a covering index: no table scan, no temporary b-tree for the grouping."""
    routes = ", ".join(f"'{route}'" for route in ROUTES)
    cold = SQLITE["dead_lettered_counts"][0].replace("(__[POSTCOMPILE_routes])", f"({routes})")
    engine = sa.create_engine(journal.url)
    try:
        counted = plan(engine, cold)
    finally:
        engine.dispose()
    one = sqlite_plan(journal, queries.dead_lettered_count_statement(ROUTES[0], 100_000))
    for steps in (counted, one):
        assert f"SEARCH dead_letters USING COVERING INDEX {INDEX} (route=?)" in steps, steps
        assert "TEMP B-TREE" not in steps, steps
        assert "SCAN dead_letters" not in steps, steps


@pytest.mark.parametrize(
    "window",
    [
        {"since": -1, "until": 0},  # replay's window
        {"since": -1},  # no end
        {},  # the route alone
    ],
    ids=["window", "since", "route-only"],
)
def test_replay_and_find_with_a_route_keep_the_window_index(journal: Journal, window: dict[str, int]) -> None:
    """With a route, replay's selection and ``find``'s dead letters still read ``ix_dead_letters_received_at``
    (as before 0020), never ``ix_dead_letters_route`` (which would sort the route's every dead letter), and
    ``find`` reads each message row by its key: the plans of main before the index."""
    now = utcnow()
    bounds = {name: now + timedelta(days=days) for name, days in window.items()}
    flt = Filter(route=ROUTES[0], state="dead_lettered", **bounds)
    refs = sqlite_plan(journal, queries.dead_letter_refs_statement(flt, 1000))
    found = sqlite_plan(journal, queries.find_statement(flt, 1000, dead_first=True))
    for steps in (refs, found):
        assert "dead_letters USING COVERING INDEX ix_dead_letters_received_at" in steps, steps
        assert INDEX not in steps, steps
        assert "TEMP B-TREE FOR ORDER BY" not in steps, "newest first is the index's order: no full sort"
    assert "SEARCH messages USING INTEGER PRIMARY KEY (rowid=?)" in found, found
    assert "SCAN messages" not in found, found


def test_the_route_term_is_unindexed_on_sqlite_only() -> None:
    """SQLite gets ``+dead_letters.route`` (no index may serve the term), PostgreSQL the plain column (its
    planner keeps the route's statistics)."""
    stmt = queries.dead_letter_refs_statement(Filter(route=ROUTES[0], state="dead_lettered"), 10)
    on_sqlite = str(stmt.compile(dialect=sqlite.dialect()))  # type: ignore[no-untyped-call]
    on_postgres = str(stmt.compile(dialect=postgresql.dialect()))  # type: ignore[no-untyped-call]
    assert "WHERE +dead_letters.route = " in on_sqlite, on_sqlite
    assert "WHERE dead_letters.route = " in on_postgres, on_postgres


def test_migration_0020_indexes_an_existing_journal_and_its_downgrade_drops_the_index(
    journal: Journal, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Down to 0019: no route index, the rows kept; up again: the index, the same rows, and the counts and
    every window's selection equal the latest state of every message."""
    start = utcnow() - timedelta(days=12)
    fill(journal, monkeypatch, start, 300)
    kept = dead_letter_rows(journal._read())
    assert len(kept) > 30
    assert INDEX in indexes(journal)
    with journal._read().begin() as conn:
        command.downgrade(alembic_config(conn), "0019_journal_rows_written")
    assert INDEX not in indexes(journal)
    assert "ix_dead_letters_received_at" in indexes(journal)
    assert dead_letter_rows(journal._read()) == kept
    with journal._read().begin() as conn:
        command.upgrade(alembic_config(conn), "head")
    assert INDEX in indexes(journal)
    assert dead_letter_rows(journal._read()) == kept
    assert assert_counts_equal_the_slow_path(journal) == len(kept)
    assert assert_every_window_equals_the_slow_path(journal, start) > 30
