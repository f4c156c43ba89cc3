"""Reading a queue: a pull API (``read(timeout)``) over a kombu consumer.

One source is one kombu connection with one channel and one consumer; kombu connections are not
thread-safe, so a source belongs to one thread (the route worker that reads and settles), plus on AMQP
its :class:`~adapters.queue.keepalive.Keepalive` thread, with which it shares a lock. Deliveries are
settled through :class:`esb.typing.Delivery`: ``ack()`` acks, ``ack(error)`` rejects with requeue so the
message comes back. On AMQP the acks are sent at the source's next ``read`` (or ``close``), as one
``basic.ack`` with ``multiple`` for the run of settled deliveries (:mod:`adapters.queue.acks`).

An ack that fails because the connection died is not an error for the route: the broker hands the
message out again (RabbitMQ when it notices the dead connection, the embedded transport when the lease
expires), and the engine's idempotent receiver acks the redelivery without processing it again. The
source logs it, and its next ``read`` raises TransportError so the worker reconnects.
"""

# mypy: disable-error-code="no-untyped-call"
# (kombu 5.7 ships without annotations for most of its API; every call into it is untyped)

from __future__ import annotations

import contextlib
import threading
import time
from collections import deque
from types import TracebackType
from typing import Any

from kombu.connection import Connection
from kombu.message import Message as KombuMessage
from kombu.messaging import Consumer

from adapters.queue.acks import PendingAcks
from adapters.queue.channel import queue_channel
from adapters.queue.config import QueueEndpoint, broker_connection, ensure_connected
from adapters.queue.errors import BROKER_ERRORS, translate_errors
from adapters.queue.keepalive import Keepalive
from esb.context import AdapterContext
from esb.exceptions import TransportError
from esb.logging import get_logger
from esb.message import Message
from esb.typing import Delivery

#: Reads run the keep-alive (AMQP heartbeats, the SQLite transport's lease renewal) at most this often
#: (seconds): heartbeat intervals are tens of seconds and leases are renewed at half their
#: ``visibility_timeout`` (30 s by default); a check per delivery was ~10 µs of a batch member's CPU.
HEARTBEAT_CHECK_EVERY = 0.2


def delivery_count(message: KombuMessage) -> int:
    """How many times the broker has handed ``message`` out, 1 the first time.

    The hook for each broker's way of saying it: the SQLite transport counts every fetch in
    ``delivery_info["delivery_count"]``; RabbitMQ quorum queues send ``x-delivery-count`` (earlier
    failed attempts, absent the first time); classic queues only say ``redelivered``.
    """
    info = message.delivery_info or {}
    if "delivery_count" in info:
        return int(info["delivery_count"])
    headers = message.headers or {}
    if "x-delivery-count" in headers:
        return int(headers["x-delivery-count"]) + 1
    return 2 if info.get("redelivered") else 1


class QueueSource:
    """Reads one queue; each delivery stays unacked (leased) until the route settles it."""

    def __init__(self, endpoint: QueueEndpoint, context: AdapterContext) -> None:
        self.endpoint = endpoint
        self.context = context
        self._broker = context.settings.broker
        self._conn: Connection | None = None
        self._consumer: Consumer | None = None
        self._buffer: deque[KombuMessage] = deque()
        self._lock = threading.RLock()
        self._heartbeats: Keepalive | None = None
        self._broken: BaseException | None = None
        self._acks: PendingAcks | None = None
        self._checked = 0.0  # when the keep-alive last ran (heartbeats on AMQP, leases on SQLite)

    @property
    def url(self) -> str:
        """The broker URL (mask it before showing it: errors do)."""
        return self._broker.url

    def connect(self) -> None:
        """Connect, declare the queue durably, set the prefetch and start consuming."""
        if self._conn is not None:
            return
        with queue_channel(self.context, self.endpoint, publisher=False) as (conn, channel, queue, amqp):
            if not amqp and hasattr(channel, "hold_acks"):  # SQLite transport: acked rows deleted together
                channel.hold_acks = True
            consumer = Consumer(channel, queues=[queue], on_message=self._buffer.append, auto_declare=False)
            consumer.qos(prefetch_count=self._broker.prefetch)
            consumer.consume()
        self._conn, self._consumer, self._broken = conn, consumer, None
        self._acks = PendingAcks(channel) if amqp else None
        if amqp and self._broker.heartbeat:
            self._heartbeats = Keepalive(conn, self._lock, self.endpoint.queue)
            self._heartbeats.start()

    @property
    def broken(self) -> bool:
        """True once the connection is known to be lost (settling failed, heartbeats stopped)."""
        heartbeat_error = self._heartbeats.error if self._heartbeats is not None else None
        return self._broken is not None or heartbeat_error is not None

    def read(self, timeout: float) -> Delivery | None:
        """Return the next delivery, or None when none arrived within ``timeout`` seconds."""
        conn = self._require()
        with self._lock:
            broken = self._broken or (self._heartbeats.error if self._heartbeats is not None else None)
            if broken is not None:
                raise TransportError(f"queue connection lost: {broken}", endpoint=self.url) from broken
            if self._acks is not None and self._acks.waiting:
                self._send_acks()
            if not self._buffer:
                try:
                    self._wait(conn, timeout)
                except TransportError as exc:  # the connection died: broken until reconnected
                    self._broken = exc
                    raise
            if self._heartbeats is not None:
                self._heartbeats.touch()
            if not self._buffer:
                return None
            raw = self._buffer.popleft()
            acks = self._acks  # this connection's: a delivery is settled on the channel that handed it out
            if acks is not None:
                acks.handed_out(raw.delivery_tag)
        message = Message.from_wire(_body(raw), raw.headers, source=self.context.endpoint)  # copies them
        return Delivery(
            message, lambda error: self._settle(raw, error, acks), delivery_count=delivery_count(raw)
        )

    def _wait(self, conn: Connection, timeout: float) -> None:
        """Drain until a delivery arrives or ``timeout`` passes, in slices of at most a second so that
        heartbeats are checked (and sent) even while the worker waits on an idle queue."""
        deadline = time.monotonic() + max(timeout, 0.0)
        with translate_errors(self.url, "read"):
            while not self._buffer:
                now = time.monotonic()
                if now - self._checked >= HEARTBEAT_CHECK_EVERY:
                    self._keepalive(conn)
                    self._checked = now
                remaining = deadline - now
                try:
                    conn.drain_events(timeout=min(max(remaining, 0.0), 1.0))
                except TimeoutError:
                    if remaining <= 1.0:
                        return
                    continue
                if remaining <= 0:
                    return

    def _keepalive(self, conn: Connection) -> None:
        """Heartbeats (AMQP) and lease renewal of unacked deliveries (SQLite transport)."""
        conn.heartbeat_check()
        channel = self._consumer.channel if self._consumer is not None else None
        keep_leases = getattr(channel, "keep_leases", None)
        if keep_leases is not None:
            keep_leases()

    def _send_acks(self) -> None:
        """Send the acks held (call with the lock); a failure marks the connection broken and raises."""
        if self._acks is None:
            return
        try:
            with translate_errors(self.url, "ack"):
                self._acks.flush()
        except TransportError as exc:
            self._settling_failed(exc)
            raise

    def _settling_failed(self, exc: TransportError) -> None:
        """Mark the connection broken by a failed ack or requeue; the broker hands the messages out again."""
        self._broken = exc
        get_logger("queue").warning(
            "settling failed with the connection; the broker hands the messages out again",
            queue=self.endpoint.queue,
            error=str(exc),
        )

    def _settle(self, raw: KombuMessage, error: BaseException | None, acks: PendingAcks | None) -> None:
        if self._conn is None:
            raise TransportError(
                "queue source closed before the ack; the message comes back", endpoint=self.url
            )
        with self._lock:
            if acks is not None and acks is not self._acks:  # its tag means nothing on the new channel
                get_logger("queue").warning(
                    "the connection that delivered the message was closed; the broker hands it out again",
                    queue=self.endpoint.queue,
                )
                return
            if acks is not None and error is None:
                acks.ack(raw.delivery_tag)  # sent at the next read or close
                return
            try:
                with translate_errors(self.url, "ack" if error is None else "requeue"):
                    if acks is not None:
                        acks.reject(raw.delivery_tag)
                    elif error is None:
                        raw.ack()
                    else:
                        raw.reject(requeue=True)
                if self._heartbeats is not None:
                    self._heartbeats.touch()
            except TransportError as exc:
                self._settling_failed(exc)

    def _require(self) -> Connection:
        if self._conn is None:
            raise TransportError("queue source is not connected (call connect() first)", endpoint=self.url)
        return self._conn

    def close(self) -> None:
        """Stop consuming and disconnect; unsettled deliveries come back. Safe to call twice."""
        heartbeats, self._heartbeats = self._heartbeats, None
        if heartbeats is not None:
            heartbeats.stop()
        with self._lock:
            conn, self._conn = self._conn, None
            consumer, self._consumer = self._consumer, None
            self._buffer.clear()
            if conn is None:
                return
            if self._broken is None:  # a dead connection cannot ack or cancel: it would only wait
                with contextlib.suppress(TransportError):
                    self._send_acks()
            self._acks = None
            if self._broken is None:
                with contextlib.suppress(*BROKER_ERRORS):
                    if consumer is not None:
                        consumer.cancel()
            with contextlib.suppress(*BROKER_ERRORS):
                conn.release()

    def __enter__(self) -> QueueSource:
        self.connect()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def _body(raw: KombuMessage) -> bytes:
    body: Any = raw.body
    if isinstance(body, bytes):
        return body
    if isinstance(body, str):
        return body.encode("utf-8")
    return bytes(body)


def peek_messages(endpoint: QueueEndpoint, context: AdapterContext, limit: int = 10) -> list[Message]:
    """Return up to ``limit`` messages of ``endpoint``'s queue, oldest first, leaving them queued.

    The SQLite transport reads the rows without claiming them. Other brokers: the messages are fetched
    unacked and given back when the connection closes (RabbitMQ marks them redelivered).
    """
    broker = context.settings.broker
    with translate_errors(broker.url, "peek"), broker_connection(broker, publisher=False) as conn:
        ensure_connected(conn, broker)
        channel = conn.channel()
        peek = getattr(channel, "peek", None)
        if peek is not None:
            raws = [channel.Message(payload, channel=channel) for payload in peek(endpoint.queue, limit)]
        else:
            raws = []
            while len(raws) < limit:
                got = channel.basic_get(endpoint.queue, no_ack=False)
                if got is None:
                    break
                raws.append(channel.message_to_python(got))
        return [Message.from_wire(_body(r), dict(r.headers or {}), source=context.endpoint) for r in raws]
