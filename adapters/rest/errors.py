"""The REST adapter's errors, in one place: refusals the listener answers, and calls that failed.

Listener: a :class:`Refusal` is answered with TMF's error JSON (TMF630 ``Error``: ``code``, ``reason``,
``message``, ``status``) and the HTTP status it carries; ``audit`` is the reason it is logged and counted
under (None: not the caller's doing, not audited).

Client: :func:`translate` maps requests' exceptions, and :func:`response_error` an HTTP answer, into the
hub's tree: connection failures, timeouts, 5xx, 408 and 429 are retryable TransportErrors; other 4xx
are RemoteErrors that are not retried (the peer refused this message); the URL is shown with its
password masked.
"""

from __future__ import annotations

from typing import Any

import orjson

from esb.exceptions import EsbError, RemoteError, TransportError, mask_url

#: HTTP reason phrases of the statuses the listener answers.
STATUS_TEXT = {
    200: "OK", 201: "Created", 204: "No Content", 400: "Bad Request", 401: "Unauthorized",
    404: "Not Found", 405: "Method Not Allowed", 409: "Conflict", 413: "Payload Too Large",
    415: "Unsupported Media Type", 422: "Unprocessable Entity", 429: "Too Many Requests",
    500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable", 504: "Gateway Timeout",
}  # fmt: skip
#: Statuses a client retries: the peer may take the same request later.
RETRYABLE_STATUSES = frozenset({408, 429, 500, 502, 503, 504})


class PeerBusyError(TransportError):
    """The peer answered 5xx, 408 or 429: retryable, after ``retry_after`` seconds when it said so."""

    def __init__(
        self, message: str, *, endpoint: str | None = None, retry_after: float | None = None
    ) -> None:
        super().__init__(message, endpoint=endpoint)
        self.retry_after = retry_after


class Refusal(Exception):  # noqa: N818 - an answer the listener gives, not a failure of the hub
    """A request the listener refuses: HTTP ``status``, TMF ``code`` and ``reason``, a ``message``."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        audit: str | None = None,
        user: str | None = None,
        headers: list[tuple[str, str]] | None = None,
        errors: list[tuple[str, str]] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.audit = audit
        self.user = user
        self.headers = headers or []
        self.errors = errors or []

    def body(self) -> bytes:
        """TMF's error JSON for this refusal."""
        doc: dict[str, Any] = {
            "@type": "Error",
            "code": self.code,
            "reason": STATUS_TEXT.get(self.status, "Error"),
            "message": self.message,
            "status": str(self.status),
        }
        if self.errors:
            doc["details"] = [{"path": path, "message": text} for path, text in self.errors[:20]]
        return orjson.dumps(doc)


def response_error(status: int, text: str, url: str, retry_after: float | None = None) -> EsbError:
    """Return the hub's error for a peer's HTTP ``status`` answer (``text``: the start of its body)."""
    where = mask_url(url)
    if status in RETRYABLE_STATUSES or status >= 500:
        return PeerBusyError(f"REST peer answered HTTP {status}", endpoint=where, retry_after=retry_after)
    code, message = _tmf_error(text)
    return RemoteError(
        message or f"REST peer refused the call: HTTP {status}",
        code=code or f"HTTP{status}",
        detail={"status": status, "body": text[:500]},
        retryable=False,
        endpoint=where,
    )


def _tmf_error(text: str) -> tuple[str | None, str | None]:
    """The ``code`` and ``message`` of a TMF error body, when it is one."""
    try:
        doc = orjson.loads(text)
    except orjson.JSONDecodeError:
        return None, None
    if not isinstance(doc, dict):
        return None, None
    code, message = doc.get("code"), doc.get("message") or doc.get("reason")
    return (str(code) if code is not None else None), (str(message) if message is not None else None)


def translate(exc: BaseException, url: str) -> EsbError:
    """Return the hub's error for ``exc`` raised by requests while calling ``url``."""
    import requests

    where = mask_url(url)
    if isinstance(exc, EsbError):
        return exc
    if isinstance(exc, requests.exceptions.SSLError):
        return TransportError(f"TLS failure calling the REST peer: {type(exc).__name__}", endpoint=where)
    if isinstance(exc, requests.Timeout):
        return TransportError(f"REST call timed out: {type(exc).__name__}", endpoint=where)
    if isinstance(exc, requests.ConnectionError | ConnectionError):
        return TransportError(f"REST peer unreachable: {type(exc).__name__}", endpoint=where)
    if isinstance(exc, requests.RequestException):
        return TransportError(f"REST call failed: {type(exc).__name__}", endpoint=where)
    raise exc
