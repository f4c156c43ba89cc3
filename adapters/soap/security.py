"""Credentials on both sides: the client's HTTP session and UsernameToken, the listener's checks.

Client: HTTP basic on the requests session, or a WS-Security UsernameToken (PasswordText or
PasswordDigest) rebuilt for every call, with a fresh nonce, Created and wsu:Timestamp. TLS with a CA file
and an optional client certificate, checked at ``connect`` (:func:`check_tls`) so that a missing,
unreadable, encrypted or mismatched file is a ConfigError before any message is sent. The call's
transport never fetches documents: the WSDL and its schemas were loaded from local files.

Listener: HTTP basic and/or UsernameToken, compared in constant time (``hmac.compare_digest``); a digest
token must be fresh (Created within five minutes) and its nonce is refused a second time (replay), in
every hub process and after a restart: used nonces are kept in the journal's database (``nonces.py``).
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import hmac
import os
import ssl
from pathlib import Path
from typing import Any

from lxml import etree

from adapters.soap.config import ClientAuth, SOAPEndpoint, TLSOptions
from adapters.soap.nonces import FRESHNESS, NonceStore, NonceStoreDown
from esb.exceptions import ConfigError, mask_url

WSSE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
WSU = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"
PASSWORD_DIGEST = (
    "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0#PasswordDigest"  # noqa: S105 - a URI
)


def client_session(endpoint: SOAPEndpoint, project_dir: Path, password: str | None) -> Any:
    """Return a zeep Transport over a requests Session with the endpoint's TLS and HTTP basic settings."""
    import requests
    from zeep.transports import Transport

    session = requests.Session()
    session.trust_env = False
    tls = endpoint.tls
    if tls is not None:
        session.verify = str(_abs(tls.ca_file, project_dir)) if tls.ca_file and tls.verify else tls.verify
        if tls.cert_file is not None:
            cert = str(_abs(tls.cert_file, project_dir))
            session.cert = (cert, str(_abs(tls.key_file, project_dir))) if tls.key_file else cert
    if endpoint.auth is not None and endpoint.auth.mode == "basic" and password is not None:
        session.auth = (endpoint.auth.username, password)

    class _CallTransport(Transport):
        def load(self, url: str) -> bytes:
            raise ConfigError(
                f"contract document {url!r} asked for at call time: contracts are loaded from local "
                "files only, at connect"
            )

    return _CallTransport(  # type: ignore[no-untyped-call]
        session=session,
        timeout=endpoint.load_timeout,
        operation_timeout=(endpoint.connect_timeout, endpoint.timeout),
    )


def _abs(path: Path | None, project_dir: Path) -> Path:
    assert path is not None
    return path if path.is_absolute() else project_dir / path


def check_tls(tls: TLSOptions | None, address: str | None, project_dir: Path, endpoint: str) -> None:
    """Load the endpoint's CA file and client certificate once, as OpenSSL will; ConfigError if unusable.

    The error names the option and the path, never a file's content. An encrypted key is refused (the
    hub cannot be prompted for its passphrase). TLS options on an ``http://`` address are refused too:
    the call would go unencrypted while the configuration says otherwise.
    """
    if tls is None:
        return
    if address is not None and not address.lower().startswith("https://"):
        raise ConfigError(f"{endpoint}: tls: is set but the address is not https:// ({mask_url(address)})")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if tls.ca_file is not None:
        ca = _abs(tls.ca_file, project_dir)
        _load(f"{endpoint}: tls.ca_file {ca}", lambda: context.load_verify_locations(ca))
    if tls.cert_file is not None:
        cert = _abs(tls.cert_file, project_dir)
        key = _abs(tls.key_file, project_dir) if tls.key_file is not None else None
        where = f"{endpoint}: tls.cert_file {cert}" + (f", tls.key_file {key}" if key is not None else "")
        _load(where, lambda: context.load_cert_chain(cert, key, password=_no_passphrase))


class _EncryptedKey(Exception):  # noqa: N818 - a signal from OpenSSL's password callback, not an error
    pass


def _no_passphrase() -> str:
    raise _EncryptedKey


def _load(where: str, load: Any) -> None:
    try:
        load()
    except _EncryptedKey:
        raise ConfigError(f"{where}: the private key is encrypted: give an unencrypted key file") from None
    except ssl.SSLError as exc:
        raise ConfigError(f"{where}: not usable: {getattr(exc, 'reason', None) or exc.strerror}") from None
    except OSError as exc:
        raise ConfigError(f"{where}: cannot be read: {exc.strerror}") from None


def _timestamp(seconds: int = 300) -> etree._Element:
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    stamp = etree.Element(f"{{{WSU}}}Timestamp", nsmap={"wsu": WSU})
    etree.SubElement(stamp, f"{{{WSU}}}Created").text = now.strftime("%Y-%m-%dT%H:%M:%SZ")
    expires = now + dt.timedelta(seconds=seconds)
    etree.SubElement(stamp, f"{{{WSU}}}Expires").text = expires.strftime("%Y-%m-%dT%H:%M:%SZ")
    return stamp


def wsse_token(auth: ClientAuth, password: str) -> Any:
    """Return a new UsernameToken for one call (nonce, Created and Timestamp must be fresh each time)."""
    from zeep.wsse.username import UsernameToken

    return UsernameToken(  # type: ignore[no-untyped-call]
        auth.username,
        password,
        use_digest=auth.mode == "wsse-digest",
        timestamp_token=_timestamp() if auth.timestamp else None,
        zulu_timestamp=True,
    )


def check_basic(header: str | None, users: dict[str, str]) -> str | None:
    """Return the user an ``Authorization: Basic`` header proves, or None."""
    if not header or header[:6].lower() != "basic ":
        return None
    try:
        user, _, password = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8").partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return user if _matches(user, password.encode(), users) else None


def basic_user(header: str | None) -> str | None:
    """Return the user name an ``Authorization: Basic`` header gives (for the audit log), or None."""
    if not header or header[:6].lower() != "basic ":
        return None
    try:
        user = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8").partition(":")[0]
    except (binascii.Error, UnicodeDecodeError):
        return None
    return user[:100] or None


def _matches(user: str, password: bytes, users: dict[str, str]) -> bool:
    expected = users.get(user)
    # compare against something even for unknown users so timing does not tell which users exist
    ok = hmac.compare_digest(password, (expected if expected is not None else os.urandom(16).hex()).encode())
    return ok and expected is not None


def _parse_created(text: str) -> dt.datetime | None:
    try:
        created = dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return created if created.tzinfo else created.replace(tzinfo=dt.UTC)


class WSSERefused(Exception):  # noqa: N818 - a refusal answered as a fault, with its reason
    """A UsernameToken was given and refused; ``reason`` is a metric label, ``user`` the name it gave."""

    def __init__(self, reason: str, user: str | None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.user = user


def verify_wsse(header: etree._Element | None, users: dict[str, str], nonces: NonceStore) -> str | None:
    """Return the user a WS-Security UsernameToken proves; None without a token; WSSERefused otherwise.

    A digest token must be fresh (Created within ``FRESHNESS`` seconds of now, either way) and its nonce
    unused (``nonces``); the nonce is recorded only once the digest matched. A nonce store that cannot
    answer refuses the token (``nonce_store_unavailable``).
    """
    if header is None:
        return None
    token = header.find(f"{{{WSSE}}}Security/{{{WSSE}}}UsernameToken")
    if token is None:
        return None
    user = (token.findtext(f"{{{WSSE}}}Username") or "").strip()
    password_el = token.find(f"{{{WSSE}}}Password")
    if not user or password_el is None:
        raise WSSERefused("bad_credentials", user or None)
    given = (password_el.text or "").strip()
    if password_el.get("Type") != PASSWORD_DIGEST:
        if _matches(user, given.encode(), users):
            return user
        raise WSSERefused("bad_credentials", user)
    created_text = token.findtext(f"{{{WSU}}}Created") or ""
    created = _parse_created(created_text)
    try:
        nonce = base64.b64decode((token.findtext(f"{{{WSSE}}}Nonce") or "").strip(), validate=True)
    except binascii.Error:
        raise WSSERefused("bad_credentials", user) from None
    if not nonce:
        raise WSSERefused("bad_credentials", user)
    if created is None or abs((dt.datetime.now(dt.UTC) - created).total_seconds()) > FRESHNESS:
        raise WSSERefused("stale_token", user)
    secret = users.get(user, os.urandom(16).hex())
    digest = base64.b64encode(hashlib.sha1(nonce + created_text.encode() + secret.encode()).digest())  # noqa: S324
    if not (hmac.compare_digest(digest, given.encode()) and user in users):
        raise WSSERefused("bad_credentials", user)
    try:
        first = nonces.first_use(user, nonce)
    except NonceStoreDown:
        raise WSSERefused("nonce_store_unavailable", user) from None
    if not first:
        raise WSSERefused("replayed_nonce", user)
    return user


def check_wsse(header: etree._Element | None, users: dict[str, str], nonces: NonceStore) -> str | None:
    """Return the user a WS-Security UsernameToken in the SOAP ``header`` proves, or None."""
    try:
        return verify_wsse(header, users, nonces)
    except WSSERefused:
        return None
