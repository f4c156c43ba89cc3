"""The queue adapter's faster AMQP paths against the real RabbitMQ: the same messages on the wire.

The batch publish (its frames encoded by the adapter, one socket write for the batch), the read-ahead
source and the held acks (one multiple ack per run of settled deliveries) are compared with kombu's own
per-message paths.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from kombu import Connection

from adapters.queue import QueueAdapter, QueueEndpoint
from esb.config.settings import Settings
from esb.context import AdapterContext
from esb.message import Message
from tests.integration.rabbit_server import RabbitServer


def _context(url: str) -> AdapterContext:
    settings = Settings.model_validate({"broker": {"url": url, "prefetch": 50, "max_retries": 1}})
    return AdapterContext(settings=settings, project_dir=Path("."), endpoint="test.queue")


def _endpoint() -> QueueEndpoint:
    return QueueEndpoint(queue=f"wire-{uuid.uuid4().hex[:10]}")


def _messages(count: int) -> list[Message]:
    """Messages with what headers can carry: Chinese, numbers, booleans, empty and large bodies."""
    bodies = [b"", "订单 深圳".encode(), bytes(range(256)) * 600, b'{"order": 1}']
    return [
        Message(
            body=bodies[n % len(bodies)],
            type="crm.order",
            source="crm.orders",
            causation_id=f"cause-{n}" if n % 2 else None,
            headers={
                "esb-content-type": "application/json",
                "城市": "深圳",
                "n": n,
                "big": 2**40,
                "ok": True,
            },
        )
        for n in range(count)
    ]


def _raw(url: str, queue: str, count: int) -> list[tuple[Any, dict[str, Any]]]:
    """Body and properties of ``count`` messages fetched with plain py-amqp (no read-ahead)."""
    got = []
    with Connection(url) as conn:
        channel = conn.default_channel.connection.channel()  # py-amqp's channel, below kombu
        for _ in range(count):
            raw = channel.basic_get(queue, no_ack=True)
            assert raw is not None
            got.append((raw.body, dict(raw.properties)))
        assert channel.basic_get(queue, no_ack=True) is None
    return got


def test_batch_publish_puts_the_same_messages_on_the_wire_as_kombu(rabbit_server: RabbitServer) -> None:
    """write_many (the batch's frames encoded by PublishFrames, one socket write) delivers exactly what
    write (kombu's Producer.publish, one by one) delivers: bodies, content type and encoding,
    persistence, every header, in order; kombu only adds an explicit ``priority`` 0."""
    url = rabbit_server.create_vhost("wire-publish")
    ctx, adapter, messages = _context(url), QueueAdapter(), _messages(12)
    batched, kombu_path = _endpoint(), _endpoint()
    with adapter.sink(batched, ctx) as sink:
        sink.write_many(messages)
    with adapter.sink(kombu_path, ctx) as sink:
        for message in messages:
            sink.write(message)
    fast = _raw(url, batched.queue, len(messages))
    slow = _raw(url, kombu_path.queue, len(messages))
    assert fast == [(body, {k: v for k, v in props.items() if k != "priority"}) for body, props in slow]
    assert {props.get("priority") for _, props in slow} == {0}
    assert fast[1][1]["application_headers"]["城市"] == "深圳"
    assert fast[2][0] == bytes(range(256)) * 600
    assert fast[0][1]["delivery_mode"] == 2


def test_read_ahead_source_reads_what_was_published(rabbit_server: RabbitServer) -> None:
    """The source (reading ahead, several deliveries per recv) hands out every message whole, in order."""
    url = rabbit_server.create_vhost("wire-read")
    ctx, adapter, messages = _context(url), QueueAdapter(), _messages(40)
    endpoint = _endpoint()
    with adapter.sink(endpoint, ctx) as sink:
        sink.write_many(messages)
    got = []
    with adapter.source(endpoint, ctx) as source:
        while (delivery := source.read(2)) is not None:
            got.append(delivery.message)
            delivery.ack()
    assert [(m.id, m.body_bytes(), m.headers) for m in got] == [
        (m.id, m.body_bytes(), m.headers) for m in messages
    ]


def test_held_acks_settle_exactly_the_acked_deliveries(rabbit_server: RabbitServer) -> None:
    """Acks of 1, 2 and 4 of five (3 and 5 unsettled) are sent at the next read: after the connection
    closes, a new consumer gets exactly 3 and 5 again, so the multiple ack covered nothing unsettled."""
    url = rabbit_server.create_vhost("wire-acks")
    ctx, adapter = _context(url), QueueAdapter()
    endpoint = _endpoint()
    messages = [Message(body=f"m{n}".encode(), id=f"m{n}") for n in range(1, 6)]
    with adapter.sink(endpoint, ctx) as sink:
        sink.write_many(messages)
    source = adapter.source(endpoint, ctx)
    source.connect()
    try:
        deliveries = [source.read(5) for _ in range(5)]
        assert all(d is not None for d in deliveries)
        for index in (0, 1, 3):
            deliveries[index].ack()  # type: ignore[union-attr]
        assert source.read(0) is None  # sends the held acks
    finally:
        source._broken = RuntimeError("simulated: leave 3 and 5 unsettled")  # close() sends nothing
        source.close()
    with adapter.source(endpoint, ctx) as again:
        back = []
        while (delivery := again.read(2)) is not None:
            back.append(delivery.message.id)
            delivery.ack()
    assert sorted(back) == ["m3", "m5"]


def test_held_acks_are_sent_at_close(rabbit_server: RabbitServer) -> None:
    """Deliveries acked just before close() are settled: a new consumer finds the queue empty."""
    url = rabbit_server.create_vhost("wire-close")
    ctx, adapter = _context(url), QueueAdapter()
    endpoint = _endpoint()
    with adapter.sink(endpoint, ctx) as sink:
        sink.write_many([Message(body=b"x") for _ in range(3)])
    with adapter.source(endpoint, ctx) as source:
        for _ in range(3):
            delivery = source.read(5)
            assert delivery is not None
            delivery.ack()
    with adapter.source(endpoint, ctx) as again:
        assert again.read(1) is None


def test_an_ack_from_a_closed_connection_never_settles_a_newer_delivery(rabbit_server: RabbitServer) -> None:
    """A delivery acked after its source closed and connected again is not acked by tag on the new
    channel (where the same tag names another delivery): both messages are still there."""
    url = rabbit_server.create_vhost("wire-stale")
    ctx, adapter = _context(url), QueueAdapter()
    endpoint = _endpoint()
    with adapter.sink(endpoint, ctx) as sink:
        sink.write_many([Message(body=b"a", id="a"), Message(body=b"b", id="b")])
    source = adapter.source(endpoint, ctx)
    source.connect()
    stale = source.read(5)
    assert stale is not None
    source.close()
    source.connect()
    try:
        fresh = source.read(5)
        assert fresh is not None
        stale.ack()  # tag 1 of the closed channel; the new channel's tag 1 is ``fresh``
        assert source.read(0) is not None  # (sends what is held: nothing for ``fresh``)
    finally:
        source._broken = RuntimeError("simulated: leave everything unsettled")
        source.close()
    with adapter.source(endpoint, ctx) as again:
        back = []
        while (delivery := again.read(2)) is not None:
            back.append(delivery.message.id)
            delivery.ack()
    assert sorted(back) == ["a", "b"]
