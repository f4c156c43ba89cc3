"""The simulated Billing's subscriber service over real SOAP on loopback, through the hub's SOAP client."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from adapters.soap.sink import SOAPSink
from esb.exceptions import RemoteError
from simulators.billing import BillingSimulator
from tests.integration.sim_clients import PASSWORD, PASSWORD_ENV, call, soap_client

WSDL = "config/contracts/billing/billing-subscriber.wsdl"
SUBSCRIBER = {
    "externalId": "O-1/mobile/billing",
    "accountId": "2000000001",
    "serviceType": "MOBILE",
    "orderId": "O-1",
    "msisdn": "13357100001",
}


@pytest.fixture
def billing(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[BillingSimulator, str]]:
    """A simulated Billing holding account 2000000001, on a free loopback port."""
    monkeypatch.setenv(PASSWORD_ENV, PASSWORD)
    sim = BillingSimulator("esb", PASSWORD)
    sim.add_account("2000000001", balance="12.50")
    url = sim.serve()
    yield sim, url
    sim.stop()


@pytest.fixture
def ops(billing: tuple[BillingSimulator, str], tmp_path: Path) -> Iterator[dict[str, SOAPSink]]:
    """One hub SOAP client per subscriber operation (SOAP 1.2 for delete, to cover both)."""
    _, url = billing
    clients = {
        "create": soap_client(tmp_path, WSDL, "createSubscriber", url.replace("Account", "Subscriber")),
        "delete": soap_client(tmp_path, WSDL, "deleteSubscriber", url, port="BillingSubscriberSoap12Port"),
        "balance": soap_client(tmp_path, "config/contracts/billing/billing.wsdl", "queryBalance", url),
    }
    yield clients
    for client in clients.values():
        client.close()


def test_create_subscriber_makes_one_subscriber_reachable_by_its_msisdn(
    billing: tuple[BillingSimulator, str], ops: dict[str, SOAPSink]
) -> None:
    """createSubscriber answers an ACTIVE subscriber; queryBalance by its MSISDN then finds the account."""
    sim, _ = billing
    created = call(ops["create"], SUBSCRIBER)
    assert created["status"] == "ACTIVE"
    assert created["subscriberId"].startswith("S")
    assert [s.subscriber_id for s in sim.active_subscribers("O-1")] == [created["subscriberId"]]
    assert call(ops["balance"], {"msisdn": "13357100001"})["accountId"] == "2000000001"


def test_create_subscriber_is_idempotent_on_its_external_id(
    billing: tuple[BillingSimulator, str], ops: dict[str, SOAPSink]
) -> None:
    """A second createSubscriber with the same externalId returns the same subscriber and makes none."""
    sim, _ = billing
    first = call(ops["create"], SUBSCRIBER)
    second = call(ops["create"], SUBSCRIBER)
    assert second["subscriberId"] == first["subscriberId"]
    assert sim.creations[SUBSCRIBER["externalId"]] == 1
    assert len(sim.subscribers) == 1


def test_delete_subscriber_is_idempotent_and_frees_the_msisdn(
    billing: tuple[BillingSimulator, str], ops: dict[str, SOAPSink]
) -> None:
    """deleteSubscriber by id, then by externalId, answers DELETED twice; the MSISDN leaves the account."""
    sim, _ = billing
    created = call(ops["create"], SUBSCRIBER)
    assert call(ops["delete"], {"subscriberId": created["subscriberId"]})["status"] == "DELETED"
    assert call(ops["delete"], {"externalId": SUBSCRIBER["externalId"]})["status"] == "DELETED"
    assert sim.active_subscribers() == []
    with pytest.raises(RemoteError) as gone:
        call(ops["balance"], {"msisdn": "13357100001"})
    assert gone.value.code == "BIL-1004"


def test_unknown_account_and_unknown_subscriber_are_faults_with_their_codes(ops: dict[str, SOAPSink]) -> None:
    """A subscriber on an unknown account is BIL-1004; deleting one Billing never made is BIL-1005."""
    with pytest.raises(RemoteError) as no_account:
        call(ops["create"], {**SUBSCRIBER, "accountId": "2999999999"})
    assert no_account.value.code == "BIL-1004"
    with pytest.raises(RemoteError) as no_subscriber:
        call(ops["delete"], {"externalId": "never-made"})
    assert no_subscriber.value.code == "BIL-1005"
    assert "never-made" in str(no_subscriber.value.detail["errorMessage"])
