"""The SOAP listener's hardening without HTTP: the shared nonce store (SQLite), the throttle, SOAPAction
and mustUnderstand checks, MustUnderstand faults and the new listen options."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from lxml import etree
from prometheus_client import CollectorRegistry
from pydantic import ValidationError

from adapters.http.audit import Audit, Throttle
from adapters.http.options import ThrottleOptions
from adapters.soap.checks import check_action, not_understood, requested_action
from adapters.soap.config import ListenOptions
from adapters.soap.envelope import SOAP11_ENV, SOAP12_ENV, SOAPFault, fault_bytes
from adapters.soap.nonces import LedgerNonceStore, NonceStoreDown, nonce_key
from adapters.soap.security import WSSE, WSSERefused, verify_wsse
from esb.journal.keys import OneTimeKeyLedger
from esb.journal.schema import one_time_keys
from esb.testing import FakeClock
from tests.unit.test_soap import digest_token

NOW = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)


class Clock:
    """A settable wall clock for the nonce store."""

    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> dt.datetime:
        return self.now


class FakeLog:
    """Records structlog calls (event and fields)."""

    def __init__(self) -> None:
        self.lines: list[tuple[str, str, dict[str, Any]]] = []

    def warning(self, event: str, **fields: Any) -> None:
        """Record a warning."""
        self.lines.append(("warning", event, fields))

    def error(self, event: str, **fields: Any) -> None:
        """Record an error."""
        self.lines.append(("error", event, fields))


def ledger_store(url: str, clock: Any = None) -> LedgerNonceStore:
    """A nonce store on the one-time key ledger of the journal database at ``url``."""
    return LedgerNonceStore(OneTimeKeyLedger(url, clock))


def _rows(url: str) -> list[str]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return [r.key for r in conn.execute(sa.select(one_time_keys.c.key))]
    finally:
        engine.dispose()


def test_nonce_is_refused_a_second_time_by_another_store_on_the_same_database(tmp_path: Path) -> None:
    """A nonce used once is refused again, also by a second store (another process, or after a restart)."""
    url = f"sqlite:///{tmp_path / 'journal.db'}"
    first, second = ledger_store(url), ledger_store(url)
    try:
        assert first.first_use("hotline", b"nonce-1") is True
        assert first.first_use("hotline", b"nonce-1") is False
        assert second.first_use("hotline", b"nonce-1") is False
        assert second.first_use("other-user", b"nonce-1") is True
    finally:
        first.close()
        second.close()
    assert set(_rows(url)) == {nonce_key("hotline", b"nonce-1"), nonce_key("other-user", b"nonce-1")}
    assert all(b"nonce-1".hex() not in key for key in _rows(url))


def test_expired_nonces_are_pruned(tmp_path: Path) -> None:
    """Rows past their expiry (twice the freshness window) are deleted by a later store's first insert."""
    url, clock = f"sqlite:///{tmp_path / 'journal.db'}", Clock()
    store = ledger_store(url, clock=clock)
    store.first_use("hotline", b"old")
    store.close()
    clock.now = NOW + dt.timedelta(seconds=601)
    later = ledger_store(url, clock=clock)
    later.first_use("hotline", b"new")
    later.close()
    assert _rows(url) == [nonce_key("hotline", b"new")]


def test_unreachable_database_refuses_the_token_with_a_log_line(tmp_path: Path) -> None:
    """A nonce store that cannot open its database raises NonceStoreDown and says so in the log."""
    store = ledger_store(f"sqlite:///{tmp_path}")  # a folder: the database cannot be opened
    store.log = FakeLog()
    with pytest.raises(NonceStoreDown):
        store.first_use("hotline", b"captured-nonce")
    (level, event, fields) = store.log.lines[0]
    assert level == "error"
    assert "nonce store unreachable" in event
    assert "database" in fields
    assert "captured-nonce" not in repr(fields)


def test_digest_refusals_name_their_reason(tmp_path: Path) -> None:
    """verify_wsse refuses with a reason: wrong password, stale Created, replayed nonce, store down."""
    users, now = {"crm": "s3cret"}, dt.datetime.now(dt.UTC)
    store = ledger_store(f"sqlite:///{tmp_path / 'j.db'}")
    cases = [
        (digest_token("wrong", now, b"n-1"), "bad_credentials"),
        (digest_token("s3cret", now - dt.timedelta(seconds=301), b"n-2"), "stale_token"),
        (digest_token("s3cret", now + dt.timedelta(seconds=301), b"n-3"), "stale_token"),
    ]
    for header, reason in cases:
        with pytest.raises(WSSERefused) as refused:
            verify_wsse(header, users, store)
        assert (refused.value.reason, refused.value.user) == (reason, "crm")
    assert verify_wsse(digest_token("s3cret", now, b"n-4"), users, store) == "crm"
    with pytest.raises(WSSERefused, match="replayed_nonce"):
        verify_wsse(digest_token("s3cret", now, b"n-4"), users, store)
    store.close()
    down = ledger_store(f"sqlite:///{tmp_path}")
    down.log = FakeLog()
    with pytest.raises(WSSERefused, match="nonce_store_unavailable"):
        verify_wsse(digest_token("s3cret", now, b"n-5"), users, down)


def test_throttle_locks_out_after_max_failures_within_the_window() -> None:
    """Ten failures within 60 s lock the address out for the lockout; older failures do not count."""
    clock, options = FakeClock(), ThrottleOptions(max_failures=3, window=60, lockout=300)
    throttle = Throttle(clock)
    assert [throttle.failed("10.0.0.1", options) for _ in range(2)] == [False, False]
    clock.advance(61)
    assert throttle.failed("10.0.0.1", options) is False  # the first two left the window
    assert throttle.failed("10.0.0.1", options) is False
    assert throttle.locked("10.0.0.1") is None
    assert throttle.failed("10.0.0.1", options) is True
    assert throttle.locked("10.0.0.1") == 300
    assert throttle.locked("10.0.0.2") is None
    clock.advance(299)
    assert throttle.locked("10.0.0.1") == 1
    clock.advance(1)
    assert throttle.locked("10.0.0.1") is None


def test_audit_logs_refusals_and_the_lockout_once() -> None:
    """Each refusal is one log line; the lockout is logged once; refusals while locked are only counted."""
    audit = Audit("/soap/unit-audit", CollectorRegistry(), FakeClock())
    audit.log = FakeLog()
    options = ThrottleOptions(max_failures=2, window=60, lockout=10)
    for _ in range(2):
        audit.refused("bad_credentials", "10.0.0.9", "crm", "authentication failed", options)
    for _ in range(5):
        audit.refused("locked_out", "10.0.0.9", None, "locked", options)
    events = [(event, fields.get("reason")) for _, event, fields in audit.log.lines]
    assert events == [
        ("SOAP request refused", "bad_credentials"),
        ("SOAP request refused", "bad_credentials"),
        ("SOAP client locked out", None),
    ]
    assert audit.log.lines[0][2]["client"] == "10.0.0.9"
    assert audit.log.lines[0][2]["user"] == "crm"


@pytest.mark.parametrize(
    ("given", "declared", "mode", "ok"),
    [
        pytest.param("urn:a", {"urn:a"}, "strict", True, id="strict-match"),
        pytest.param("urn:b", {"urn:a"}, "strict", False, id="strict-wrong"),
        pytest.param(None, {"urn:a"}, "strict", False, id="strict-missing"),
        pytest.param("", {"urn:a"}, "strict", False, id="strict-empty"),
        pytest.param(None, {"urn:a"}, "lenient", True, id="lenient-missing"),
        pytest.param("urn:b", {"urn:a"}, "lenient", False, id="lenient-wrong"),
        pytest.param("urn:b", {"urn:a"}, "ignore", True, id="ignore"),
        pytest.param("urn:b", set(), "strict", True, id="none-declared"),
    ],
)
def test_soap_action_modes(given: str | None, declared: set[str], mode: str, ok: bool) -> None:
    """strict wants the declared action, lenient lets a missing one pass, ignore lets all pass."""
    if ok:
        check_action(given, declared, mode, "Op")
    else:
        with pytest.raises(SOAPFault) as fault:
            check_action(given, declared, mode, "Op")
        assert fault.value.code == "WrongSOAPAction"
        assert fault.value.sender
        assert "urn:a" in fault.value.text


def test_requested_action_is_read_from_the_header_or_the_content_type() -> None:
    """SOAP 1.1 reads the quoted SOAPAction header; SOAP 1.2 the Content-Type's action parameter."""
    assert requested_action({"HTTP_SOAPACTION": '"urn:x"'}, "1.1") == "urn:x"
    assert requested_action({}, "1.1") is None
    ctype = 'application/soap+xml; charset=utf-8; action="urn:y"'
    assert requested_action({"CONTENT_TYPE": ctype}, "1.2") == "urn:y"
    assert requested_action({"CONTENT_TYPE": "application/soap+xml"}, "1.2") is None


def _header(ns: str, blocks: str) -> etree._Element:
    return etree.fromstring(f'<e:Header xmlns:e="{ns}" xmlns:x="urn:x">{blocks}</e:Header>')


def test_mandatory_headers_not_understood_are_found() -> None:
    """Blocks for us with mustUnderstand are listed unless understood (UsernameToken Security, MessageID)."""
    h11 = _header(
        SOAP11_ENV,
        '<x:A e:mustUnderstand="1"/><x:B e:mustUnderstand="0"/>'
        '<x:C e:mustUnderstand="1" e:actor="urn:someone-else"/>'
        f'<s:Security xmlns:s="{WSSE}" e:mustUnderstand="1"><s:UsernameToken/></s:Security>'
        '<a:MessageID xmlns:a="http://www.w3.org/2005/08/addressing" e:mustUnderstand="1">u</a:MessageID>',
    )
    assert not_understood(h11, "1.1") == ["{urn:x}A"]
    h12 = _header(
        SOAP12_ENV,
        '<x:A e:mustUnderstand="true"/><x:B e:mustUnderstand="true" e:role="'
        'http://www.w3.org/2003/05/soap-envelope/role/none"/>'
        f'<s:Security xmlns:s="{WSSE}" e:mustUnderstand="1"><x:Signature/></s:Security>',
    )
    assert not_understood(h12, "1.2") == ["{urn:x}A", f"{{{WSSE}}}Security"]


def test_must_understand_faults_follow_the_specs() -> None:
    """SOAP 1.1: faultcode MustUnderstand; SOAP 1.2: Code MustUnderstand and a NotUnderstood header."""
    fault = SOAPFault("MustUnderstand", "not understood: A", not_understood=["{urn:x}A"])
    old = etree.fromstring(fault_bytes("1.1", fault))
    assert old.findtext(".//faultcode") == "soapenv:MustUnderstand"
    new = etree.fromstring(fault_bytes("1.2", fault))
    ns = f"{{{SOAP12_ENV}}}"
    assert new.findtext(f".//{ns}Code/{ns}Value") == "soapenv:MustUnderstand"
    block = new.find(f"{ns}Header/{ns}NotUnderstood")
    assert block is not None
    prefix, local = block.get("qname", "").split(":")
    assert (block.nsmap[prefix], local) == ("urn:x", "A")


def test_listen_options_refuse_unknown_keys_and_bad_public_urls() -> None:
    """throttle rejects unknown keys; public_url must be an http(s) URL; soap_action takes three values."""
    base: dict[str, Any] = {"port": 0, "auth": {"users": [{"username": "u", "password_env": "X"}]}}
    options = ListenOptions.model_validate({**base, "throttle": {"lockout": "2m"}, "soap_action": "lenient"})
    assert (options.throttle.lockout, options.throttle.max_failures, options.soap_action) == (
        120,
        10,
        "lenient",
    )
    for bad in ({"throttle": {"lock": 1}}, {"public_url": "esb.example.com/x"}, {"soap_action": "loose"}):
        with pytest.raises(ValidationError):
            ListenOptions.model_validate({**base, **bad})
