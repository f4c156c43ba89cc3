"""The direct adapter under the contract suite: in-process channels and request handlers."""

from __future__ import annotations

import queue
import uuid
from pathlib import Path
from typing import ClassVar

import pytest

from adapters.direct import DirectAdapter, DirectEndpoint, register_handler
from adapters.direct.channels import channel
from esb.config.settings import Settings
from esb.context import AdapterContext
from esb.message import Message
from esb.typing import Requester, Sink, Source
from tests.contract.harness import HarnessDefaults, Probe

NO_PEER = "an in-process channel has no peer that could be down, refuse a message or drop a connection"


class DirectHarness(HarnessDefaults):
    """A direct channel: the inlet is a write to it; the peer's side is the channel itself."""

    declares = frozenset({Requester})
    quiet = 0.5
    cannot: ClassVar[dict[str, str]] = {
        "answer": "a direct source has no caller waiting for an answer",
        "down": NO_PEER,
        "refuse": NO_PEER,
        "break": NO_PEER,
    }

    def __init__(self, request: pytest.FixtureRequest, tmp_path: Path) -> None:
        self.adapter = DirectAdapter()
        name = f"contract-{uuid.uuid4().hex[:12]}"
        self.endpoint = DirectEndpoint(channel=name)
        self.out = DirectEndpoint(channel=f"{name}-out")
        self._context = AdapterContext(Settings(data_dir=tmp_path), Path("."), "test.direct")
        register_handler(self.out.channel, lambda m: m.derive(f"re:{m.body}", suffix="reply"))

    def close(self) -> None:
        """Nothing to stop."""

    def source_probe(self) -> Probe:
        """The source's channel."""
        return Probe(self.endpoint, self._context)

    def source(self) -> Source:
        """A reader of the source's channel."""
        return self.adapter.source(self.endpoint, self._context)

    def put(self, n: int) -> dict[str, str]:
        """Write ``n`` messages to the source's channel."""
        messages = [Message(body=f"in-{i}") for i in range(n)]
        with self.adapter.sink(self.endpoint, self._context) as sink:
            for message in messages:
                sink.write(message)
        return {m.id: str(m.body) for m in messages}

    def marker(self, message: Message) -> str:
        """The body."""
        return str(message.body)

    def sink(self) -> Sink:
        """A writer to the sink's channel."""
        return self.adapter.sink(self.out, self._context)

    def message(self, i: int) -> Message:
        """A message with body ``str(i)``."""
        return Message(body=str(i))

    def send(self, sink: Sink, messages: list[Message]) -> None:
        """Write each message."""
        for message in messages:
            sink.write(message)

    def received(self) -> list[str]:
        """Take everything waiting on the sink's channel."""
        waiting = channel(self.out.channel)
        got = []
        while True:
            try:
                got.append(str(waiting.get_nowait().body))
            except queue.Empty:
                return got

    def request_answer(self, reply: Message) -> str:
        """The handler answers ``re:<body>``."""
        assert str(reply.body).startswith("re:")
        return str(reply.body)[3:]
