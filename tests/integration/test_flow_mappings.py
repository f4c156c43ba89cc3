"""The order processes' SOAP requests (transforms/rim, oss, billing) are accepted by the simulated RIM, OSS
and Billing through the hub's own SOAP client, and their answers map back (rim/reserve_reply,
oss/activation_result): the transforms speak the contracts the simulators serve."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from esb.message import Message
from esb.project import Project
from simulators.billing import BillingSimulator
from simulators.devenv import choose_free_ports, ensure_credentials
from simulators.process_systems import ProcessSystems
from simulators.rim import RIMSimulator
from tests.integration.soap_project import REPO

ORDER_ID = "SO-FLOW-1"
ACCOUNT = "2000000042"
#: a mobile plan with a number RIM's default pool holds, and fibre at an address it serves (HZ-XH)
ORDER: dict[str, Any] = {
    "@type": "ProductOrder",
    "id": ORDER_ID,
    "externalReference": [{"id": "1-FLOW1", "externalReferenceType": "siebel"}],
    "billingAccount": {"id": ACCOUNT, "@referredType": "BillingAccount"},
    "productOrderItem": [
        {
            "id": "1",
            "action": "add",
            "productOffering": {"id": "PO-5G-129"},
            "product": {"productCharacteristic": [{"name": "msisdn", "value": "13357100042"}]},
        },
        {
            "id": "2",
            "action": "add",
            "productOffering": {"id": "PO-BB-300M"},
            "product": {
                "place": [
                    {
                        "role": "installationAddress",
                        "address": {
                            "province": "浙江省",
                            "city": "杭州市",
                            "district": "西湖区",
                            "street": "文三路",
                            "streetNr": "90号",
                        },
                    }
                ]
            },
        },
    ],
}


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Project:
    """The repository's project on free ports, throwaway credentials, a fresh data folder."""
    for name, value in choose_free_ports({}).items():
        monkeypatch.setenv(name, value)
    for name in ("RIM_PASSWORD", "OSS_PASSWORD", "BILLING_PASSWORD"):
        monkeypatch.delenv(name, raising=False)
    project = Project.load(REPO, environ={**os.environ, "ESB_DATA_DIR": str(tmp_path / "var")})
    for name, value in ensure_credentials(project).items():
        monkeypatch.setenv(name, value)  # undone after the test
    return project


@dataclass(frozen=True)
class Systems:
    """The started simulators the tests look into."""

    rim: RIMSimulator
    billing: BillingSimulator


@pytest.fixture
def systems(project: Project) -> Iterator[Systems]:
    """RIM, OSS and Billing started for the project: no refusals, no dropped or late results."""
    started = ProcessSystems(project)
    started.start()
    try:
        assert started.rim is not None, "RIM did not start"
        assert started.oss is not None, "OSS did not start"
        assert started.billing is not None, "Billing did not start"
        started.rim.refusal_rate = 0.0
        started.oss.failure_rate, started.oss.timeout_rate, started.oss.result_delay = 0.0, 0.0, 0.0
        started.billing.add_account(ACCOUNT)
        yield Systems(started.rim, started.billing)
    finally:
        started.stop()


def mapped(project: Project, transform: str, body: Any) -> Any:
    """Return ``body`` mapped by the project's transform ``transform``."""
    return project.transforms.get(transform).transform_body(body)


def call(project: Project, endpoint: str, body: Any) -> dict[str, Any]:
    """Call ``endpoint`` through the hub's adapter for it (the SOAP client); return the reply body."""
    with project.adapter_for(endpoint).sink(project.endpoint(endpoint), project.context(endpoint)) as client:
        reply = client.request(Message(body), 5.0).body
    assert isinstance(reply, dict)
    return reply


def view(data: dict[str, Any], item: dict[str, Any], step: str) -> dict[str, Any]:
    """The process view a step of order_to_activation maps (docs/processes.md), with the call's key."""
    return {
        "data": data,
        "keys": {"order_id": data["id"]},
        "state": "inProgress",
        "item": item,
        "idempotency_key": f"{data['id']}:components[{item['id']}].{step}",
    }


def activation_result(project: Project, timeout: float = 10.0) -> dict[str, Any]:
    """Read one message from oss.activation_results, acknowledge it, and return its body."""
    endpoint = project.endpoint("oss.activation_results")
    source = project.adapter_for("oss.activation_results").source(
        endpoint, project.context("oss.activation_results")
    )
    deadline, delivery = time.monotonic() + timeout, None
    with source:
        while delivery is None and time.monotonic() < deadline:
            delivery = source.read(0.2)
        assert delivery is not None, "no activation result came"
        delivery.ack()
    result = mapped(project, "oss/activation_result", delivery.message.body)  # the mapping parses the JSON
    assert isinstance(result, dict)
    return result


def test_a_mobile_component_is_reserved_activated_billed_and_confirmed(
    project: Project, systems: Systems
) -> None:
    """Reserve, activate (result on the queue), create the subscriber, confirm: each system accepts each."""
    data = mapped(project, "hub/order_with_components", ORDER)
    mobile = data["components"][0]
    assert mobile["componentKind"] == "mobile"

    reply = call(
        project,
        "rim.reserve_resources",
        mapped(project, "rim/reserve_request", view(data, mobile, "reserve")),
    )
    mobile["reservation"] = mapped(project, "rim/reserve_reply", reply)
    assert mobile["reservation"]["msisdn"] == "13357100042"
    assert mobile["reservation"]["state"] == "PRE_RESERVED"
    assert systems.rim.inventory.number("13357100042").state == "PRE_RESERVED"

    ticket = call(
        project,
        "oss.activate_service",
        mapped(project, "oss/activate_request", view(data, mobile, "activate")),
    )
    mobile["activation"] = activation_result(project)
    assert mobile["activation"]["ticketId"] == ticket["ticketId"]
    assert mobile["activation"]["result"] == "COMPLETED"

    request = mapped(project, "billing/create_subscriber_request", view(data, mobile, "create_subscriber"))
    assert call(project, "billing.create_subscriber", request)["status"] == "ACTIVE"
    [subscriber] = systems.billing.active_subscribers(ORDER_ID)
    assert (subscriber.msisdn, subscriber.service_type) == ("13357100042", "MOBILE")

    confirmed = call(
        project,
        "rim.confirm_reservation",
        mapped(project, "rim/confirm_request", view(data, mobile, "confirm")),
    )
    assert confirmed["state"] == "CONFIRMED"
    assert systems.rim.inventory.number("13357100042").state == "OCCUPIED"


def test_a_broadband_component_is_undone_by_the_compensation_requests(
    project: Project, systems: Systems
) -> None:
    """A port held, activated and billed is released, deactivated and deleted by the undo transforms."""
    data = mapped(project, "hub/order_with_components", ORDER)
    fibre = data["components"][1]
    assert fibre["componentKind"] == "broadband"

    reply = call(
        project, "rim.reserve_resources", mapped(project, "rim/reserve_request", view(data, fibre, "reserve"))
    )
    fibre["reservation"] = mapped(project, "rim/reserve_reply", reply)
    assert fibre["reservation"]["exchange"] == "HZ-XH"
    call(
        project,
        "oss.activate_service",
        mapped(project, "oss/activate_request", view(data, fibre, "activate")),
    )
    assert activation_result(project)["result"] == "COMPLETED"
    create = mapped(project, "billing/create_subscriber_request", view(data, fibre, "create_subscriber"))
    call(project, "billing.create_subscriber", create)
    assert len(systems.billing.active_subscribers(ORDER_ID)) == 1

    undo = {
        step: view(data, fibre, f"{step}:compensate") for step in ("create_subscriber", "activate", "reserve")
    }
    deleted = call(
        project,
        "billing.delete_subscriber",
        mapped(project, "billing/delete_subscriber_request", undo["create_subscriber"]),
    )
    assert deleted["status"] == "DELETED"
    assert systems.billing.active_subscribers(ORDER_ID) == []
    call(project, "oss.deactivate_service", mapped(project, "oss/deactivate_request", undo["activate"]))
    result = activation_result(project)
    assert result["result"] == "COMPLETED"
    released = call(
        project, "rim.release_reservation", mapped(project, "rim/release_request", undo["reserve"])
    )
    assert released["state"] == "RELEASED"
    assert systems.rim.inventory.live_reservations(ORDER_ID) == []
