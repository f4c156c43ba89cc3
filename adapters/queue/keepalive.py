"""Heartbeats for an AMQP connection while its owner is busy elsewhere (a long SOAP call in a step).

RabbitMQ closes a connection that sent nothing for about two heartbeat intervals, and py-amqp's
``heartbeat_check`` raises "Too many heartbeats missed" when nothing was *read* for as long. A route
worker reads its source only between messages, so a step that blocks for longer than that (a SOAP call
with its retries and backoff) would get the connection killed and its unacked deliveries handed to
another consumer: duplicates, and an ack that fails.

So each AMQP connection of the queue adapter gets a :class:`Keepalive` thread that, about once a second,
sends a heartbeat when one is due and reads whatever frames are waiting (server heartbeats; on a
consuming connection also deliveries, which the consumer's callback appends to the source's buffer,
bounded by the prefetch). kombu connections are not thread-safe, so every use of the connection, by its
owner and by this thread, happens under one lock (:attr:`Keepalive.lock`); the thread never waits on the
socket while holding it (``drain_events(timeout=0)``). When the connection is found broken the thread
records the error and stops; the owner raises it as a TransportError at its next use and reconnects.
"""

# mypy: disable-error-code="no-untyped-call"
# (kombu 5.7 ships without annotations for most of its API; every call into it is untyped)

from __future__ import annotations

import threading
import time

from kombu.connection import Connection

from adapters.queue.errors import BROKER_ERRORS

#: frames read per tick at most, so a burst never holds the lock for long
MAX_FRAMES_PER_TICK = 50


class Keepalive(threading.Thread):
    """A daemon thread keeping one AMQP connection's heartbeats going; stop it before closing."""

    def __init__(self, conn: Connection, lock: threading.RLock, name: str, interval: float = 1.0) -> None:
        super().__init__(name=f"keepalive-{name}", daemon=True)
        self.conn = conn
        self.lock = lock
        self.interval = interval
        self.error: BaseException | None = None
        self.last_use = time.monotonic()
        self._stop_event = threading.Event()

    def touch(self) -> None:
        """The owner just used the connection (call with the lock held): no tick needed for a while.

        Ticks happen only when the owner has been away for two intervals, so the thread never pulls
        deliveries into the buffer of a source that is about to close after its last read.
        """
        self.last_use = time.monotonic()

    def run(self) -> None:
        """Tick until stopped or until the connection breaks."""
        while not self._stop_event.wait(self.interval):
            with self.lock:
                if self._stop_event.is_set():
                    return
                if time.monotonic() - self.last_use < 2 * self.interval:
                    continue
                try:
                    tick(self.conn)
                except BROKER_ERRORS as exc:
                    self.error = exc
                    return

    def stop(self) -> None:
        """Stop ticking (returns at once; the thread ends within one interval)."""
        self._stop_event.set()


def tick(conn: Connection) -> None:
    """Send a heartbeat if due and read the frames already waiting, without blocking."""
    conn.heartbeat_check()
    for _ in range(MAX_FRAMES_PER_TICK):
        try:
            conn.drain_events(timeout=0)
        except TimeoutError:
            return
