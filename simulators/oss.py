"""The simulated OSS: accepts service activations over SOAP and answers later on its result queue.

It speaks ``config/contracts/oss/oss.wsdl`` (ActivateService, DeactivateService) over SOAP 1.1 and 1.2
with the simulators' own lxml code. A request is accepted at once with a ticket; after ``result_delay``
seconds a worker thread publishes the result (JSON, the shape ``xsd/oss-activation.xsd`` describes) on
the queue endpoint ``oss.activation_results``, correlated by order id, component id and idempotency key.
Injected behaviour: ``failure_rate`` (a share of results ``FAILED`` with ``OSS-2001``), ``timeout_rate``
(a share of results never sent), ``silent_orders`` (order ids whose results are never sent, not even
again on a repeat: decided per order in advance by the demo's scenarios), ``latency`` (seconds each SOAP
answer waits) and :meth:`OSSSimulator.busy_next` (the transient fault ``OSS-0503``).

Both operations are idempotent by key: a repeat returns the same ticket, does nothing twice, and sends
the ticket's result again once it is decided (also one that was dropped: a process that retries after
its deadline with the same key gets an answer). ``activated_twice()`` lists services activated while
already active: what "no service activated twice" checks.
"""

from __future__ import annotations

import heapq
import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from esb.message import Message
from simulators.soap_service import Fields, Handler, ServiceFault, SimulatedSOAPService, now_iso, required

if TYPE_CHECKING:
    from esb.project import Project

TYPES = "http://oss.telecom.example/ws/types/v1"
FAULTS = "http://oss.telecom.example/ws/faults/v1"
RESULT_TYPE = "oss.activation_result"
#: A service is known to OSS by the order and component it was ordered for.
Service = tuple[str, str]


@dataclass
class Ticket:
    """One accepted request and, once decided, its result."""

    ticket_id: str
    action: str
    key: str
    order_id: str
    component_id: str
    service_type: str
    result: dict[str, Any] | None = None
    dropped: bool = False


class OSSSimulator(SimulatedSOAPService):
    """The OSS activation web service and its result publisher; ``serve()`` starts both."""

    TYPES = TYPES
    FAULTS = FAULTS
    FAULT_ELEMENT = "OSSFault"
    NAME = "sim-oss"
    PATH = "/services/OSSActivation"
    BAD_REQUEST = "OSS-0400"
    UNAUTHORISED = "OSS-0401"
    BUSY = "OSS-0503"

    def __init__(
        self,
        username: str = "esb",
        password: str = "oss-secret",  # noqa: S107 - a test default, like the Billing simulator's
        *,
        publish: Callable[[Message], None] | None = None,
        result_delay: float = 0.0,
        failure_rate: float = 0.0,
        timeout_rate: float = 0.0,
        latency: float = 0.0,
        seed: int | None = None,
    ) -> None:
        super().__init__(username, password)
        self.publish = publish
        self.result_delay = result_delay
        self.failure_rate = failure_rate
        self.timeout_rate = timeout_rate
        self.latency = latency
        self.tickets: dict[str, Ticket] = {}
        self.by_key: dict[str, str] = {}
        self.active: set[Service] = set()
        #: activations done per service; above 1 with no deactivation between is a double activation
        self.activations: Counter[Service] = Counter()
        self.deactivations: Counter[Service] = Counter()
        self.published: list[Message] = []
        #: order ids OSS never sends a result for (the work is done; the answer is lost every time)
        self.silent_orders: set[str] = set()
        self._doubles: list[Service] = []
        self._random = random.Random(seed)  # noqa: S311 - simulated failures, not security
        self._next = 0
        self._due: list[tuple[float, int, str]] = []
        self._wake = threading.Condition(self._lock)
        self._stopping = False
        self._worker: threading.Thread | None = None

    # -- behaviour ----------------------------------------------------------------------------------

    def activated_twice(self) -> list[Service]:
        """Services activated while they were already active (none, if the caller is idempotent)."""
        with self._lock:
            return list(self._doubles)

    def tickets_of(self, order_id: str) -> list[Ticket]:
        """The tickets of one order, in the order they were accepted."""
        with self._lock:
            return [t for t in self.tickets.values() if t.order_id == order_id]

    def _accept(self, action: str, f: Fields) -> dict[str, str]:
        key = required(f, "idempotencyKey", "OSS-0400")
        order_id, component_id = required(f, "orderId", "OSS-0400"), required(f, "componentId", "OSS-0400")
        with self._lock:
            known = self.by_key.get(key)
            if known is not None:
                ticket = self.tickets[known]
                if (ticket.action, ticket.order_id, ticket.component_id) != (action, order_id, component_id):
                    raise ServiceFault(
                        "OSS-1006",
                        f"idempotency key {key!r} already used to {ticket.action} "
                        f"{ticket.order_id}/{ticket.component_id}",
                    )
                if ticket.result is not None:
                    ticket.dropped = False
                    self._schedule(ticket.ticket_id, 0.0)  # send the known result again
                return {"ticketId": ticket.ticket_id, "status": "ACCEPTED", "acceptedAt": now_iso()}
            self._next += 1
            ticket = Ticket(
                f"T{self._next:08d}",
                action,
                key,
                order_id,
                component_id,
                required(f, "serviceType", "OSS-0400"),
            )
            self.tickets[ticket.ticket_id] = ticket
            self.by_key[key] = ticket.ticket_id
            self._schedule(ticket.ticket_id, self.result_delay)
        return {"ticketId": ticket.ticket_id, "status": "ACCEPTED", "acceptedAt": now_iso()}

    def operations(self) -> dict[str, tuple[str, Handler]]:
        """Request element local name -> (response element local name, handler)."""
        return {
            "ActivateServiceRequest": ("ActivateServiceResponse", lambda f: self._accept("activate", f)),
            "DeactivateServiceRequest": (
                "DeactivateServiceResponse",
                lambda f: self._accept("deactivate", f),
            ),
        }

    # -- the result worker --------------------------------------------------------------------------
    def _schedule(self, ticket_id: str, delay: float) -> None:
        heapq.heappush(self._due, (time.monotonic() + delay, self._next, ticket_id))
        self._wake.notify()

    def _decide(self, ticket: Ticket) -> dict[str, Any]:
        """Do the work once and return the ticket's result (failure and drop drawn here)."""
        service = (ticket.order_id, ticket.component_id)
        failed = self.failure_rate > 0 and self._random.random() < self.failure_rate
        ticket.dropped = self.timeout_rate > 0 and self._random.random() < self.timeout_rate
        result: dict[str, Any] = {
            "ticketId": ticket.ticket_id,
            "action": ticket.action,
            "orderId": ticket.order_id,
            "componentId": ticket.component_id,
            "idempotencyKey": ticket.key,
            "result": "FAILED" if failed and ticket.action == "activate" else "COMPLETED",
            "serviceId": f"SVC-{ticket.order_id}-{ticket.component_id}",
            "completedAt": now_iso(),
        }
        if result["result"] == "FAILED":
            result |= {"errorCode": "OSS-2001", "errorMessage": "activation failed on the network element"}
        elif ticket.action == "activate":
            if service in self.active:
                self._doubles.append(service)
            self.active.add(service)
            self.activations[service] += 1
        else:
            self.active.discard(service)  # deactivating an inactive service is no change
            self.deactivations[service] += 1
        return result

    def _run(self) -> None:
        while True:
            with self._lock:
                while not self._stopping and (not self._due or self._due[0][0] > time.monotonic()):
                    self._wake.wait(None if not self._due else self._due[0][0] - time.monotonic())
                if self._stopping:
                    return
                ticket = self.tickets[heapq.heappop(self._due)[2]]
                if ticket.result is None:
                    ticket.result = self._decide(ticket)
                send = not ticket.dropped and ticket.order_id not in self.silent_orders
                result = dict(ticket.result)
            if send:
                self._send(ticket, result)

    def _send(self, ticket: Ticket, result: dict[str, Any]) -> None:
        message = Message(
            result,
            id=f"{ticket.ticket_id}-result",  # the same id each time it is sent again: a duplicate
            correlation_id=ticket.order_id,
            type=RESULT_TYPE,
            source="oss",
            headers={  # as a real OSS sets message properties: correlation without parsing the body
                "orderId": ticket.order_id,
                "componentId": ticket.component_id,
                "idempotencyKey": ticket.key,
            },
        )
        if self.publish is not None:
            self.publish(message)
        with self._lock:
            self.published.append(message)

    def start_worker(self) -> None:
        """Start the thread that sends results when they are due (``serve`` does)."""
        with self._lock:
            if self._worker is None:
                self._stopping = False
                self._worker = threading.Thread(target=self._run, name="sim-oss-results", daemon=True)
                self._worker.start()

    def serve(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Serve on ``host``:``port`` and start the result worker; return the service URL."""
        self.start_worker()
        return super().serve(host, port)

    def stop(self) -> None:
        """Stop serving and stop the result worker (results not yet due are not sent)."""
        with self._lock:
            self._stopping = True
            self._wake.notify_all()
            worker, self._worker = self._worker, None
        if worker is not None:
            worker.join(5)
        super().stop()


class QueuePublisher:
    """Publishes messages on a project's queue endpoint; the sink opens in the thread that first writes."""

    def __init__(self, project: Project, endpoint: str = "oss.activation_results") -> None:
        self.project = project
        self.endpoint = endpoint
        self._sink: Any = None

    def __call__(self, message: Message) -> None:
        """Publish one message."""
        if self._sink is None:
            self._sink = self.project.adapter_for(self.endpoint).sink(
                self.project.endpoint(self.endpoint), self.project.context(self.endpoint)
            )
            self._sink.connect()
        self._sink.write(message)

    def close(self) -> None:
        """Close the sink (may be called twice)."""
        sink, self._sink = self._sink, None
        if sink is not None:
            sink.close()
