"""The journal's behaviour cases (tests/unit/test_journal.py) run again against a real PostgreSQL,
plus what only PostgreSQL has: authentication errors and advisory-locked migrations."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from esb.exceptions import TransportError
from esb.journal import Journal
from esb.message import Message
from tests.integration.pg_server import PostgresServer
from tests.unit import test_journal as _cases

pytestmark = pytest.mark.integration

# The same test functions, and the `journal` fixture, collected here with this module's `journal_url`.
globals().update({name: obj for name, obj in vars(_cases).items() if name.startswith("test_")})
journal = _cases.journal


@pytest.fixture
def journal_url(postgres_server: PostgresServer) -> Iterator[str]:
    """A fresh PostgreSQL database on the throwaway server."""
    url = postgres_server.create_database("journal")
    yield url
    postgres_server.drop_database(url)


def test_wrong_password_is_a_transport_error_with_the_password_masked(
    postgres_server: PostgresServer,
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


def test_event_ids_are_64_bit_and_go_past_the_32_bit_range(journal: Journal, journal_url: str) -> None:
    """On PostgreSQL events.id and its sequence are bigint (0013): an id past 2^31 is written and read."""
    import sqlalchemy as sa

    engine = sa.create_engine(journal_url)
    try:
        with engine.begin() as conn:
            kind = "SELECT data_type FROM information_schema.columns WHERE table_name = 'events'"
            assert conn.execute(sa.text(kind + " AND column_name = 'id'")).scalar_one() == "bigint"
            conn.execute(sa.text("SELECT setval('events_id_seq', 3000000000)"))
    finally:
        engine.dispose()
    message = Message(body=b"<order/>")
    journal.received("r", message)
    assert [event.state for event in journal.history(message.id)] == ["received"]
    engine = sa.create_engine(journal_url)
    try:
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT max(id) FROM events")).scalar_one() > 2**31
    finally:
        engine.dispose()
