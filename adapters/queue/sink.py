"""Writing to a queue: persistent, confirmed publishes on a connection of their own.

Publishing never shares the consuming connection (a confirmed publish from inside a consumer on the
same connection recurses; DESIGN.md). ``write`` returns once the broker confirmed the message (py-amqp
publisher confirms) or the SQLite transport committed it. One sink belongs to one thread (plus, on AMQP,
its heartbeat thread, which shares the sink's lock: see :mod:`adapters.queue.keepalive`).

On RabbitMQ every publish is ``mandatory``: a message no queue would take comes back (basic.return) and
``write`` raises instead of the broker dropping it. When the broker goes away (restart, network),
``write`` reconnects with backoff and publishes again for up to ``broker.reconnect_timeout`` before it
raises TransportError. A publish whose confirm was lost with the connection may have been stored: the
retry can then store it twice, which receivers absorb by the ``esb-message-id`` header (at-least-once).
"""

# mypy: disable-error-code="no-untyped-call"
# (kombu 5.7 ships without annotations for most of its API; every call into it is untyped)

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from types import TracebackType
from typing import Any

from kombu.connection import Connection
from kombu.entity import Queue
from kombu.messaging import Producer

from adapters.queue.channel import queue_channel
from adapters.queue.config import QueueEndpoint
from adapters.queue.confirms import PERSISTENT, ConfirmTracker
from adapters.queue.errors import BROKER_ERRORS, translate_errors
from adapters.queue.keepalive import Keepalive
from esb.context import AdapterContext
from esb.exceptions import TransportError
from esb.logging import get_logger
from esb.message import WIRE_CONTENT_TYPE, Message


class UnroutableError(TransportError):
    """The broker returned a mandatory message: no queue is bound under its routing key."""


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
        self._lock = threading.RLock()
        self._keepalive: Keepalive | None = None
        self._mandatory = False
        self._confirms: ConfirmTracker | None = None
        self._direct: Any = None  # the SQLite channel when publishes skip kombu's Producer (_produce)

    @property
    def url(self) -> str:
        """The broker URL (mask it before showing it: errors do)."""
        return self._broker.url

    def connect(self) -> None:
        """Connect with publisher confirms and declare the queue (and exchange, binding) durably."""
        if self._conn is not None:
            return
        with queue_channel(self.context, self.endpoint, publisher=True) as (conn, channel, queue, amqp):
            self._queue = queue
            # Only AMQP channels report returns (unroutable mandatory messages); virtual ones can't.
            self._mandatory = amqp or bool(self.endpoint.exchange)
            on_return = self._on_return if hasattr(channel, "events") else None
            self._producer = Producer(channel, exchange=queue.exchange, on_return=on_return)
            self._confirms = ConfirmTracker(channel) if amqp else None
            # the embedded transport's default exchange: the message kombu's Producer would make, handed
            # to the channel directly (the queue was declared just now; no codec, no compression)
            direct = not amqp and not self.endpoint.exchange and hasattr(channel, "batched_puts")
            self._direct = channel if direct else None
        self._conn = conn
        if amqp and self._broker.heartbeat:
            self._keepalive = Keepalive(conn, self._lock, f"sink-{self.endpoint.queue}")
            self._keepalive.start()

    def write(self, message: Message) -> None:
        """Publish ``message`` persistently; return once confirmed, raise TransportError otherwise.

        A lost connection is re-established with backoff for up to ``broker.reconnect_timeout``.
        """
        self._with_reconnect(lambda: self._publish(message), "publish")

    def write_many(self, messages: list[Message]) -> None:
        """Publish several messages; return once every one is confirmed (one round trip on AMQP).

        On the embedded transport the batch's rows are inserted in one transaction (all or none). A lost
        connection is re-established as in :meth:`write`, and the whole batch published again (receivers
        know messages by id).
        """
        if self._confirms is None:
            self._with_reconnect(lambda: self._publish_together(messages), "batch publish")
            return
        self._with_reconnect(lambda: self._publish_many(messages), "batch publish")

    def _publish_together(self, messages: list[Message]) -> None:
        """Publish one by one, inside the channel's ``batched_puts`` when it has one (the SQLite
        transport: one commit for the batch)."""
        channel = self._producer.channel if self._producer is not None else None
        batched = getattr(channel, "batched_puts", None)
        together = batched() if batched is not None else contextlib.nullcontext()
        with self._publishing(f"{len(messages)} message(s)"), together:
            for message in messages:
                self._produce(message)

    def _with_reconnect(self, publish: Callable[[], None], what: str) -> None:
        """Run ``publish``, reconnecting with backoff after a TransportError until the deadline."""
        if self._producer is None or self._queue is None:
            raise TransportError("queue sink is not connected (call connect() first)", endpoint=self.url)
        deadline = time.monotonic() + self._broker.reconnect_timeout
        delay = 0.2
        while True:
            try:
                publish()
                return
            except UnroutableError:
                raise
            except TransportError as exc:
                if time.monotonic() + delay > deadline:
                    raise
                get_logger("queue").warning(
                    f"{what} failed, reconnecting", queue=self.endpoint.queue, error=str(exc), retry_in=delay
                )
            self._reconnect(delay)
            delay = min(delay * 2, 5.0)

    def _publish_many(self, messages: list[Message]) -> None:
        if self._confirms is None or self._queue is None:
            raise TransportError("queue sink lost its connection", endpoint=self.url)
        with self._publishing(f"{len(messages)} message(s)"):
            self._confirms.publish_many(
                messages,
                exchange=self._queue.exchange.name,
                routing_key=self.endpoint.publish_key,
                mandatory=self._mandatory,
                timeout=self._broker.connect_timeout * 3,
                url=self.url,
            )

    @contextlib.contextmanager
    def _publishing(self, what: str) -> Iterator[None]:
        """Hold the connection for a publish: refuse a dead one, translate errors, check for returns."""
        with self._lock:
            broken = self._keepalive.error if self._keepalive is not None else None
            if broken is not None:
                raise TransportError(f"queue connection lost: {broken}", endpoint=self.url)
            self._returned.clear()
            with translate_errors(self.url, "publish"):
                yield
            if self._keepalive is not None:
                self._keepalive.touch()
            if self._returned:
                raise UnroutableError(
                    f"{what} unroutable: exchange {self.endpoint.exchange!r} has no queue bound under "
                    f"{self.endpoint.publish_key!r}",
                    endpoint=self.url,
                )

    def _reconnect(self, delay: float) -> None:
        self.close()
        time.sleep(delay)
        with contextlib.suppress(TransportError):  # still down: the next publish says so
            self.connect()

    def _on_return(self, *returned: Any) -> None:
        """basic.return of a mandatory message (exception, exchange, routing key, message)."""
        self._returned.append(returned)

    def _publish(self, message: Message) -> None:
        with self._publishing(f"message {message.id}"):
            self._produce(message)

    def _produce(self, message: Message) -> None:
        """Hand ``message`` to kombu's producer (call inside :meth:`_publishing`)."""
        if self._producer is None or self._queue is None:
            raise TransportError("queue sink lost its connection", endpoint=self.url)
        content_type = str(message.headers.get(WIRE_CONTENT_TYPE) or "application/octet-stream")
        if self._direct is not None:
            self._publish_direct(self._direct, message, content_type)
            return
        self._producer.publish(
            message.body_bytes(),
            routing_key=self.endpoint.publish_key,
            headers=message.wire_headers(),
            delivery_mode=PERSISTENT,
            content_type=content_type,
            content_encoding="binary",
            mandatory=self._mandatory,
            declare=[self._queue],
            retry=False,  # write() reconnects itself, with a deadline
        )
        if self._confirms is not None:
            self._confirms.published_one()

    def _publish_direct(self, channel: Any, message: Message, content_type: str) -> None:
        """Publish on the embedded transport's default exchange without kombu's Producer (~4 µs a publish).

        kombu's ``Producer.publish`` and the channel's ``prepare_message`` written out for this case: the
        same message dict, its keys in the same order (tests/unit/test_queue_sink_direct.py compares the
        rows stored both ways).
        """
        properties = {
            "delivery_mode": PERSISTENT,
            "delivery_info": {},
            "priority": channel.default_priority,
        }
        channel.basic_publish(
            {
                "body": message.body_bytes(),
                "content-encoding": "binary",
                "content-type": content_type,
                "headers": message.wire_headers() or {},
                "properties": properties,
            },
            exchange="",
            routing_key=self.endpoint.publish_key,
            mandatory=self._mandatory,
            immediate=False,
            timeout=None,
            confirm_timeout=None,
        )

    def close(self) -> None:
        """Disconnect. Safe to call twice."""
        keepalive, self._keepalive = self._keepalive, None
        if keepalive is not None:
            keepalive.stop()
        with self._lock:
            conn, self._conn = self._conn, None
            self._producer = None
            self._confirms = None
            self._direct = None
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
