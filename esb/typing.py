"""The contract between the engine and its adapters, in one file, as ``typing.Protocol``s.

Named Source/Sink so they never collide with kombu's Consumer/Producer. Constructors store configuration
only; I/O begins in ``connect``; ``close`` may be called twice; both are context managers.

Every adapter makes sources and sinks (:class:`Adapter`). Everything else is a **capability**: optional,
declared by implementing its protocol, and asked for with :func:`capability` (never by the adapter's
name, never with ``getattr``)::

    sink capabilities      BatchWriter (write_many), Requester (request)
    source capabilities    Breakable (broken: the connection died, stop reading)
    adapter capabilities   QueueInspector (depth, stats, peek), OutboxReader (what a sink endpoint left
                           for its peer: batch files, esb receive), Republisher (others may publish into a
                           source endpoint: replay, dlq retry), Partitionable (split a source into
                           ordered partition endpoints), HealthReporter (esb health), JobReporter
                           (scheduled jobs), CommandProvider (adds ``esb <adapter> ...`` commands),
                           EndpointChecker (esb lint: what an endpoint names, such as a pool's members),
                           ExtractReader (a full extract for esb sync), ExtractFetcher (a scheduled
                           resync's extract from a remote folder)

Engine services (journal notes, one-time tokens, leader election, metrics, the running hub) reach
adapters only through ``AdapterContext.services`` (:mod:`esb.context`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, runtime_checkable

from esb.message import Message

if TYPE_CHECKING:
    from esb.config.systems import EndpointConfig
    from esb.context import AdapterContext

C = TypeVar("C")


@runtime_checkable
class Ack(Protocol):
    """Settles one delivery: ``ack()`` commits it, ``ack(error)`` gives it back for redelivery.

    A second call raises :class:`AlreadySettledError` (kombu's ``Message`` refuses a second ack too).
    """

    def ack(self, error: BaseException | None = None) -> None:
        """Commit (no error) or give back (error) the delivery."""
        ...


class AlreadySettledError(RuntimeError):
    """A delivery was acked or nacked twice."""


class Delivery:
    """A message read from a source together with the means to settle it.

    ``delivery_count`` is how many times the source has handed this message out (1 the first time); a
    route dead-letters a message that keeps coming back (a poison message that crashes the hub).
    ``respond`` is set by request-reply sources (a SOAP listener): the route's result is its answer.
    ``outcome`` is what the route did with it, set just before a successful ``ack()``: ``delivered``,
    ``filtered`` or ``dead_lettered`` (with ``failure``, why), None when the route only passed it on (a
    partitioner); a source whose caller waits (the REST listener) answers by it.
    """

    __slots__ = ("_ack", "_settled", "delivery_count", "failure", "message", "outcome", "respond")

    def __init__(
        self,
        message: Message,
        ack: Callable[[BaseException | None], None],
        *,
        delivery_count: int = 1,
        respond: Callable[[Message], None] | None = None,
    ) -> None:
        self.message = message
        self._ack = ack
        self._settled = False
        self.delivery_count = delivery_count
        self.respond = respond
        self.outcome: str | None = None
        self.failure: BaseException | None = None

    @property
    def settled(self) -> bool:
        """True once ``ack`` has been called."""
        return self._settled

    def ended(self, outcome: str, failure: BaseException | None = None) -> Delivery:
        """Record how the route ended the message (before ``ack()``); return self."""
        self.outcome, self.failure = outcome, failure
        return self

    def ack(self, error: BaseException | None = None) -> None:
        """Commit (no error) or give back (error) the delivery; refuses a second call."""
        if self._settled:
            raise AlreadySettledError(f"message {self.message.id} was already settled")
        self._settled = True
        self._ack(error)


@runtime_checkable
class Source(Protocol):
    """Where messages come in: a queue, a SOAP listener, a folder of batch files."""

    def connect(self) -> None:
        """Open connections; called once before the first ``read``."""
        ...

    def read(self, timeout: float) -> Delivery | None:
        """Return the next delivery, or None when nothing arrived within ``timeout`` seconds."""
        ...

    def close(self) -> None:
        """Release everything; unsettled deliveries come back later. Safe to call twice."""
        ...


@runtime_checkable
class Sink(Protocol):
    """Where messages go out. ``write`` returns only once the peer confirmed (or raises)."""

    def connect(self) -> None:
        """Open connections; called once before the first ``write``."""
        ...

    def write(self, message: Message) -> None:
        """Deliver ``message``; raise TransportError (retryable) or RemoteError on failure."""
        ...

    def close(self) -> None:
        """Release everything. Safe to call twice."""
        ...


@runtime_checkable
class Requester(Protocol):
    """A sink that can also answer: used by the enrich step and request-reply routes."""

    def connect(self) -> None:
        """Open connections."""
        ...

    def request(self, message: Message, timeout: float) -> Message:
        """Send ``message`` and return the peer's reply."""
        ...

    def close(self) -> None:
        """Release everything. Safe to call twice."""
        ...


class Processor(Protocol):
    """One route step: a message in, zero or more messages out (an empty list means filtered)."""

    def __call__(self, message: Message) -> list[Message]:
        """Process ``message``."""
        ...


@runtime_checkable
class Adapter(Protocol):
    """A protocol adapter: makes sources and sinks for the endpoints of its kind."""

    name: str

    def endpoint_model(self) -> type[Any]:
        """Return the pydantic model that an endpoint of this adapter is validated against."""
        ...

    def source(self, endpoint: Any, context: Any) -> Source:
        """Return an unconnected source for ``endpoint``."""
        ...

    def sink(self, endpoint: Any, context: Any) -> Sink:
        """Return an unconnected sink for ``endpoint``."""
        ...


# -- capabilities -----------------------------------------------------------------------------------------
def capability(obj: object, kind: type[C]) -> C | None:
    """Return ``obj`` as the capability ``kind`` when it implements it, else None.

    ``kind`` is one of the runtime-checkable protocols of this module; the check is structural (the
    methods are there), which is what declaring a capability means.
    """
    return obj if isinstance(obj, kind) else None


@runtime_checkable
class BatchWriter(Protocol):
    """A sink that delivers many messages with one confirmation (one publisher-confirm wait, one commit)."""

    def write_many(self, messages: Sequence[Message]) -> None:
        """Deliver every message, or raise (none is to be taken as delivered then)."""
        ...


@runtime_checkable
class FileWriter(Protocol):
    """An adapter whose endpoints take a whole file of records at once (a batch endpoint's full file)."""

    def write_file(
        self,
        endpoint: EndpointConfig,
        context: AdapterContext,
        records: Iterable[dict[str, Any]],
        now: datetime | None = None,
    ) -> tuple[str, int]:
        """Write every record (streamed) into one new file and deliver it; return its name and count."""
        ...


@runtime_checkable
class Breakable(Protocol):
    """A source that can tell its connection died: the worker stops reading and reconnects."""

    @property
    def broken(self) -> bool:
        """True once the source cannot deliver or settle any more without reconnecting."""
        ...


class InlineRoute(Protocol):
    """A route that a source's own threads run for the deliveries they receive (esb.runtime.inline)."""

    #: True when a lead runs the deliveries waiting together (one journal commit for all): the source
    #: then lets those on their way join before a lead (adapters/http/inline.py).
    batches: bool

    def lead(self, read: Callable[[], Delivery | None]) -> None:
        """Run the route on the calling thread for what ``read`` hands out now (one batch), settling each."""
        ...

    def same(self, other: object) -> bool:
        """True when ``other`` runs the same route of the same loaded project (another worker's offer)."""
        ...

    def close(self) -> None:
        """Stop running: what a lead in progress has not settled is given back."""
        ...


@runtime_checkable
class InlineSource(Protocol):
    """A source whose deliveries arrive on threads of its own (a listener's server threads), which can
    run the route there instead of handing each delivery over to the route's worker."""

    def run_inline(self, route: InlineRoute | None) -> bool:
        """From now on run ``route`` on the source's own threads (None: hand over); False when the
        source hands over (its endpoint says so, or None); while it runs inline, ``read`` hands out
        nothing."""
        ...


@runtime_checkable
class QueueInspector(Protocol):
    """An adapter whose endpoints are queues that can be counted and looked into without consuming."""

    def queue_stats(self, endpoint: EndpointConfig, context: AdapterContext) -> dict[str, int]:
        """Return at least ``ready`` (waiting) and, where the broker knows, ``in_flight``."""
        ...

    def queue_depth(self, endpoint: EndpointConfig, context: AdapterContext) -> int:
        """Return how many messages wait, ready, on ``endpoint``."""
        ...

    def peek(self, endpoint: EndpointConfig, context: AdapterContext, limit: int = 10) -> list[Message]:
        """Return up to ``limit`` waiting messages, oldest first, leaving them in place."""
        ...


@runtime_checkable
class OutboxReader(Protocol):
    """An adapter whose sink endpoints leave messages for their peer to collect (batch files in a folder)."""

    def collects(self, endpoint: EndpointConfig) -> bool:
        """True when ``endpoint`` is an outbox this adapter can collect from (e.g. a batch ``outbound``)."""
        ...

    def collect(
        self,
        endpoint: EndpointConfig,
        context: AdapterContext,
        limit: int,
        on_message: Callable[[Message], None],
        *,
        consume: bool = False,
    ) -> int:
        """Hand up to ``limit`` complete items waiting for the peer to ``on_message``, oldest first; return
        how many. With ``consume`` take each away as the peer would, only after ``on_message`` returned."""
        ...


@runtime_checkable
class Republisher(Protocol):
    """An adapter whose source endpoints another process may publish into (replay, dlq retry).

    Without it a replay runs the route in the replaying process (a SOAP listener or a batch folder
    cannot be handed a message from outside).
    """

    def publisher(self, endpoint: EndpointConfig, context: AdapterContext) -> Sink:
        """Return an unconnected sink that puts messages where ``endpoint``'s source reads them."""
        ...


@runtime_checkable
class Partitionable(Protocol):
    """An adapter that can split a source endpoint into single-consumer partitions (ordered routes)."""

    def partition(self, endpoint: EndpointConfig, index: int) -> EndpointConfig:
        """Return the endpoint of partition ``index`` of ``endpoint`` (read by one consumer at a time)."""
        ...

    def ordering_problem(self, endpoint: EndpointConfig) -> str | None:
        """Return why ``endpoint`` cannot keep per-key order as configured (lint), or None."""
        ...


@runtime_checkable
class HealthReporter(Protocol):
    """An adapter that can check an endpoint's peer for ``esb health``."""

    def health(self, endpoint: EndpointConfig, context: AdapterContext) -> tuple[str, str]:
        """Return ``(status, detail)``: status ``ok``, ``degraded`` or ``down``; detail without secrets."""
        ...


@runtime_checkable
class JobReporter(Protocol):
    """An adapter with scheduled jobs per endpoint (polls, flushes) to show in ``esb health``."""

    def jobs(self, endpoint: EndpointConfig, context: AdapterContext) -> list[dict[str, Any]]:
        """Return each job: ``job``, ``schedule``, ``last_run``, ``outcome``, ``next_run``, ``overdue``."""
        ...


@runtime_checkable
class CommandProvider(Protocol):
    """An adapter that adds commands to the ``esb`` CLI (``esb soap operations WSDL``)."""

    def commands(self) -> list[Any]:
        """Return click commands or groups; each is added under its own name."""
        ...


@runtime_checkable
class EndpointChecker(Protocol):
    """An adapter whose endpoints name other endpoints (a pool's members) or files (a batch layout):
    checked by ``esb lint``."""

    def endpoint_problems(
        self,
        endpoint: EndpointConfig,
        endpoints: Mapping[str, EndpointConfig],
        project_dir: Path | None = None,
    ) -> list[tuple[tuple[str | int, ...], str]]:
        """Return ``(path inside the endpoint, what is wrong and what to do)`` for each problem; files the
        endpoint names are relative to ``project_dir``."""
        ...


@runtime_checkable
class ExtractReader(Protocol):
    """An adapter that reads a whole file of records in an endpoint's layout (a full extract: resync,
    reconciliation), outside the hub's flow: no staging, no done folder, nothing moved."""

    def extract_blocks(
        self, endpoint: EndpointConfig, context: AdapterContext, path: Path
    ) -> tuple[
        Iterator[tuple[int, list[bytes]]], Callable[[int, bytes], tuple[dict[str, Any] | None, str | None]]
    ]:
        """Check the whole file (header, trailer, counts; a file refused whole raises
        :class:`~esb.exceptions.MessageError`), then return its detail records in file order as blocks
        ``(number of the block's first record, [raw bytes of each])``, numbered from 1, and the
        function parsing one record into ``(fields, None)`` or ``(None, why it cannot be read)``."""
        ...


@dataclass(frozen=True)
class FetchedExtract:
    """An extract fetched from an endpoint's remote folder: its local staged copy, the remote file's
    name, and the key the adapter knows the file by (to record that its resync ended)."""

    path: Path
    name: str
    key: str


@runtime_checkable
class ExtractFetcher(Protocol):
    """An adapter that fetches the newest complete extract of an endpoint's remote (SFTP, FTP) folder into
    local staging for a scheduled resync, and never hands out a file whose resync ended."""

    def fetches_extracts(self, endpoint: EndpointConfig) -> bool:
        """True when the endpoint's folder is remote (a local folder is read in place)."""
        ...

    def fetch_extract(self, endpoint: EndpointConfig, context: AdapterContext) -> FetchedExtract | None:
        """The newest complete extract, staged locally; None when there is none, or it was resynced."""
        ...

    def extract_done(
        self, endpoint: EndpointConfig, context: AdapterContext, fetched: FetchedExtract, error: str | None
    ) -> None:
        """Record that the resync of ``fetched`` ended (``error`` None) or failed (fetched again)."""
        ...

