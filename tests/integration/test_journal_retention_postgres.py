"""The compressed-body, retention, usage and scheduled-prune cases (tests/unit/test_journal_retention.py)
run again against a real PostgreSQL, plus the retention DELETEs on PostgreSQL sizes."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.integration.pg_server import PostgresServer
from tests.unit import test_journal_retention as _cases

pytestmark = pytest.mark.integration

# The same test functions, and the `journal` fixture, collected here with this module's `journal_url`.
globals().update({name: obj for name, obj in vars(_cases).items() if name.startswith("test_")})
journal = _cases.journal


@pytest.fixture
def journal_url(postgres_server: PostgresServer) -> Iterator[str]:
    """A fresh PostgreSQL database on the throwaway server."""
    url = postgres_server.create_database("retention")
    yield url
    postgres_server.drop_database(url)
