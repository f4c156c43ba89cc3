"""The options of a queue endpoint (``adapter: queue`` in ``config/systems.yaml``)."""

# mypy: disable-error-code="no-untyped-call"
# (kombu 5.7 ships without annotations for most of its API; every call into it is untyped)

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, model_validator

from adapters.queue.sqlite_read import register
from esb.config.settings import BrokerSettings
from esb.config.systems import EndpointConfig

if TYPE_CHECKING:  # kombu is imported when a connection is made: loading a project does not need it
    from kombu.connection import Connection
    from kombu.entity import Queue


class QueueEndpoint(EndpointConfig):
    """A queue on the hub's broker (the embedded SQLite transport, or RabbitMQ in production).

    With no ``exchange`` a message is published straight to ``queue`` (AMQP's default exchange). With an
    ``exchange`` (direct), the queue is bound to it under ``routing_key`` (the queue's name by default).
    """

    adapter: Literal["queue"] = "queue"
    queue: str = Field(min_length=1, max_length=255, description="the queue's name")
    exchange: str = Field(default="", max_length=255, description="direct exchange; empty: the default one")
    routing_key: str | None = Field(
        default=None, max_length=255, description="binding / publish key when an exchange is named"
    )
    durable: bool = Field(default=True, description="declare the queue (and exchange) durable")
    queue_type: Literal["quorum", "classic"] = Field(
        default="quorum",
        description="RabbitMQ queue type (quorum: replicated, delivery counts, poison cap); ignored on "
        "the embedded transport. Changing it for an existing queue needs a new queue name",
    )
    single_active_consumer: bool = Field(
        default=False,
        description="RabbitMQ: one consumer at a time across every hub process gets the queue's messages, "
        "the others stand by and take over when it dies (ordered routes, ordered_by)",
    )
    delivery_limit: int | None = Field(
        default=None,
        ge=1,
        description="RabbitMQ quorum queues: returns after which the broker itself moves a message to "
        "<queue>.poison (default: limits.max_deliveries + 2, so the hub's own poison check comes first)",
    )

    @model_validator(mode="after")
    def _routing_key_needs_exchange(self) -> QueueEndpoint:
        if self.routing_key is not None and not self.exchange:
            raise ValueError("routing_key needs an exchange (with the default exchange the key is the queue)")
        return self

    @property
    def publish_key(self) -> str:
        """The routing key messages are published under."""
        return self.routing_key if self.routing_key is not None else self.queue


#: The exchange a quorum queue's poison messages go to (routing key: the queue's name).
POISON_EXCHANGE = "esb.poison"


def is_amqp(conn: Connection) -> bool:
    """Return True when ``conn`` speaks AMQP (RabbitMQ), False for the embedded and virtual transports."""
    return getattr(conn.transport, "driver_type", "") == "amqp"


def broker_connection(broker: BrokerSettings, *, publisher: bool) -> Connection:
    """Return an unconnected kombu connection for the broker settings.

    Publishing connections ask for publisher confirms (py-amqp's ``confirm_publish``; the SQLite
    transport commits before ``publish`` returns). ``max_retries`` bounds the first connect too.
    """
    from kombu.connection import Connection

    register()  # the "sqlite" scheme names the embedded transport
    options: dict[str, Any] = dict(broker.transport_options)
    options.setdefault("max_retries", broker.max_retries)
    if publisher:
        options.setdefault("confirm_publish", True)
    return Connection(
        broker.url,
        heartbeat=broker.heartbeat,
        connect_timeout=broker.connect_timeout,
        transport_options=options,
    )


def ensure_connected(conn: Connection, broker: BrokerSettings) -> None:
    """Connect, trying ``broker.max_retries`` times with short backoff (0.2 s growing to 5 s)."""
    conn.ensure_connection(
        max_retries=broker.max_retries, interval_start=0.2, interval_step=0.5, interval_max=5
    )


def queue_arguments(endpoint: QueueEndpoint, max_deliveries: int) -> dict[str, Any]:
    """RabbitMQ arguments of the endpoint's queue: quorum with a delivery cap and a poison queue."""
    single: dict[str, Any] = {"x-single-active-consumer": True} if endpoint.single_active_consumer else {}
    if endpoint.queue_type != "quorum" or not endpoint.durable:  # quorum queues are always durable
        return single
    return {
        **single,
        "x-queue-type": "quorum",
        "x-delivery-limit": endpoint.delivery_limit or max_deliveries + 2,
        "x-dead-letter-exchange": POISON_EXCHANGE,
        "x-dead-letter-routing-key": endpoint.queue,
        "x-dead-letter-strategy": "at-least-once",
        "x-overflow": "reject-publish",  # at-least-once dead-lettering requires it
    }


def declare_queue(
    channel: Any, endpoint: QueueEndpoint, *, amqp: bool = False, max_deliveries: int = 10
) -> Queue:
    """Declare the endpoint's queue durably (and its direct exchange and binding); return it bound.

    On RabbitMQ (``amqp``) a quorum queue also gets its poison queue ``<queue>.poison``, bound to
    :data:`POISON_EXCHANGE`, where the broker moves a message returned more than ``delivery_limit``
    times (a message that kills every hub process before it can be journaled).
    """
    from kombu.entity import Exchange, Queue

    arguments = queue_arguments(endpoint, max_deliveries) if amqp else {}
    if "x-queue-type" in arguments:
        poison_exchange = Exchange(POISON_EXCHANGE, type="direct", durable=True)
        Queue(
            f"{endpoint.queue}.poison", exchange=poison_exchange, routing_key=endpoint.queue, durable=True,
            auto_delete=False, queue_arguments={"x-queue-type": "quorum"}, channel=channel,
        ).declare()  # fmt: skip
    exchange = Exchange(endpoint.exchange, type="direct", durable=endpoint.durable)
    queue = Queue(
        endpoint.queue,
        exchange=exchange,
        routing_key=endpoint.publish_key,
        durable=endpoint.durable,
        auto_delete=False,
        queue_arguments=arguments or None,
        channel=channel,
    )
    queue.declare()
    return queue
