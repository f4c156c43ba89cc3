"""Writing to a queue: persistent, confirmed publishes on a connection of their own.

Publishing never shares the consuming connection (a confirmed publish from inside a consumer on the
same connection recurses; DESIGN.md). ``write`` returns once the broker confirmed the message (py-amqp
publisher confirms) or the SQLite transport committed it. One sink belongs to one thread.
"""

# mypy: disable-error-code="no-untyped-call"
# (kombu 5.7 ships without annotations for most of its API; every call into it is untyped)

from __future__ import annotations

import contextlib
from types import TracebackType
from typing import Any

from kombu.connection import Connection
from kombu.entity import Queue
from kombu.messaging import Producer

from adapters.queue.config import QueueEndpoint, broker_connection, declare_queue
from adapters.queue.errors import BROKER_ERRORS, translate_errors
from esb.context import AdapterContext
from esb.exceptions import TransportError
from esb.message import WIRE_CONTENT_TYPE, Message

PERSISTENT = 2


class QueueSink:
    """Publishes to one queue (through its exchange when the endpoint names one)."""

    def __init__(self, endpoint: QueueEndpoint, context: AdapterContext) -> None:
        self.endpoint = endpoint
        self.context = context
        self._broker = context.settings.broker
        self._conn: Connection | None = None
        self._producer: Producer | None = None
        self._queue: Queue | None = None
        self._returned: list[Any] = []

    @property
    def url(self) -> str:
        """The broker URL (mask it before showing it: errors do)."""
        return self._broker.url

    def connect(self) -> None:
        """Connect with publisher confirms and declare the queue (and exchange, binding) durably."""
        if self._conn is not None:
            return
        conn = broker_connection(self._broker, publisher=True)
        try:
            with translate_errors(self.url, "connect"):
                conn.ensure_connection(max_retries=self._broker.max_retries)
                channel = conn.channel()
                self._queue = declare_queue(channel, self.endpoint)
                # Only AMQP channels report returns (unroutable mandatory messages); virtual ones can't.
                on_return = self._returned.append if hasattr(channel, "events") else None
                self._producer = Producer(channel, exchange=self._queue.exchange, on_return=on_return)
        except BaseException:
            with contextlib.suppress(*BROKER_ERRORS):
                conn.release()
            raise
        self._conn = conn

    def write(self, message: Message) -> None:
        """Publish ``message`` persistently; return once confirmed, raise TransportError otherwise."""
        if self._producer is None or self._queue is None:
            raise TransportError("queue sink is not connected (call connect() first)", endpoint=self.url)
        self._returned.clear()
        headers = message.wire_headers()
        content_type = str(message.headers.get(WIRE_CONTENT_TYPE) or "application/octet-stream")
        with translate_errors(self.url, "publish"):
            self._producer.publish(
                message.body_bytes(),
                routing_key=self.endpoint.publish_key,
                headers=headers,
                delivery_mode=PERSISTENT,
                content_type=content_type,
                content_encoding="binary",
                mandatory=bool(self.endpoint.exchange),
                declare=[self._queue],
                retry=True,
                retry_policy={"max_retries": self._broker.max_retries, "interval_start": 0.2,
                              "interval_step": 0.5, "interval_max": 2.0},
            )
        if self._returned:
            raise TransportError(
                f"message {message.id} unroutable: exchange {self.endpoint.exchange!r} has no queue bound "
                f"under {self.endpoint.publish_key!r}",
                endpoint=self.url,
            )

    def close(self) -> None:
        """Disconnect. Safe to call twice."""
        conn, self._conn = self._conn, None
        self._producer = None
        if conn is not None:
            with contextlib.suppress(*BROKER_ERRORS):
                conn.release()

    def __enter__(self) -> QueueSink:
        self.connect()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
