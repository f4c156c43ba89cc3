"""The process engine's unit cases on PostgreSQL (row locks, SKIP LOCKED), and takeover of a dead runner's
instance between two runners on one database."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from esb.process.engine import ProcessStore, Runner
from tests.integration.pg_server import PostgresServer
from tests.unit import test_process_backlog as _backlog_cases
from tests.unit import test_process_engine as _cases
from tests.unit import test_process_engine_branches as _branch_cases
from tests.unit import test_process_status_query as _status_cases

pytestmark = pytest.mark.integration

# The same test functions and fixtures, collected here with this module's `store_url`.
for _module in (_cases, _branch_cases, _status_cases, _backlog_cases):
    globals().update({name: obj for name, obj in vars(_module).items() if name.startswith("test_")})
store = _cases.store
clock = _cases.clock
fakes = _cases.fakes
runner = _cases.runner
ticks = _backlog_cases.ticks
backlog = _backlog_cases.backlog
held_runner = _backlog_cases.held_runner


@pytest.fixture
def store_url(postgres_server: PostgresServer) -> Iterator[str]:
    """A fresh PostgreSQL database on the throwaway server."""
    url = postgres_server.create_database("processes")
    yield url
    postgres_server.drop_database(url)


def test_the_store_migrates_once_when_two_connect(store_url: str) -> None:
    """Two stores connecting to one fresh database both work (the migration lock holds)."""
    with ProcessStore(store_url) as first, ProcessStore(store_url) as second:
        fakes = _cases.FakeResources()
        iid = Runner(first, fakes).start(
            _cases.process([{"name": "a", "set_state": "inProgress"}]), _cases.order()
        )
        assert Runner(second, fakes).run_due() == 1
        assert _cases.instance(first, iid).state == "inProgress"
