"""Calling a peer's REST API (with a fake session): retries on 5xx/429 and connection errors honouring
Retry-After, 4xx permanent, errors translated into the hub's tree with passwords masked."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import requests

from adapters.rest.client import RESTClient, retry_after
from adapters.rest.config import RESTEndpoint
from esb.config.settings import Settings
from esb.context import AdapterContext
from esb.exceptions import RemoteError, TransportError

URL = "https://esb:hunter2@peer.example/api"


class FakeAnswer:
    """What requests returns, as far as the client reads it."""

    def __init__(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
        self.status_code = status
        self.content = body
        self.text = body.decode()
        self.headers = headers or {}


class FakeSession:
    """Answers each request with the next of ``answers`` (an exception is raised); records the calls."""

    def __init__(self, *answers: FakeAnswer | Exception) -> None:
        self.answers = list(answers)
        self.calls: list[dict[str, Any]] = []

    def request(self, method: str, url: str, **kwargs: Any) -> FakeAnswer:
        """Return or raise the next answer."""
        self.calls.append({"method": method, "url": url, **kwargs})
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    def close(self) -> None:
        """Nothing to release."""


def client(session: FakeSession, waits: list[float]) -> RESTClient:
    """A client of a peer at URL using ``session``; its sleeps are recorded in ``waits``."""
    endpoint = RESTEndpoint.model_validate(
        {"adapter": "rest", "base_url": URL, "connect_timeout": "2s", "timeout": "7s",
         "retries": {"max_attempts": 3, "initial_backoff": "1s", "max_backoff": "10s"}}
    )  # fmt: skip
    made = RESTClient(endpoint, AdapterContext(Settings(), Path("."), "peer.orders"), sleep=waits.append)
    made.session = session
    return made


def test_5xx_and_429_are_retried_honouring_retry_after() -> None:
    """A 503 waits the backoff, a 429 its Retry-After (capped), and the third attempt's 201 is the answer."""
    session = FakeSession(
        FakeAnswer(503), FakeAnswer(429, headers={"Retry-After": "60"}), FakeAnswer(201, b"{}")
    )
    waits: list[float] = []
    assert client(session, waits).call("POST", URL, b"{}") == (201, b"{}")
    assert waits == [1.0, 10.0]
    assert session.calls[0]["timeout"] == (2.0, 7.0)
    assert session.calls[0]["allow_redirects"] is False


def test_connection_errors_end_as_a_masked_transport_error() -> None:
    """Connection failures are retried, then raised as a retryable TransportError without the password."""
    session = FakeSession(*(requests.ConnectionError("refused") for _ in range(3)))
    with pytest.raises(TransportError) as caught:
        client(session, []).call("POST", URL, b"{}")
    assert caught.value.retryable
    assert len(session.calls) == 3
    assert "hunter2" not in str(caught.value)
    assert "esb:***@" in str(caught.value)


def test_timeouts_are_transport_errors() -> None:
    """A read timeout is retryable."""
    session = FakeSession(*(requests.ReadTimeout("slow") for _ in range(3)))
    with pytest.raises(TransportError, match="timed out"):
        client(session, []).call("GET", URL, None)


def test_4xx_is_permanent_and_keeps_the_tmf_error() -> None:
    """A 400 is not retried: a RemoteError that is not retryable, with the peer's TMF code and message."""
    body = b'{"code": "ORD-17", "reason": "Bad Request", "message": "unknown offering", "status": "400"}'
    session = FakeSession(FakeAnswer(400, body))
    with pytest.raises(RemoteError) as caught:
        client(session, []).call("POST", URL, b"{}")
    assert caught.value.retryable is False
    assert caught.value.code == "ORD-17"
    assert "unknown offering" in str(caught.value)
    assert len(session.calls) == 1
    assert "hunter2" not in str(caught.value.endpoint)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        pytest.param("120", 120.0, id="seconds"),
        pytest.param("Wed, 21 Oct 2015 07:28:10 GMT", 10.0, id="http-date"),
        pytest.param("soon", None, id="garbage"),
        pytest.param(None, None, id="absent"),
    ],
)
def test_retry_after_reads_seconds_and_dates(header: str | None, expected: float | None) -> None:
    """Retry-After is delta-seconds or an HTTP date (seconds from now); anything else is ignored."""
    assert retry_after(header, now=1445412480.0) == expected
