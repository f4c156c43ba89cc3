"""``esb replay``: send journaled messages through their route again, as they first arrived.

A replay re-publishes the ORIGINAL ingress bytes (``Journal.body``) with the original envelope to the
route's source endpoint, through that endpoint's adapter sink, so the running hub processes it with
today's routes and mappings. The message keeps its id (idempotent receivers recognise it) unless
``new_id`` is asked for. Before publishing, a ``replayed`` event is journaled: :meth:`Journal.outcome`
is then None, so the hub's duplicate check lets the message in again, and the ``esb-replay: <n>`` header
makes the worker deliver to every sink again instead of skipping those that had it (see
``esb.runtime.worker``). Sinks see the header too.

A route whose source another process cannot publish to (a SOAP listener, a batch folder) is replayed
in THIS process instead (:mod:`esb.ops.rerun`): the same ``replayed`` event first, then the route's own
worker logic runs the message through today's steps and sinks and journals the outcome; a request-reply
route is refused (no caller to answer).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar, overload

from esb.exceptions import ConfigError, EsbError
from esb.journal import FINAL_STATES, Journal, MessageRecord, MessageRef
from esb.message import Message
from esb.ops.rerun import InProcessRun, refusal
from esb.project import Project
from esb.runtime.control import who
from esb.runtime.worker import REPLAY_HEADER
from esb.typing import Republisher, capability

REPLAY_OF_HEADER = "esb-replay-of"
_Entry = TypeVar("_Entry", MessageRecord, MessageRef)

#: Records a selection of dead letters reads in one statement as the replay reaches them (:class:`Paged`).
PAGE = 100


@dataclass(frozen=True)
class Selection:
    """Which journaled messages to replay; at least one criterion must be given."""

    message_ids: tuple[str, ...] = ()
    correlation_id: str | None = None
    key: tuple[str, str] | None = None
    route: str | None = None
    since: Any = None
    until: Any = None
    state: str | None = None
    limit: int = 1000

    def empty(self) -> bool:
        """True when nothing narrows the selection (replaying everything is never the default)."""
        return not (self.message_ids or self.correlation_id or self.key or self.route or self.since)


@dataclass
class Outcome:
    """What happened to one message of a replay (or a dry run)."""

    message_id: str
    route: str
    status: str  # sent, skipped, failed, dry-run
    sent_as: str | None = None
    replay: int | None = None
    reason: str | None = None
    outputs: list[dict[str, Any]] | None = None
    #: run in this process and dead-lettered again (a new dead letter exists: the old one may go)
    dead_lettered_again: bool = False


class Paged(Sequence[MessageRecord]):
    """The records of a selection known by reference (:meth:`Journal.dead_letter_refs`), read from the
    journal :data:`PAGE` at a time as they are reached: the count and the ids are known before any
    message row is read, and the first message is re-published after one page instead of every record.

    A message row pruned between the selection and its page is left out of the iteration (``len`` still
    counts it: the selection's size); indexing it raises ``LookupError``.
    """

    def __init__(
        self, journal: Journal, refs: list[MessageRef], state: str | None, page: int | None = None
    ) -> None:
        self.journal, self.refs, self.state, self.page = journal, refs, state, page or PAGE
        self._start = -1
        self._records: dict[int, MessageRecord] = {}

    def __len__(self) -> int:
        return len(self.refs)

    @overload
    def __getitem__(self, index: int) -> MessageRecord: ...

    @overload
    def __getitem__(self, index: slice) -> list[MessageRecord]: ...

    def __getitem__(self, index: int | slice) -> MessageRecord | list[MessageRecord]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        ref = self.refs[index]  # IndexError past the end, negative indexes as a list's
        record = self._load(index % len(self.refs)).get(ref.seq)
        if record is None:
            raise LookupError(f"message {ref.id} on route {ref.route}: pruned since the selection")
        return record

    def __iter__(self) -> Iterator[MessageRecord]:
        for start in range(0, len(self.refs), self.page):
            records = self._load(start)
            for ref in self.refs[start : start + self.page]:
                if ref.seq in records:
                    yield records[ref.seq]

    def _load(self, index: int) -> dict[int, MessageRecord]:
        """The records of the page holding ``index`` (the last page read is kept)."""
        start = index - index % self.page
        if start != self._start:
            self._records = self.journal.records(self.refs[start : start + self.page], self.state)
            self._start = start
        return self._records


def select(journal: Journal, project: Project, selection: Selection) -> Sequence[MessageRecord]:
    """Return the ingress records to replay, oldest first, one per message id.

    A message that entered several routes (forwarded over ``direct:`` or a queue with its id) is
    replayed where it first entered the hub, unless ``selection.route`` names the route. The dead
    letters of a window (``--state dead_lettered`` with ``--route``/``--since``/``--until`` alone) are
    selected from ``dead_letters``' index alone and their records read a page at a time (:class:`Paged`).
    """
    if selection.empty():
        raise ConfigError("say what to replay: message ids, --correlation-id, --key, or --route/--since")
    narrowed = selection.message_ids or selection.correlation_id or selection.key
    if selection.state == "dead_lettered" and not narrowed:
        refs = journal.dead_letter_refs(
            route=selection.route, since=selection.since, until=selection.until, limit=selection.limit
        )
        return Paged(journal, first_entries(refs), selection.state)
    common = {
        "route": selection.route,
        "since": selection.since,
        "until": selection.until,
        "state": selection.state,
        "limit": selection.limit,
        "with_keys": False,  # a replay shows no keys; reading them costs more than the selection itself
        "with_state": False,  # nor the latest state (unless --state filters on it): one event read a row
    }
    found: list[MessageRecord] = []
    if selection.message_ids:
        for mid in selection.message_ids:
            found.extend(journal.find(message_id=mid, **common))
    else:
        found = journal.find(correlation_id=selection.correlation_id, key=selection.key, **common)
    return first_entries(found)


def first_entries(found: list[_Entry]) -> list[_Entry]:
    """``found`` (newest first) oldest first, one per message id: its earliest arrival among them."""
    first: dict[str, _Entry] = {}
    for entry in sorted(found, key=lambda r: r.received_at):
        if entry.id not in first:
            first[entry.id] = entry
    return list(first.values())


def rebuild(record: MessageRecord, body: bytes) -> Message:
    """Return the message as it entered ``record.route``: original bytes, envelope and headers."""
    extra: dict[str, Any] = {"created_at": record.created_at} if record.created_at is not None else {}
    return Message(
        body=body,
        id=record.id,
        correlation_id=record.correlation_id,
        causation_id=record.causation_id,
        type=record.type,
        source=record.source,
        schema=record.schema,
        headers={k: v for k, v in record.headers.items() if k not in (REPLAY_HEADER, REPLAY_OF_HEADER)},
        **extra,
    )


class RateLimiter:
    """Spaces calls ``1/rate`` seconds apart (``rate`` None or 0: no limit)."""

    def __init__(
        self,
        rate: float | None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.interval = 1.0 / rate if rate else 0.0
        self.clock, self.sleep = clock, sleep
        self._next = 0.0

    def wait(self) -> None:
        """Return when the next call is allowed."""
        if not self.interval:
            return
        now = self.clock()
        if now < self._next:
            self.sleep(self._next - now)
            now = self._next
        self._next = now + self.interval


class Replayer:
    """Publishes replays to routes' source endpoints, journaling each one first."""

    def __init__(
        self, project: Project, journal: Journal, *, new_id: bool = False, rate: float | None = None
    ) -> None:
        self.project = project
        self.journal = journal
        self.new_id = new_id
        self.limiter = RateLimiter(rate)
        self._sinks: dict[str, Any] = {}
        self._inproc: InProcessRun | None = None

    def publishable(self, route_id: str) -> bool:
        """True when the route's source can be published to from here; else it is run in this process."""
        route = self.project.route(route_id)
        return capability(self.project.adapter_for(route.from_), Republisher) is not None

    def check_route(self, route_id: str) -> str:
        """Return the route's source endpoint; ConfigError when the route cannot be replayed at all."""
        route = self.project.route(route_id)
        if not self.publishable(route_id):
            problem = refusal(self.project, route_id)
            if problem is not None:
                raise ConfigError(problem)
        return route.from_

    def check_endpoint(self, endpoint: str) -> str:
        """Return ``endpoint`` when a message can be published to it from here; ConfigError when not."""
        if capability(self.project.adapter_for(endpoint), Republisher) is None:
            kind = self.project.endpoint(endpoint).adapter
            raise ConfigError(f"{endpoint}: the {kind!r} adapter cannot be published to from outside the hub")
        return endpoint

    def replay_record(self, record: MessageRecord) -> Outcome:
        """Replay one journaled message from its original bytes."""
        body = self.journal.body(record.id)
        if body is None:
            return Outcome(record.id, record.route, "skipped", reason="no body kept (journal.keep_bodies)")
        return self.replay_message(record.route, rebuild(record, body))

    def replay_message(self, route_id: str, original: Message, *, endpoint: str | None = None) -> Outcome:
        """Journal ``replayed`` and publish ``original`` (original bytes) to the route's source.

        With ``endpoint`` (a process endpoint: ``route_id`` is then its ``process:<endpoint>`` journal
        route) it is published there instead, never run in this process.
        """
        elsewhere = endpoint is not None
        try:
            endpoint = self.check_endpoint(endpoint) if endpoint else self.check_route(route_id)
        except ConfigError as exc:
            return Outcome(original.id, route_id, "skipped", reason=str(exc))
        history = [e for e in self.journal.history(original.id) if e.route == route_id]
        number = 1 + sum(1 for e in history if e.state == "replayed")
        previous = self.journal.outcome(route_id, original.id)
        self.limiter.wait()
        message = self._replay_copy(route_id, original, number)
        if not elsewhere and not self.publishable(route_id):
            return self._run_here(route_id, original, message, previous, number)
        try:
            self._sink(endpoint).write(message)
        except EsbError as exc:
            self._drop(endpoint)
            self._undo(route_id, message, previous, number, exc)
            return Outcome(original.id, route_id, "failed", replay=number, reason=str(exc))
        return Outcome(original.id, route_id, "sent", sent_as=message.id, replay=number)

    def _run_here(
        self, route_id: str, original: Message, message: Message, previous: str | None, number: int
    ) -> Outcome:
        """Run the replay through its route in this process; report the outcome the journal records."""
        if self._inproc is None:
            self._inproc = InProcessRun(self.project, self.journal)
        try:
            error = self._inproc.run(route_id, message)
        except ConfigError as exc:
            error = exc
        if error is not None:
            self._undo(route_id, message, previous, number, error)
            return Outcome(original.id, route_id, "failed", replay=number, reason=f"not processed: {error}")
        state = self.journal.outcome(route_id, message.id)
        if state == "dead_lettered":
            last = [e for e in self.journal.history(message.id) if e.route == route_id][-1:]
            why = last[0].error_text if last and last[0].error_text else "see esb trace"
            return Outcome(
                original.id,
                route_id,
                "failed",
                sent_as=message.id,
                replay=number,
                reason=f"run in this process: dead-lettered again: {why}",
                dead_lettered_again=True,
            )
        return Outcome(
            original.id,
            route_id,
            "sent",
            sent_as=message.id,
            replay=number,
            reason=f"run in this process: {state}",
        )

    def _replay_copy(self, route_id: str, original: Message, number: int) -> Message:
        headers = {**original.headers, REPLAY_HEADER: str(number)}
        detail = {"replay": number, "by": who()}
        if not self.new_id:
            message = original.replace(headers=headers, attempt=1)
            self.journal.event(route_id, message, "replayed", detail=detail)
            return message
        headers[REPLAY_OF_HEADER] = original.id
        message = original.replace(
            id=f"{original.id}:replay-{number}", causation_id=original.id, headers=headers, attempt=1
        )
        self.journal.received(route_id, message)
        self.journal.event(route_id, message, "replayed", detail={**detail, "of": original.id})
        return message

    def _undo(
        self, route_id: str, message: Message, previous: str | None, number: int, exc: BaseException
    ) -> None:
        """The replay was not published: put the message back in the state it had, with the reason."""
        state = previous if previous in FINAL_STATES else "failed"
        self.journal.event(route_id, message, state, error=exc, detail={"replay": number, "not_sent": True})

    def _sink(self, endpoint: str) -> Any:
        sink = self._sinks.get(endpoint)
        if sink is None:
            republisher = capability(self.project.adapter_for(endpoint), Republisher)
            assert republisher is not None, "publishable() first"
            sink = republisher.publisher(self.project.endpoint(endpoint), self.project.context(endpoint))
            sink.connect()
            self._sinks[endpoint] = sink
        return sink

    def _drop(self, endpoint: str) -> None:
        sink = self._sinks.pop(endpoint, None)
        if sink is not None:
            with contextlib.suppress(Exception):  # a broken connection may fail to close
                sink.close()

    def close(self) -> None:
        """Close every sink opened, and the routes run in this process."""
        for endpoint in list(self._sinks):
            self._drop(endpoint)
        if self._inproc is not None:
            self._inproc.close()
            self._inproc = None

    def __enter__(self) -> Replayer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
