"""The embedded SQLite kombu transport: leases, acks, requeue, delivery counts, delays, sharing."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kombu import Connection
from kombu.transport import resolve_transport

from adapters.queue import sqlite_transport
from adapters.queue.sqlite_transport import open_database

QUEUE = "orders"


@pytest.fixture
def url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path}/queues.db"


def _connect(url: str, **options: Any) -> Connection:
    conn = Connection(url, transport_options=options)
    conn.connect()
    return conn


@pytest.fixture
def conn(url: str) -> Iterator[Connection]:
    c = _connect(url, visibility_timeout=30)
    yield c
    c.release()


def _channel(conn: Connection) -> Any:
    ch = conn.channel()
    ch.queue_declare(QUEUE, durable=True)
    return ch


def _publish(ch: Any, body: bytes, headers: dict[str, Any] | None = None) -> None:
    msg = ch.prepare_message(body, content_type="application/octet-stream", content_encoding="binary",
                             headers=headers or {})
    ch.basic_publish(msg, exchange="", routing_key=QUEUE)


def test_alias_resolves_to_the_transport() -> None:
    """Importing the transport module makes the 'sqlite' scheme name this transport."""
    assert resolve_transport("sqlite") is sqlite_transport.Transport


def test_publish_get_ack_deletes_the_row(conn: Connection) -> None:
    """A published message is fetched once with delivery count 1, and ack deletes it."""
    ch = _channel(conn)
    _publish(ch, b"hello")
    msg = ch.basic_get(QUEUE)
    assert msg.body == b"hello"
    assert msg.delivery_info["delivery_count"] == 1
    assert ch.queue_stats(QUEUE) == {"ready": 0, "in_flight": 1, "delayed": 0}
    msg.ack()
    assert ch.queue_stats(QUEUE) == {"ready": 0, "in_flight": 0, "delayed": 0}
    assert ch.basic_get(QUEUE) is None


def test_reject_with_requeue_is_visible_at_once_with_count_two(conn: Connection) -> None:
    """A requeued message can be fetched again immediately, its delivery count incremented."""
    ch = _channel(conn)
    _publish(ch, b"m")
    ch.basic_get(QUEUE).reject(requeue=True)
    again = ch.basic_get(QUEUE)
    assert again.body == b"m"
    assert again.delivery_info["delivery_count"] == 2
    assert again.delivery_info["redelivered"] is True


def test_reject_without_requeue_drops_the_message(conn: Connection) -> None:
    """Rejecting without requeue deletes the row."""
    ch = _channel(conn)
    _publish(ch, b"m")
    ch.basic_get(QUEUE).reject(requeue=False)
    assert ch.queue_stats(QUEUE) == {"ready": 0, "in_flight": 0, "delayed": 0}


def test_expired_lease_comes_back_with_count_two(url: str) -> None:
    """A message fetched and never settled is handed out again once its lease expires."""
    holder = _connect(url, visibility_timeout=0.6)
    other = _connect(url, visibility_timeout=0.6)
    try:
        ch1, ch2 = _channel(holder), _channel(other)
        _publish(ch1, b"m")
        assert ch1.basic_get(QUEUE) is not None
        assert ch2.basic_get(QUEUE) is None
        time.sleep(0.7)
        again = ch2.basic_get(QUEUE)
        assert again is not None
        assert again.delivery_info["delivery_count"] == 2
    finally:
        holder.release()
        other.release()


def test_held_leases_are_renewed(url: str) -> None:
    """A consumer that keeps polling keeps its unacked deliveries past the visibility timeout."""
    holder = _connect(url, visibility_timeout=2.0)
    other = _connect(url, visibility_timeout=2.0)
    try:
        ch1, ch2 = _channel(holder), _channel(other)
        _publish(ch1, b"m")
        held = ch1.basic_get(QUEUE)
        fetched = time.monotonic()
        # polled often past the timeout: a stall of about a second (a busy machine) is not an expiry
        while time.monotonic() - fetched < 3.0:
            time.sleep(0.05)
            ch1.keep_leases()
        assert ch2.basic_get(QUEUE) is None
        held.ack()
        assert ch2.queue_stats(QUEUE)["in_flight"] == 0
    finally:
        holder.release()
        other.release()


def test_stale_requeue_does_not_release_a_message_someone_else_holds(url: str) -> None:
    """After a lease expired and another consumer claimed the row, the first one's requeue is ignored."""
    slow = _connect(url, visibility_timeout=0.2)
    fast = _connect(url, visibility_timeout=30)
    try:
        ch1, ch2 = _channel(slow), _channel(fast)
        _publish(ch1, b"m")
        stale = ch1.basic_get(QUEUE)
        time.sleep(0.3)
        assert ch2.basic_get(QUEUE) is not None
        stale.reject(requeue=True)
        assert ch2.queue_stats(QUEUE) == {"ready": 0, "in_flight": 1, "delayed": 0}
    finally:
        slow.release()
        fast.release()


def test_two_consumers_never_get_the_same_message(url: str) -> None:
    """Two connections fetching from one queue split the messages with no overlap and none missing."""
    a, b = _connect(url), _connect(url)
    try:
        cha, chb = _channel(a), _channel(b)
        for i in range(40):
            _publish(cha, str(i).encode())
        got: dict[str, list[bytes]] = {"a": [], "b": []}
        for _ in range(25):
            for name, ch in (("a", cha), ("b", chb)):
                msg = ch.basic_get(QUEUE)
                if msg is not None:
                    got[name].append(msg.body)
        assert not set(got["a"]) & set(got["b"])
        assert sorted(got["a"] + got["b"]) == sorted(str(i).encode() for i in range(40))
    finally:
        a.release()
        b.release()


def test_delayed_message_is_invisible_until_due(conn: Connection) -> None:
    """A message published with x-delay is not handed out before the delay has passed."""
    ch = _channel(conn)
    _publish(ch, b"later", headers={"x-delay": 1000})
    assert ch.basic_get(QUEUE) is None
    assert ch.queue_stats(QUEUE)["delayed"] == 1
    time.sleep(1.1)
    assert ch.basic_get(QUEUE).body == b"later"


def test_closing_the_channel_gives_unacked_messages_back(url: str) -> None:
    """Unacked deliveries become visible again at once when their channel closes."""
    first = _connect(url)
    ch = _channel(first)
    _publish(ch, b"m")
    assert ch.basic_get(QUEUE) is not None
    first.release()
    second = _connect(url)
    try:
        again = _channel(second).basic_get(QUEUE)
        assert again is not None
        assert again.delivery_info["delivery_count"] == 2
    finally:
        second.release()


def test_published_message_is_on_disk_for_a_new_connection(url: str, tmp_path: Path) -> None:
    """A publish is committed when it returns: a plain sqlite3 reader sees the row."""
    c = _connect(url)
    try:
        _publish(_channel(c), b"m")
        rows = sqlite3.connect(tmp_path / "queues.db").execute("SELECT queue FROM esb_messages").fetchall()
        assert rows == [(QUEUE,)]
    finally:
        c.release()


def test_purge_keeps_messages_in_flight(conn: Connection) -> None:
    """Purge removes waiting messages but not one a consumer holds."""
    ch = _channel(conn)
    for body in (b"1", b"2", b"3"):
        _publish(ch, body)
    held = ch.basic_get(QUEUE)
    assert ch.queue_purge(QUEUE) == 2
    assert ch.queue_stats(QUEUE) == {"ready": 0, "in_flight": 1, "delayed": 0}
    held.ack()


def test_passive_declare_of_unknown_queue_fails(conn: Connection) -> None:
    """A passive declare of a queue never declared raises a channel error."""
    with pytest.raises(Exception, match="NOT_FOUND"):
        conn.channel().queue_declare("nope", passive=True)


def test_peek_does_not_claim(conn: Connection) -> None:
    """Peek returns messages in hand-out order and leaves them ready."""
    ch = _channel(conn)
    _publish(ch, b"a")
    _publish(ch, b"b")
    peeked = ch.peek(QUEUE, 5)
    assert [ch.Message(p, channel=ch).body for p in peeked] == [b"a", b"b"]
    assert ch.queue_stats(QUEUE)["ready"] == 2


@pytest.mark.parametrize(
    ("path", "synchronous"),
    [pytest.param("", "NORMAL", id="no-path"), pytest.param(":memory:", "NORMAL", id="memory"),
     pytest.param("x.db", "OFF", id="synchronous-off")],
)
def test_open_database_refuses_bad_settings(tmp_path: Path, path: str, synchronous: str) -> None:
    """No file path, or a synchronous level that is not crash-safe, is refused."""
    full = str(tmp_path / path) if path.endswith(".db") else path
    with pytest.raises(ValueError, match=r"path|synchronous"):
        open_database(full, busy_timeout=1, synchronous=synchronous)


def test_database_is_in_wal_mode(tmp_path: Path) -> None:
    """The queue database uses write-ahead logging with the requested synchronous level."""
    db = open_database(str(tmp_path / "q.db"), busy_timeout=1, synchronous="FULL")
    assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    assert db.execute("PRAGMA synchronous").fetchone() == (2,)
    db.close()
