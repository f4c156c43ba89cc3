"""Every migration's downgrade and the round trips (tests/unit/test_journal_migrations_frozen.py) against a
real PostgreSQL: partitions, look-up tables, triggers and functions included."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.integration.pg_server import PostgresServer
from tests.unit import test_journal_migrations_frozen as _cases

pytestmark = pytest.mark.integration

test_every_downgrade_gives_back_the_schema_its_revision_had = (
    _cases.test_every_downgrade_gives_back_the_schema_its_revision_had
)
test_a_journal_with_rows_goes_down_to_0010_and_up_with_the_same_rows = (
    _cases.test_a_journal_with_rows_goes_down_to_0010_and_up_with_the_same_rows
)


@pytest.fixture
def journal_url(postgres_server: PostgresServer) -> Iterator[str]:
    """A fresh PostgreSQL database on the throwaway server."""
    url = postgres_server.create_database("migrations")
    yield url
    postgres_server.drop_database(url)
