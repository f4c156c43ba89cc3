"""The queue sink's direct publish on the embedded transport stores, byte for byte, what kombu's Producer
stored: the same payload, body and visibility, by ``write`` and by ``write_many``."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from adapters.queue import QueueAdapter, QueueEndpoint
from adapters.queue.sink import QueueSink
from esb.config.settings import Settings
from esb.context import AdapterContext
from esb.message import Message

CREATED = datetime(2026, 12, 7, 22, 0, tzinfo=UTC)


def _messages() -> list[Message]:
    """Bytes, GBK, empty, JSON and text bodies; a content type, a delay, a causation, odd headers."""
    bodies: list[Any] = [b"<order/>", "<订单>".encode("gb18030"), b"", {"id": "SO1", "n": [1, 2]}, "text"]
    headers: list[dict[str, Any]] = [
        {"content-type": "application/xml"},
        {"x-delay": 60_000, "priority": "high"},
        {},
        {"content-type": "application/json", "none": None, "n": 3},
        {"esb-warnings": ["a"]},
    ]
    return [
        Message(body=body, id=f"m-{i}", causation_id="p-1" if i % 2 else None, headers=dict(header),
                created_at=CREATED, type="order.submitted", source="crm", attempt=i + 1)
        for i, (body, header) in enumerate(zip(bodies, headers, strict=True))
    ]  # fmt: skip


def _sink(url: str, queue: str, *, direct: bool) -> QueueSink:
    settings = Settings.model_validate({"broker": {"url": url, "max_retries": 0}})
    context = AdapterContext(settings=settings, project_dir=Path("."), endpoint=queue)
    sink = QueueAdapter().sink(QueueEndpoint(queue=queue), context)
    sink.connect()
    assert sink._direct is not None  # the embedded transport's default exchange
    if not direct:
        sink._direct = None  # kombu's Producer.publish: the reference
    return sink


def _stored(url: str, queue: str) -> list[tuple[Any, ...]]:
    db = sqlite3.connect(url[len("sqlite:///") :])
    try:
        rows = db.execute(
            "SELECT payload, body, visible_at - enqueued_at > 59 FROM esb_messages"
            " WHERE queue = ? ORDER BY id",
            (queue,),
        ).fetchall()
    finally:
        db.close()
    return [(payload.replace(queue.encode(), b"Q"), body, delayed) for payload, body, delayed in rows]


@pytest.mark.parametrize("many", [pytest.param(False, id="write"), pytest.param(True, id="write_many")])
def test_direct_publishes_store_what_kombus_producer_stored(tmp_path: Path, many: bool) -> None:
    """Every message, one by one or as a batch, leaves the very row kombu's Producer.publish left."""
    url = f"sqlite:///{tmp_path}/queues.db"
    for queue, direct in (("direct.q", True), ("kombu.q", False)):
        with _sink(url, queue, direct=direct) as sink:
            if many:
                sink.write_many(_messages())
            else:
                for message in _messages():
                    sink.write(message)
    direct_rows, kombu_rows = _stored(url, "direct.q"), _stored(url, "kombu.q")
    assert len(direct_rows) == 5
    assert direct_rows == kombu_rows
    assert [delayed for _, _, delayed in direct_rows] == [0, 1, 0, 0, 0]


def test_an_endpoint_with_an_exchange_publishes_through_kombu(tmp_path: Path) -> None:
    """A named exchange routes through kombu's producer (its bindings), never the direct path."""
    settings = Settings.model_validate({"broker": {"url": f"sqlite:///{tmp_path}/q.db", "max_retries": 0}})
    context = AdapterContext(settings=settings, project_dir=Path("."), endpoint="x.q")
    endpoint = QueueEndpoint.model_validate({"adapter": "queue", "queue": "x.q", "exchange": "esb"})
    with QueueAdapter().sink(endpoint, context) as sink:
        assert sink._direct is None
