"""RabbitMQ semantics of the queue adapter: quorum queues, poison cap, returns, heartbeats, production env."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import pytest
from kombu import Connection

from adapters.queue import QueueAdapter, QueueEndpoint
from adapters.queue.sink import UnroutableError
from esb.config.settings import Settings
from esb.context import AdapterContext
from esb.message import Message
from tests.integration.cluster import ProductionHub, production_environ, production_project
from tests.integration.faults import journal_outcomes, wait_for_outcomes
from tests.integration.pg_server import PostgresServer
from tests.integration.rabbit_server import RabbitServer


def _context(url: str, **broker: object) -> AdapterContext:
    settings = Settings.model_validate({"broker": {"url": url, "prefetch": 10, "max_retries": 1, **broker}})
    return AdapterContext(settings=settings, project_dir=Path("."), endpoint="test.queue")


def _endpoint(**options: object) -> QueueEndpoint:
    return QueueEndpoint(queue=f"rq-{uuid.uuid4().hex[:10]}", **options)  # type: ignore[arg-type]


def test_queue_is_quorum_with_delivery_limit_and_poison_queue(rabbit_server: RabbitServer) -> None:
    """The declared queue is a quorum queue; a message returned past the limit lands in <queue>.poison."""
    url = rabbit_server.create_vhost("poison")
    ctx, endpoint = _context(url), _endpoint(delivery_limit=2)
    adapter = QueueAdapter()
    with adapter.sink(endpoint, ctx) as sink:
        sink.write(Message(body=b"poison", id="p-1"))
    counts = []
    with adapter.source(endpoint, ctx) as source:
        while (delivery := source.read(3)) is not None:
            counts.append(delivery.delivery_count)
            delivery.ack(RuntimeError("crash"))
    assert counts == [1, 2, 3]  # the limit of 2 allows 2 returns; the third one dead-letters
    poison = QueueEndpoint(queue=f"{endpoint.queue}.poison", queue_type="classic")
    assert [m.id for m in adapter.peek(poison, ctx)] == ["p-1"]
    listed = rabbit_server.ctl("list_queues", "-p", url.rsplit("/", 1)[1], "name", "type").stdout
    assert f"{endpoint.queue}\tquorum" in listed


def test_unroutable_publish_raises(rabbit_server: RabbitServer) -> None:
    """A mandatory publish no queue takes (binding removed) raises instead of vanishing."""
    url = rabbit_server.create_vhost("route")
    ctx = _context(url)
    endpoint = _endpoint(exchange="esb.test-x", routing_key="orders.new")
    sink = QueueAdapter().sink(endpoint, ctx)
    sink.connect()
    try:
        sink.write(Message(body=b"routed"))  # declares the queue and binding once per channel
        with Connection(url) as conn:
            conn.default_channel.queue_unbind(endpoint.queue, "esb.test-x", "orders.new")
        with pytest.raises(UnroutableError, match="unroutable"):
            sink.write(Message(body=b"lost?"))
    finally:
        sink.close()


def test_connection_survives_a_step_longer_than_the_heartbeat_timeout(rabbit_server: RabbitServer) -> None:
    """A delivery held for 3 heartbeat intervals (a slow SOAP call) is still acked on the same connection."""
    url = rabbit_server.create_vhost("hb")
    ctx, endpoint = _context(url, heartbeat=4), _endpoint()
    adapter = QueueAdapter()
    with adapter.sink(endpoint, ctx) as sink:
        sink.write(Message(body=b"slow", id="s-1"))
        with adapter.source(endpoint, ctx) as source:
            delivery = source.read(5)
            assert delivery is not None
            time.sleep(12)  # the broker closes a connection silent for ~2 intervals (8 s)
            sink.write(Message(body=b"after", id="s-2"))  # the idle sink is alive too
            delivery.ack()
            after = source.read(5)
            assert after is not None
            assert after.message.id == "s-2"
            after.ack()
    with adapter.source(endpoint, ctx) as source:
        assert source.read(2) is None  # s-1 was acked, not handed back by a dead connection


def test_production_env_takes_urls_from_secret_files(
    rabbit_server: RabbitServer,
    postgres_server: PostgresServer,
    tmp_path: Path,
) -> None:
    """`esb --env production run` with the journal URL in a secret file and the broker's in the env."""
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "journal__url").write_text(postgres_server.create_database("prod") + "\n")
    environ = production_environ(tmp_path / "var", rabbit_server.create_vhost("prod"), "postgresql://nope")
    environ.pop("ESB_JOURNAL__URL")
    environ["ESB_SECRETS_DIR"] = str(secrets)
    project = production_project(environ)
    assert project.settings.journal.url.startswith("postgresql+psycopg://")
    hub = ProductionHub(environ, tmp_path / "hub.log")
    hub.start()
    try:
        from simulators.crm import CRMSimulator, order_scenario

        plan = order_scenario(25, run="prod")
        with CRMSimulator(project) as crm:
            for planned in plan:
                crm.send(planned.message)
        wait_for_outcomes(project.settings.journal.url, 25)
    finally:
        assert hub.stop() == 0
    outcomes = journal_outcomes(project.settings.journal.url)[0]
    assert outcomes == {p.message.id: p.expected for p in plan}
    assert "esb-rabbit-pw" not in (tmp_path / "hub.log").read_text()


def test_write_many_publishes_a_batch_with_one_confirm_wait(rabbit_server: RabbitServer) -> None:
    """write_many publishes 300 persistent messages, returns once all are confirmed, and all arrive."""
    url = rabbit_server.create_vhost("batch")
    ctx, endpoint = _context(url), _endpoint()
    adapter = QueueAdapter()
    with adapter.sink(endpoint, ctx) as sink:
        sink.write(Message(body=b"single", id="s-0"))  # the one-by-one path keeps the tags in step
        sink.write_many([Message(body=f"m{i}".encode(), id=f"b-{i}") for i in range(300)])
        sink.write_many([Message(body=b"again", id="b-300")])
    seen = []
    with adapter.source(endpoint, ctx) as source:
        while (delivery := source.read(3)) is not None:
            seen.append(delivery.message.id)
            delivery.ack()
    assert seen == ["s-0", *[f"b-{i}" for i in range(301)]]


def test_write_many_unroutable_raises(rabbit_server: RabbitServer) -> None:
    """A batch no queue takes (binding removed) raises UnroutableError instead of vanishing."""
    url = rabbit_server.create_vhost("batchroute")
    ctx = _context(url)
    endpoint = _endpoint(exchange="esb.batch-x", routing_key="orders.batch")
    with QueueAdapter().sink(endpoint, ctx) as sink:
        sink.write_many([Message(body=b"routed")])
        with Connection(url) as conn:
            channel = conn.channel()
            channel.queue_unbind(endpoint.queue, "esb.batch-x", "orders.batch")
        with pytest.raises(UnroutableError):
            sink.write_many([Message(body=b"lost?", id="u-1"), Message(body=b"lost?", id="u-2")])
