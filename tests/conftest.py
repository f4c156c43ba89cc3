"""Shared test fixtures: servers are required (not skipped) when ESB_REQUIRE_SERVERS=1 (make test).

The real servers' session fixtures (``postgres_server``, ``rabbit_server``, ``sshd``, ``ftpd``,
``ftpsd``) are registered here once, as plugins, so that a test session (each xdist worker) starts one of
each. Never import them into a test module: pytest makes a module that imports a fixture function its own
definition of it, with its own instance, so a "session" server would start again for every such module.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

from esb.testing import BROKER

pytest_plugins = (
    "tests.integration.pg_server",
    "tests.integration.rabbit_server",
    "tests.integration.servers_ftp",
    "tests.integration.servers_ssh",
)

REQUIRE_SERVERS = os.environ.get("ESB_REQUIRE_SERVERS") == "1"


#: Test files that must not share the two cores with each other: the end-to-end tests that SIGKILL a hub
#: under a load of orders or faults, whose scenarios are timed in seconds (answer deadlines, work-order
#: hours, the OSS's 5 s) and whose restarts get slower with every other hub on the cores. Under ``--dist
#: loadfile`` they are one unit, run by one worker one after the other (pytest-xdist's ``loadgroup`` marks
#: cannot do it here: xdist 3.8 renames ``item._nodeid``, which pytest 9.2's ``nodeid`` no longer reads).
ONE_AFTER_ANOTHER = frozenset({"tests/e2e/test_process_crash.py", "tests/e2e/test_fault_crash.py"})


def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """``--dist loadfile`` with the files of :data:`ONE_AFTER_ANOTHER` as one unit; other modes as xdist."""
    if config.getvalue("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadFileScheduling

    class FilesAndGroups(LoadFileScheduling):  # type: ignore[misc]  # xdist ships no type hints here
        """A file per unit, except the files that must run one after the other: one unit together
        (``_split_scope`` is the method xdist's own schedulers override to choose the unit)."""

        def _split_scope(self, nodeid: str) -> str:
            path = nodeid.split("::", 1)[0]
            return "one-after-another" if path in ONE_AFTER_ANOTHER else path

    return FilesAndGroups(config, log)


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
