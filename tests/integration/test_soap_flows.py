"""The two real flows through a running hub, over HTTP on loopback, with zeep as the callers' client:
a billing account created in the CRM reaches the Billing web service, and the 10000 hotline's balance
query is answered through the hub."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from lxml import etree
from zeep import Client, Transport
from zeep.exceptions import Fault
from zeep.wsse.username import UsernameToken

from esb.project import Project
from esb.runtime.hub import Hub
from esb.testing import BROKER
from simulators.billing import BillingSimulator
from tests.integration.soap_project import free_port, make_soap_project, siebel_account


@pytest.fixture(params=[pytest.param(False, id="handover"), pytest.param(True, id="inline")])
def hub(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> Iterator[dict[str, Any]]:
    """A hub serving the CRM and hotline operations, and a simulated Billing behind it; each flow runs
    with its requests handed over to the route's worker and with the route run inline."""
    monkeypatch.setenv("TEST_BILLING_PASSWORD", "billing-secret")
    monkeypatch.setenv("TEST_CRM_PASSWORD", "crm-secret")
    monkeypatch.setenv("TEST_HOTLINE_PASSWORD", "hotline-secret")
    billing = BillingSimulator("esb", "billing-secret")
    url = billing.serve()
    port = free_port()
    project = Project.load(make_soap_project(tmp_path, url, port, inline=request.param))
    running = Hub(project)
    running.start(wait=20)
    try:
        yield {"billing": billing, "base": f"http://127.0.0.1:{port}/soap", "hub": running}
    finally:
        running.stop(timeout=5)
        billing.stop()


def crm_post(base: str, body: str) -> requests.Response:
    """POST a SubmitBillingAccount request as the CRM does (SOAP 1.1, HTTP basic)."""
    envelope = (
        '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Body>'
        f"{body}</soapenv:Body></soapenv:Envelope>"
    )
    return requests.post(
        f"{base}/crm",
        data=envelope.encode("utf-8"),
        auth=("siebel", "crm-secret"),
        timeout=20,
        headers={"Content-Type": "text/xml; charset=utf-8", "SOAPAction": "urn:esb:crm:SubmitBillingAccount"},
    )


def hotline_client(base: str, port_name: str = "HotlineSoap12Port") -> Client:
    """zeep, as the hotline's client: loads the hub's ?wsdl, calls with a UsernameToken (digest)."""
    session = requests.Session()
    session.auth = ("hotline", "hotline-secret")
    client = Client(
        f"{base}/hotline?wsdl",
        transport=Transport(session=session, operation_timeout=20),
        port_name=port_name,
    )
    session.auth = None
    client.wsse = UsernameToken("hotline", "hotline-secret", use_digest=True)
    return client


def test_crm_billing_account_reaches_billing(hub: dict[str, Any]) -> None:
    """A SiebelMessage posted by the CRM is acknowledged (202) once Billing has created the account."""
    response = crm_post(hub["base"], siebel_account("1-9ACC7"))
    assert response.status_code == 202, response.text
    created = [a for a in hub["billing"].accounts.values() if a.external_id == "1-9ACC7"]
    assert len(created) == 1
    assert created[0].name == "张伟的账户"
    assert created[0].rating_type == "POSTPAID"
    assert str(created[0].credit_limit) == "100.00"


def test_busy_billing_is_retried(hub: dict[str, Any]) -> None:
    """A 'system busy' fault (retryable per endpoint) is redelivered until Billing takes the account."""
    hub["billing"].busy_next(2)
    response = crm_post(hub["base"], siebel_account("1-BUSY1"))
    assert response.status_code == 202
    assert [a.external_id for a in hub["billing"].accounts.values()] == ["1-BUSY1"]
    calls = [name for name, _ in hub["billing"].calls]
    assert calls == ["CreateAccountRequest"] * 3


def test_invalid_customer_is_dead_lettered(hub: dict[str, Any]) -> None:
    """An 'invalid customer' fault is not retried: the message is dead-lettered with the fault code."""
    response = crm_post(hub["base"], siebel_account("1-BAD", customer="INVALID-9"))
    assert response.status_code == 202
    assert len(hub["billing"].calls) == 1
    dead = BROKER.written("dlq.billing")
    assert len(dead) == 1
    assert "BIL-1001" in dead[0].headers["esb-error"]


def test_wrong_integration_object_is_refused_by_schema(hub: dict[str, Any]) -> None:
    """A SiebelMessage missing a required field is answered with a schema-violation Fault, never queued."""
    body = siebel_account("1-NOPARENT").replace(
        "<Parent_spcAccount_spcId>CUST-440100-0001</Parent_spcAccount_spcId>", ""
    )
    response = crm_post(hub["base"], body)
    assert response.status_code == 500
    fault = etree.fromstring(response.content)
    assert fault.findtext(".//{urn:esb:soap:fault}code") == "SchemaViolation"
    assert hub["billing"].calls == []


def test_hotline_balance_query_is_answered(hub: dict[str, Any]) -> None:
    """The hotline's QueryBalance (SOAP 1.2, WS-Security digest) is answered from Billing through the hub."""
    hub["billing"].add_account("2000123456", balance="88.60", msisdn="13800138000")
    result = hotline_client(hub["base"]).service.QueryBalance(msisdn="13800138000")
    assert result.accountId == "2000123456"
    assert str(result.balance) == "88.60"
    assert result.currency == "CNY"
    assert hub["billing"].calls == [("QueryBalanceRequest", {"msisdn": "13800138000"})]


def test_hotline_unknown_number_gets_a_fault(hub: dict[str, Any]) -> None:
    """A query Billing refuses (account not found) is answered with a SOAP Fault naming the message."""
    with pytest.raises(Fault) as caught:
        hotline_client(hub["base"], "HotlineSoap11Port").service.QueryBalance(msisdn="13900000000")
    assert caught.value.detail.findtext(".//{urn:esb:soap:fault}code") == "NotAnswered"
    assert caught.value.detail.findtext(".//{urn:esb:soap:fault}messageId")
