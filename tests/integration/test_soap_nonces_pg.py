"""The WS-Security nonce store on a real PostgreSQL: two stores (two hub processes) share one table, and
concurrent first uses of one nonce let exactly one through."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.integration.pg_server import PostgresServer
from tests.unit.test_soap_hardening import ledger_store

pytestmark = pytest.mark.integration


@pytest.fixture
def pg_url(postgres_server: PostgresServer) -> Iterator[str]:
    """A fresh PostgreSQL database on the throwaway server."""
    url = postgres_server.create_database("nonces")
    yield url
    postgres_server.drop_database(url)


def test_nonce_used_through_one_store_is_refused_by_another(pg_url: str) -> None:
    """A nonce recorded by one hub process's store is a replay for another's (and for a restarted one)."""
    first, second = ledger_store(pg_url), ledger_store(pg_url)
    try:
        assert first.first_use("hotline", b"nonce-pg") is True
        assert second.first_use("hotline", b"nonce-pg") is False
        assert first.first_use("hotline", b"nonce-pg") is False
    finally:
        first.close()
        second.close()
    restarted = ledger_store(pg_url)
    try:
        assert restarted.first_use("hotline", b"nonce-pg") is False
    finally:
        restarted.close()


def test_concurrent_first_uses_admit_exactly_one(pg_url: str) -> None:
    """Eight stores racing to record the same nonce: exactly one is told it is the first use."""
    stores = [ledger_store(pg_url) for _ in range(8)]
    try:
        stores[0].first_use("warm-up", b"x")  # migrate once before the race
        with ThreadPoolExecutor(8) as pool:
            results = list(pool.map(lambda store: store.first_use("hotline", b"raced"), stores))
    finally:
        for store in stores:
            store.close()
    assert sorted(results) == [False] * 7 + [True]
