"""The PostgreSQL driver of the cold reads takes only the URLs it reads as SQLAlchemy would (the reads
themselves: tests/integration/test_journal_coldread_pg.py)."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy.dialects.postgresql.psycopg import dialect
from sqlalchemy.engine import make_url

from esb.journal.pgread import connect_args


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        pytest.param(
            "postgresql+psycopg://esb:p%40ss@127.0.0.1:5433/journal",
            {"user": "esb", "password": "p@ss", "host": "127.0.0.1", "port": 5433, "dbname": "journal"},
            id="full",
        ),
        pytest.param(
            "postgresql://esb@localhost/j", {"user": "esb", "host": "localhost", "dbname": "j"}, id="plain"
        ),
        pytest.param("postgresql+psycopg://esb@h/j?sslmode=require", None, id="query-string"),
        pytest.param("postgresql+psycopg://esb@h1,h2/j", None, id="several-hosts"),
        pytest.param("postgresql+psycopg2://esb@h/j", None, id="another-driver"),
        pytest.param("sqlite:////j.db", None, id="sqlite"),
    ],
)
def test_only_plain_postgresql_urls_go_to_psycopg(given: str, expected: dict[str, Any] | None) -> None:
    """A plain URL gives psycopg the arguments SQLAlchemy's dialect gives (escapes decoded); anything else
    is left to the Journal."""
    assert connect_args(given) == expected
    if expected is not None:
        assert dialect().create_connect_args(make_url(given)) == ([], expected)
