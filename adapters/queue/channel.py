"""Opening a queue endpoint's connection and channel, the same way for sources and sinks."""

# mypy: disable-error-code="no-untyped-call"
# (kombu 5.7 ships without annotations for most of its API; every call into it is untyped)

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from kombu.connection import Connection
from kombu.entity import Queue

from adapters.queue.config import QueueEndpoint, broker_connection, declare_queue, ensure_connected, is_amqp
from adapters.queue.errors import BROKER_ERRORS, translate_errors
from adapters.queue.frames import read_frames
from esb.context import AdapterContext


@contextlib.contextmanager
def queue_channel(
    context: AdapterContext, endpoint: QueueEndpoint, *, publisher: bool
) -> Iterator[tuple[Connection, Any, Queue, bool]]:
    """Connect, open a channel and declare the endpoint's queue; yield ``(conn, channel, queue, amqp)``.

    On AMQP the connection reads its frames through one buffer (:func:`adapters.queue.frames.read_frames`).
    The caller finishes its set-up (producer or consumer) inside the block; if anything in it fails,
    the connection is released and the error surfaces as a TransportError naming the masked URL.
    """
    broker = context.settings.broker
    conn = broker_connection(broker, publisher=publisher)
    try:
        with translate_errors(broker.url, "connect"):
            ensure_connected(conn, broker)
            channel = conn.channel()
            amqp = is_amqp(conn)
            if amqp:
                read_frames(conn.connection.transport)
            queue = declare_queue(
                channel, endpoint, amqp=amqp, max_deliveries=context.settings.limits.max_deliveries
            )
            yield conn, channel, queue, amqp
    except BaseException:
        with contextlib.suppress(*BROKER_ERRORS):
            conn.release()
        raise
