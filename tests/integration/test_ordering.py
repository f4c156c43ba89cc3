"""Per-key ordering with two hub processes on RabbitMQ: changes to one account reach IOM in order."""

from __future__ import annotations

import json
import time
from pathlib import Path

from tests.integration.cluster import ProductionHub, production_environ, production_project
from tests.integration.ordering import (
    account_orders,
    assert_in_order_per_account,
    ordered_project,
    run_with_kills,
)
from tests.integration.pg_server import PostgresServer
from tests.integration.rabbit_server import RabbitServer

COUNT = 1200  # batches of 200: enough that the kills land mid-flow


def test_changes_to_one_account_are_applied_in_order(
    rabbit_server: RabbitServer,
    postgres_server: PostgresServer,
    tmp_path: Path,
) -> None:
    """1200 orders over 4 accounts, 2 hub processes, each SIGKILLed in turn: each account's in order."""
    root = ordered_project(tmp_path)
    environ = production_environ(
        tmp_path / "var", rabbit_server.create_vhost("order"), postgres_server.create_database()
    )
    project = production_project(environ, root)
    assert project.route("crm-order-to-iom").ordered_by == "body.billingAccount.id"
    hubs = [ProductionHub(environ, tmp_path / f"hub{i}.log", root=root) for i in range(2)]
    received = run_with_kills(project, environ, hubs, account_orders(COUNT, 4, "ORD", seed=5))
    assert_in_order_per_account(received, COUNT, 4)


def test_partitioned_route_spreads_keys_over_processes_in_order(
    rabbit_server: RabbitServer,
    postgres_server: PostgresServer,
    tmp_path: Path,
) -> None:
    """4 partitions, 2 hub processes: each runs 2; after SIGKILLs each account is still in order."""
    root = ordered_project(tmp_path, partitions=4)
    environ = production_environ(
        tmp_path / "var", rabbit_server.create_vhost("part"), postgres_server.create_database()
    )
    project = production_project(environ, root)
    logs = [tmp_path / f"hub{i}.log" for i in range(2)]
    hubs = [ProductionHub(environ, log, root=root) for log in logs]

    def split_evenly() -> None:
        deadline = time.monotonic() + 300  # a guard: two hub processes start slowly under load
        while time.monotonic() < deadline and not all(owned(log) == 2 for log in logs):
            time.sleep(0.2)
        assert [owned(log) for log in logs] == [2, 2], "the two processes split the 4 partitions"

    messages = account_orders(COUNT, 8, "PRT", seed=9)
    received = run_with_kills(project, environ, hubs, messages, before_send=split_evenly)
    assert_in_order_per_account(received, COUNT, 8)


def owned(log: Path) -> int:
    """How many partitions a hub process's log says it runs now (its last assignment)."""
    last = -1
    if log.exists():
        for line in log.read_text().splitlines():
            if '"partitions assigned"' in line:
                last = len(json.loads(line)["partitions"])
    return last
