"""Shared test fixtures: servers are required (not skipped) when ESB_REQUIRE_SERVERS=1 (make test).

The real servers' session fixtures (``postgres_server``, ``rabbit_server``, ``sshd``, ``ftpd``,
``ftpsd``) are registered here once, as plugins, so that a test session (each xdist worker) starts one of
each. Never import them into a test module: pytest makes a module that imports a fixture function its own
definition of it, with its own instance, so a "session" server would start again for every such module.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from esb.testing import BROKER

pytest_plugins = (
    "tests.integration.pg_server",
    "tests.integration.rabbit_server",
    "tests.integration.servers_ftp",
    "tests.integration.servers_ssh",
)

REQUIRE_SERVERS = os.environ.get("ESB_REQUIRE_SERVERS") == "1"


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist's own hook reads the groups
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Put every test without an ``xdist_group`` mark in its file's group: under ``--dist loadgroup``
    (make test's end-to-end part) a file then stays on one worker, as with ``--dist loadfile`` (its module
    fixtures run once), and files that must not share the cores with each other name one group
    (``tests.e2e.order_processes.SIGKILL_LOADS``): one worker runs them one after the other. Other modes
    ignore the marks."""
    for item in items:
        if item.get_closest_marker("xdist_group") is None:
            item.add_marker(pytest.mark.xdist_group(item.nodeid.split("::")[0]))


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
