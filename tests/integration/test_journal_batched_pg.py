"""The one-commit batch sequence against the two-commit one, on PostgreSQL (the cases of
tests/unit/test_journal_batched.py that need no worker, with two fresh databases)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.integration.pg_server import PostgresServer, postgres_server  # noqa: F401  # a fixture
from tests.unit import test_journal_batched as _cases

pytestmark = pytest.mark.integration

CASES = (
    "test_one_commit_writes_the_rows_of_the_two_commit_sequence",
    "test_one_commit_keeps_the_arrival_time",
    "test_a_message_journaled_meanwhile_is_recorded_as_a_redelivery",
    "test_known_ids_reads_what_is_journaled_on_the_route",
)
globals().update({name: getattr(_cases, name) for name in CASES})
journals = _cases.journals


@pytest.fixture
def journal_urls(postgres_server: PostgresServer) -> Iterator[tuple[str, str]]:  # noqa: F811
    """Two fresh PostgreSQL databases on the throwaway server."""
    urls = postgres_server.create_database("two"), postgres_server.create_database("one")
    yield urls
    for url in urls:
        postgres_server.drop_database(url)
