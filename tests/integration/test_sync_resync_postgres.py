"""The resync, reconciliation and repair cases of tests/unit/test_sync_resync.py on a real PostgreSQL
(the journal's database, where the sync state, runs and reports live)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.integration.pg_server import PostgresServer
from tests.unit import test_sync_resync as _resync

pytestmark = pytest.mark.integration

globals().update({name: obj for name, obj in vars(_resync).items() if name.startswith("test_")})
project = _resync.project


@pytest.fixture
def journal_url(postgres_server: PostgresServer) -> Iterator[str]:
    """A fresh PostgreSQL database on the throwaway server."""
    url = postgres_server.create_database("resync")
    yield url
    postgres_server.drop_database(url)
