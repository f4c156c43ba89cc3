"""The simulated IOM: consumes order requests from its queue, as the real IOM does."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

import orjson

from esb.logging import get_logger
from esb.message import Message

if TYPE_CHECKING:
    from esb.project import Project

#: (project, endpoint) -> the simulator consuming it, for routes that feed the same IOM queue
_SHARED: dict[tuple[int, str], IOMSimulator] = {}
_SHARED_LOCK = threading.Lock()


class IOMSimulator(threading.Thread):
    """Consumes ``iom.orders_in``; records each order once per message id; counts malformed requests.

    ``received`` maps message id to the order request; ``duplicates`` counts redeliveries it ignored;
    ``malformed`` lists ids of bodies that were not an IOM order request.
    """

    REQUIRED = ("header", "orderLines")

    def __init__(self, project: Project, endpoint: str = "iom.orders_in", on_order: Any = None) -> None:
        super().__init__(name="sim-iom", daemon=True)
        self.project = project
        self.endpoint = endpoint
        self.on_order = on_order
        self.received: dict[str, dict[str, Any]] = {}
        self.duplicates = 0
        self.malformed: list[str] = []
        self.stop_event = threading.Event()
        self.ready = threading.Event()
        self._lock = threading.Lock()
        self.log = get_logger("sim-iom")

    def run(self) -> None:
        """Consume until stopped."""
        source = self.project.adapter_for(self.endpoint).source(
            self.project.endpoint(self.endpoint), self.project.context(self.endpoint)
        )
        with source:
            self.ready.set()
            while not self.stop_event.is_set():
                delivery = source.read(0.2)
                if delivery is None:
                    continue
                self.accept(delivery.message)
                delivery.ack()

    def accept(self, message: Message) -> None:
        """Record one order request (idempotently)."""
        with self._lock:
            if message.id in self.received:
                self.duplicates += 1
                return
            try:
                order = orjson.loads(message.body_bytes())
            except orjson.JSONDecodeError:
                self.malformed.append(message.id)
                return
            if not isinstance(order, dict) or any(k not in order for k in self.REQUIRED):
                self.malformed.append(message.id)
                return
            self.received[message.id] = order
        if self.on_order is not None:
            self.on_order(message, order)

    @classmethod
    def shared(cls, project: Project, endpoint: str = "iom.orders_in") -> IOMSimulator:
        """Return the one simulator consuming ``endpoint`` for ``project``: scenarios whose routes feed the
        same queue share it (two consumers would split the messages between them); start it with
        :meth:`start_once` and count each scenario's own messages with ``count(prefix=...)``."""
        with _SHARED_LOCK:
            sim = _SHARED.get((id(project), endpoint))
            if sim is None or sim.project is not project or sim.stop_event.is_set():
                sim = _SHARED[(id(project), endpoint)] = cls(project, endpoint)
            return sim

    def start_once(self) -> None:
        """Start consuming unless another scenario already started this (shared) simulator."""
        with self._lock:
            if not self.is_alive() and self.ident is None:
                self.start()

    def count(self, prefix: str | None = None) -> int:
        """Return how many distinct orders were received (only ids starting with ``prefix`` if given)."""
        with self._lock:
            if prefix is None:
                return len(self.received)
            return sum(1 for mid in self.received if mid.startswith(prefix))

    def stop(self) -> None:
        """Stop consuming."""
        self.stop_event.set()
