"""The journal's behaviour cases (tests/unit/test_journal.py) run again against a real PostgreSQL,
plus what only PostgreSQL has: authentication errors and advisory-locked migrations."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from esb.exceptions import TransportError
from esb.journal import Journal
from tests.integration.pg_server import PostgresServer, postgres_server  # noqa: F401  # a fixture
from tests.unit import test_journal as _cases

pytestmark = pytest.mark.integration

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
                    "SELECT table_name || '.' || column_name, data_type FROM information_schema.columns"
                    " WHERE table_name IN ('messages', 'events')"
                    " AND column_name IN ('headers', 'detail', 'at')"
                )
            ).all()
    finally:
        engine.dispose()
    assert dict(rows) == {
        "messages.headers": "jsonb",
        "events.detail": "jsonb",
        "events.at": "timestamp with time zone",
    }
