"""Fixtures of the integration tests shared by several modules (the servers' own: tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.integration.pg_server import PostgresJournals, PostgresServer


@pytest.fixture
def pg_journals(postgres_server: PostgresServer) -> Iterator[PostgresJournals]:
    """A factory of fresh PostgreSQL databases and of journals connected to them (dropped after the test)."""
    made = PostgresJournals(postgres_server)
    try:
        yield made
    finally:
        made.close()
