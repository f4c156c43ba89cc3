"""A simulated system that consumes one queue endpoint and remembers each message id once."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from esb.message import Message

if TYPE_CHECKING:
    from esb.project import Project


class QueueReceiver(threading.Thread):
    """Consumes an endpoint through its real adapter; ``received`` maps message id to body bytes.

    ``accept`` may refuse a body (returns a reason): such ids land in ``malformed``. A message id seen
    before counts as a duplicate and is not recorded again (an idempotent receiver).
    """

    def __init__(
        self, project: Project, endpoint: str, accept: Callable[[bytes], str | None] | None = None
    ) -> None:
        super().__init__(name=f"sim-{endpoint}", daemon=True)
        self.project = project
        self.endpoint = endpoint
        self.accept = accept
        self.received: dict[str, bytes] = {}
        self.duplicates = 0
        self.malformed: list[str] = []
        self.stop_event = threading.Event()
        self.ready = threading.Event()
        self._lock = threading.Lock()

    def run(self) -> None:
        """Consume until stopped."""
        config = self.project.endpoint(self.endpoint)
        source = self.project.adapter_for(self.endpoint).source(config, self.project.context(self.endpoint))
        with source:
            self.ready.set()
            while not self.stop_event.is_set():
                delivery = source.read(0.2)
                if delivery is not None:
                    self.take(delivery.message)
                    delivery.ack()

    def take(self, message: Message) -> None:
        """Record one message (once per id)."""
        body = message.body_bytes()
        problem = self.accept(body) if self.accept else None
        with self._lock:
            if message.id in self.received:
                self.duplicates += 1
            elif problem:
                self.malformed.append(f"{message.id}: {problem}")
            else:
                self.received[message.id] = body

    def count(self, prefix: str = "") -> int:
        """How many distinct messages (whose id starts with ``prefix``) were received."""
        with self._lock:
            return sum(1 for mid in self.received if mid.startswith(prefix))

    def stop(self) -> None:
        """Stop consuming."""
        self.stop_event.set()
