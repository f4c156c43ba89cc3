"""Partitioned ordered routes: their partition queues, and the key that picks a message's partition."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from pydantic import ValidationError

from adapters.queue.config import QueueEndpoint
from esb.config.routes import Route
from esb.lint import lint_project
from esb.message import Message
from esb.project import Project
from esb.runtime.partitioner import Partitioner
from esb.runtime.partitions import partition_of
from esb.typing import Delivery
from simulators.crm import make_order
from simulators.siebel import siebel_order_xml
from tests.e2e.hub_process import hub_environ
from tests.integration.ordering import ordered_project


def load(root: Path, tmp: Path) -> Project:
    """The project at ``root`` on a data folder of its own."""
    return Project.load(root, environ=hub_environ(tmp / "var"), strict=False)


def order_for(account: str, index: int) -> Delivery:
    """A valid Siebel order of billing account ``account``, as read from the CRM's queue."""
    order = make_order(index, random.Random(index))
    order.billing_account_id = account
    order.status = "Submitted"
    return Delivery(Message(body=siebel_order_xml(order), id=f"o-{index}"), lambda error: None)


def test_partitions_need_ordered_by() -> None:
    """partitions: N without ordered_by is refused, naming what is missing."""
    with pytest.raises(ValidationError, match="partitions needs ordered_by"):
        Route.model_validate({"id": "r", "from": "a.b", "to": "c.d", "partitions": 4})


def test_partitioned_route_gets_one_single_consumer_queue_per_partition(tmp_path: Path) -> None:
    """partitions: 4 adds endpoints <source>.p0..p3: copies of the source with queue <queue>.pN, SAC on."""
    project = load(ordered_project(tmp_path, partitions=4), tmp_path)
    assert project.findings == []
    source = project.endpoint("crm.orders_out")
    assert isinstance(source, QueueEndpoint)
    for index in range(4):
        endpoint = project.endpoint(f"crm.orders_out.p{index}")
        assert isinstance(endpoint, QueueEndpoint)
        assert endpoint.queue == f"{source.queue}.p{index}"
        assert endpoint.single_active_consumer is True
    assert "crm.orders_out.p4" not in project.endpoints


def test_partitions_need_a_queue_source(tmp_path: Path) -> None:
    """A partitioned route reading a SOAP listener is a finding: its adapter cannot be partitioned."""
    root = ordered_project(tmp_path)
    routes = (root / "routes.yaml").read_text()
    routes = routes.replace(
        "    from: crm.soap_billing_accounts\n",
        "    from: crm.soap_billing_accounts\n    ordered_by: body.id\n    partitions: 2\n",
        1,
    )
    (root / "routes.yaml").write_text(routes)
    findings = load(root, tmp_path).findings
    needs = "partitions needs a source that can be partitioned"
    assert any(needs in f and "crm.soap_billing_accounts" in f for f in findings)


def test_partitioner_sends_each_account_to_one_partition(tmp_path: Path) -> None:
    """The key is read after the route's first transform: one account's orders share a partition."""
    project = load(ordered_project(tmp_path, partitions=8), tmp_path)
    partitioner = Partitioner(project, project.route("crm-order-to-iom"))
    seen: dict[str, set[int]] = {}
    for index in range(60):
        account = f"1-BA-{index % 12}"
        seen.setdefault(account, set()).add(partitioner.partition(order_for(account, index)))
    assert all(len(parts) == 1 for parts in seen.values())
    assert {account: parts.pop() for account, parts in seen.items()} == {
        account: partition_of(account, 8) for account in seen
    }
    assert len({partition_of(account, 8) for account in seen}) > 3, "12 accounts spread over partitions"


def test_partitioner_sends_unreadable_messages_to_partition_zero(tmp_path: Path) -> None:
    """A message whose key cannot be read (not XML) goes to partition 0, where the route fails it."""
    project = load(ordered_project(tmp_path, partitions=4), tmp_path)
    partitioner = Partitioner(project, project.route("crm-order-to-iom"))
    broken = Delivery(Message(body=b"<SiebelMessage><unclosed>", id="bad"), lambda error: None)
    assert partitioner.partition(broken) == 0


def test_lint_wants_a_single_active_consumer_for_ordered_routes(tmp_path: Path) -> None:
    """An ordered route whose source queue lacks single_active_consumer is a lint finding at ordered_by."""
    root = ordered_project(tmp_path, partitions=4)
    assert not [f for f in lint_project(root) if "ordered_by" in f]
    systems = root / "config" / "systems.yaml"
    systems.write_text(systems.read_text().replace("        single_active_consumer: true\n", "", 1))
    [finding] = [f for f in lint_project(root) if "ordered_by" in f]
    assert "crm.orders_out needs single_active_consumer: true" in finding
    assert finding.startswith("routes.yaml:")


def test_lint_refuses_an_enrich_before_a_partitioned_routes_first_transform(tmp_path: Path) -> None:
    """The partitioner runs the steps before the first transform: an enrich there is a finding at its step."""
    root = ordered_project(tmp_path, partitions=4)
    routes = root / "routes.yaml"
    text = routes.read_text().replace(
        "      - transform: crm/siebel_order_to_canonical\n",
        "      - enrich: {endpoint: billing.query_balance, into: balance}\n"
        "      - transform: crm/siebel_order_to_canonical\n",
        1,
    )
    routes.write_text(text)
    findings = [f for f in lint_project(root) if "partitioned route" in f]
    assert len(findings) == 1
    line = text.splitlines().index("      - enrich: {endpoint: billing.query_balance, into: balance}") + 1
    assert findings[0].startswith(f"routes.yaml:{line}: routes[0].steps[0]: ")
