"""The SQLite transport's fast paths give what kombu's slow ones gave: bodies kept as BLOBs against
base64 in the payload, a batch published in one transaction against one commit each, rows claimed ahead
within the prefetch window against one claim per delivery."""

from __future__ import annotations

import base64
import sqlite3
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from kombu import Connection, Consumer, Queue
from kombu.transport import virtual

from adapters.queue import sqlite_read
from adapters.queue.sqlite_transport import open_database

QUEUE = "orders"
BODIES = [
    pytest.param("<订单>".encode("gb18030") + b"\x00\xff" * 40, id="gbk-and-binary"),
    pytest.param(b"plain ascii", id="ascii"),
    pytest.param(b"", id="empty"),
]


@pytest.fixture
def url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path}/queues.db"


@pytest.fixture
def conn(url: str) -> Iterator[Connection]:
    c = Connection(url)
    c.connect()
    yield c
    c.release()


def _publish(ch: Any, body: bytes, queue: str = QUEUE, headers: dict[str, Any] | None = None) -> None:
    ch.queue_declare(queue, durable=True)
    msg = ch.prepare_message(
        body, content_type="application/xml", content_encoding="binary", headers=headers or {"k": "v"}
    )
    ch.basic_publish(msg, exchange="", routing_key=queue)


def _seen(message: Any) -> tuple[bytes, dict[str, Any], str, int]:
    """What a consumer sees of a delivery (its body as the queue source reads it)."""
    body = message.body if isinstance(message.body, bytes) else message.body.encode("utf-8")
    return body, dict(message.headers), message.content_type, message.delivery_info["delivery_count"]


def _rows(url: str, queue: str) -> list[tuple[Any, ...]]:
    db = sqlite3.connect(url[len("sqlite:///") :])
    rows = db.execute(
        "SELECT payload, body, delivery_count, in_flight FROM esb_messages WHERE queue = ? ORDER BY id",
        (queue,),
    ).fetchall()
    db.close()
    out = []
    for payload, body, count, in_flight in rows:
        message = orjson.loads(payload)
        message["properties"].pop("delivery_tag")
        out.append((message, body, count, in_flight))
    return out


@pytest.mark.parametrize("body", BODIES)
def test_blob_bodies_are_delivered_as_base64_ones_were(url: str, body: bytes) -> None:
    """A body stored as a BLOB reaches the consumer and a peek exactly as kombu's base64 payload did."""
    old = Connection(url, transport_options={"body_encoding": "base64"})
    new = Connection(url)
    try:
        _publish(old.channel(), body, "old")
        _publish(new.channel(), body, "new")
        ch = new.channel()
        assert _seen(ch.basic_get("old")) == _seen(ch.basic_get("new"))
        old_peek = sqlite_read.read_peek(url, "old", 5)
        assert old_peek is not None
        assert old_peek == sqlite_read.read_peek(url, "new", 5)
    finally:
        old.release()
        new.release()


def test_a_body_is_stored_as_is_not_base64_in_the_payload(conn: Connection, url: str) -> None:
    """The payload keeps no body and no codec; the row's body column holds the bytes."""
    _publish(conn.channel(), b"\x00<order/>")
    [(message, body, _, _)] = _rows(url, QUEUE)
    assert body == b"\x00<order/>"
    assert message["body"] is None
    assert message["properties"]["body_encoding"] is None


def test_a_queue_file_from_before_the_body_column_is_migrated_and_read(tmp_path: Path) -> None:
    """A file without the body column gains it, and its base64 rows are still delivered and peeked."""
    path = tmp_path / "queues.db"
    db = sqlite3.connect(path)
    db.execute("""CREATE TABLE esb_messages (id INTEGER PRIMARY KEY AUTOINCREMENT, queue TEXT NOT NULL,
        payload BLOB NOT NULL, visible_at REAL NOT NULL, in_flight INTEGER NOT NULL DEFAULT 0,
        delivery_count INTEGER NOT NULL DEFAULT 0, enqueued_at REAL NOT NULL)""")
    db.execute("CREATE TABLE esb_queues (name TEXT PRIMARY KEY, created_at REAL NOT NULL)")
    old = {"body": base64.b64encode(b"old row").decode(), "headers": {}, "content-type": "x",
           "properties": {"body_encoding": "base64", "delivery_info": {}, "delivery_tag": "t"}}  # fmt: skip
    db.execute("INSERT INTO esb_messages (queue, payload, visible_at, enqueued_at) VALUES (?, ?, 0, 0)",
               (QUEUE, orjson.dumps(old)))  # fmt: skip
    db.commit()
    db.close()
    open_database(str(path), busy_timeout=1, synchronous="NORMAL").close()
    url = f"sqlite:///{path}"
    assert sqlite_read.read_peek(url, QUEUE, 5) == [(b"old row", {})]
    with Connection(url) as c:
        assert c.channel().basic_get(QUEUE).body == b"old row"


def test_a_batch_writes_the_rows_one_by_one_publishing_writes(conn: Connection, url: str) -> None:
    """Publishing inside batched_puts stores the same rows as publishing one message at a time."""
    ch = conn.channel()
    bodies = [f"<o n='{i}'/>".encode() for i in range(5)]
    for body in bodies:
        _publish(ch, body, "single", {"n": len(body)})
    with ch.batched_puts():
        for body in bodies:
            _publish(ch, body, "batch", {"n": len(body)})
    single, batch = _rows(url, "single"), _rows(url, "batch")
    for message, *_ in single + batch:
        message["properties"]["delivery_info"].pop("routing_key")
    assert len(batch) == 5
    assert batch == single


@pytest.mark.parametrize("body", BODIES)
@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({"k": "v"}, id="plain"),
        pytest.param({"x-delay": 60000, "esb-message-id": "m-1"}, id="delayed"),
    ],
)
def test_the_default_exchanges_publish_stores_what_kombus_basic_publish_stored(
    conn: Connection, url: str, body: bytes, headers: dict[str, Any]
) -> None:
    """The channel's own publish to the default exchange stores the very payload bytes, body and
    visibility that kombu's ``basic_publish`` (encode, augment, route) stored, and leaves the message
    dict as kombu left it."""
    ours, kombus = conn.channel(), conn.channel()
    messages = []
    for ch, queue in ((ours, "ours"), (kombus, "kombus")):
        ch.queue_declare(queue, durable=True)
        message = ch.prepare_message(
            body, content_type="application/xml", content_encoding="binary", headers=dict(headers)
        )
        publish = type(ch).basic_publish if ch is ours else virtual.Channel.basic_publish
        publish(ch, message, exchange="", routing_key=queue)
        messages.append(message)
    db = sqlite3.connect(url[len("sqlite:///") :])
    stored = {
        queue: (payload.replace(queue.encode(), b"Q"), blob, delay > 59)
        for queue, payload, blob, delay in db.execute(
            "SELECT queue, payload, body, visible_at - enqueued_at FROM esb_messages"
        )
    }
    db.close()
    assert stored["ours"] == stored["kombus"]
    assert stored["ours"][2] == ("x-delay" in headers)
    for message in messages:
        message["properties"]["delivery_info"]["routing_key"] = "Q"
    assert messages[0] == messages[1]


def test_a_batch_that_raises_stores_nothing(conn: Connection, url: str) -> None:
    """Rows published in a batched_puts block that raises are never inserted."""
    ch = conn.channel()

    def publish_then_fail() -> None:
        with ch.batched_puts():
            _publish(ch, b"a")
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        publish_then_fail()
    assert _rows(url, QUEUE) == []


def _consume(conn: Connection, prefetch: int, received: list[Any]) -> Consumer:
    ch = conn.channel()
    consumer = Consumer(ch, queues=[Queue(QUEUE)], on_message=received.append, auto_declare=True)
    consumer.qos(prefetch_count=prefetch)
    consumer.consume()
    return consumer


def test_rows_claimed_ahead_are_handed_out_in_order_within_the_prefetch(conn: Connection, url: str) -> None:
    """A consumer claims no more rows than its prefetch allows, and gets every message in publish order."""
    ch = conn.channel()
    for i in range(7):
        _publish(ch, str(i).encode())
    received: list[Any] = []
    with Connection(url) as consuming:
        _consume(consuming, 3, received)
        consuming.drain_events(timeout=1)
        assert [row[3] for row in _rows(url, QUEUE)] == [1, 1, 1, 0, 0, 0, 0]
        while len(received) < 7:
            received[-1].ack()
            consuming.drain_events(timeout=1)
    assert [m.body for m in received] == [str(i).encode() for i in range(7)]
    assert {m.delivery_info["delivery_count"] for m in received} == {1}


def test_closing_gives_back_rows_claimed_and_never_handed_out_uncounted(conn: Connection, url: str) -> None:
    """Rows claimed ahead come back at close as before the claim: in their place, their count unchanged."""
    ch = conn.channel()
    for i in range(4):
        _publish(ch, str(i).encode())
    received: list[Any] = []
    with Connection(url) as consuming:
        _consume(consuming, 10, received)
        consuming.drain_events(timeout=1)
    assert [m.body for m in received] == [b"0"]
    assert [(row[2], row[3]) for row in _rows(url, QUEUE)] == [(1, 0), (0, 0), (0, 0), (0, 0)]
    ch = conn.channel()
    again = [_seen(ch.basic_get(QUEUE))[::3] for _ in range(4)]
    assert again == [(b"1", 1), (b"2", 1), (b"3", 1), (b"0", 2)]  # "0", handed out, is requeued last


def _source_on(url: str) -> Any:
    from adapters.queue import QueueAdapter, QueueEndpoint
    from esb.config.settings import Settings
    from esb.context import AdapterContext

    context = AdapterContext(
        settings=Settings.model_validate({"broker": {"url": url}}), project_dir=Path("."), endpoint="e"
    )
    return QueueAdapter().source(QueueEndpoint(queue=QUEUE), context)


def test_the_sources_acks_delete_their_rows_at_its_next_read_or_close(conn: Connection, url: str) -> None:
    """The queue source's acks are held: their rows go at its next read (one transaction) or at close."""
    ch = conn.channel()
    for i in range(4):
        _publish(ch, str(i).encode())
    with _source_on(url) as source:
        first, second = source.read(1), source.read(1)
        first.ack()
        second.ack()
        assert [row[3] for row in _rows(url, QUEUE)] == [1, 1, 1, 1]  # held, still leased
        source.read(1).ack()
        source.read(1)
        assert len(_rows(url, QUEUE)) == 4  # the claim was taken ahead: acks wait for the next claim
        assert source.read(0.1) is None
        assert [row[3] for row in _rows(url, QUEUE)] == [1]
    assert [(row[2], row[3]) for row in _rows(url, QUEUE)] == [(1, 0)]  # the unacked one, given back


def _deliveries(url: str, *, kombus_loop: bool) -> list[tuple[Any, ...]]:
    """Consume 12 messages with a prefetch of 3 (every third requeued once, the rest acked as they
    come), through the transport's ``drain_events`` or kombu's own loop; return what was delivered."""
    seen: list[tuple[Any, ...]] = []
    with Connection(url) as consuming:
        if kombus_loop:
            transport = consuming.transport
            transport.drain_events = types.MethodType(virtual.Transport.drain_events, transport)
        received: list[Any] = []
        _consume(consuming, 3, received)
        requeued: set[bytes] = set()
        while len(seen) < 16:
            consuming.drain_events(timeout=1)
            message = received.pop()
            seen.append((*_seen(message), message.delivery_tag, message.delivery_info["redelivered"]))
            if int(message.body) % 3 == 0 and message.body not in requeued:
                requeued.add(message.body)
                message.reject(requeue=True)
            else:
                message.ack()
    return seen


def test_the_transports_drain_delivers_what_kombus_loop_delivers(tmp_path: Path) -> None:
    """Deliveries handed out by the transport's shortcut (one channel, one queue, rows claimed ahead) are
    kombu's loop's: the same messages in the same order, with the same tags, counts and redelivery flags,
    across requeues and a prefetch window that fills."""
    found = []
    for kombus_loop in (False, True):
        url = f"sqlite:///{tmp_path}/{kombus_loop}.db"
        with Connection(url) as publishing:
            ch = publishing.channel()
            for i in range(12):
                _publish(ch, str(i).encode(), headers={"n": i})
        found.append(_deliveries(url, kombus_loop=kombus_loop))
    assert len({body for body, *_ in found[0]}) == 12
    assert found[0] == found[1]
