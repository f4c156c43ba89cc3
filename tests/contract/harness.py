"""What the adapter contract suite needs from each adapter: the :class:`AdapterHarness` protocol.

A harness makes one adapter's endpoints, sources and sinks on loopback, feeds its sources through the
adapter's own natural inlet (publish to the queue, POST to the SOAP listener, drop a file on the SFTP
server...) and reads what its sinks delivered from the peer's side. The behaviours in
``test_adapter_contract.py`` and ``test_capabilities.py`` are written once against this protocol.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol

import pytest
import requests

from esb.context import AdapterContext
from esb.exceptions import EsbError
from esb.message import Message
from esb.typing import (
    BatchWriter,
    Breakable,
    CommandProvider,
    Delivery,
    HealthReporter,
    JobReporter,
    Partitionable,
    QueueInspector,
    Republisher,
    Requester,
    Sink,
    Source,
)

#: Capabilities asked of the adapter object itself, of its sinks, and of its sources.
ADAPTER_CAPABILITIES: tuple[type, ...] = (
    QueueInspector, Republisher, Partitionable, HealthReporter, JobReporter, CommandProvider,
)  # fmt: skip
SINK_CAPABILITIES: tuple[type, ...] = (BatchWriter, Requester)
SOURCE_CAPABILITIES: tuple[type, ...] = (Breakable,)

#: The behaviours a harness may say its adapter cannot show, each with the reason (``cannot``).
BEHAVIOURS = frozenset(
    {"read", "redeliver", "reconnect", "answer", "write", "down", "refuse", "break", "request"}
)

#: Seconds a test waits for something that should happen (never a timing target: only a bound).
PATIENCE = 10.0

#: An HTTP answer: (status, headers, body).
HTTPAnswer = tuple[int, dict[str, str], bytes]


@dataclass(frozen=True)
class Refusal:
    """A peer that receives a message and refuses it, and the error the sink must raise for it."""

    name: str
    prepare: Callable[[], tuple[Sink, Message]]
    """Set the refusal up; return a connected sink and the message the peer will refuse."""
    error: type[EsbError]
    retryable: bool


@dataclass(frozen=True)
class Probe:
    """An endpoint and the context to ask a capability about it with."""

    endpoint: Any
    context: AdapterContext


class AdapterHarness(Protocol):
    """One adapter under the contract suite (see the module docstring of ``test_adapter_contract.py``)."""

    adapter: Any
    """The adapter object (an ``esb.typing.Adapter``) the engine would load from the registry."""
    declares: frozenset[type]
    """Exactly the capabilities its adapter, sources and sinks implement (see ``*_CAPABILITIES``)."""
    cannot: dict[str, str]
    """Behaviour (one of ``BEHAVIOURS``) -> why this adapter legitimately cannot show it (skip reason)."""

    # -- the source side -----------------------------------------------------------------------------
    def source_probe(self) -> Probe:
        """The source endpoint and its context (capabilities are asked about it)."""
        ...

    def source(self) -> Source:
        """Return an unconnected source on the source endpoint."""
        ...

    def put(self, n: int) -> dict[str, str]:
        """Put ``n`` messages in through the natural inlet (a source is connected); return id -> marker."""
        ...

    def marker(self, message: Message) -> str:
        """The marker that ``put`` gave the message's body (proves the body arrived intact)."""
        ...

    def answers(self, ids: list[str]) -> dict[str, str]:
        """Request-reply sources: what each caller got back, ``ok`` or ``error`` (waits for them)."""
        ...

    # -- the sink side -------------------------------------------------------------------------------
    def sink(self) -> Sink:
        """Return an unconnected sink to the peer."""
        ...

    def message(self, i: int) -> Message:
        """Return a message the sink's peer accepts, with marker ``str(i)``."""
        ...

    def send(self, sink: Sink, messages: list[Message]) -> None:
        """Write ``messages`` and do whatever makes them reach the peer (a batch sink flushes)."""
        ...

    def received(self) -> list[str]:
        """The markers of the messages the peer has received, as the peer sees them."""
        ...

    def request_answer(self, reply: Message) -> str:
        """Requesters: the marker of the request a reply answers."""
        ...

    def down_sink(self) -> tuple[Sink, str]:
        """Return an unconnected sink to a peer that is down, and a secret its errors must not show."""
        ...

    def refusals(self) -> list[Refusal]:
        """The ways the peer refuses a message, each with the error the adapter translates it to."""
        ...

    def broken_source(self) -> tuple[Source, Callable[[], None]]:
        """Breakable sources: an unconnected source, and a function that kills its connection."""
        ...

    def health_probes(self) -> tuple[Probe, Probe]:
        """HealthReporter: an endpoint whose peer is up, and one whose peer is down."""
        ...


def require(harness: AdapterHarness, *behaviours: str) -> None:
    """Skip the test, with the harness's reason, when its adapter cannot show one of ``behaviours``."""
    for behaviour in behaviours:
        assert behaviour in BEHAVIOURS, f"unknown behaviour {behaviour!r}"
        if behaviour in harness.cannot:
            pytest.skip(f"{behaviour}: {harness.cannot[behaviour]}")


def read_n(source: Source, n: int, *, ack: bool = True, patience: float = PATIENCE) -> list[Delivery]:
    """Read ``n`` deliveries (acking each unless told not to), giving up after ``patience`` seconds."""
    out: list[Delivery] = []
    deadline = time.monotonic() + patience
    while len(out) < n and time.monotonic() < deadline:
        delivery = source.read(0.2)
        if delivery is not None:
            if ack:
                delivery.ack()
            out.append(delivery)
    return out


class HarnessDefaults:
    """The optional parts of :class:`AdapterHarness`, for harnesses whose ``cannot`` skips them."""

    cannot: dict[str, str]

    def _unsupported(self, behaviour: str) -> Any:
        raise AssertionError(f"{type(self).__name__} cannot {behaviour}: {self.cannot.get(behaviour)}")

    def answers(self, ids: list[str]) -> dict[str, str]:
        """Only request-reply sources answer callers."""
        return self._unsupported("answer")  # type: ignore[no-any-return]

    def request_answer(self, reply: Message) -> str:
        """Only requesters answer requests."""
        return self._unsupported("request")  # type: ignore[no-any-return]

    def down_sink(self) -> tuple[Sink, str]:
        """Only sinks with a peer can find it down."""
        return self._unsupported("down")  # type: ignore[no-any-return]

    def refusals(self) -> list[Refusal]:
        """Only sinks with a peer can be refused."""
        return self._unsupported("refuse")  # type: ignore[no-any-return]

    def broken_source(self) -> tuple[Source, Callable[[], None]]:
        """Only sources over a connection can be broken."""
        return self._unsupported("break")  # type: ignore[no-any-return]

    def health_probes(self) -> tuple[Probe, Probe]:
        """Only HealthReporters are asked."""
        return self._unsupported("health")  # type: ignore[no-any-return]


class Callers:
    """The callers of a request-reply source, each waiting in its own thread, and what each got back."""

    def __init__(self) -> None:
        self._threads: dict[str, threading.Thread] = {}
        self._answers: dict[str, str] = {}

    def call(self, ident: str, send: Callable[[], requests.Response], success: int) -> None:
        """Start a caller: ``ok`` when ``send`` answers HTTP ``success``, ``error`` for another status or
        a connection refused or cut off before the whole answer came."""

        def wait() -> None:
            try:
                status = send().status_code
            except requests.RequestException:
                self._answers[ident] = "error"
                return
            self._answers[ident] = "ok" if status == success else "error"

        self._threads[ident] = threading.Thread(target=wait, daemon=True)
        self._threads[ident].start()

    def answers(self, ids: list[str]) -> dict[str, str]:
        """What each caller got (waiting for them): ``ok``, ``error``, or ``no answer``."""
        for ident in ids:
            self._threads[ident].join(PATIENCE)
        return {ident: self._answers.get(ident, "no answer") for ident in ids}


class Peer:
    """A loopback REST peer: answers each POST with the next of ``answers``, then with ``respond(body)``."""

    def __init__(self, *answers: HTTPAnswer, respond: Callable[[bytes], HTTPAnswer] | None = None) -> None:
        self.answers = list(answers)
        self.respond = respond
        self.bodies: list[bytes] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                data = self.rfile.read(int(self.headers["Content-Length"]))
                outer.bodies.append(data)
                if outer.answers or outer.respond is None:
                    status, headers, body = outer.answers.pop(0)
                else:
                    status, headers, body = outer.respond(data)
                self.send_response(status)
                for name, value in {**headers, "Content-Length": str(len(body))}.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                """Quiet."""

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/tmf-api/productOrderingManagement/v4"
        # a short poll: shutdown() waits for the serving loop to look, up to one interval
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    def close(self) -> None:
        """Stop serving and free the port."""
        self.server.shutdown()
        self.server.server_close()
