"""The hub's SOAP client over TLS, against the Billing simulator served over https on 127.0.0.1 with a
PKI made for the module: a trusted server, an untrusted one, mutual TLS, the client key as a secret file,
and both flows (sink and enrich) through a running hub."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from adapters.soap.config import SOAPEndpoint
from adapters.soap.errors import SOAPTLSError
from adapters.soap.sink import SOAPSink
from esb.config.settings import Settings
from esb.context import AdapterContext
from esb.exceptions import ConfigError, TransportError
from esb.message import Message
from esb.project import Project
from esb.runtime.hub import Hub
from esb.testing import BROKER
from simulators.billing import BillingSimulator
from tests.integration.soap_project import REPO, free_port, make_soap_project, siebel_account
from tests.integration.soap_tls import PKI, TLSServer, make_pki, serve_tls
from tests.integration.test_soap_flows import crm_post

ACCOUNT = {
    "externalId": "1-TLS1",
    "customerId": "CUST-1",
    "accountName": "张伟",
    "ratingType": "POSTPAID",
    "creditLimit": "100.00",
}
PATH = "/services/BillingAccount"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> PKI:
    """CAs and certificates for this module (server, unrelated server, hub's client certificate)."""
    return make_pki(tmp_path_factory.mktemp("soap-pki"))


@pytest.fixture
def sim(monkeypatch: pytest.MonkeyPatch) -> BillingSimulator:
    """The Billing simulator's WSGI app (served by each test as it needs)."""
    monkeypatch.setenv("TEST_BILLING_PASSWORD", "billing-secret")
    return BillingSimulator("esb", "billing-secret")


@pytest.fixture
def https(sim: BillingSimulator, pki: PKI) -> Iterator[TLSServer]:
    """Billing over https with a certificate from the test CA, no client certificate asked."""
    server = serve_tls(sim.app, pki.server_cert, pki.server_key)
    yield server
    server.stop()


def sink(tmp_path: Path, address: str, tls: dict[str, Any] | None, **options: Any) -> SOAPSink:
    """Return a sink (not connected) calling createAccount at ``address`` with ``tls``."""
    raw = {
        "adapter": "soap",
        "wsdl": "config/contracts/billing/billing.wsdl",
        "operation": "createAccount",
        "address": address,
        "timeout": "3s",
        "connect_timeout": "2s",
        "auth": {"username": "esb", "password_env": "TEST_BILLING_PASSWORD", "mode": "wsse-digest"},
        "tls": tls,
        **options,
    }
    context = AdapterContext(Settings(data_dir=tmp_path / "var"), REPO, "billing.create_account")
    return SOAPSink(SOAPEndpoint.model_validate(raw), context)


def test_call_over_https_with_ca_file(
    https: TLSServer, sim: BillingSimulator, pki: PKI, tmp_path: Path
) -> None:
    """createAccount over https trusting the CA file succeeds; the WSDL is never fetched from the peer."""
    with sink(tmp_path, https.url, {"ca_file": str(pki.ca)}) as out:
        reply = out.request(Message(ACCOUNT), 3.0)
        with pytest.raises(ConfigError, match="local files only"):
            out._client.transport.load(https.url + "?wsdl")
    assert reply.body["status"] == "ACTIVE"
    assert sim.accounts[reply.body["accountId"]].external_id == "1-TLS1"
    assert https.requests == [("POST", PATH, None)]


@pytest.mark.parametrize(
    ("server_ca", "tls"),
    [
        pytest.param("other", "ca", id="server-cert-from-another-CA"),
        pytest.param("ours", "other", id="ca-file-of-another-CA"),
        pytest.param("ours", None, id="system-CAs-only"),
    ],
)
def test_untrusted_server_certificate_is_permanent(
    sim: BillingSimulator, pki: PKI, tmp_path: Path, server_ca: str, tls: str | None
) -> None:
    """A server certificate the hub does not trust is a non-retryable TLS error naming tls.ca_file."""
    cert, key = (
        (pki.other_server_cert, pki.other_server_key)
        if server_ca == "other"
        else (pki.server_cert, pki.server_key)
    )
    server = serve_tls(sim.app, cert, key)
    options = {"ca": {"ca_file": str(pki.ca)}, "other": {"ca_file": str(pki.other_ca)}, None: None}[tls]
    address = server.url.replace("https://", "https://esb:pw-in-url@")
    try:
        with sink(tmp_path, address, options) as out, pytest.raises(SOAPTLSError) as caught:
            out.write(Message(ACCOUNT))
    finally:
        server.stop()
    assert isinstance(caught.value, TransportError)
    assert caught.value.retryable is False
    assert "not trusted" in str(caught.value)
    assert "tls.ca_file" in str(caught.value)
    assert "pw-in-url" not in str(caught.value)
    assert sim.calls == []


@pytest.fixture
def mtls(sim: BillingSimulator, pki: PKI, request: pytest.FixtureRequest) -> Iterator[TLSServer]:
    """Billing over https requiring a client certificate from the client CA (TLS 1.2 when asked)."""
    tls12 = getattr(request, "param", False)
    server = serve_tls(sim.app, pki.server_cert, pki.server_key, client_ca=pki.client_ca, tls12_only=tls12)
    yield server
    server.stop()


def test_mutual_tls_with_client_certificate(mtls: TLSServer, pki: PKI, tmp_path: Path) -> None:
    """With tls.cert_file/key_file the hub presents its certificate and the call succeeds."""
    tls = {"ca_file": str(pki.ca), "cert_file": str(pki.client_cert), "key_file": str(pki.client_key)}
    with sink(tmp_path, mtls.url, tls) as out:
        assert out.request(Message(ACCOUNT), 3.0).body["status"] == "ACTIVE"
    assert mtls.requests == [("POST", PATH, "esb-hub")]


@pytest.mark.parametrize("mtls", [pytest.param(True, id="tls1.2")], indirect=True)
@pytest.mark.parametrize("client", [pytest.param(None, id="no-cert"), pytest.param("other", id="untrusted")])
def test_refused_client_certificate_is_permanent(
    mtls: TLSServer, sim: BillingSimulator, pki: PKI, tmp_path: Path, client: str | None
) -> None:
    """A TLS 1.2 server refusing the hub's (missing or untrusted) certificate: permanent, names options."""
    tls: dict[str, Any] = {"ca_file": str(pki.ca)}
    if client == "other":
        tls.update(cert_file=str(pki.other_server_cert), key_file=str(pki.other_server_key))
    with sink(tmp_path, mtls.url, tls) as out, pytest.raises(SOAPTLSError, match=r"tls\.cert_file") as caught:
        out.write(Message(ACCOUNT))
    assert caught.value.retryable is False
    assert "refused the handshake" in str(caught.value)
    assert sim.calls == []


def test_missing_client_certificate_on_tls13_fails_clearly(
    mtls: TLSServer, sim: BillingSimulator, pki: PKI, tmp_path: Path
) -> None:
    """A TLS 1.3 server hanging up on a hub without a certificate: a TransportError naming tls.cert_file."""
    with sink(tmp_path, mtls.url, {"ca_file": str(pki.ca)}) as out, pytest.raises(TransportError) as caught:
        out.write(Message(ACCOUNT))
    # an alert (permanent) or a bare hang-up (retryable, cannot be told from a dropped link) - both say why
    assert "client certificate" in str(caught.value) or "refused the handshake" in str(caught.value)
    assert "tls.cert_file" in str(caught.value)
    assert sim.calls == []


@pytest.fixture
def secret_key(pki: PKI, tmp_path: Path) -> Path:
    """The client key as a secret file (mode 0600 in a secrets folder), as /run/secrets/esb.key would be."""
    folder = tmp_path / "secrets"
    folder.mkdir(mode=0o700)
    path = folder / "esb.key"
    path.write_bytes(pki.client_key.read_bytes())
    path.chmod(0o600)
    return path


def _key_lines(path: Path) -> list[str]:
    return [line for line in path.read_text().splitlines() if line and not line.startswith("-----")]


def test_client_key_from_secret_file_is_never_logged(
    mtls: TLSServer,
    pki: PKI,
    secret_key: Path,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The key is read from its secret file path; neither logs, output nor errors ever show it."""
    caplog.set_level(logging.DEBUG)
    tls = {"ca_file": str(pki.ca), "cert_file": str(pki.client_cert), "key_file": str(secret_key)}
    with sink(tmp_path, mtls.url, tls) as out:
        assert out.request(Message(ACCOUNT), 3.0).body["status"] == "ACTIVE"
    mismatched = {**tls, "key_file": str(pki.server_key)}
    with pytest.raises(ConfigError) as wrong:
        sink(tmp_path, mtls.url, mismatched).connect()
    assert "KEY_VALUES_MISMATCH" in str(wrong.value)
    assert str(pki.server_key) in str(wrong.value)
    seen = caplog.text + "".join(capsys.readouterr()) + str(wrong.value)
    for line in _key_lines(secret_key) + _key_lines(pki.server_key):
        assert line not in seen
    assert mtls.requests == [("POST", PATH, "esb-hub")]


def _encrypted(key: Path, into: Path) -> Path:
    from cryptography.hazmat.primitives import serialization

    loaded = serialization.load_pem_private_key(key.read_bytes(), None)
    into.write_bytes(
        loaded.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"passphrase"),
        )
    )
    return into


@pytest.mark.parametrize(
    ("option", "match"),
    [
        pytest.param("missing-key", "cannot be read", id="missing-key"),
        pytest.param("encrypted-key", "encrypted", id="encrypted-key"),
        pytest.param("missing-ca", "tls.ca_file .* cannot be read", id="missing-ca"),
        pytest.param("key-as-ca", "tls.ca_file .* not usable", id="not-a-ca-file"),
        pytest.param("http", "not https", id="tls-on-http-address"),
    ],
)
def test_unusable_tls_files_are_config_errors_at_connect(
    pki: PKI, secret_key: Path, tmp_path: Path, option: str, match: str
) -> None:
    """A TLS file that OpenSSL cannot use (or TLS on an http address) is a ConfigError before any call."""
    address = f"https://127.0.0.1:{free_port()}{PATH}"
    tls: dict[str, Any] = {
        "ca_file": str(pki.ca),
        "cert_file": str(pki.client_cert),
        "key_file": str(secret_key),
    }
    if option == "missing-key":
        tls["key_file"] = str(tmp_path / "absent.key")
    elif option == "encrypted-key":
        tls["key_file"] = str(_encrypted(secret_key, tmp_path / "encrypted.key"))
    elif option == "missing-ca":
        tls["ca_file"] = str(tmp_path / "absent-ca.pem")
    elif option == "key-as-ca":
        tls["ca_file"] = str(secret_key)
    else:
        address = address.replace("https://", "http://")
    out = sink(tmp_path, address, tls)
    with pytest.raises(ConfigError, match=match) as caught:
        out.connect()
    assert "billing.create_account" in str(caught.value)
    for line in _key_lines(secret_key):
        assert line not in str(caught.value)


# -- through a running hub: the CRM flow (sink) and the hotline flow (enrich) over https --------------------
def _hub(tmp_path: Path, url: str, tls: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> tuple[Hub, str]:
    monkeypatch.setenv("TEST_CRM_PASSWORD", "crm-secret")
    monkeypatch.setenv("TEST_HOTLINE_PASSWORD", "hotline-secret")
    port = free_port()
    project = Project.load(make_soap_project(tmp_path / "project", url, port, billing={"tls": tls}))
    running = Hub(project)
    running.start(wait=20)
    return running, f"http://127.0.0.1:{port}/soap"


def _hotline_query(base: str, msisdn: str) -> requests.Response:
    envelope = (
        '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Body>'
        f'<h:QueryBalance xmlns:h="http://esb.telecom.example/hotline/v1"><h:msisdn>{msisdn}</h:msisdn>'
        "</h:QueryBalance></soapenv:Body></soapenv:Envelope>"
    )
    return requests.post(
        f"{base}/hotline",
        data=envelope.encode("utf-8"),
        auth=("hotline", "hotline-secret"),
        timeout=20,
        headers={"Content-Type": "text/xml; charset=utf-8", "SOAPAction": "urn:esb:hotline:QueryBalance"},
    )


def test_hub_flows_over_mutual_tls(
    mtls: TLSServer, sim: BillingSimulator, pki: PKI, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both flows reach Billing over mutual TLS: the CRM's account (sink) and the hotline's query (enrich)."""
    tls = {"ca_file": str(pki.ca), "cert_file": str(pki.client_cert), "key_file": str(pki.client_key)}
    sim.add_account("2000123456", balance="88.60", msisdn="13800138000")
    running, base = _hub(tmp_path, mtls.url, tls, monkeypatch)
    try:
        created = crm_post(base, siebel_account("1-MTLS1"))
        answered = _hotline_query(base, "13800138000")
    finally:
        running.stop(timeout=5)
    assert created.status_code == 202, created.text
    assert [a.external_id for a in sim.accounts.values() if a.external_id == "1-MTLS1"] == ["1-MTLS1"]
    assert answered.status_code == 200, answered.text
    assert b"88.60" in answered.content
    assert [name for name, _ in sim.calls] == ["CreateAccountRequest", "QueryBalanceRequest"]
    assert {cn for _, _, cn in mtls.requests} == {"esb-hub"}
    assert BROKER.written("dlq.billing") == []


def test_hub_dead_letters_untrusted_server_without_redelivery(
    sim: BillingSimulator, pki: PKI, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A Billing certificate the hub does not trust dead-letters the account at once (no redelivery)."""
    server = serve_tls(sim.app, pki.other_server_cert, pki.other_server_key)
    try:
        running, base = _hub(tmp_path, server.url, {"ca_file": str(pki.ca)}, monkeypatch)
        try:
            response = crm_post(base, siebel_account("1-WRONGCA"))
            dead = BROKER.written("dlq.billing")
            history = running.journal.history(dead[0].id) if dead else []
        finally:
            running.stop(timeout=5)
    finally:
        server.stop()
    assert response.status_code == 202
    assert len(dead) == 1
    assert "not trusted" in dead[0].headers["esb-error"]
    states = [event.state for event in history]
    assert "dead_lettered" in states
    assert "redelivered" not in states
    assert sim.calls == []
    assert os.environ["TEST_BILLING_PASSWORD"] not in dead[0].headers["esb-error"]
