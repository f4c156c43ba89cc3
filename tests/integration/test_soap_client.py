"""The hub's SOAP client (sink and enrich requester) against a Billing service the tests stand up."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from adapters.soap.config import SOAPEndpoint
from adapters.soap.errors import SOAPRequestError
from adapters.soap.sink import SOAPSink
from esb.config.settings import Settings
from esb.context import AdapterContext
from esb.exceptions import RemoteError, TransportError
from esb.message import Message
from simulators.billing import BillingSimulator
from tests.integration.soap_project import REPO, free_port

ACCOUNT = {
    "externalId": "1-9ACC7",
    "customerId": "CUST-1",
    "accountName": "张伟",
    "ratingType": "POSTPAID",
    "creditLimit": "100.00",
}


@pytest.fixture
def billing(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[BillingSimulator, str]]:
    """A simulated Billing service on a free loopback port."""
    monkeypatch.setenv("TEST_BILLING_PASSWORD", "billing-secret")
    sim = BillingSimulator("esb", "billing-secret")
    url = sim.serve()
    yield sim, url
    sim.stop()


def sink(tmp_path: Path, address: str, operation: str = "createAccount", **options: Any) -> SOAPSink:
    """Return a connected sink calling ``operation`` at ``address``."""
    raw = {
        "adapter": "soap",
        "wsdl": "config/contracts/billing/billing.wsdl",
        "operation": operation,
        "address": address,
        "retryable_faults": ["BIL-0503"],
        "timeout": "2s",
        "connect_timeout": "1s",
        "auth": {"username": "esb", "password_env": "TEST_BILLING_PASSWORD", "mode": "basic"},
    }
    raw.update(options)
    out = SOAPSink(
        SOAPEndpoint.model_validate(raw), AdapterContext(Settings(data_dir=tmp_path), REPO, "billing.x")
    )
    out.connect()
    return out


@pytest.mark.parametrize(
    ("mode", "port"),
    [
        pytest.param("basic", None, id="basic-soap11"),
        pytest.param("wsse-text", None, id="wsse-text"),
        pytest.param("wsse-digest", "BillingAccountSoap12Port", id="wsse-digest-soap12"),
    ],
)
def test_call_returns_reply_as_dict(
    billing: tuple[BillingSimulator, str], tmp_path: Path, mode: str, port: str | None
) -> None:
    """A call with each kind of credential returns the output element as a JSON-friendly dict."""
    sim, url = billing
    with sink(
        tmp_path,
        url,
        port=port,
        auth={"username": "esb", "password_env": "TEST_BILLING_PASSWORD", "mode": mode},
    ) as out:
        reply = out.request(Message(ACCOUNT), 2.0)
    assert reply.body["status"] == "ACTIVE"
    assert reply.body["accountId"].startswith("20")
    assert isinstance(reply.body["createdAt"], str)
    assert reply.causation_id is not None
    assert sim.accounts[reply.body["accountId"]].name == "张伟"


def test_xml_body_is_sent_as_the_input_element(billing: tuple[BillingSimulator, str], tmp_path: Path) -> None:
    """A body that is already the input element (XML bytes) is sent as it is."""
    sim, url = billing
    sim.add_account("2000123456", balance="5.00")
    body = (
        b'<b:QueryBalanceRequest xmlns:b="http://billing.telecom.example/ws/types/v1">'
        b"<b:accountId>2000123456</b:accountId></b:QueryBalanceRequest>"
    )
    with sink(tmp_path, url, "queryBalance") as out:
        assert out.request(Message(body), 2.0).body["balance"] == "5.00"


def test_faults_become_remote_errors(billing: tuple[BillingSimulator, str], tmp_path: Path) -> None:
    """A busy fault is a retryable RemoteError, an invalid-customer fault is not; both carry code, detail."""
    sim, url = billing
    with sink(tmp_path, url) as out:
        sim.busy_next()
        with pytest.raises(RemoteError) as busy:
            out.write(Message(ACCOUNT))
        assert (busy.value.code, busy.value.retryable) == ("BIL-0503", True)
        assert busy.value.detail["errorMessage"] == "system busy, try again later"
        with pytest.raises(RemoteError) as invalid:
            out.write(Message({**ACCOUNT, "customerId": "INVALID-1"}))
        assert (invalid.value.code, invalid.value.retryable) == ("BIL-1001", False)


def test_bad_password_is_not_retryable(
    billing: tuple[BillingSimulator, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Refused credentials are a RemoteError that redelivery cannot cure; the password is in no message."""
    monkeypatch.setenv("TEST_BILLING_PASSWORD", "wrong-password")
    _, url = billing
    with sink(tmp_path, url) as out, pytest.raises(RemoteError) as caught:
        out.write(Message(ACCOUNT))
    assert not caught.value.retryable
    assert "wrong-password" not in str(caught.value)


def test_wrong_fields_are_a_message_error(billing: tuple[BillingSimulator, str], tmp_path: Path) -> None:
    """A body that does not fit the operation's input is a permanent SOAPRequestError, not sent."""
    sim, url = billing
    with sink(tmp_path, url) as out, pytest.raises(SOAPRequestError):
        out.write(Message({"nonsense": 1}))
    assert sim.calls == []


def test_refused_connection_is_transport_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A refused connection is a retryable TransportError showing the address with the password masked."""
    monkeypatch.setenv("TEST_BILLING_PASSWORD", "x")
    address = f"http://esb:s3cret@127.0.0.1:{free_port()}/services/BillingAccount"
    with sink(tmp_path, address) as out, pytest.raises(TransportError) as caught:
        out.write(Message(ACCOUNT))
    assert caught.value.retryable
    assert "s3cret" not in str(caught.value)


def test_silent_peer_is_a_timeout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A peer that accepts and never answers is a TransportError after the operation timeout."""
    monkeypatch.setenv("TEST_BILLING_PASSWORD", "x")
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        held: list[socket.socket] = []
        threading.Thread(target=lambda: held.append(server.accept()[0]), daemon=True).start()
        address = f"http://127.0.0.1:{server.getsockname()[1]}/services/BillingAccount"
        with (
            sink(tmp_path, address, timeout="300ms") as out,
            pytest.raises(TransportError, match="timed out"),
        ):
            out.request(Message(ACCOUNT), 0.3)
        for conn in held:
            conn.close()
