"""The queue source's keep-alive on the SQLite transport: throttled like AMQP's, and leases still kept."""

from __future__ import annotations

import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from kombu import Connection

import adapters.queue.source as source_module
from adapters.queue import QueueAdapter, QueueEndpoint
from adapters.queue.source import HEARTBEAT_CHECK_EVERY, QueueSource
from esb.config.settings import Settings
from esb.context import AdapterContext
from esb.message import Message

QUEUE = "keepalive.q"


def _context(url: str, visibility_timeout: float = 30.0) -> AdapterContext:
    settings = Settings.model_validate(
        {
            "broker": {
                "url": url,
                "max_retries": 0,
                "transport_options": {"visibility_timeout": visibility_timeout, "polling_interval": 0.02},
            }
        }
    )
    return AdapterContext(settings=settings, project_dir=Path("."), endpoint="keepalive.in")


def _fill(context: AdapterContext, count: int) -> None:
    sink = QueueAdapter().sink(QueueEndpoint(queue=QUEUE), context)
    with sink:
        sink.write_many([Message(body=f"m{i}".encode()) for i in range(count)])


class _Clock:
    """A monotonic clock the test moves by hand (the source's only use of time)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now


def test_reads_run_the_keepalive_at_most_once_per_interval(tmp_path: Path, monkeypatch: Any) -> None:
    """Draining a backlog runs the lease keep-alive once per HEARTBEAT_CHECK_EVERY, not once a read."""
    context = _context(f"sqlite:///{tmp_path}/q.db")
    _fill(context, 30)
    clock = _Clock()
    monkeypatch.setattr(source_module, "time", SimpleNamespace(monotonic=clock.monotonic))
    calls: list[float] = []
    keepalive = QueueSource._keepalive

    def counted(self: QueueSource, conn: Any) -> None:
        calls.append(clock.now)
        keepalive(self, conn)

    monkeypatch.setattr(QueueSource, "_keepalive", counted)
    with QueueAdapter().source(QueueEndpoint(queue=QUEUE), context) as source:
        bodies = []
        for index in range(30):
            if index == 20:
                clock.now += HEARTBEAT_CHECK_EVERY  # one interval later: the next drain runs it again
            delivery = source.read(0)
            assert delivery is not None
            bodies.append(delivery.message.body)
            delivery.ack()
    assert bodies == [f"m{i}".encode() for i in range(30)]
    assert calls == [1000.0, 1000.0 + HEARTBEAT_CHECK_EVERY]


def test_a_source_waiting_on_an_idle_queue_keeps_its_deliveries_leased(tmp_path: Path) -> None:
    """Unacked deliveries stay leased past the visibility timeout while the source waits on its queue."""
    url = f"sqlite:///{tmp_path}/q.db"
    context = _context(url, visibility_timeout=1.0)
    _fill(context, 2)
    with QueueAdapter().source(QueueEndpoint(queue=QUEUE), context) as source:
        held = [source.read(0), source.read(0)]
        assert all(d is not None for d in held)
        started = time.monotonic()
        while time.monotonic() - started < 2.5:  # over twice the timeout, reading an empty queue
            assert source.read(0.1) is None
        with Connection(url, transport_options={"visibility_timeout": 1.0}) as other:
            assert other.channel().basic_get(QUEUE) is None  # still leased: not handed to anyone else
        for delivery in held:
            assert delivery is not None
            delivery.ack()
