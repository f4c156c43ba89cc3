"""The journal's behaviour cases (tests/unit/test_journal.py) run again against a real PostgreSQL,
plus what only PostgreSQL has: authentication errors and advisory-locked migrations."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from pg_server import PostgresServer, postgres_server  # noqa: F401  # postgres_server is a fixture

from esb.exceptions import TransportError
from esb.journal import Journal

pytestmark = pytest.mark.integration

# Imported by name (not from a file location) so that pytest rewrites its asserts.
sys.path.insert(0, str(Path(__file__).parents[1] / "unit"))
_cases = importlib.import_module("test_journal")
# The same test functions, and the `journal` fixture, collected here with this module's `journal_url`.
globals().update({name: obj for name, obj in vars(_cases).items() if name.startswith("test_")})
journal = _cases.journal


@pytest.fixture
def journal_url(postgres_server: PostgresServer) -> Iterator[str]:  # noqa: F811
    """A fresh PostgreSQL database on the throwaway server."""
    url = postgres_server.create_database("journal")
    yield url
    postgres_server.drop_database(url)


def test_wrong_password_is_a_transport_error_with_the_password_masked(
    postgres_server: PostgresServer,  # noqa: F811
) -> None:
    """A refused login becomes a retryable TransportError whose text shows the URL with *** only."""
    url = postgres_server.url("postgres", password="not-the-password")
    with pytest.raises(TransportError) as caught:
        Journal(url).connect()
    text = str(caught.value)
    assert caught.value.retryable
    assert "not-the-password" not in text
    assert ":***@127.0.0.1" in text
    assert "password authentication failed" in text


def test_journal_uses_jsonb_and_timestamptz(journal: Journal, journal_url: str) -> None:
    """On PostgreSQL the JSON columns are jsonb and the timestamps timestamptz."""
    import sqlalchemy as sa

    engine = sa.create_engine(journal_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                sa.text(
                    "SELECT table_name || '.' || column_name, data_type FROM information_schema.columns "
                    "WHERE table_name IN ('messages', 'events') AND column_name IN ('headers', 'detail', 'at')"
                )
            ).all()
    finally:
        engine.dispose()
    assert dict(rows) == {
        "messages.headers": "jsonb",
        "events.detail": "jsonb",
        "events.at": "timestamp with time zone",
    }
