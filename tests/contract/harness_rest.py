"""The REST adapter under the contract suite.

Source: the hub's TMF622 ``productOrder`` listener (cheroot) on a free loopback port; the inlet is a real
HTTP client POSTing orders, each answered 201 once stored; the route drains the store's durable inbox
like a queue (given-back and unsettled orders come again). Sink: a client of a
loopback REST peer (:class:`tests.contract.harness.Peer`) that creates a resource from each POST and
answers it with 201; what the peer received is the bodies it was sent.
"""

from __future__ import annotations

import uuid
from functools import partial
from pathlib import Path
from typing import Any, ClassVar

import orjson
import pytest
import requests

from adapters.rest import RESTAdapter, RESTEndpoint, RESTSource
from esb.config.settings import Settings
from esb.context import AdapterContext
from esb.exceptions import RemoteError, TransportError
from esb.message import Message
from esb.typing import JobReporter, Requester, Sink, Source
from tests.contract.harness import PATIENCE, Callers, HarnessDefaults, HTTPAnswer, Peer, Probe, Refusal
from tests.integration.soap_project import free_port
from tests.integration.test_rest_listener import AUTH, JSON, REPO, endpoint, order

PEER_PASSWORD = "peer-pa55word"
#: Attempts per call of the client (each refusal's peer answers that many times).
ATTEMPTS = 2
CREATED = {"Content-Type": "application/json"}


class RESTHarness(HarnessDefaults):
    """The productOrder listener as source; a client of a loopback REST peer as sink and requester."""

    declares = frozenset({Requester, JobReporter})  # the store's prune job (esb health)
    quiet = 0.5
    cannot: ClassVar[dict[str, str]] = {
        "answer": "the caller's 201 says the order is stored (the durable inbox), not what the route did: "
        "GET shows that",
        "break": "a listener holds no connection of its own that could die under it",
    }

    def __init__(self, request: pytest.FixtureRequest, tmp_path: Path) -> None:
        monkeypatch = request.getfixturevalue("monkeypatch")
        monkeypatch.setenv("TEST_REST_PASSWORD", AUTH[1])
        monkeypatch.setenv("TEST_REST_PEER_PASSWORD", PEER_PASSWORD)
        self.adapter = RESTAdapter()
        self.settings = Settings(data_dir=tmp_path)
        self.listen = endpoint()
        self.created: dict[str, dict[str, Any]] = {}
        self.peer = Peer(respond=self._create)
        self._peers = [self.peer]
        self._sources: list[RESTSource] = []
        self._orders = 0
        self.callers = Callers()

    def context(self, endpoint: str = "channel.rest_orders") -> AdapterContext:
        """An adapter context over the repository's TMF schemas."""
        return AdapterContext(self.settings, REPO, endpoint)

    def close(self) -> None:
        """Stop the peers (and any listener a test left running)."""
        for source in self._sources:
            source.close()
        for peer in self._peers:
            peer.close()

    # -- source --------------------------------------------------------------------------------------
    def source_probe(self) -> Probe:
        """The listener endpoint."""
        return Probe(self.listen, self.context())

    def source(self) -> Source:
        """A listener (it serves once connected)."""
        source = self.adapter.source(self.listen, self.context())
        self._sources.append(source)
        return source

    def put(self, n: int) -> dict[str, str]:
        """POST ``n`` orders to the last connected listener (each answered 201 once stored)."""
        url = f"{self._sources[-1].url}/productOrder"
        sent = {}
        for _ in range(n):
            self._orders += 1
            body = order(self._orders)
            ident = str(orjson.loads(body)["id"])
            post = partial(requests.post, url, data=body, headers=JSON, auth=AUTH, timeout=PATIENCE)
            self.callers.call(ident, post, success=201)
            sent[ident] = body.decode()
        return sent

    def marker(self, message: Message) -> str:
        """The order's bytes as the caller sent them (the listener hands the route the client's bytes)."""
        return message.body_bytes().decode()

    # -- sink ----------------------------------------------------------------------------------------
    def _create(self, data: bytes) -> HTTPAnswer:
        """The peer's answer to a POST: the resource it created from the body, with the peer's id."""
        resource = {**orjson.loads(data), "id": f"P-{uuid.uuid4().hex[:12]}", "state": "acknowledged"}
        self.created[resource["id"]] = resource
        return 201, CREATED, orjson.dumps(resource)

    def _client(self, base_url: str) -> RESTEndpoint:
        return RESTEndpoint.model_validate({
            "adapter": "rest", "base_url": base_url, "timeout": "5s", "connect_timeout": "1s",
            "auth": {"username": "esb", "password_env": "TEST_REST_PEER_PASSWORD"},
            "retries": {"max_attempts": ATTEMPTS, "initial_backoff": "50ms"},
        })  # fmt: skip

    def sink(self) -> Sink:
        """A client of the peer's productOrder resource."""
        return self.adapter.sink(self._client(self.peer.url), self.context("peer.orders"))

    def message(self, i: int) -> Message:
        """An order whose external id is ``X-<i>``."""
        return Message({"externalId": f"X-{i}", "productOrderItem": [{"id": "1", "action": "add"}]})

    def send(self, sink: Sink, messages: list[Message]) -> None:
        """POST each message."""
        for message in messages:
            sink.write(message)

    def received(self) -> list[str]:
        """The orders the peer was sent, by external id."""
        return [str(orjson.loads(body)["externalId"]).removeprefix("X-") for body in self.peer.bodies]

    def request_answer(self, reply: Message) -> str:
        """The order the peer created under the id the reply names."""
        return str(self.created[reply.body["id"]]["externalId"]).removeprefix("X-")

    def down_sink(self) -> tuple[Sink, str]:
        """A client of a peer that is not there (its URL carries credentials to be masked)."""
        url = f"http://esb:url-s3cret@127.0.0.1:{free_port()}/tmf-api/productOrderingManagement/v4"
        return self.adapter.sink(self._client(url), self.context("peer.orders")), "s3cret"

    def refusals(self) -> list[Refusal]:
        """The peer busy (5xx), throttling (429), refusing the order (422) or the credentials (401)."""

        def peer_answering(*answers: HTTPAnswer) -> tuple[Sink, Message]:
            peer = Peer(*answers)
            self._peers.append(peer)
            sink = self.adapter.sink(self._client(peer.url), self.context("peer.orders"))
            sink.connect()
            return sink, self.message(len(self._peers))

        tmf_error = orjson.dumps({"code": "ORD-042", "message": "no such product offering"})
        return [
            Refusal("busy", lambda: peer_answering(*[(503, {}, b"")] * ATTEMPTS), TransportError,
                    retryable=True),
            Refusal("throttled", lambda: peer_answering(*[(429, {"Retry-After": "0"}, b"")] * ATTEMPTS),
                    TransportError, retryable=True),
            Refusal("invalid order", lambda: peer_answering((422, CREATED, tmf_error)), RemoteError,
                    retryable=False),
            Refusal("wrong credentials", lambda: peer_answering((401, {}, b"")), RemoteError,
                    retryable=False),
        ]  # fmt: skip
