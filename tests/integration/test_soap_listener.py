"""The hub's SOAP listener over real HTTP on loopback: authentication, hardened parsing, limits, faults,
?wsdl, and the hand-over to the route (one-way acknowledgement, request-reply, timeouts)."""

from __future__ import annotations

import base64
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from lxml import etree
from zeep import Client, Transport
from zeep.exceptions import Fault
from zeep.wsse.username import UsernameToken

from adapters.soap.config import SOAPEndpoint
from adapters.soap.source import SOAPSource
from esb.config.settings import Settings
from esb.context import AdapterContext
from esb.message import Message
from esb.typing import Delivery
from tests.integration.soap_project import REPO

FAULT = "{urn:esb:soap:fault}code"
HOTLINE_NS = "http://esb.telecom.example/hotline/v1"
Behaviour = Callable[[Delivery], None]


def answer(delivery: Delivery) -> None:
    """A route that answers every balance query with a fixed balance."""
    if delivery.respond is not None:
        delivery.respond(
            delivery.message.derive(
                {
                    "accountId": "2000000001",
                    "balance": "12.50",
                    "currency": "CNY",
                    "asOf": "2026-01-01T00:00:00Z",
                },
                suffix="reply",
            )
        )
    delivery.ack()


class FakeRoute(threading.Thread):
    """Reads the source as a route worker would and applies ``behaviour`` to each delivery."""

    def __init__(self, source: SOAPSource) -> None:
        super().__init__(daemon=True)
        self.source = source
        self.behaviour: Behaviour = answer
        self.seen: list[Message] = []
        self.stop_event = threading.Event()

    def run(self) -> None:
        """Read until stopped."""
        while not self.stop_event.is_set():
            delivery = self.source.read(0.05)
            if delivery is not None:
                self.seen.append(delivery.message)
                self.behaviour(delivery)


def hotline_endpoint(**listen: Any) -> SOAPEndpoint:
    """The hotline's QueryBalance served at /soap/hotline on a free port (user hotline, password from
    TEST_HOTLINE_PASSWORD); ``listen`` adds or replaces listen options."""
    return SOAPEndpoint.model_validate(
        {
            "adapter": "soap",
            "wsdl": "config/contracts/hotline/hotline.wsdl",
            "operation": "QueryBalance",
            "listen": {
                "port": 0,
                "path": "/soap/hotline",
                "reply_timeout": "1s",
                "max_request_bytes": 4096,
                "auth": {"users": [{"username": "hotline", "password_env": "TEST_HOTLINE_PASSWORD"}]},
                **listen,
            },
        }
    )


@pytest.fixture
def served(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """The hotline's QueryBalance served on a free port, read by a fake route."""
    monkeypatch.setenv("TEST_HOTLINE_PASSWORD", "hotline-secret")
    context = AdapterContext(Settings(data_dir=tmp_path), REPO, "hotline.soap_balance")
    source = SOAPSource(hotline_endpoint(), context)
    source.connect()
    route = FakeRoute(source)
    route.start()
    try:
        yield {"url": source.url, "route": route}
    finally:
        route.stop_event.set()
        route.join(2)
        source.close()


ACTION = "urn:esb:hotline:QueryBalance"


def soap_headers(soap12: bool = False, action: str | None = ACTION) -> dict[str, str]:
    """HTTP headers of a SOAP request announcing ``action`` (1.1: SOAPAction; 1.2: Content-Type action)."""
    if soap12:
        param = f'; action="{action}"' if action is not None else ""
        return {"Content-Type": f"application/soap+xml; charset=utf-8{param}"}
    headers = {"Content-Type": "text/xml; charset=utf-8"}
    if action is not None:
        headers["SOAPAction"] = f'"{action}"'
    return headers


def post(
    url: str,
    body: bytes,
    *,
    auth: tuple[str, str] | None = ("hotline", "hotline-secret"),
    soap12: bool = False,
    action: str | None = ACTION,
    headers: dict[str, str] | None = None,
) -> requests.Response:
    """POST raw bytes as a SOAP request (announcing the hotline's QueryBalance action by default)."""
    sent = {**soap_headers(soap12, action), **(headers or {})}
    return requests.post(url, data=body, auth=auth, headers=sent, timeout=10)


def envelope(payload: str, *, soap12: bool = False, header: str = "") -> bytes:
    """Wrap ``payload`` in a SOAP envelope."""
    ns = "http://www.w3.org/2003/05/soap-envelope" if soap12 else "http://schemas.xmlsoap.org/soap/envelope/"
    return (
        f'<e:Envelope xmlns:e="{ns}"><e:Header>{header}</e:Header><e:Body>{payload}</e:Body></e:Envelope>'
    ).encode()


QUERY = f'<h:QueryBalance xmlns:h="{HOTLINE_NS}"><h:msisdn>13800138000</h:msisdn></h:QueryBalance>'


def fault_code(response: requests.Response) -> str | None:
    """Return the hub's fault code in a Fault response."""
    return etree.fromstring(response.content).findtext(f".//{FAULT}")


def test_zeep_calls_through_wsdl_soap11_and_12(served: dict[str, Any]) -> None:
    """zeep, an independent client, loads ?wsdl from the hub and calls the operation over SOAP 1.1 and 1.2."""
    session = requests.Session()
    session.auth = ("hotline", "hotline-secret")
    for port in ("HotlineSoap11Port", "HotlineSoap12Port"):
        client = Client(served["url"] + "?wsdl", transport=Transport(session=session), port_name=port)
        result = client.service.QueryBalance(msisdn="13800138000")
        assert str(result.balance) == "12.50"
    assert [m.headers["soap-version"] for m in served["route"].seen] == ["1.1", "1.2"]


@pytest.mark.parametrize("digest", [pytest.param(False, id="text"), pytest.param(True, id="digest")])
def test_ws_security_username_token(served: dict[str, Any], digest: bool) -> None:
    """A WS-Security UsernameToken (PasswordText or PasswordDigest) authenticates without HTTP basic."""
    session = requests.Session()
    session.auth = ("hotline", "hotline-secret")
    client = Client(served["url"] + "?wsdl", transport=Transport(session=session))
    session.auth = None
    client.wsse = UsernameToken("hotline", "hotline-secret", use_digest=digest)
    assert client.service.QueryBalance(accountId="2000000001").currency == "CNY"
    client.wsse = UsernameToken("hotline", "wrong", use_digest=digest)
    with pytest.raises(Fault):
        client.service.QueryBalance(accountId="2000000001")


def test_replayed_digest_token_is_refused(served: dict[str, Any]) -> None:
    """The same digest UsernameToken (same nonce) sent twice is refused the second time."""
    token = UsernameToken("hotline", "hotline-secret", use_digest=True)
    env = etree.fromstring(envelope(QUERY))
    token.apply(env, {})
    data = etree.tostring(env)
    assert post(served["url"], data, auth=None).status_code == 200
    replay = post(served["url"], data, auth=None)
    assert replay.status_code == 401
    assert fault_code(replay) == "Unauthenticated"


@pytest.mark.parametrize(
    "auth",
    [
        pytest.param(None, id="none"),
        pytest.param(("hotline", "bad"), id="bad"),
        pytest.param(("nobody", "hotline-secret"), id="unknown-user"),
    ],
)
def test_bad_credentials_get_401_fault(served: dict[str, Any], auth: tuple[str, str] | None) -> None:
    """Missing or wrong credentials get HTTP 401 with a SOAP Fault; nothing reaches the route."""
    response = post(served["url"], envelope(QUERY), auth=auth)
    assert response.status_code == 401
    assert fault_code(response) == "Unauthenticated"
    assert "WWW-Authenticate" in response.headers
    assert served["route"].seen == []


def test_xxe_is_refused(served: dict[str, Any]) -> None:
    """A request declaring an external entity (file:///etc/passwd) gets a Fault; nothing is expanded."""
    body = b'<?xml version="1.0"?><!DOCTYPE e [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>' + envelope(
        f'<h:QueryBalance xmlns:h="{HOTLINE_NS}"><h:accountId>&xxe;</h:accountId></h:QueryBalance>'
    )
    response = post(served["url"], body)
    assert response.status_code == 500
    assert fault_code(response) == "UnsafeXML"
    assert b"root:" not in response.content
    assert served["route"].seen == []


def test_billion_laughs_is_refused(served: dict[str, Any]) -> None:
    """A billion-laughs request gets a Fault at once, never expanded."""
    entities = '<!ENTITY l0 "ha">' + "".join(f'<!ENTITY l{i} "{f"&l{i - 1};" * 10}">' for i in range(1, 10))
    body = f'<?xml version="1.0"?><!DOCTYPE e [{entities}]>'.encode() + envelope("<x>&l9;</x>")
    response = post(served["url"], body)
    assert fault_code(response) == "UnsafeXML"
    assert len(response.content) < 2000


def test_oversized_request_is_refused(served: dict[str, Any]) -> None:
    """A request over max_request_bytes gets 413 with a Fault, by Content-Length or streamed (chunked)."""
    big = envelope(QUERY.replace("13800138000", "1" * 8000))
    response = post(served["url"], big)
    assert response.status_code == 413
    assert fault_code(response) == "TooLarge"
    chunked = requests.post(
        served["url"],
        data=iter([big[:3000], big[3000:]]),
        auth=("hotline", "hotline-secret"),
        headers={"Content-Type": "text/xml"},
        timeout=10,
    )
    assert chunked.status_code == 413
    assert served["route"].seen == []


@pytest.mark.parametrize(
    ("body", "code"),
    [
        pytest.param(
            b"<e:Envelope xmlns:e='http://schemas.xmlsoap.org/soap/envelope/'><e:Body>",
            "MalformedXML",
            id="malformed",
        ),
        pytest.param(envelope('<h:Nope xmlns:h="urn:x"/>'), "UnknownOperation", id="unknown-operation"),
        pytest.param(envelope(QUERY.replace("13800138000", "12")), "SchemaViolation", id="schema"),
        pytest.param(b"<notsoap/>", "NotSOAP", id="not-soap"),
    ],
)
def test_bad_requests_get_client_faults(served: dict[str, Any], body: bytes, code: str) -> None:
    """Malformed XML, unknown operations and schema violations get a Client Fault naming the problem."""
    response = post(served["url"], body)
    assert response.status_code == 500
    assert fault_code(response) == code
    assert etree.fromstring(response.content).findtext(".//faultcode") == "soapenv:Client"
    assert served["route"].seen == []


def test_soap12_faults_are_soap12(served: dict[str, Any]) -> None:
    """A SOAP 1.2 request gets a SOAP 1.2 Fault (Code/Value Sender, esb Subcode)."""
    response = post(served["url"], envelope(QUERY.replace("13800138000", "12"), soap12=True), soap12=True)
    assert response.headers["Content-Type"].startswith("application/soap+xml")
    tree = etree.fromstring(response.content)
    ns = "{http://www.w3.org/2003/05/soap-envelope}"
    assert tree.findtext(f".//{ns}Code/{ns}Value") == "soapenv:Sender"
    assert tree.findtext(f".//{ns}Subcode/{ns}Value") == "esb:SchemaViolation"


def test_route_timeout_gets_fault(served: dict[str, Any]) -> None:
    """A route that does not answer within reply_timeout gets the caller a Timeout Fault."""
    served["route"].behaviour = lambda delivery: None
    response = post(served["url"], envelope(QUERY))
    assert fault_code(response) == "Timeout"


def test_dead_lettered_request_gets_fault(served: dict[str, Any]) -> None:
    """A request-reply message settled without a reply (dead-lettered) gets a NotAnswered Fault."""
    served["route"].behaviour = lambda delivery: delivery.ack()
    response = post(served["url"], envelope(QUERY))
    assert fault_code(response) == "NotAnswered"


def test_given_back_request_gets_fault(served: dict[str, Any]) -> None:
    """A request the hub gives back (nack) gets a NotProcessed Fault: the caller should send it again."""
    served["route"].behaviour = lambda delivery: delivery.ack(RuntimeError("journal down"))
    assert fault_code(post(served["url"], envelope(QUERY))) == "NotProcessed"


def test_wsdl_needs_authentication_and_serves_imports_only(served: dict[str, Any]) -> None:
    """?wsdl needs credentials, points soap:address at the listener, and ?file= serves no other file."""
    assert requests.get(served["url"] + "?wsdl", timeout=5).status_code == 401
    auth = ("hotline", "hotline-secret")
    wsdl = requests.get(served["url"] + "?wsdl", auth=auth, timeout=5)
    assert wsdl.status_code == 200
    assert served["url"].encode() in wsdl.content
    for name in ("../../../etc/passwd", "/etc/passwd", "hotline.wsdl.bak"):
        assert requests.get(served["url"], params={"file": name}, auth=auth, timeout=5).status_code == 404


def test_wsa_message_id_becomes_the_message_id(served: dict[str, Any]) -> None:
    """A WS-Addressing MessageID is kept as the message id (so a caller's resend is recognised)."""
    header = '<a:MessageID xmlns:a="http://www.w3.org/2005/08/addressing">urn:uuid:1234-abcd</a:MessageID>'
    assert post(served["url"], envelope(QUERY, header=header)).status_code == 200
    assert served["route"].seen[0].id == "1234-abcd"
    assert served["route"].seen[0].headers["soap-user"] == "hotline"


def test_basic_header_garbage_is_401(served: dict[str, Any]) -> None:
    """An Authorization header that is not valid base64 is refused like a wrong password."""
    response = requests.post(
        served["url"],
        data=envelope(QUERY),
        timeout=5,
        headers={**soap_headers(), "Authorization": "Basic !!!"},
    )
    assert response.status_code == 401
    good = base64.b64encode(b"hotline:hotline-secret").decode()
    ok = requests.post(
        served["url"],
        data=envelope(QUERY),
        timeout=5,
        headers={**soap_headers(), "Authorization": f"Basic {good}"},
    )
    assert ok.status_code == 200
