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
from pathlib import Path
from typing import Any

from lxml import etree

from adapters.http.credentials import matches
from adapters.http.tls import absolute
from adapters.soap.config import ClientAuth, SOAPEndpoint
from adapters.soap.nonces import FRESHNESS, NonceStore, NonceStoreDown
from esb.exceptions import ConfigError

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
        session.verify = str(absolute(tls.ca_file, project_dir)) if tls.ca_file and tls.verify else tls.verify
        if tls.cert_file is not None:
            cert = str(absolute(tls.cert_file, project_dir))
            session.cert = (cert, str(absolute(tls.key_file, project_dir))) if tls.key_file else cert
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
        if matches(user, given.encode(), users):
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
