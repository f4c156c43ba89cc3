"""A partitioned ordered route on the embedded transport: keys in parallel, each key's changes in order."""

from __future__ import annotations

import time
from pathlib import Path

from esb.project import Project
from esb.runtime.hub import Hub
from esb.runtime.partitioner import Partitioner
from esb.runtime.worker import RouteWorker
from simulators.crm import CRMSimulator
from simulators.iom import IOMSimulator
from tests.e2e.hub_process import hub_environ
from tests.integration.ordering import account_orders, assert_in_order_per_account, ordered_project

ROUTE = "crm-order-to-iom"
ACCOUNTS = 10
COUNT = 200


def test_partitioned_route_keeps_each_accounts_order(tmp_path: Path) -> None:
    """200 orders over 10 accounts through 4 partitions: all reach IOM once, each account's in order."""
    root = ordered_project(tmp_path, partitions=4)
    environ = hub_environ(
        tmp_path / "var", ESB_MONITORING__ENABLED="false", ESB_RUNTIME__WATCH_PROJECT="false"
    )
    project = Project.load(root, environ=environ)
    project.settings.data_dir.mkdir(parents=True)
    iom = IOMSimulator(project)
    iom.start()
    iom.ready.wait(10)
    hub = Hub(project, route_ids=[ROUTE])
    hub.start()
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and len(partition_workers(hub)) < 4:
            time.sleep(0.05)
        assert sorted(w.source_name for w in partition_workers(hub)) == [
            f"crm.orders_out.p{i}" for i in range(4)
        ], "one process alone owns every partition"
        assert any(isinstance(w, Partitioner) for w in hub.workers)
        ready, detail = hub.readiness()
        while not ready and time.monotonic() < deadline:  # workers just started may still be connecting
            time.sleep(0.05)
            ready, detail = hub.readiness()
        assert ready, detail
        share = {"owned": [0, 1, 2, 3], "member_slot": 0, "live_members": 1}
        assert detail["routes"][ROUTE]["partitions"] == share
        assert 'esb_route_partitions_owned{route="crm-order-to-iom"} 4.0' in hub.metrics.exposition().decode()
        with CRMSimulator(project) as crm:
            for message in account_orders(COUNT, ACCOUNTS, "PART", seed=11):
                crm.send(message)
        deadline = time.monotonic() + 90
        while iom.count() < COUNT and time.monotonic() < deadline:
            time.sleep(0.1)
        outcomes = {f"seq-{i:05d}": hub.journal.outcome(ROUTE, f"seq-{i:05d}") for i in range(COUNT)}
    finally:
        hub.stop()
        iom.stop()
        iom.join(5)
    assert set(outcomes.values()) == {"delivered"}
    assert iom.duplicates == 0
    assert_in_order_per_account(iom.received, COUNT, ACCOUNTS)


def partition_workers(hub: Hub) -> list[RouteWorker]:
    """The hub's workers reading a partition queue."""
    return [w for w in list(hub.workers) if isinstance(w, RouteWorker) and ".p" in w.source_name]
