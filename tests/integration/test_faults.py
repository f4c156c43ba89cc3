"""Delivery guarantees under faults, on real RabbitMQ and PostgreSQL with two `esb run` processes.

Each scenario sends ``ESB_FAULT_MESSAGES`` CRM orders (default 1,000, to keep the suite short;
``bench/fault_run.py`` runs 10,000 per scenario and its figures are in docs/deployment.md) and prints
the counts (``pytest -s`` shows them).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.integration.faults import Servers, run_scenario
from tests.integration.pg_server import PostgresServer
from tests.integration.rabbit_server import RabbitServer

COUNT = int(os.environ.get("ESB_FAULT_MESSAGES", "2000"))  # with batches of 200: kills land mid-flow


@pytest.fixture
def servers(rabbit_server: RabbitServer, postgres_server: PostgresServer) -> Servers:
    """The session's RabbitMQ node and PostgreSQL server, with the means to stop and start them."""
    pg = postgres_server
    return Servers(
        new_broker_url=rabbit_server.create_vhost, new_journal_url=pg.create_database,
        stop_broker=rabbit_server.stop, start_broker=rabbit_server.start,
        stop_database=pg.stop, start_database=lambda: pg.start(pg.port),
    )  # fmt: skip


@pytest.mark.parametrize(
    "fault",
    [
        pytest.param("kill", id="hub-sigkilled-3-times"),
        pytest.param("rabbitmq", id="rabbitmq-restarted"),
        pytest.param("postgres", id="postgres-restarted"),
    ],
)
def test_nothing_lost_or_doubled_under_fault(servers: Servers, fault: str, tmp_path: Path) -> None:
    """Every CRM order ends as planned, IOM gets each delivered order, journal counts match IOM's."""
    outcome = run_scenario(servers, fault, COUNT, tmp_path)
    print(outcome.report())
    assert outcome.faults_done, "no fault was injected"
    assert outcome.problems() == []
