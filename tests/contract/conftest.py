"""The adapters the contract suite runs over (``HARNESSES``), and the brokers of the queue-only tests.

Adding an adapter is one harness class (see ``tests/contract/harness.py`` and the module docstring of
``test_adapter_contract.py``) and one ``pytest.param`` in ``HARNESSES``. Servers (RabbitMQ, sshd, the
simulated SOAP peers) are started on loopback by the fixtures the harnesses ask for: skipped when not
installed, failed under ``ESB_REQUIRE_SERVERS=1``.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from adapters.queue import QueueAdapter, QueueEndpoint
from esb.config.settings import Settings
from esb.context import AdapterContext
from tests.contract.harness import AdapterHarness
from tests.contract.harness_batch import BatchHarness
from tests.contract.harness_direct import DirectHarness
from tests.contract.harness_pool import PoolHarness
from tests.contract.harness_queue import (
    LEASE,
    RabbitQueueHarness,
    SQLiteQueueHarness,
    broker_settings,
    broker_url,
)
from tests.contract.harness_rest import RESTHarness
from tests.contract.harness_soap import SOAPHarness

HARNESSES = [
    pytest.param(DirectHarness, id="direct"),
    pytest.param(SQLiteQueueHarness, id="queue-sqlite"),
    pytest.param(RabbitQueueHarness, id="queue-rabbitmq"),
    pytest.param(SOAPHarness, id="soap"),
    pytest.param(RESTHarness, id="rest"),
    pytest.param(BatchHarness, id="batch-sftp"),
    pytest.param(PoolHarness, id="pool"),
]

BROKERS = [pytest.param("sqlite", id="sqlite"), pytest.param("rabbitmq", id="rabbitmq")]


@pytest.fixture(params=HARNESSES)
def harness(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[AdapterHarness]:
    """One adapter, its endpoints and its peers, made afresh for the test."""
    made = request.param(request, tmp_path)
    try:
        yield made
    finally:
        made.close()


@dataclass
class Broker:
    """One broker under test (the queue-only tests): settings for the adapter and a fresh queue."""

    url: str
    settings: Settings
    queue: str
    adapter: QueueAdapter
    lease: float
    """Longest time an unsettled delivery of a dead consumer stays hidden (0 for RabbitMQ)."""

    def context(self, endpoint: str = "test.queue") -> AdapterContext:
        """An adapter context for this broker."""
        return AdapterContext(settings=self.settings, project_dir=Path("."), endpoint=endpoint)

    def endpoint(self, **options: Any) -> QueueEndpoint:
        """The test's queue endpoint."""
        return QueueEndpoint(queue=self.queue, **options)

    def settings_json(self) -> str:
        """The broker settings, for a subprocess consumer."""
        return self.settings.model_dump_json()


@pytest.fixture(params=BROKERS)
def broker(request: pytest.FixtureRequest, tmp_path: Path) -> Broker:
    """A broker with a queue no other test uses."""
    kind = str(request.param)
    url = broker_url(kind, request, tmp_path)
    lease = LEASE if kind == "sqlite" else 0.0
    return Broker(url, broker_settings(url), f"contract-{uuid.uuid4().hex[:12]}", QueueAdapter(), lease)
