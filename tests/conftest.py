"""Shared test fixtures: servers are required (not skipped) when ESB_REQUIRE_SERVERS=1 (make test)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from esb.testing import BROKER

REQUIRE_SERVERS = os.environ.get("ESB_REQUIRE_SERVERS") == "1"


def skip_or_fail(reason: str) -> None:
    """Skip a test that needs a missing server, or fail it when servers are required (make test, CI)."""
    if REQUIRE_SERVERS:
        pytest.fail(f"required test server unavailable: {reason}")
    pytest.skip(reason)


@pytest.fixture(autouse=True)
def _reset_memory_broker() -> Iterator[None]:
    """Give every test an empty in-memory adapter."""
    BROKER.reset()
    yield
    BROKER.reset()
