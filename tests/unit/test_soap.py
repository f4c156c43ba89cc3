"""The soap adapter without servers: endpoint options, WSDL loading and caching, fault translation,
envelopes, credential checks, the published WSDL, and ``esb soap operations``."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import ssl
from pathlib import Path
from typing import Any

import pytest
import requests
import urllib3
from click.testing import CliRunner
from lxml import etree
from pydantic import ValidationError
from zeep.exceptions import Fault

from adapters.http.credentials import check_basic
from adapters.http.options import Credential
from adapters.soap.cache import DocumentCache
from adapters.soap.config import SOAPEndpoint
from adapters.soap.envelope import SOAPFault, fault_bytes, split
from adapters.soap.errors import SOAPTLSError, translate
from adapters.soap.nonces import MemoryNonceStore
from adapters.soap.publish import Publisher
from adapters.soap.security import PASSWORD_DIGEST, WSSE, WSU, check_wsse
from adapters.soap.wsdl import _load, forget_contracts, load_contract
from esb.cli.main import cli
from esb.exceptions import ConfigError, RemoteError, TransportError
from esb.xmlsafe import parse_xml

REPO = Path(__file__).resolve().parents[2]
BILLING = REPO / "config/contracts/billing/billing.wsdl"
HOTLINE = REPO / "config/contracts/hotline/hotline.wsdl"


@pytest.fixture(autouse=True)
def _fresh_contracts() -> None:
    """Every test loads its contracts anew."""
    forget_contracts()


def test_listener_endpoint_refuses_client_options() -> None:
    """An endpoint cannot both listen and carry client options (address, auth, tls)."""
    with pytest.raises(ValidationError, match="listener endpoint"):
        SOAPEndpoint.model_validate(
            {
                "wsdl": "x.wsdl",
                "operation": "op",
                "address": "http://127.0.0.1/",
                "listen": {"port": 1, "auth": {"users": [{"username": "u", "password_env": "P"}]}},
            }
        )


def test_listener_needs_users() -> None:
    """A listener without users is refused: there is no anonymous mode."""
    with pytest.raises(ValidationError, match="users"):
        SOAPEndpoint.model_validate(
            {"wsdl": "x.wsdl", "operation": "op", "listen": {"port": 1, "auth": {"users": []}}}
        )


def test_credential_needs_exactly_one_source(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A password comes from an environment variable or a file, never both, never inline."""
    with pytest.raises(ValidationError):
        Credential.model_validate({"username": "u"})
    with pytest.raises(ValidationError):
        Credential.model_validate({"username": "u", "password": "inline"})
    (tmp_path / "pw").write_text("from-file\n")
    assert Credential(username="u", password_file=Path("pw")).password(tmp_path) == "from-file"
    monkeypatch.delenv("NOPE_PW", raising=False)
    with pytest.raises(ConfigError, match=r"\$NOPE_PW is not set"):
        Credential(username="u", password_env="NOPE_PW").password()


def test_multi_file_contract_is_resolved_offline() -> None:
    """wsdl:import, xsd:import and xsd:include are all read from local files."""
    contract = load_contract(BILLING)
    assert {p.name for p in contract.files} == {
        "billing.wsdl",
        "billing-abstract.wsdl",
        "billing-account.xsd",
        "common-types.xsd",
        "billing-fault.xsd",
    }
    info = contract.operation(None, "BillingAccountSoap12Port", "queryBalance")
    assert (info.soap_version, info.one_way) == ("1.2", False)


def test_unknown_operation_suggests_the_right_one() -> None:
    """A misspelt operation name is a ConfigError with a suggestion."""
    with pytest.raises(ConfigError, match="did you mean 'createAccount'"):
        load_contract(BILLING).operation(None, None, "createAcount")


def test_remote_import_is_refused(tmp_path: Path) -> None:
    """A WSDL importing a schema over http is refused: contracts load offline."""
    wsdl = tmp_path / "remote.wsdl"
    wsdl.write_text(
        HOTLINE.read_text().replace(
            '<xsd:element name="QueryBalance">',
            '<xsd:import namespace="urn:r" schemaLocation="http://127.0.0.1:9/r.xsd"/>'
            '<xsd:element name="QueryBalance">',
        )
    )
    with pytest.raises(ConfigError, match="remote"):
        load_contract(wsdl)


def contract_copy(tmp_path: Path) -> tuple[Path, DocumentCache, Any, list[Path]]:
    """The hotline contract copied under ``tmp_path``, an empty cache, and the loaded document and files."""
    contract_dir = tmp_path / "c"
    contract_dir.mkdir()
    wsdl = contract_dir / "hotline.wsdl"
    wsdl.write_bytes(HOTLINE.read_bytes())
    document, files = _load(wsdl, contract_dir, 5.0)
    return wsdl, DocumentCache(tmp_path / "cache"), document, files


def test_cache_round_trip_and_staleness(tmp_path: Path) -> None:
    """A cached document is reused while its files are unchanged, and rebuilt after any file changes."""
    wsdl, cache, document, files = contract_copy(tmp_path)
    assert cache.put(wsdl, document, files)
    cached = cache.get(wsdl)
    assert cached is not None
    restored, _ = cached
    element = restored.types.get_element("{http://esb.telecom.example/hotline/v1}QueryBalanceResult")
    holder = etree.Element("x")
    element.render(
        holder, element(accountId="1", balance="2.50", currency="CNY", asOf=dt.datetime(2026, 1, 1))
    )
    assert holder[0][1].text == "2.50"
    wsdl.write_bytes(HOTLINE.read_bytes() + b"\n")
    assert cache.get(wsdl) is None


def test_cache_entries_are_private_and_others_are_never_loaded(tmp_path: Path) -> None:
    """A cache entry (a pickle: code) is written 0600 in a 0700 folder; one that others may write, or a
    link planted in its place, is ignored and the contract is built again."""
    import os
    import stat

    wsdl, cache, document, files = contract_copy(tmp_path)
    old = os.umask(0o022)
    try:
        assert cache.put(wsdl, document, files)
    finally:
        os.umask(old)
    (entry,) = (tmp_path / "cache").iterdir()
    assert stat.S_IMODE(entry.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "cache").stat().st_mode) == 0o700
    assert cache.get(wsdl) is not None
    entry.chmod(0o620)
    assert cache.get(wsdl) is None
    entry.chmod(0o600)
    planted = tmp_path / "planted.pickle"
    entry.rename(planted)
    entry.symlink_to(planted)
    assert cache.get(wsdl) is None


def test_fault_translation_uses_retryable_list() -> None:
    """A Fault becomes a RemoteError with the detail's code; retryable only when listed for the endpoint."""
    detail = etree.fromstring(
        b"<detail><f:E xmlns:f='urn:f'><f:errorCode>BIL-0503</f:errorCode></f:E></detail>"
    )
    fault = Fault("system busy", code="soap:Server", detail=detail)
    busy = translate(fault, address="http://u:pw@127.0.0.1/x", retryable_faults=["BIL-0503"])
    assert isinstance(busy, RemoteError)
    assert (busy.code, busy.retryable, busy.endpoint) == ("BIL-0503", True, "http://u:***@127.0.0.1/x")
    by_code = translate(Fault("x", code="soap:Server"), address=None, retryable_faults=["Server"])
    assert by_code.retryable
    assert not translate(fault, address=None, retryable_faults=[]).retryable


def _wrapped_like_requests(cause: ssl.SSLError) -> requests.exceptions.SSLError:
    """``cause`` in urllib3's SSLError in a MaxRetryError in requests' SSLError, as requests raises it."""
    reason = urllib3.exceptions.SSLError(cause)
    return requests.exceptions.SSLError(urllib3.exceptions.MaxRetryError(None, "/x", reason))  # type: ignore[arg-type]


def _ssl_error(kind: type[ssl.SSLError], reason: str) -> ssl.SSLError:
    error = kind(1, f"[SSL: {reason}] ...")
    error.reason = reason  # OpenSSL sets it; Python-made errors lack it
    return error


@pytest.mark.parametrize(
    ("cause", "retryable", "says"),
    [
        pytest.param(
            _ssl_error(ssl.SSLCertVerificationError, "CERTIFICATE_VERIFY_FAILED"),
            False,
            "tls.ca_file",
            id="verify",
        ),
        pytest.param(
            _ssl_error(ssl.SSLError, "SSLV3_ALERT_HANDSHAKE_FAILURE"), False, "tls.cert_file", id="alert"
        ),
        pytest.param(
            _ssl_error(ssl.SSLError, "TLSV13_ALERT_CERTIFICATE_REQUIRED"),
            False,
            "tls.cert_file",
            id="tls13-alert",
        ),
        pytest.param(_ssl_error(ssl.SSLError, "WRONG_VERSION_NUMBER"), False, "not https", id="plain-http"),
        pytest.param(_ssl_error(ssl.SSLEOFError, "UNEXPECTED_EOF"), True, "client certificate", id="eof"),
        pytest.param(_ssl_error(ssl.SSLError, "DECRYPTION_FAILED"), True, "TLS failure", id="other"),
    ],
)
def test_tls_failures_translation(cause: ssl.SSLError, retryable: bool, says: str) -> None:
    """Certificate and refused-handshake failures are permanent TLS errors; a bare hang-up is retried."""
    error = translate(_wrapped_like_requests(cause), address="https://u:pw@127.0.0.1/x", retryable_faults=[])
    assert isinstance(error, TransportError)
    assert isinstance(error, SOAPTLSError) is (not retryable)
    assert error.retryable is retryable
    assert says in str(error)
    assert "pw" not in str(error)


@pytest.mark.parametrize(
    ("tls", "match"),
    [
        pytest.param({"key_file": "k.pem"}, "key_file needs cert_file", id="key-without-cert"),
        pytest.param({"ca_file": "ca.pem", "verify": False}, "ca_file is not used", id="ca-without-verify"),
    ],
)
def test_tls_options_refuse_contradictions(tls: dict[str, object], match: str) -> None:
    """TLS options that contradict each other are refused when the endpoint is read."""
    with pytest.raises(ValidationError, match=match):
        SOAPEndpoint.model_validate({"wsdl": "x.wsdl", "operation": "op", "tls": tls})


@pytest.mark.parametrize("version", ["1.1", "1.2"])
def test_fault_envelopes_parse_back(version: str) -> None:
    """The listener's Faults are well-formed SOAP envelopes of the request's version."""
    data = fault_bytes(version, SOAPFault("SchemaViolation", "bad", errors=["line 1: x"], message_id="m1"))
    found, _, body = split(parse_xml(data))
    assert found == version
    assert etree.QName(body).localname == "Fault"
    assert body.findtext(".//{urn:esb:soap:fault}messageId") == "m1"


def test_basic_check_is_exact() -> None:
    """HTTP basic succeeds only with the exact user and password."""
    users = {"crm": "s3cret"}
    header = "Basic " + base64.b64encode(b"crm:s3cret").decode()
    assert check_basic(header, users) == "crm"
    assert check_basic("Basic " + base64.b64encode(b"crm:s3cre").decode(), users) is None
    assert check_basic("Bearer abc", users) is None


def digest_token(
    password: str, created: dt.datetime, nonce: bytes = b"0123456789abcdef"
) -> etree._Element:
    """A SOAP header with user crm's PasswordDigest UsernameToken (for the listener's checks)."""
    stamp = created.strftime("%Y-%m-%dT%H:%M:%SZ")
    digest = base64.b64encode(hashlib.sha1(nonce + stamp.encode() + password.encode()).digest()).decode()
    return etree.fromstring(
        f'<H><s:Security xmlns:s="{WSSE}" xmlns:u="{WSU}"><s:UsernameToken><s:Username>crm</s:Username>'
        f'<s:Password Type="{PASSWORD_DIGEST}">{digest}</s:Password>'
        f"<s:Nonce>{base64.b64encode(nonce).decode()}</s:Nonce><u:Created>{stamp}</u:Created>"
        "</s:UsernameToken></s:Security></H>"
    )


def test_digest_token_must_be_fresh_and_unique() -> None:
    """A digest token is accepted once; a replay, an old Created or a wrong password is refused."""
    users, nonces, now = {"crm": "s3cret"}, MemoryNonceStore(), dt.datetime.now(dt.UTC)
    assert check_wsse(digest_token("s3cret", now), users, nonces) == "crm"
    assert check_wsse(digest_token("s3cret", now), users, nonces) is None
    assert (
        check_wsse(digest_token("s3cret", now - dt.timedelta(hours=1), b"another-nonce-01"), users, nonces)
        is None
    )
    assert check_wsse(digest_token("wrong", now, b"third-nonce-0001"), users, nonces) is None


def test_published_wsdl_points_at_the_hub() -> None:
    """The served WSDL names the listener's URL and serves imports through ?file=."""
    contract = load_contract(BILLING)
    publisher = Publisher(contract.path, contract.files)
    main = publisher.document(None, "http://127.0.0.1:1/soap/b").decode()
    assert 'location="http://127.0.0.1:1/soap/b?file=billing-abstract.wsdl"' in main
    assert "billing.example.invalid" not in main
    assert publisher.document("xsd/common-types.xsd", "http://127.0.0.1:1/soap/b") is not None
    assert publisher.document("../../../pyproject.toml", "http://127.0.0.1:1/soap/b") is None


def test_cli_lists_operations() -> None:
    """``esb soap operations`` lists each port's operations with their input and output elements."""
    result = CliRunner().invoke(cli, ["soap", "operations", str(BILLING)])
    assert result.exit_code == 0, result.output
    assert "queryBalance  (request-reply, SOAPAction urn:billing:queryBalance)" in result.output
    assert "CreateAccountRequest" in result.output
    assert "SOAP 1.2" in result.output
