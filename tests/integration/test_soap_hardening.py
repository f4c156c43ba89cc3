"""The SOAP listener's hardening over real HTTP on loopback: audit lines and metrics for every refusal,
lockout after repeated failed logins, SOAPAction, mustUnderstand, WSDL addresses and the nonce store."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from lxml import etree
from zeep.wsse.username import UsernameToken

from adapters.soap.service import SOAPService
from adapters.soap.source import SOAPSource
from esb.config.settings import Settings
from esb.context import AdapterContext
from esb.runtime.metrics import SHARED, Metrics
from esb.testing import FakeClock
from tests.integration.soap_project import REPO
from tests.integration.test_soap_listener import (
    HOTLINE_NS,
    QUERY,
    FakeRoute,
    envelope,
    fault_code,
    hotline_endpoint,
    post,
)
from tests.unit.test_soap_hardening import FakeLog

Serve = Callable[..., dict[str, Any]]
PATH = "/soap/hardened"
XXE = b'<?xml version="1.0"?><!DOCTYPE e [<!ENTITY x SYSTEM "file:///etc/passwd">]>' + envelope(
    f'<h:QueryBalance xmlns:h="{HOTLINE_NS}"><h:accountId>&x;</h:accountId></h:QueryBalance>'
)


@pytest.fixture
def serve(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Serve]:
    """Serve the hotline's QueryBalance at PATH with extra listen options; a fake clock and log are put in."""
    monkeypatch.setenv("TEST_HOTLINE_PASSWORD", "hotline-secret")
    opened: list[tuple[SOAPSource, FakeRoute]] = []

    def start(journal_url: str | None = None, **listen: Any) -> dict[str, Any]:
        settings = Settings(data_dir=tmp_path, **({"journal": {"url": journal_url}} if journal_url else {}))
        context = AdapterContext(settings, REPO, "hotline.soap_balance")
        source = SOAPSource(hotline_endpoint(path=PATH, reply_timeout="2s", **listen), context)
        source.connect()
        route = FakeRoute(source)
        route.start()
        opened.append((source, route))
        assert source.listener is not None
        service: SOAPService = source.listener.services[PATH]
        service.audit.log = FakeLog()
        clock = FakeClock(1000.0)
        service.audit.throttle.clock = clock
        return {
            "url": source.url,
            "route": route,
            "service": service,
            "clock": clock,
            "log": service.audit.log,
        }

    yield start
    for source, route in opened:
        route.stop_event.set()
        route.join(2)
        source.close()


def refused(reason: str) -> float:
    """The esb_soap_refused_total count of PATH and ``reason`` in the hub's shared registry."""
    return SHARED.get_sample_value("esb_soap_refused_total", {"path": PATH, "reason": reason}) or 0.0


def digest_request(password: str = "hotline-secret", created: dt.datetime | None = None) -> bytes:
    """A QueryBalance envelope with a fresh digest UsernameToken (optionally with a given Created)."""
    token = UsernameToken("hotline", password, use_digest=True, created=created)
    env = etree.fromstring(envelope(QUERY))
    token.apply(env, {})
    return bytes(etree.tostring(env))


def test_failed_logins_lock_the_client_out_even_with_the_right_password(serve: Serve) -> None:
    """After max_failures wrong passwords the right one gets 429 + Retry-After until the lockout ends."""
    served = serve(throttle={"max_failures": 5, "window": "60s", "lockout": "2m"})
    before = refused("bad_credentials"), refused("locked_out")
    for _ in range(5):
        assert post(served["url"], envelope(QUERY), auth=("hotline", "guess-1234")).status_code == 401
    locked = post(served["url"], envelope(QUERY))
    assert locked.status_code == 429
    assert fault_code(locked) == "LockedOut"
    assert locked.headers["Retry-After"] == "120"
    assert (
        requests.get(served["url"] + "?wsdl", auth=("hotline", "hotline-secret"), timeout=5).status_code
        == 429
    )
    served["clock"].advance(119)
    assert post(served["url"], envelope(QUERY)).status_code == 429
    served["clock"].advance(1)
    assert post(served["url"], envelope(QUERY)).status_code == 200
    assert (refused("bad_credentials") - before[0], refused("locked_out") - before[1]) == (5, 3)
    lockouts = [line for line in served["log"].lines if line[1] == "SOAP client locked out"]
    assert len(lockouts) == 1
    assert lockouts[0][2]["client"] == "127.0.0.1"
    assert "guess-1234" not in repr(served["log"].lines)
    exposed = Metrics().exposition().decode()
    assert f'esb_soap_refused_total{{path="{PATH}",reason="bad_credentials"}}' in exposed
    assert f'esb_soap_lockouts_total{{path="{PATH}"}}' in exposed


def test_missing_credentials_do_not_lock_out(serve: Serve) -> None:
    """Requests without credentials (a client waiting for the 401 challenge) are refused, never locked out."""
    served = serve(throttle={"max_failures": 2})
    for _ in range(4):
        assert post(served["url"], envelope(QUERY), auth=None).status_code == 401
    assert post(served["url"], envelope(QUERY)).status_code == 200


@pytest.mark.parametrize(
    ("send", "reason"),
    [
        pytest.param({"auth": None}, "missing_credentials", id="missing-credentials"),
        pytest.param({"auth": ("hotline", "wrong")}, "bad_credentials", id="bad-credentials"),
        pytest.param({"body": XXE}, "unsafe_xml", id="xxe"),
        pytest.param({"body": envelope(QUERY.replace("13800138000", "1" * 8000))}, "oversize", id="oversize"),
        pytest.param({"body": b"<e:Envelope xmlns:e='urn:x'><e:Body>"}, "malformed", id="malformed"),
        pytest.param({"body": envelope('<h:Nope xmlns:h="urn:x"/>')}, "unknown_operation", id="unknown-op"),
        pytest.param({"action": "urn:esb:crm:SubmitBillingAccount"}, "wrong_soap_action", id="soap-action"),
        pytest.param(
            {"body": envelope(QUERY, header='<x:Pay xmlns:x="urn:x" e:mustUnderstand="1"/>')},
            "must_understand",
            id="must-understand",
        ),
        pytest.param({"body": envelope(QUERY.replace("13800138000", "12"))}, "schema_violation", id="schema"),
    ],
)
def test_every_refusal_is_logged_and_counted(serve: Serve, send: dict[str, Any], reason: str) -> None:
    """Each kind of refusal is one audit line (path, client, user, reason) and one count of its reason."""
    served = serve()
    before = refused(reason)
    body = send.pop("body", envelope(QUERY))
    response = post(served["url"], body, **send)
    assert response.status_code >= 400
    assert refused(reason) - before == 1
    (line,) = [fields for _, event, fields in served["log"].lines if event == "SOAP request refused"]
    assert (line["path"], line["client"], line["reason"]) == (PATH, "127.0.0.1", reason)
    assert "secret" not in repr(line)
    assert served["route"].seen == []


def test_replayed_and_stale_tokens_are_logged_with_the_user(serve: Serve) -> None:
    """A replayed digest token and a stale one are refused, logged with the user name, never the nonce."""
    served = serve()
    data = digest_request()
    assert post(served["url"], data, auth=None).status_code == 200
    assert post(served["url"], data, auth=None).status_code == 401
    old = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=10)
    assert post(served["url"], digest_request(created=old), auth=None).status_code == 401
    lines = [fields for _, event, fields in served["log"].lines if event == "SOAP request refused"]
    assert [(f["reason"], f["user"]) for f in lines] == [
        ("replayed_nonce", "hotline"),
        ("stale_token", "hotline"),
    ]
    nonce = etree.fromstring(data).findtext(".//{*}Nonce")
    assert nonce
    assert nonce not in repr(lines)


def test_unreachable_nonce_store_refuses_digest_tokens_only(serve: Serve, tmp_path: Path) -> None:
    """With the journal's database unreachable a digest token is refused (fail closed); basic still works."""
    served = serve(journal_url=f"sqlite:///{tmp_path}")  # a folder: cannot be opened as a database
    served["service"].nonces.log = FakeLog()
    response = post(served["url"], digest_request(), auth=None)
    assert response.status_code == 401
    assert "nonce" in etree.fromstring(response.content).findtext(".//faultstring", "")
    assert refused("nonce_store_unavailable") >= 1
    assert post(served["url"], envelope(QUERY)).status_code == 200


@pytest.mark.parametrize(
    ("mode", "action", "soap12", "status"),
    [
        pytest.param("strict", "urn:esb:hotline:QueryBalance", False, 200, id="strict-right"),
        pytest.param("strict", "urn:wrong", False, 500, id="strict-wrong"),
        pytest.param("strict", None, False, 500, id="strict-missing"),
        pytest.param("strict", "urn:wrong", True, 500, id="strict-wrong-soap12"),
        pytest.param("strict", "urn:esb:hotline:QueryBalance", True, 200, id="strict-right-soap12"),
        pytest.param("lenient", None, False, 200, id="lenient-missing"),
        pytest.param("lenient", "urn:wrong", False, 500, id="lenient-wrong"),
        pytest.param("ignore", "urn:wrong", True, 200, id="ignore"),
    ],
)
def test_soap_action_is_checked(
    serve: Serve, mode: str, action: str | None, soap12: bool, status: int
) -> None:
    """A wrong (or, when strict, missing) SOAPAction gets a Client/Sender WrongSOAPAction fault."""
    served = serve(soap_action=mode)
    response = post(served["url"], envelope(QUERY, soap12=soap12), soap12=soap12, action=action)
    assert response.status_code == status
    if status != 200:
        assert fault_code(response) == "WrongSOAPAction"
        assert "urn:esb:hotline:QueryBalance" in response.text
        tree = etree.fromstring(response.content)
        ns = "{http://www.w3.org/2003/05/soap-envelope}"
        code = tree.findtext(f".//{ns}Code/{ns}Value") if soap12 else tree.findtext(".//faultcode")
        assert code == ("soapenv:Sender" if soap12 else "soapenv:Client")


def test_must_understand_header_not_understood_gets_the_spec_fault(serve: Serve) -> None:
    """mustUnderstand on an unknown header block faults (1.1 and 1.2); an optional one and MessageID pass."""
    served = serve()
    unknown = '<x:Pay xmlns:x="urn:x" e:mustUnderstand="1">1</x:Pay>'
    response = post(served["url"], envelope(QUERY, header=unknown))
    assert response.status_code == 500
    assert etree.fromstring(response.content).findtext(".//faultcode") == "soapenv:MustUnderstand"
    response12 = post(
        served["url"], envelope(QUERY, soap12=True, header=unknown.replace('"1"', '"true"')), soap12=True
    )
    tree, ns = etree.fromstring(response12.content), "{http://www.w3.org/2003/05/soap-envelope}"
    assert tree.findtext(f".//{ns}Code/{ns}Value") == "soapenv:MustUnderstand"
    assert tree.find(f"{ns}Header/{ns}NotUnderstood") is not None
    optional = '<x:Pay xmlns:x="urn:x" e:mustUnderstand="0">1</x:Pay>'
    wsa = '<a:MessageID xmlns:a="http://www.w3.org/2005/08/addressing" e:mustUnderstand="1">m-1</a:MessageID>'
    assert post(served["url"], envelope(QUERY, header=optional + wsa)).status_code == 200
    assert served["route"].seen[0].id == "m-1"


def test_must_understand_security_header_is_understood(serve: Serve) -> None:
    """A wsse:Security header with mustUnderstand="1" holding a UsernameToken is processed, not refused."""
    served = serve()
    env = etree.fromstring(digest_request())
    security = env.find(".//{*}Security")
    assert security is not None
    security.set("{http://schemas.xmlsoap.org/soap/envelope/}mustUnderstand", "1")
    assert post(served["url"], etree.tostring(env), auth=None).status_code == 200


def test_wsdl_addresses_never_come_from_the_host_header(serve: Serve) -> None:
    """A forged Host header does not reach the served WSDL: the bound address, or public_url, does."""
    served = serve()
    auth = ("hotline", "hotline-secret")
    forged = requests.get(served["url"] + "?wsdl", auth=auth, headers={"Host": "evil.example:666"}, timeout=5)
    assert forged.status_code == 200
    assert b"evil.example" not in forged.content
    assert f'location="{served["url"]}"'.encode() in forged.content
    served["route"].stop_event.set()
    served["route"].join(2)
    source = served["route"].source
    source.close()
    public = serve(public_url="https://esb.example.com/soap/hotline")
    wsdl = requests.get(public["url"] + "?wsdl", auth=auth, headers={"Host": "evil.example"}, timeout=5)
    assert b'location="https://esb.example.com/soap/hotline"' in wsdl.content
    assert b"evil.example" not in wsdl.content
