"""Helpers for the ordering tests: an ordered copy of the project, orders over accounts, and checks."""

from __future__ import annotations

import random
import shutil
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

from esb.message import Message
from simulators.crm import CRMSimulator, make_order
from simulators.siebel import siebel_order_xml
from tests.e2e.hub_process import ROOT
from tests.integration.cluster import ProductionHub
from tests.integration.faults import ResilientIOM, wait_for_outcomes
from tests.waiting import wait_for_count


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


def account_orders(count: int, accounts: int, prefix: str, seed: int) -> list[Message]:
    """``count`` valid Siebel orders spread round-robin over ``accounts`` billing accounts
    (``1-BA-<prefix><n>``); ids ``seq-00000``... sort in sending order."""
    rng = random.Random(seed)
    messages = []
    for i in range(count):
        order = make_order(i, rng)
        order.billing_account_id = f"1-BA-{prefix}{i % accounts}"
        order.status = "Submitted"
        for item in order.items:
            item.action = "Add"
        messages.append(Message(body=siebel_order_xml(order), id=f"seq-{i:05d}", source="crm"))
    return messages


def assert_in_order_per_account(received: dict[str, dict[str, Any]], count: int, accounts: int) -> None:
    """IOM got ``count`` orders of ``accounts`` accounts, each account's in sending order."""
    per_account: dict[str, list[str]] = defaultdict(list)
    for mid, order in received.items():  # the simulator keeps arrival order
        per_account[order["custInfo"]["acctId"]].append(mid)
    assert sum(len(v) for v in per_account.values()) == count
    assert len(per_account) == accounts
    for mids in per_account.values():
        assert mids == sorted(mids)


def run_with_kills(
    project: Any, environ: dict[str, str], hubs: list[ProductionHub], messages: list[Message],
    *, before_send: Callable[[], None] = lambda: None,
) -> dict[str, dict[str, Any]]:  # fmt: skip
    """Start ``hubs``, send ``messages`` from the CRM, SIGKILL and restart each hub in turn a third of
    the way in, wait until every message ended; return what IOM received (id -> order, arrival order)."""
    count = len(messages)
    iom = ResilientIOM(project)
    iom.start()
    iom.ready.wait(30)
    for hub in hubs:
        hub.start()
    try:
        before_send()
        with CRMSimulator(project) as crm:
            for message in messages:
                crm.send(message)
        wait_for_count(iom.count, count // 3, "a third of IOM's orders", interval=0.1)
        assert iom.count() < count, "finished before the kill: send more messages"
        for hub in hubs:  # kill each in turn, restarting it: the other takes over meanwhile
            hub.kill()
            hub.start()
            time.sleep(1)
        wait_for_outcomes(environ["ESB_JOURNAL__URL"], count)
        wait_for_count(iom.count, count, "IOM's orders", interval=0.1)
    finally:
        for hub in hubs:
            hub.stop()
        iom.stop()
        iom.join(10)
    return iom.received
