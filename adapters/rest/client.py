"""Calling a peer's REST API: timeouts, retries with backoff honouring Retry-After, errors translated.

Each call has a connect and a read timeout. Connection failures, timeouts, HTTP 5xx, 408 and 429 are
tried again up to ``retries.max_attempts`` times, waiting an exponential backoff or the peer's
``Retry-After`` (seconds or an HTTP date; capped at ``retries.max_backoff``); what still fails is a
TransportError, which the route's ``on_error`` redelivers. Any other 4xx is a RemoteError that is not
retried (the peer refused this message). Proxies from the environment are not used, redirects are not
followed, and URLs in errors have their password masked.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from email.utils import parsedate_to_datetime
from typing import Any

from adapters.http.tls import check_tls
from adapters.rest.config import RESTEndpoint
from adapters.rest.errors import PeerBusyError, response_error, translate
from esb.context import AdapterContext
from esb.exceptions import EsbError, TransportError
from esb.telemetry import inject


def retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds a ``Retry-After`` header asks to wait (delta-seconds or an HTTP date), or None."""
    if not value:
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        when = parsedate_to_datetime(text).timestamp()
    except (TypeError, ValueError):
        return None
    return max(0.0, when - (time.time() if now is None else now))


class RESTClient:
    """One peer API: a requests session with the endpoint's credentials, TLS and timeouts."""

    def __init__(
        self, endpoint: RESTEndpoint, context: AdapterContext, sleep: Callable[[float], None] = time.sleep
    ) -> None:
        self.endpoint = endpoint
        self.context = context
        self.sleep = sleep
        self.session: Any = None

    def connect(self) -> None:
        """Check the TLS files and build the session (credentials read from their secret source)."""
        import requests

        ep, root = self.endpoint, self.context.project_dir
        check_tls(ep.tls, ep.base_url, root, self.context.endpoint)
        session = requests.Session()
        session.trust_env = False
        if ep.tls is not None:
            ca = ep.tls.ca_file
            session.verify = (
                str(ca if ca.is_absolute() else root / ca) if ca and ep.tls.verify else ep.tls.verify
            )
            if ep.tls.cert_file is not None:
                cert = str(root / ep.tls.cert_file)
                session.cert = (cert, str(root / ep.tls.key_file)) if ep.tls.key_file else cert
        if ep.auth is not None:
            secret = ep.auth.password(root)
            if ep.auth.mode == "basic":
                session.auth = (ep.auth.username, secret)
            else:
                session.headers["Authorization"] = f"Bearer {secret}"
        session.headers["Accept"] = "application/json"
        self.session = session

    def call(
        self, method: str, url: str, body: bytes | None, timeout: float | None = None
    ) -> tuple[int, bytes]:
        """Send one request (retried as the endpoint says); return (status, body) of a 2xx answer."""
        assert self.session is not None, "connect() first"
        retries = self.endpoint.retries
        for attempt in range(1, retries.max_attempts + 1):
            try:
                return self._once(method, url, body, timeout)
            except TransportError as exc:
                if attempt >= retries.max_attempts:
                    raise
                wait = retries.initial_backoff * 2 ** (attempt - 1)
                if isinstance(exc, PeerBusyError) and exc.retry_after is not None:
                    wait = exc.retry_after
                self.sleep(min(wait, retries.max_backoff))
        raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises

    def _once(self, method: str, url: str, body: bytes | None, timeout: float | None) -> tuple[int, bytes]:
        ep = self.endpoint
        headers = {"Content-Type": "application/json"} if body is not None else {}
        inject(headers)  # W3C traceparent of the current span, when tracing is on
        try:
            answer = self.session.request(
                method, url, data=body, headers=headers, allow_redirects=False,
                timeout=(ep.connect_timeout, timeout if timeout is not None else ep.timeout),
            )  # fmt: skip
        except Exception as exc:
            raise translate(exc, url) from exc
        if 200 <= answer.status_code < 300:
            return answer.status_code, answer.content
        error: EsbError = response_error(
            answer.status_code, answer.text[:2000], url, retry_after(answer.headers.get("Retry-After"))
        )
        raise error

    def close(self) -> None:
        """Close the session. Safe to call twice."""
        if self.session is not None:
            self.session.close()
            self.session = None
