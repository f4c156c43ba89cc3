"""Brokers the queue contract suite runs against.

The embedded SQLite transport always runs. RabbitMQ runs on the session's throwaway node
(``tests/integration/rabbit_server.py``: skipped when RabbitMQ is not installed, failed under
``ESB_REQUIRE_SERVERS=1``), or on the broker ``ESB_TEST_AMQP_URL`` names (loopback only, e.g.
``pyamqp://esb:pw@127.0.0.1:5672/esb``). Adding a broker is adding one ``pytest.param`` to ``BROKERS``.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from adapters.queue import QueueAdapter, QueueEndpoint
from esb.config.settings import Settings
from esb.context import AdapterContext
from tests.integration.rabbit_server import rabbit_server  # noqa: F401 - the session's RabbitMQ node

#: seconds a consumer's lease lasts in these tests (the SQLite transport's visibility_timeout)
LEASE = 1.0

_AMQP = os.environ.get("ESB_TEST_AMQP_URL")
BROKERS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("rabbitmq", id="rabbitmq"),
]


@dataclass
class Broker:
    """One broker under test: settings for the adapter and a fresh queue per test."""

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
    url = str(request.param)
    options: dict[str, Any] = {}
    lease = 0.0
    if url == "sqlite":
        url = f"sqlite:///{tmp_path}/queues.db"
        options = {"visibility_timeout": LEASE, "polling_interval": 0.02}
        lease = LEASE
    elif url == "rabbitmq":
        url = _AMQP or request.getfixturevalue("rabbit_server").url()
    settings = Settings.model_validate(
        {"broker": {"url": url, "transport_options": options, "prefetch": 10, "max_retries": 1}}
    )
    return Broker(url, settings, f"contract-{uuid.uuid4().hex[:12]}", QueueAdapter(), lease)


@pytest.fixture
def drain() -> Callable[..., list[Any]]:
    """Read deliveries from a source until it stays idle for ``idle`` seconds; ack each."""

    def _drain(source: Any, idle: float = 1.0) -> list[Any]:
        out = []
        while (delivery := source.read(idle)) is not None:
            delivery.ack()
            out.append(delivery)
        return out

    return _drain
