"""Counting and peeking the SQLite queues through sqlite3 answers exactly as the kombu path does."""

from __future__ import annotations

import base64
import sqlite3
from pathlib import Path
from typing import Any

import orjson
import pytest
from kombu import Connection

import adapters.queue.sqlite_transport  # noqa: F401  (registers the "sqlite" alias)
from adapters.queue import QueueAdapter, QueueEndpoint, sqlite_read
from adapters.queue.source import QueueSource, peek_messages
from esb.config.settings import Settings
from esb.context import AdapterContext
from esb.message import Message

QUEUE = "dlq.orders"


def _context(url: str) -> AdapterContext:
    settings = Settings.model_validate({"broker": {"url": url, "max_retries": 0}})
    return AdapterContext(settings=settings, project_dir=Path("."), endpoint="hub.dlq")


def _endpoint() -> QueueEndpoint:
    return QueueEndpoint.model_validate({"adapter": "queue", "queue": QUEUE})


def _kombu_stats(url: str) -> dict[str, int]:
    """The counts as the transport's channel gives them (the path before this change)."""
    with Connection(url) as conn:
        return dict(conn.channel().queue_stats(QUEUE))


def _as_tuples(messages: list[Message]) -> list[tuple[Any, ...]]:
    return [(m.id, m.body_bytes(), m.headers, m.correlation_id, m.causation_id, m.source) for m in messages]


@pytest.fixture
def filled(tmp_path: Path) -> str:
    """A SQLite broker queue with text, Chinese, binary and empty bodies, one redelivered, one delayed."""
    url = f"sqlite:///{tmp_path}/queues.db"
    adapter, context = QueueAdapter(), _context(url)
    sink = adapter.sink(_endpoint(), context)
    sink.connect()
    try:
        for body, headers in [
            (b"<order id='1'/>", {"esb-route": "crm-order", "esb-error": "boom"}),
            ("客户名称：张三".encode(), {"esb-route": "crm-order", "esb-error-reason": "mapping"}),
            (bytes(range(256)), {"esb-route": "billing", "n": 3}),
            (b"", {"esb-route": "crm-order"}),
            (b"later", {"x-delay": 60_000}),
        ]:
            sink.write(Message(body=body, headers=headers))
    finally:
        sink.close()
    source = QueueSource(_endpoint(), context)  # claims the oldest and gives it back: its count goes up
    source.connect()
    assert source.read(2.0) is not None
    source.close()
    return url


def test_stats_read_through_sqlite3_equal_the_channels(filled: str) -> None:
    """ready/in_flight/delayed read without kombu are the transport channel's counts."""
    fast = sqlite_read.read_stats(filled, QUEUE)
    assert fast == _kombu_stats(filled)
    assert fast is not None
    assert fast["delayed"] == 1


def test_peek_through_sqlite3_equals_the_kombu_peek(filled: str) -> None:
    """The adapter's peek gives the same messages (ids, bytes, headers, envelope) as kombu's."""
    context = _context(filled)
    fast = QueueAdapter().peek(_endpoint(), context, 10)
    slow = peek_messages(_endpoint(), context, 10)
    assert _as_tuples(fast) == _as_tuples(slow)
    assert len(fast) == 5
    assert "客户名称：张三".encode() in [m.body_bytes() for m in fast]
    assert _as_tuples(QueueAdapter().peek(_endpoint(), context, 2)) == _as_tuples(slow[:2])


def test_adapter_counts_through_sqlite3(filled: str) -> None:
    """The adapter's queue_stats is the sqlite3 reading (what esb health and esb dlq print)."""
    assert QueueAdapter().queue_stats(_endpoint(), _context(filled)) == _kombu_stats(filled)


def test_a_missing_queue_file_is_empty_and_stays_missing(tmp_path: Path) -> None:
    """No queue file: nothing waits, nothing to peek, and reading does not create the file."""
    url = f"sqlite:///{tmp_path}/queues.db"
    assert sqlite_read.read_stats(url, QUEUE) == {"ready": 0, "in_flight": 0, "delayed": 0}
    assert sqlite_read.read_peek(url, QUEUE, 10) == []
    assert not (tmp_path / "queues.db").exists()


def test_a_queue_file_whose_folder_is_not_one_is_left_to_kombu(tmp_path: Path) -> None:
    """A queue file under a path that is not a folder gives None: kombu answers, and fails as the broker
    would (esb health then says down, not "0 waiting")."""
    (tmp_path / "file").write_bytes(b"")
    url = f"sqlite:///{tmp_path}/file/queues.db"
    assert sqlite_read.read_stats(url, QUEUE) is None
    assert sqlite_read.read_peek(url, QUEUE, 10) is None


def test_a_file_without_the_queue_table_is_left_to_kombu(tmp_path: Path) -> None:
    """A file with no esb_messages table gives None (kombu's path creates the schema and answers)."""
    path = tmp_path / "queues.db"
    sqlite3.connect(path).close()
    url = f"sqlite:///{path}"
    assert sqlite_read.read_stats(url, QUEUE) is None
    assert QueueAdapter().queue_stats(_endpoint(), _context(url))["ready"] == 0


def test_other_brokers_are_left_to_kombu() -> None:
    """A RabbitMQ URL is not read through sqlite3."""
    assert sqlite_read.read_stats("pyamqp://esb:pw@127.0.0.1:5672//", QUEUE) is None
    assert sqlite_read.database_path("memory://") is None


@pytest.mark.parametrize(
    "url",
    ["sqlite:////var/lib/esb/queues.db", "sqlite:///rel/queues.db", "sqlite:////tmp/a%20b/q.db"],
)
def test_the_queue_file_is_the_one_kombu_opens(url: str) -> None:
    """The path read from the URL is the virtual host kombu's connection gives the transport."""
    assert sqlite_read.database_path(url) == Connection(url).virtual_host


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        (
            {"body": base64.b64encode(b"\x00\xff").decode(), "properties": {"body_encoding": "base64"}},
            b"\x00\xff",
        ),
        ({"body": "plain", "properties": {}}, b"plain"),
        ({"body": "", "properties": {"body_encoding": "base64"}}, b""),
        ({"body": "eA==", "headers": {"compression": "application/x-gzip"}, "properties": {}}, None),
        ({"body": "eA==", "properties": {"body_encoding": "rot13"}}, None),
    ],
)
def test_wire_body_decodes_as_kombu_or_declines(payload: dict[str, Any], expected: bytes | None) -> None:
    """base64 and plain bodies decode as kombu's virtual message does; compression or an unknown codec
    is left to kombu (None)."""
    assert sqlite_read.wire_body(orjson.loads(orjson.dumps(payload))) == expected
