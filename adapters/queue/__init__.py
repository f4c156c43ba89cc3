"""The queue adapter: sources and sinks over kombu, on the embedded SQLite transport or RabbitMQ.

Which broker is only configuration (``broker.url`` in settings): ``sqlite:////abs/path/queues.db`` (the
embedded default, see :mod:`adapters.queue.sqlite_transport`, registered with kombu when a connection is
made) or
``pyamqp://user:pass@host:5672/vhost``. Sources and sinks each hold one kombu connection and belong to
one thread. Importing this package does not import kombu: loading a project and counting or peeking the
SQLite queues (:mod:`adapters.queue.sqlite_read`) do not need it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from adapters.queue import sqlite_read
from adapters.queue.config import QueueEndpoint, broker_connection, ensure_connected
from esb.context import AdapterContext
from esb.message import Message
from esb.registry import lazy_exports

if TYPE_CHECKING:
    from adapters.queue.sink import QueueSink
    from adapters.queue.source import QueueSource

#: The source and sink are imported on first use (their protocol libraries are heavy).
__getattr__ = lazy_exports(
    __name__, {"QueueSink": "adapters.queue.sink", "QueueSource": "adapters.queue.source"}
)

__all__ = ["QueueAdapter", "QueueEndpoint", "QueueSink", "QueueSource"]


class QueueAdapter:
    """Makes queue sources and sinks; also counts and peeks queues for ``esb health`` / ``esb dlq``."""

    name = "queue"

    def endpoint_model(self) -> type[QueueEndpoint]:
        """The model a queue endpoint is validated against."""
        return QueueEndpoint

    def source(self, endpoint: QueueEndpoint, context: AdapterContext) -> QueueSource:
        """Return an unconnected source reading ``endpoint``'s queue."""
        from adapters.queue.source import QueueSource

        return QueueSource(endpoint, context)

    def sink(self, endpoint: QueueEndpoint, context: AdapterContext) -> QueueSink:
        """Return an unconnected sink publishing to ``endpoint``'s queue."""
        from adapters.queue.sink import QueueSink

        return QueueSink(endpoint, context)

    def queue_depth(self, endpoint: QueueEndpoint, context: AdapterContext) -> int:
        """Return how many messages wait, ready, in ``endpoint``'s queue (0 if it was never declared)."""
        return self.queue_stats(endpoint, context)["ready"]

    def queue_stats(self, endpoint: QueueEndpoint, context: AdapterContext) -> dict[str, int]:
        """Return ``ready`` (and on the SQLite transport ``in_flight``, ``delayed``) counts."""
        broker = context.settings.broker
        fast = sqlite_read.read_stats(broker.url, endpoint.queue, _busy_timeout(broker.transport_options))
        if fast is not None:
            return fast
        from adapters.queue.errors import translate_errors  # imports kombu and py-amqp

        with translate_errors(broker.url, "count"), broker_connection(broker, publisher=False) as conn:
            ensure_connected(conn, broker)
            channel = conn.channel()
            stats = getattr(channel, "queue_stats", None)
            if stats is not None:
                return dict(stats(endpoint.queue))
            return {"ready": _passive_count(channel, endpoint.queue)}

    def health(self, endpoint: QueueEndpoint, context: AdapterContext) -> tuple[str, str]:
        """``esb health``: the broker answers for this queue; how many messages wait on it."""
        stats = self.queue_stats(endpoint, context)
        extra = f", {stats['in_flight']} in flight" if stats.get("in_flight") else ""
        return "ok", f"queue {endpoint.queue}: {stats['ready']} waiting{extra}"

    def peek(self, endpoint: QueueEndpoint, context: AdapterContext, limit: int = 10) -> list[Message]:
        """Return up to ``limit`` messages of the queue without consuming them (see ``peek_messages``).

        On the SQLite broker the rows are read through ``sqlite3`` (:mod:`adapters.queue.sqlite_read`),
        without importing kombu's consumer side; kombu answers what that path cannot.
        """
        broker = context.settings.broker
        timeout = _busy_timeout(broker.transport_options)
        fast = sqlite_read.read_peek(broker.url, endpoint.queue, limit, timeout)
        if fast is not None:
            return [Message.from_wire(body, headers, source=context.endpoint) for body, headers in fast]
        from adapters.queue.source import peek_messages

        return peek_messages(endpoint, context, limit)

    def publisher(self, endpoint: QueueEndpoint, context: AdapterContext) -> QueueSink:
        """Return a sink publishing where ``endpoint``'s source reads (replay, dlq retry)."""
        from adapters.queue.sink import QueueSink

        return QueueSink(endpoint, context)

    def partition(self, endpoint: QueueEndpoint, index: int) -> QueueEndpoint:
        """Partition ``index`` of ``endpoint``: queue ``<queue>.p<index>``, one consumer at a time."""
        return endpoint.model_copy(
            update={"queue": f"{endpoint.queue}.p{index}", "single_active_consumer": True, "exchange": "",
                    "routing_key": None}
        )  # fmt: skip

    def ordering_problem(self, endpoint: QueueEndpoint) -> str | None:
        """Two consumers of one queue reorder it: an ordered source needs ``single_active_consumer``."""
        if endpoint.single_active_consumer:
            return None
        return (
            "needs single_active_consumer: true (else two hub processes read the queue at once and "
            "reorder it)"
        )


def _busy_timeout(options: dict[str, Any]) -> float:
    """The seconds a read waits for another process's write lock (the transport's ``busy_timeout``)."""
    try:
        return float(options.get("busy_timeout", 10.0))
    except (TypeError, ValueError):
        return 10.0


def _passive_count(channel: Any, queue: str) -> int:
    try:
        ok = channel.queue_declare(queue=queue, passive=True)
    except Exception as exc:  # a missing queue is an empty one (AMQP closes the channel: NOT_FOUND)
        if "NOT_FOUND" in str(exc) or type(exc).__name__ == "NotFound":
            return 0
        raise
    return int(ok.message_count)
