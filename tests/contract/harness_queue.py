"""The queue adapter under the contract suite, on the embedded SQLite transport and on a real RabbitMQ.

RabbitMQ is the session's throwaway node (``tests/integration/rabbit_server.py``), or the broker
``ESB_TEST_AMQP_URL`` names (loopback only, e.g. ``pyamqp://esb:pw@127.0.0.1:5672/esb``).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from adapters.queue import QueueAdapter, QueueEndpoint
from esb.config.settings import Settings
from esb.context import AdapterContext
from esb.message import Message
from esb.typing import (
    BatchWriter,
    Breakable,
    HealthReporter,
    Partitionable,
    QueueInspector,
    Republisher,
    Sink,
    Source,
)
from tests.contract.harness import HarnessDefaults, Probe
from tests.integration.proxy import CuttingProxy
from tests.integration.soap_project import free_port

#: seconds a consumer's lease lasts in these tests (the SQLite transport's visibility_timeout)
LEASE = 1.0
SECRET = "queue-s3cret-pw"


def broker_settings(url: str, **extra: Any) -> Settings:
    """Settings for a test broker at ``url`` (short leases and polls on the SQLite transport)."""
    options = {"visibility_timeout": LEASE, "polling_interval": 0.02} if url.startswith("sqlite") else {}
    broker = {"url": url, "transport_options": options, "prefetch": 10, "max_retries": 1, **extra}
    return Settings.model_validate({"broker": broker})


def broker_url(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of the ``sqlite`` or ``rabbitmq`` broker of this test."""
    if kind == "sqlite":
        return f"sqlite:///{tmp_path}/queues.db"
    return os.environ.get("ESB_TEST_AMQP_URL") or str(request.getfixturevalue("rabbit_server").url())


class QueueHarness(HarnessDefaults):
    """Queues on one broker: the inlet is a publish, the peer's side is a consumer of the sink's queue."""

    kind = ""
    declares = frozenset({QueueInspector, Republisher, Partitionable, HealthReporter, BatchWriter, Breakable})

    def __init__(self, request: pytest.FixtureRequest, tmp_path: Path) -> None:
        self.url = broker_url(self.kind, request, tmp_path)
        self.settings = broker_settings(self.url)
        self.adapter = QueueAdapter()
        queue = f"contract-{uuid.uuid4().hex[:12]}"
        self.endpoint = QueueEndpoint(queue=queue)
        self.out = QueueEndpoint(queue=f"{queue}-out")
        self.quiet = LEASE + 0.5 if self.kind == "sqlite" else 0.5
        self.cannot = {
            "answer": "a queue source has no caller waiting for an answer",
            "request": "a queue sink publishes one way (no Requester)",
            "refuse": "the broker takes every message its sink can route (the sink declares and binds its "
            "own queue); a broker that cannot take one is a TransportError (see down)",
        }
        self._proxies: list[CuttingProxy] = []

    def context(self, settings: Settings | None = None) -> AdapterContext:
        """An adapter context on this broker (or on ``settings``)."""
        return AdapterContext(settings or self.settings, Path("."), "test.queue")

    def close(self) -> None:
        """Stop the proxies of broken sources."""
        for proxy in self._proxies:
            proxy.close()

    # -- source --------------------------------------------------------------------------------------
    def source_probe(self) -> Probe:
        """The source's queue."""
        return Probe(self.endpoint, self.context())

    def source(self) -> Source:
        """A consumer of the source's queue."""
        return self.adapter.source(self.endpoint, self.context())

    def put(self, n: int) -> dict[str, str]:
        """Publish ``n`` messages to the source's queue."""
        messages = [Message(body=f"in-{i}".encode(), type="test.event") for i in range(n)]
        with self.adapter.sink(self.endpoint, self.context()) as sink:
            for message in messages:
                sink.write(message)
        return {m.id: f"in-{i}" for i, m in enumerate(messages)}

    def marker(self, message: Message) -> str:
        """The body, as text."""
        return bytes(message.body).decode()

    # -- sink ----------------------------------------------------------------------------------------
    def sink(self) -> Sink:
        """A publisher to the sink's queue."""
        return self.adapter.sink(self.out, self.context())

    def message(self, i: int) -> Message:
        """A message with body ``str(i)``."""
        return Message(body=str(i).encode())

    def send(self, sink: Sink, messages: list[Message]) -> None:
        """Publish each message (confirmed on return)."""
        for message in messages:
            sink.write(message)

    def received(self) -> list[str]:
        """Consume everything on the sink's queue."""
        got: list[str] = []
        with self.adapter.source(self.out, self.context()) as consumer:
            while (delivery := consumer.read(0.5)) is not None:
                delivery.ack()
                got.append(bytes(delivery.message.body).decode())
        return got

    def down_sink(self) -> tuple[Sink, str]:
        """A publisher to a broker that is not there."""
        settings = broker_settings(self._dead_url(), connect_timeout=1.0, reconnect_timeout=0.5)
        return self.adapter.sink(self.out, self.context(settings)), SECRET

    def _dead_url(self) -> str:
        if self.kind == "sqlite":  # a database that cannot be opened: its folder is a file
            return "sqlite:////dev/null/queues.db"
        return f"pyamqp://esb:{SECRET}@127.0.0.1:{free_port()}/esb"

    def health_probes(self) -> tuple[Probe, Probe]:
        """The source's queue on this broker, and on a broker that is not there."""
        dead = broker_settings(self._dead_url(), connect_timeout=1.0)
        return self.source_probe(), Probe(self.endpoint, self.context(dead))


class SQLiteQueueHarness(QueueHarness):
    """The queue adapter on the embedded SQLite transport."""

    kind = "sqlite"

    def __init__(self, request: pytest.FixtureRequest, tmp_path: Path) -> None:
        super().__init__(request, tmp_path)
        self.cannot["break"] = "the embedded transport is a local file: there is no connection to kill"


class RabbitQueueHarness(QueueHarness):
    """The queue adapter on a real RabbitMQ."""

    kind = "rabbitmq"

    def broken_source(self) -> tuple[Source, Callable[[], None]]:
        """A consumer connected through a proxy that cuts the connection when told."""
        port = int(self.url.rsplit(":", 1)[1].split("/", 1)[0])
        proxy = CuttingProxy(port)
        self._proxies.append(proxy)
        proxied = self.url.replace(f":{port}/", f":{proxy.port}/")
        source = self.adapter.source(self.endpoint, self.context(broker_settings(proxied)))
        return source, proxy.cut
