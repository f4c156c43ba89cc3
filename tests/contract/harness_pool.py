"""The pool adapter under the contract suite: a pool of two REST client members of one loopback peer.

A pool is only written to (its members are read from, never the pool). Its sink side is the REST
harness's peer reached through the pool; a peer that is down is every member down (the pool's own
TransportError, naming the pool, with the members' masked errors); refusals pass through unchanged
(``retry_on_next: false`` so that each refusal's peer is asked once per attempt, as the REST harness
expects). Health: a pool no hub has used is ok; one whose members were ejected is down.
"""

from __future__ import annotations

import contextlib
import uuid
from pathlib import Path
from typing import Any, ClassVar

import pytest

from adapters.pool import PoolAdapter, PoolEndpoint
from esb.context import AdapterContext
from esb.exceptions import TransportError
from esb.message import Message
from esb.typing import HealthReporter, Requester, Sink, Source
from tests.contract.harness import HarnessDefaults, Probe, Refusal
from tests.contract.harness_rest import RESTHarness
from tests.integration.soap_project import free_port
from tests.integration.test_rest_listener import REPO

NOT_READ = "a pool is only written to: routes read from its members"


class PoolHarness(HarnessDefaults):
    """Two REST client members of one peer behind a pool."""

    declares = frozenset({Requester, HealthReporter})
    quiet = 0.5
    cannot: ClassVar[dict[str, str]] = {
        "read": NOT_READ,
        "redeliver": NOT_READ,
        "reconnect": NOT_READ,
        "answer": NOT_READ,
        "break": NOT_READ,
    }

    def __init__(self, request: pytest.FixtureRequest, tmp_path: Path) -> None:
        self.adapter = PoolAdapter()
        self.rest = RESTHarness(request, tmp_path)
        self.settings = self.rest.settings

    def close(self) -> None:
        """Stop the REST harness's peers."""
        self.rest.close()

    def pool(self, urls: list[str], **options: Any) -> tuple[PoolEndpoint, AdapterContext]:
        """A pool (named afresh: its breakers are its own) over REST clients of ``urls``."""
        name = f"peer.pool_{uuid.uuid4().hex[:8]}"
        members: dict[str, Any] = {f"peer.m{i}": self.rest._client(url) for i, url in enumerate(urls)}
        config = PoolEndpoint.model_validate({"adapter": "pool", "members": list(members), **options})
        context = AdapterContext(self.settings, REPO, name, endpoints={**members, name: config})
        return config, context

    def pool_sink(self, urls: list[str], **options: Any) -> Sink:
        """An unconnected sink of a pool over ``urls``."""
        return self.adapter.sink(*self.pool(urls, **options))

    # -- source: none ---------------------------------------------------------------------------------
    def source_probe(self) -> Probe:
        """A pool has no source."""
        return self._unsupported("read")  # type: ignore[no-any-return]

    def source(self) -> Source:
        """A pool has no source."""
        return self._unsupported("read")  # type: ignore[no-any-return]

    def put(self, n: int) -> dict[str, str]:
        """A pool has no source."""
        return self._unsupported("read")  # type: ignore[no-any-return]

    def marker(self, message: Message) -> str:
        """A pool has no source."""
        return self._unsupported("read")  # type: ignore[no-any-return]

    # -- sink -----------------------------------------------------------------------------------------
    def sink(self) -> Sink:
        """A pool of two clients of the peer."""
        return self.pool_sink([self.rest.peer.url] * 2)

    def message(self, i: int) -> Message:
        """The REST harness's order ``X-<i>``."""
        return self.rest.message(i)

    def send(self, sink: Sink, messages: list[Message]) -> None:
        """Write each message."""
        for message in messages:
            sink.write(message)

    def received(self) -> list[str]:
        """What the peer received."""
        return self.rest.received()

    def request_answer(self, reply: Message) -> str:
        """The order the peer created."""
        return self.rest.request_answer(reply)

    def down_sink(self) -> tuple[Sink, str]:
        """A pool whose two members are down (their URLs carry credentials to be masked)."""
        urls = [f"http://esb:url-s3cret@127.0.0.1:{free_port()}/tmf-api/productOrderingManagement/v4"] * 2
        return self.pool_sink(urls), "s3cret"

    def refusals(self) -> list[Refusal]:
        """The REST peer's refusals, each through a pool with one member of the refusing peer."""
        out = []
        for refusal in self.rest.refusals():

            def prepare(refusal: Refusal = refusal) -> tuple[Sink, Message]:
                member, message = refusal.prepare()
                url = member.endpoint.base_url  # type: ignore[attr-defined]
                member.close()
                sink = self.pool_sink([url], retry_on_next=False)
                sink.connect()
                return sink, message

            out.append(Refusal(refusal.name, prepare, refusal.error, refusal.retryable))
        return out

    def health_probes(self) -> tuple[Probe, Probe]:
        """A pool no hub has used yet (ok), and one whose every member was ejected (down)."""
        live = self.pool([self.rest.peer.url])
        down_url = f"http://127.0.0.1:{free_port()}/tmf-api/productOrderingManagement/v4"
        dead_config, dead_context = self.pool([down_url], health={"failures": 1})
        sink = self.adapter.sink(dead_config, dead_context)
        with contextlib.suppress(TransportError):  # the member is down: that is the point
            sink.write(self.message(0))
        sink.close()
        return Probe(*live), Probe(dead_config, dead_context)
