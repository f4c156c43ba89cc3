"""The simulated OSS over real SOAP on loopback (the hub's SOAP client), its results on the embedded queue."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from adapters.soap.sink import SOAPSink
from esb.codec import json_body
from esb.exceptions import RemoteError
from esb.message import Message
from esb.project import Project
from simulators.oss import OSSSimulator, QueuePublisher
from tests.integration.sim_clients import PASSWORD, PASSWORD_ENV, call, soap_client
from tests.integration.soap_project import REPO

WSDL = "config/contracts/oss/oss.wsdl"
RESULTS = "oss.activation_results"


@pytest.fixture
def project(tmp_path: Path) -> Project:
    """The repository's project with its embedded queues in a fresh data folder."""
    return Project.load(REPO, environ={"ESB_DATA_DIR": str(tmp_path / "var")})


@pytest.fixture
def oss(monkeypatch: pytest.MonkeyPatch, project: Project) -> Iterator[tuple[OSSSimulator, str]]:
    """A simulated OSS on a free loopback port publishing its results on the embedded result queue."""
    monkeypatch.setenv(PASSWORD_ENV, PASSWORD)
    publisher = QueuePublisher(project, RESULTS)
    sim = OSSSimulator("esb", PASSWORD, publish=publisher, seed=3)
    url = sim.serve()
    yield sim, url
    sim.stop()
    publisher.close()


@pytest.fixture
def ops(oss: tuple[OSSSimulator, str], tmp_path: Path) -> Iterator[dict[str, SOAPSink]]:
    """One hub SOAP client per OSS operation."""
    _, url = oss
    clients = {
        name: soap_client(tmp_path, WSDL, name, url) for name in ("ActivateService", "DeactivateService")
    }
    yield clients
    for client in clients.values():
        client.close()


def request(key: str, order: str = "O-1", component: str = "broadband") -> dict[str, Any]:
    """An activation request body."""
    return {
        "idempotencyKey": key,
        "orderId": order,
        "componentId": component,
        "serviceType": "BROADBAND",
        "portId": "HZ-XH-1/1/1",
    }


def receive(project: Project, count: int, wait: float = 10.0) -> list[Message]:
    """Read ``count`` messages from the OSS result queue, bodies parsed (waiting at most ``wait`` s)."""
    got: list[Message] = []
    source = project.adapter_for(RESULTS).source(project.endpoint(RESULTS), project.context(RESULTS))
    deadline = time.monotonic() + wait
    with source:
        while len(got) < count and time.monotonic() < deadline:
            delivery = source.read(0.2)
            if delivery is not None:
                message = delivery.message
                got.append(message.replace(body=json_body(message.body, RESULTS)))
                delivery.ack()
    return got


def wait_for(condition: Any, wait: float = 10.0) -> None:
    """Wait until ``condition()`` is true (at most ``wait`` seconds)."""
    deadline = time.monotonic() + wait
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.02)


def test_activation_is_accepted_with_a_ticket_and_the_result_comes_on_the_queue(
    oss: tuple[OSSSimulator, str], ops: dict[str, SOAPSink], project: Project
) -> None:
    """ActivateService answers ACCEPTED with a ticket; the correlated COMPLETED result comes on the queue."""
    sim, _ = oss
    ticket = call(ops["ActivateService"], request("k1"))
    assert ticket["status"] == "ACCEPTED"
    assert ticket["ticketId"].startswith("T")
    [result] = receive(project, 1)
    assert result.body["ticketId"] == ticket["ticketId"]
    assert (result.body["orderId"], result.body["componentId"], result.body["idempotencyKey"]) == (
        "O-1",
        "broadband",
        "k1",
    )
    assert (result.body["action"], result.body["result"]) == ("activate", "COMPLETED")
    assert result.correlation_id == "O-1"
    assert result.headers["idempotencyKey"] == "k1"
    assert sim.active == {("O-1", "broadband")}


def test_a_repeated_activation_activates_once_and_sends_the_same_result_again(
    oss: tuple[OSSSimulator, str], ops: dict[str, SOAPSink], project: Project
) -> None:
    """The same key twice: one ticket, one activation, the result sent again with the same message id."""
    sim, _ = oss
    first = call(ops["ActivateService"], request("k1"))
    wait_for(lambda: len(sim.published) == 1)
    second = call(ops["ActivateService"], request("k1"))
    assert second["ticketId"] == first["ticketId"]
    results = receive(project, 2)
    assert [m.id for m in results] == [f"{first['ticketId']}-result"] * 2
    assert sim.activations[("O-1", "broadband")] == 1
    assert sim.activated_twice() == []


def test_a_second_key_for_an_active_service_is_reported_as_a_double_activation(
    oss: tuple[OSSSimulator, str], ops: dict[str, SOAPSink]
) -> None:
    """Activating an active service under a new key is what activated_twice() reports."""
    sim, _ = oss
    call(ops["ActivateService"], request("k1"))
    wait_for(lambda: len(sim.published) == 1)
    call(ops["ActivateService"], request("k2"))
    wait_for(lambda: len(sim.published) == 2)
    assert sim.activated_twice() == [("O-1", "broadband")]


def test_deactivation_undoes_an_activation_and_is_idempotent(
    oss: tuple[OSSSimulator, str], ops: dict[str, SOAPSink], project: Project
) -> None:
    """DeactivateService ends the service; a repeat with its key deactivates nothing more."""
    sim, _ = oss
    call(ops["ActivateService"], request("k1"))
    wait_for(lambda: len(sim.published) == 1)
    for sent in (2, 3):
        call(ops["DeactivateService"], request("undo-k1"))
        wait_for(lambda: len(sim.published) == sent)  # noqa: B023 - waited on within the iteration
    results = receive(project, 3)
    assert [(m.body["action"], m.body["result"]) for m in results] == [
        ("activate", "COMPLETED"),
        ("deactivate", "COMPLETED"),
        ("deactivate", "COMPLETED"),
    ]
    assert sim.active == set()
    assert sim.deactivations[("O-1", "broadband")] == 1


def test_a_failure_rate_of_one_fails_every_activation_with_its_code(
    oss: tuple[OSSSimulator, str], ops: dict[str, SOAPSink], project: Project
) -> None:
    """failure_rate 1: the result is FAILED with OSS-2001 and no service is active."""
    sim, _ = oss
    sim.failure_rate = 1.0
    call(ops["ActivateService"], request("k1"))
    [result] = receive(project, 1)
    assert (result.body["result"], result.body["errorCode"]) == ("FAILED", "OSS-2001")
    assert sim.active == set()
    assert sim.activations == {}


def test_a_dropped_result_never_comes_until_the_same_key_asks_again(
    oss: tuple[OSSSimulator, str], ops: dict[str, SOAPSink], project: Project
) -> None:
    """timeout_rate 1: the service is activated but no result is sent; a repeat with the key gets it."""
    sim, _ = oss
    sim.timeout_rate = 1.0
    call(ops["ActivateService"], request("k1"))
    wait_for(lambda: sim.tickets["T00000001"].result is not None)
    assert sim.tickets["T00000001"].dropped
    assert receive(project, 1, wait=0.5) == []
    call(ops["ActivateService"], request("k1"))
    [result] = receive(project, 1)
    assert result.body["result"] == "COMPLETED"
    assert sim.activations[("O-1", "broadband")] == 1


def test_a_key_reused_for_another_component_is_refused(ops: dict[str, SOAPSink]) -> None:
    """A key already used for another component (or action) is an OSS-1006 fault."""
    call(ops["ActivateService"], request("k1"))
    with pytest.raises(RemoteError) as refused:
        call(ops["ActivateService"], request("k1", component="iptv"))
    assert refused.value.code == "OSS-1006"
    with pytest.raises(RemoteError) as other_action:
        call(ops["DeactivateService"], request("k1"))
    assert other_action.value.code == "OSS-1006"


def test_busy_is_a_retryable_fault_and_accepts_nothing(oss: tuple[OSSSimulator, str], tmp_path: Path) -> None:
    """busy_next answers OSS-0503 (retryable by the endpoint's list) and no ticket is made."""
    sim, url = oss
    sim.busy_next()
    client = soap_client(tmp_path, WSDL, "ActivateService", url, retryable_faults=["OSS-0503"])
    with client, pytest.raises(RemoteError) as busy:
        call(client, request("k1"))
    assert (busy.value.code, busy.value.retryable) == ("OSS-0503", True)
    assert sim.tickets == {}


def test_tickets_of_an_order_are_listed(oss: tuple[OSSSimulator, str], ops: dict[str, SOAPSink]) -> None:
    """tickets_of(order) lists that order's tickets only."""
    sim, _ = oss
    call(ops["ActivateService"], request("k1", order="O-1"))
    call(ops["ActivateService"], request("k2", order="O-2"))
    assert [t.key for t in sim.tickets_of("O-2")] == ["k2"]
