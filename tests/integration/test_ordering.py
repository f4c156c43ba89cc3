"""Per-key ordering with two hub processes on RabbitMQ: changes to one account reach IOM in order."""

from __future__ import annotations

import json
import random
import shutil
import time
from collections import defaultdict
from pathlib import Path

from esb.message import Message
from esb.simulators.crm import CRMSimulator, make_order
from esb.simulators.siebel import siebel_order_xml
from tests.e2e.hub_process import ROOT
from tests.integration.cluster import ProductionHub, production_environ, production_project
from tests.integration.faults import ResilientIOM, wait_for_outcomes
from tests.integration.pg_server import PostgresServer, postgres_server  # noqa: F401 - fixture
from tests.integration.rabbit_server import RabbitServer, rabbit_server  # noqa: F401 - fixture

ACCOUNTS = 4
COUNT = 240


def ordered_project(tmp: Path, partitions: int = 1) -> Path:
    """A copy of the repository's project whose CRM-order route is ordered by billing account
    (and split into ``partitions`` partition queues when more than 1)."""
    root = tmp / "project"
    root.mkdir(parents=True, exist_ok=True)
    for name in ("routes.yaml", "config", "transforms", "canonical_model"):
        copy = shutil.copytree if (ROOT / name).is_dir() else shutil.copy
        copy(ROOT / name, root / name if (ROOT / name).is_dir() else root)  # type: ignore[operator]
    routes = (root / "routes.yaml").read_text()
    extra = f"    partitions: {partitions}\n" if partitions > 1 else ""
    routes = routes.replace(
        "    from: crm.orders_out\n",
        f"    from: crm.orders_out\n    ordered_by: body.billingAccount.id\n{extra}",
        1,
    )
    (root / "routes.yaml").write_text(routes)
    systems = (root / "config" / "systems.yaml").read_text()
    systems = systems.replace(
        "        queue: crm.orders.out\n",
        "        queue: crm.orders.out\n        single_active_consumer: true\n",
        1,
    )
    (root / "config" / "systems.yaml").write_text(systems)
    return root


def test_changes_to_one_account_are_applied_in_order(
    rabbit_server: RabbitServer,  # noqa: F811 - the fixture
    postgres_server: PostgresServer,  # noqa: F811 - the fixture
    tmp_path: Path,
) -> None:
    """240 orders over 4 accounts, 2 hub processes, the active one SIGKILLed once: each account's in order."""
    root = ordered_project(tmp_path)
    environ = production_environ(
        tmp_path / "var", rabbit_server.create_vhost("order"), postgres_server.create_database()
    )
    project = production_project(environ, root)
    assert project.route("crm-order-to-iom").ordered_by == "body.billingAccount.id"
    rng = random.Random(5)
    messages = []
    for i in range(COUNT):
        order = make_order(i, rng)
        order.billing_account_id = f"1-BA-ORD{i % ACCOUNTS}"
        order.status = "Submitted"
        for item in order.items:
            item.action = "Add"
        messages.append(Message(body=siebel_order_xml(order), id=f"seq-{i:05d}", source="crm"))
    iom = ResilientIOM(project)
    iom.start()
    iom.ready.wait(30)
    hubs = [ProductionHub(environ, tmp_path / f"hub{i}.log", root=root) for i in range(2)]
    for hub in hubs:
        hub.start()
    try:
        with CRMSimulator(project) as crm:
            for message in messages:
                crm.send(message)
        deadline = time.monotonic() + 60
        while iom.count() < COUNT // 3 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert iom.count() < COUNT, "finished before the kill: raise COUNT"
        for hub in hubs:  # kill whichever is active: both, one after the other, restarting each
            hub.kill()
            hub.start()
            time.sleep(1)
        wait_for_outcomes(environ["ESB_JOURNAL__URL"], COUNT, 120)
        deadline = time.monotonic() + 30
        while iom.count() < COUNT and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        for hub in hubs:
            hub.stop()
        iom.stop()
        iom.join(10)
    per_account: dict[str, list[str]] = defaultdict(list)
    for mid, order in iom.received.items():
        per_account[order["custInfo"]["acctId"]].append(mid)
    assert sum(len(v) for v in per_account.values()) == COUNT
    assert len(per_account) == ACCOUNTS
    for mids in per_account.values():
        assert mids == sorted(mids)


def test_partitioned_route_spreads_keys_over_processes_in_order(
    rabbit_server: RabbitServer,  # noqa: F811 - the fixture
    postgres_server: PostgresServer,  # noqa: F811 - the fixture
    tmp_path: Path,
) -> None:
    """4 partitions, 2 hub processes: each runs 2; after SIGKILLs each account is still in order."""
    root = ordered_project(tmp_path, partitions=4)
    environ = production_environ(
        tmp_path / "var", rabbit_server.create_vhost("part"), postgres_server.create_database()
    )
    project = production_project(environ, root)
    accounts = 8
    messages = []
    rng = random.Random(9)
    for i in range(COUNT):
        order = make_order(i, rng)
        order.billing_account_id = f"1-BA-PRT{i % accounts}"
        order.status = "Submitted"
        messages.append(Message(body=siebel_order_xml(order), id=f"seq-{i:05d}", source="crm"))
    iom = ResilientIOM(project)
    iom.start()
    iom.ready.wait(30)
    logs = [tmp_path / f"hub{i}.log" for i in range(2)]
    hubs = [ProductionHub(environ, log, root=root) for log in logs]
    for hub in hubs:
        hub.start()
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not all(owned(log) == 2 for log in logs):
            time.sleep(0.2)
        assert [owned(log) for log in logs] == [2, 2], "the two processes split the 4 partitions"
        with CRMSimulator(project) as crm:
            for message in messages:
                crm.send(message)
        deadline = time.monotonic() + 60
        while iom.count() < COUNT // 3 and time.monotonic() < deadline:
            time.sleep(0.1)
        for hub in hubs:  # kill each in turn: the other takes its partitions over, then gives them back
            hub.kill()
            hub.start()
            time.sleep(1)
        wait_for_outcomes(environ["ESB_JOURNAL__URL"], COUNT, 120)
        deadline = time.monotonic() + 30
        while iom.count() < COUNT and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        for hub in hubs:
            hub.stop()
        iom.stop()
        iom.join(10)
    per_account: dict[str, list[str]] = defaultdict(list)
    for mid, order in iom.received.items():
        per_account[order["custInfo"]["acctId"]].append(mid)
    assert sum(len(v) for v in per_account.values()) == COUNT
    assert len(per_account) == accounts
    for mids in per_account.values():
        assert mids == sorted(mids)


def owned(log: Path) -> int:
    """How many partitions a hub process's log says it runs now (its last assignment)."""
    last = -1
    if log.exists():
        for line in log.read_text().splitlines():
            if '"partitions assigned"' in line:
                last = len(json.loads(line)["partitions"])
    return last
