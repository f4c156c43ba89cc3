"""zeep's and requests' exceptions, translated into the hub's error tree in one place.

- a SOAP Fault is a :class:`RemoteError` carrying the fault's code, string and detail; it is retryable when
  its code (the detail's error code, or the faultcode's local name, or the whole faultcode) is in the
  endpoint's ``retryable_faults``;
- timeouts, refused connections, broken connections and HTTP 5xx/429 without a Fault are
  :class:`TransportError` (redelivered);
- an HTTP 4xx without a Fault (401, 403, 404) is a RemoteError that is not retryable: a configuration
  problem that redelivery cannot cure;
- a request that the operation's schema refuses is a :class:`SOAPRequestError` (permanent);
- TLS: a server certificate the hub does not trust (unknown CA, wrong host name, expired), or a handshake
  the server refused with an alert (no or untrusted client certificate, no common protocol), is a
  :class:`SOAPTLSError`: a TransportError that is *not* retryable, because only a change of
  configuration or certificates cures it (dead letter, ``esb replay`` once fixed). A handshake cut
  without an alert stays a retryable TransportError: it cannot be told from a dropped connection
  (TLS 1.3 servers often refuse a missing client certificate that way), so its message says so.
"""

from __future__ import annotations

import ssl
from typing import Any

from lxml import etree

from esb.exceptions import EsbError, MessageError, RemoteError, TransportError, mask_url

_DETAIL_CODE_NAMES = ("errorCode", "ErrorCode", "code", "Code", "faultCode", "errorcode", "resultCode")


class SOAPRequestError(MessageError):
    """The message cannot be made into the operation's request (wrong fields, wrong types)."""

    reason = "soap-request-error"


class SOAPResponseError(RemoteError):
    """The peer answered something that is not a SOAP response of the operation."""

    reason = "soap-bad-response"


class SOAPTLSError(TransportError):
    """The TLS handshake failed for a reason that redelivery cannot cure (certificates, protocol)."""

    retryable = False
    reason = "tls-error"


#: alerts by which a server refuses the handshake: the hub's certificate (or its absence), or the protocol
_REFUSING_ALERTS = (
    "ALERT_HANDSHAKE_FAILURE", "ALERT_CERTIFICATE_REQUIRED", "ALERT_UNKNOWN_CA", "ALERT_BAD_CERTIFICATE",
    "ALERT_CERTIFICATE_UNKNOWN", "ALERT_CERTIFICATE_EXPIRED", "ALERT_CERTIFICATE_REVOKED",
    "ALERT_UNSUPPORTED_CERTIFICATE", "ALERT_ACCESS_DENIED", "ALERT_PROTOCOL_VERSION",
    "ALERT_INSUFFICIENT_SECURITY",
)  # fmt: skip
_CLIENT_CERT_HINT = "check tls.cert_file/key_file and that the server trusts their CA"


def ssl_cause(exc: BaseException) -> ssl.SSLError | None:
    """Return the ``ssl.SSLError`` at the root of requests' and urllib3's wrappers, if there is one."""
    pending: list[Any] = [exc]
    seen: set[int] = set()
    while pending and len(seen) < 32:
        item = pending.pop(0)
        if id(item) in seen or not isinstance(item, BaseException):
            continue
        seen.add(id(item))
        if isinstance(item, ssl.SSLError):
            return item
        pending.extend([*item.args, getattr(item, "reason", None), item.__cause__, item.__context__])
    return None


def tls_error(cause: ssl.SSLError, where: str | None) -> TransportError:
    """Return the error for a failed TLS handshake: permanent when certificates or protocol are at fault."""
    reason = str(getattr(cause, "reason", None) or "")  # set by OpenSSL, absent when made in Python
    if isinstance(cause, ssl.SSLCertVerificationError):
        why = getattr(cause, "verify_message", None) or reason or "certificate verify failed"
        return SOAPTLSError(
            f"TLS: the server's certificate is not trusted: {why} (check tls.ca_file)", endpoint=where
        )
    if any(reason.endswith(alert) for alert in _REFUSING_ALERTS):
        return SOAPTLSError(
            f"TLS: the server refused the handshake ({reason}): {_CLIENT_CERT_HINT}", endpoint=where
        )
    if reason == "WRONG_VERSION_NUMBER":
        return SOAPTLSError(
            "TLS: the server does not speak TLS on this port (http, not https?)", endpoint=where
        )
    if isinstance(cause, ssl.SSLEOFError | ssl.SSLZeroReturnError):
        return TransportError(
            "TLS: the server closed the connection during the handshake (a dropped connection, or a "
            f"server refusing a missing or untrusted client certificate: {_CLIENT_CERT_HINT})",
            endpoint=where,
        )
    return TransportError(f"TLS failure: {reason or type(cause).__name__}", endpoint=where)


def detail_code(detail: Any) -> str | None:
    """Return the error code carried in a fault's detail element (``<errorCode>BIL-1001</errorCode>``)."""
    if detail is None or not isinstance(detail, etree._Element):
        return None
    for node in detail.iter():
        if isinstance(node.tag, str) and etree.QName(node).localname in _DETAIL_CODE_NAMES and node.text:
            return str(node.text).strip()
    return None


def detail_dict(detail: Any) -> dict[str, Any] | None:
    """Return the fault detail as ``{localname: text}`` of its leaves, plus the raw XML under ``xml``."""
    if detail is None or not isinstance(detail, etree._Element):
        return None
    leaves = {
        etree.QName(n).localname: (n.text or "").strip()
        for n in detail.iter()
        if isinstance(n.tag, str) and len(n) == 0 and n is not detail
    }
    return {**leaves, "xml": etree.tostring(detail, encoding="unicode")}


def fault_codes(fault: Any) -> list[str]:
    """Return every name under which a fault may be listed in ``retryable_faults``, most specific first."""
    codes: list[str] = []
    found = detail_code(getattr(fault, "detail", None))
    if found:
        codes.append(found)
    for raw in (getattr(fault, "code", None), *(getattr(fault, "subcodes", None) or [])):
        if raw is None:
            continue
        text = raw.text if isinstance(raw, etree.QName) else str(raw)
        local = text.rsplit("}", 1)[-1].rsplit(":", 1)[-1]
        codes.extend(c for c in (local, text) if c and c not in codes)
    return codes


def translate(exc: BaseException, *, address: str | None, retryable_faults: list[str]) -> EsbError:
    """Return the hub's error for ``exc`` raised while calling the operation at ``address``."""
    import requests
    from zeep import exceptions as zx

    where = mask_url(address) if address else None
    if isinstance(exc, EsbError):
        return exc
    if isinstance(exc, zx.Fault):
        codes = fault_codes(exc)
        code = codes[0] if codes else None
        retryable = any(c in retryable_faults for c in codes)
        return RemoteError(
            str(exc.message or "SOAP Fault"),
            code=code,
            detail=detail_dict(exc.detail),
            retryable=retryable,
            endpoint=where,
        )
    cause = ssl_cause(exc) if isinstance(exc, OSError) else None  # requests' errors are OSErrors
    if cause is not None:
        return tls_error(cause, where)
    if isinstance(exc, requests.Timeout):
        return TransportError(f"SOAP call timed out: {type(exc).__name__}", endpoint=where)
    if isinstance(exc, requests.ConnectionError | ConnectionError):
        return TransportError(f"SOAP endpoint unreachable: {type(exc).__name__}", endpoint=where)
    if isinstance(exc, zx.TransportError):
        status = int(getattr(exc, "status_code", 0) or 0)
        if status >= 500 or status in (408, 429) or status == 0:
            return TransportError(f"SOAP endpoint answered HTTP {status} without a Fault", endpoint=where)
        return RemoteError(
            f"SOAP endpoint refused the call: HTTP {status}",
            code=f"HTTP{status}",
            retryable=False,
            endpoint=where,
        )
    if isinstance(exc, zx.ValidationError | TypeError):
        return SOAPRequestError(f"the message does not fit the operation's request: {exc}")
    if isinstance(exc, zx.XMLSyntaxError | zx.XMLParseError | zx.Error | etree.XMLSyntaxError):
        return SOAPResponseError(f"unusable SOAP response: {type(exc).__name__}: {exc}", endpoint=where)
    if isinstance(exc, requests.RequestException):
        return TransportError(f"SOAP call failed: {type(exc).__name__}", endpoint=where)
    raise exc
