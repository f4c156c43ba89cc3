"""The sync store's and the sync step's cases (tests/unit/test_sync_store.py, test_sync_step.py) and the
two-process race (test_sync_race.py) run again against a real PostgreSQL."""

from __future__ import annotations

import inspect
from collections.abc import Iterator

import pytest

from tests.integration.pg_server import PostgresServer
from tests.unit import test_sync_race as _race
from tests.unit import test_sync_step as _step
from tests.unit import test_sync_store as _store

pytestmark = pytest.mark.integration


def _cases(module: object, fixture: str) -> dict[str, object]:
    """The test functions of ``module`` that take ``fixture`` (those run on this module's database)."""
    return {
        name: obj
        for name, obj in vars(module).items()
        if name.startswith("test_") and fixture in inspect.signature(obj).parameters
    }


globals().update(_cases(_store, "store") | _cases(_store, "sync_url"))
globals().update(_cases(_step, "syncer"))
globals().update(_cases(_race, "sync_url"))
store = _store.store
syncer = _step.syncer


@pytest.fixture
def sync_url(postgres_server: PostgresServer) -> Iterator[str]:
    """A fresh PostgreSQL database on the throwaway server."""
    url = postgres_server.create_database("sync")
    yield url
    postgres_server.drop_database(url)
