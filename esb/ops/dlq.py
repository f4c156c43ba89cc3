"""``esb dlq``: the dead letters of each route, with the error and the original bytes.

A route's dead-letter endpoint (``on_error.dead_letter``) holds each dead-lettered message as the
ORIGINAL bytes with the original headers plus ``esb-error``, ``esb-error-class``, ``esb-error-reason``,
``esb-route`` and ``esb-failed-at`` (``esb.runtime.outlet``). Listing and showing peek without taking
anything; ``retry`` and ``purge`` take the selected messages off the endpoint only after they were
re-published (retry) or written to an archive file and flushed to disk (purge). Messages not selected
are held unacknowledged during the pass and given back at its end, so nothing is lost.

Process dead letters (``processes.dead_letter``: triggers and replies no instance took) are grouped
like routes under their ``esb-route``, ``process:<endpoint>``; a retry re-publishes one to that
endpoint, for the running hub's process inlet to take again.
"""

from __future__ import annotations

import base64
import contextlib
import os
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from esb.config.routes import Route
from esb.exceptions import ConfigError, TransportError
from esb.files import make_folder, open_file
from esb.journal.coldread import count_dead_lettered
from esb.message import Message
from esb.ops.common import open_journal
from esb.project import Project
from esb.runtime.outlet import DEAD_LETTER_HEADERS
from esb.typing import Delivery, QueueInspector, capability

if TYPE_CHECKING:
    from esb.journal import Journal
    from esb.ops.replay import Outcome, Replayer

ERROR_HEADERS = DEAD_LETTER_HEADERS
#: How a group of process dead letters is named: ``process:<endpoint they were read on>``. The same text
#: as ``esb.runtime.process_journal.ROUTE_PREFIX`` (a unit test keeps them equal), written here so that
#: ``esb dlq`` and ``esb health`` do not import the process engine and its metrics to know it.
PROCESS_PREFIX = "process:"


@dataclass
class DeadLetter:
    """One message on a dead-letter endpoint."""

    message_id: str
    route: str | None
    failed_at: str | None
    error_class: str | None
    error_reason: str | None
    error: str | None
    size: int
    headers: dict[str, Any]
    body: bytes

    @classmethod
    def of(cls, message: Message) -> DeadLetter:
        """Read the error headers of a dead-lettered message."""
        h = message.headers
        return cls(
            message.id,
            h.get("esb-route"),
            h.get("esb-failed-at"),
            h.get("esb-error-class"),
            h.get("esb-error-reason"),
            h.get("esb-error"),
            len(message.body_bytes()),
            dict(h),
            message.body_bytes(),
        )

    def summary(self) -> dict[str, Any]:
        """Return everything but the body (for lists and JSON)."""
        return {
            "message_id": self.message_id,
            "route": self.route,
            "failed_at": self.failed_at,
            "error_class": self.error_class,
            "error_reason": self.error_reason,
            "error": self.error,
            "size": self.size,
        }


def dead_letter_endpoint(project: Project, route_id: str) -> tuple[Route, str]:
    """Return the route and its dead-letter endpoint; ConfigError when it has none."""
    route = project.route(route_id)
    endpoint = route.on_error.dead_letter
    if endpoint is None:
        raise ConfigError(f"route {route_id} has no dead-letter endpoint (on_error.dead_letter)")
    return route, endpoint


def routes_with_dead_letters(project: Project) -> list[tuple[Route, str]]:
    """Return every route that has a dead-letter endpoint, with it."""
    return [(r, r.on_error.dead_letter) for r in project.routes if r.on_error.dead_letter]


def journaled(project: Project, groups: list[str], limit: int = 100_000) -> dict[str, int]:
    """How many messages of each route or process group the journal holds dead-lettered (their latest
    state), at most ``limit`` each. At the head schema read through ``sqlite3`` or psycopg (no SQLAlchemy
    to import: :mod:`esb.journal.coldread`), else through the journal; both count ``dead_letters``
    (migration 0014) without reading the messages."""
    counts = count_dead_lettered(project.settings.journal.url, groups, limit)
    if counts is not None:
        return counts
    with open_journal(project) as journal:
        return journal.dead_lettered_counts(groups, limit)


def is_process_group(group: str) -> bool:
    """True when ``group`` names process dead letters (``process:<endpoint>``), not a route."""
    return group.startswith(PROCESS_PREFIX)


def group_endpoint(project: Project, group: str) -> str:
    """Return the dead-letter endpoint of a route or of a ``process:<endpoint>`` group; ConfigError
    when there is none."""
    if not is_process_group(group):
        return dead_letter_endpoint(project, group)[1]
    endpoint = project.settings.processes.dead_letter
    if endpoint is None:
        raise ConfigError(
            f"{group}: processes.dead_letter is not set, so process dead letters are "
            "kept in the journal only (esb trace)"
        )
    return endpoint


def process_groups(project: Project, scan: int = 10_000) -> list[tuple[str, str]]:
    """Return the ``process:<endpoint>`` groups with a dead letter waiting (first ``scan`` messages),
    each with the dead-letter endpoint; none when ``processes.dead_letter`` is not set."""
    endpoint = project.settings.processes.dead_letter
    if endpoint is None:
        return []
    groups = {d.route for d in _peek_endpoint(project, endpoint, scan)}
    return [(g, endpoint) for g in sorted(g for g in groups if g and is_process_group(g))]


def inlet_endpoint(project: Project, group: str) -> str:
    """Return the process endpoint a ``process:<endpoint>`` group's dead letters were read on;
    ConfigError when the project does not declare it."""
    endpoint = group.removeprefix(PROCESS_PREFIX)
    try:
        project.endpoint(endpoint)
    except ConfigError as exc:
        raise ConfigError(
            f"{group}: cannot retry: the endpoint {endpoint!r} it came from is not "
            f"declared in this project ({exc})"
        ) from exc
    return endpoint


def depth(project: Project, endpoint: str) -> int | None:
    """Return how many messages wait on ``endpoint`` (None when its adapter cannot count)."""
    inspector = capability(project.adapter_for(endpoint), QueueInspector)
    if inspector is None:
        return None
    return int(inspector.queue_depth(project.endpoint(endpoint), project.context(endpoint)))


def waiting(project: Project, group: str, scan: int = 10_000) -> int | None:
    """Return how many dead letters of ``group`` wait: the endpoint's depth for a route (None when its
    adapter cannot count), those of the group among the first ``scan`` for a process group (whose
    endpoint all process groups share)."""
    if is_process_group(group):
        return len(peek(project, group, scan))
    return depth(project, group_endpoint(project, group))


def peek(project: Project, route_id: str, limit: int = 100) -> list[DeadLetter]:
    """Return up to ``limit`` dead letters of ``route_id`` (a route or a process group), oldest first,
    leaving them in place."""
    found = _peek_endpoint(project, group_endpoint(project, route_id), limit)
    if is_process_group(route_id):
        return [d for d in found if d.route == route_id]
    return [d for d in found if d.route in (None, route_id)]


def _peek_endpoint(project: Project, endpoint: str, limit: int) -> list[DeadLetter]:
    """Return up to ``limit`` messages waiting on ``endpoint`` as dead letters, leaving them in place."""
    inspector = capability(project.adapter_for(endpoint), QueueInspector)
    if inspector is None:
        kind = project.endpoint(endpoint).adapter
        raise ConfigError(f"{endpoint}: the {kind!r} adapter cannot list messages")
    waiting = inspector.peek(project.endpoint(endpoint), project.context(endpoint), limit)
    return [DeadLetter.of(m) for m in waiting]


def find(project: Project, route_id: str, message_id: str | None, scan: int = 10_000) -> DeadLetter | None:
    """Return the (newest) dead letter of ``message_id`` on ``route_id``'s endpoint (the oldest waiting
    one when ``message_id`` is None), or None."""
    letters = peek(project, route_id, scan)
    if message_id is None:
        return letters[0] if letters else None
    matches = [d for d in letters if d.message_id == message_id]
    return matches[-1] if matches else None


def _take(
    project: Project, endpoint: str, limit: int | None, timeout: float = 0.5
) -> Generator[Delivery, None, None]:
    """Yield up to ``limit`` deliveries of the endpoint, until none comes within ``timeout``.

    The limit is the depth when the pass began: a retried message dead-lettered again during the pass
    is not taken a second time. Unsettled deliveries go back at the end.
    """
    source = project.adapter_for(endpoint).source(project.endpoint(endpoint), project.context(endpoint))
    held: list[Delivery] = []
    source.connect()
    try:
        while limit is None or len(held) < limit:
            delivery = source.read(timeout)
            if delivery is None:
                return
            held.append(delivery)
            yield delivery
    finally:
        for delivery in held:
            if not delivery.settled:
                delivery.ack(TransportError("not selected: given back"))
        source.close()


def process(
    project: Project, route_id: str, ids: set[str] | None, handle: Callable[[DeadLetter, Message], bool]
) -> int:
    """Run ``handle`` on each selected dead letter of the route or process group (all when ``ids`` is None).

    A delivery is acknowledged (removed) only when ``handle`` returns True; the others go back.
    Returns how many were removed.
    """
    endpoint = group_endpoint(project, route_id)
    mine = (route_id,) if is_process_group(route_id) else (None, route_id)
    removed = 0
    done: set[str] = set()
    with contextlib.closing(_take(project, endpoint, depth(project, endpoint))) as deliveries:
        for delivery in deliveries:
            letter = DeadLetter.of(delivery.message)
            if letter.route not in mine or (ids is not None and letter.message_id not in ids):
                continue
            if letter.message_id in done and ids is not None:
                continue  # dead-lettered again since this pass retried it: leave it for the next pass
            done.add(letter.message_id)
            if handle(letter, delivery.message):
                delivery.ack()
                removed += 1
    return removed


def original_message(message: Message) -> Message:
    """Return the dead-lettered message as it first arrived: the error headers removed."""
    headers = {k: v for k, v in message.headers.items() if k not in ERROR_HEADERS}
    return message.replace(headers=headers)


def retry(project: Project, replayer: Replayer, route_id: str, ids: set[str] | None) -> list[Outcome]:
    """Re-publish the selected dead letters to the route's source (journaled as replays); remove them.

    A process group's dead letters go to the endpoint they were read on (``process:crm.orders``:
    ``crm.orders``), journaled as replays on the group; ConfigError when that endpoint cannot be
    published to from here.
    """
    target: str | None = None
    if is_process_group(route_id):
        target = replayer.check_endpoint(inlet_endpoint(project, route_id))
    else:
        replayer.check_route(route_id)
    results: list[Outcome] = []

    def handle(letter: DeadLetter, message: Message) -> bool:
        outcome = replayer.replay_message(route_id, original_message(message), endpoint=target)
        results.append(outcome)
        # run in this process and dead-lettered again: the new dead letter replaces this one
        return outcome.status == "sent" or outcome.dead_lettered_again

    process(project, route_id, ids, handle)
    return results


def await_outcomes(
    journal: Journal,
    route_id: str,
    results: list[Outcome],
    timeout: float,
    *,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, str | None]:
    """Follow the journal until every re-published message of ``results`` ended on ``route_id`` or
    ``timeout`` seconds passed; return ``{message id: final state, or None while still in flight}``.

    A message run in this process has ended already; one published to the route's source ends when the
    running hub has processed it (delivered, filtered or dead-lettered again).
    """
    ends: dict[str, str | None] = {}
    waiting = {}
    for result in results:
        if result.status != "sent" or result.sent_as is None:
            continue
        waiting[result.sent_as] = result.message_id
        ends[result.message_id] = None
    deadline = clock() + timeout
    while waiting:
        for sent_as, message_id in list(waiting.items()):
            state = journal.outcome(route_id, sent_as)
            if state is not None:
                ends[message_id] = state
                del waiting[sent_as]
        if not waiting or clock() >= deadline:
            break
        sleep(min(0.25, max(0.0, deadline - clock())))
    return ends


def archive_path(project: Project, route_id: str) -> Path:
    """Return a new archive file for a purge of ``route_id`` under ``{data_dir}/dlq-archive/``."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    name = route_id.replace(":", "-")  # process:crm.orders
    return project.settings.data_dir / "dlq-archive" / f"{name}-{stamp}.jsonl"


def purge(
    project: Project, route_id: str, ids: set[str] | None, journal: Journal | None = None
) -> tuple[int, Path | None]:
    """Remove the selected dead letters, each first appended to an archive file (JSON lines) and synced.

    Each line holds the message id, headers (with the error) and the body in base64. With a ``journal``,
    each removal is journaled as ``purged`` (detail: the archive file, the operator) after the archive
    is on disk and before the message leaves the endpoint; a journal that cannot be written leaves the
    message where it was (archived already: the next purge archives it again). Returns how many were
    removed and the archive file (None when nothing was).
    """
    path = archive_path(project, route_id)
    make_folder(path.parent)
    with open_file(path, "append") as out:

        def handle(letter: DeadLetter, message: Message) -> bool:
            record = {
                "message_id": letter.message_id,
                "route": route_id,
                "headers": letter.headers,
                "body_base64": base64.b64encode(letter.body).decode("ascii"),
                "archived_at": datetime.now(UTC).isoformat(),
            }
            out.write(orjson.dumps(record, default=str) + b"\n")
            out.flush()
            os.fsync(out.fileno())
            if journal is None:
                return True
            return _journal_purge(journal, route_id, original_message(message), path)

        removed = process(project, route_id, ids, handle)
    if not removed:
        path.unlink(missing_ok=True)
        return 0, None
    return removed, path


def _journal_purge(journal: Journal, route_id: str, message: Message, path: Path) -> bool:
    """Journal ``purged`` for one dead letter; False (keep it on the endpoint) when the journal fails."""
    from esb.runtime.control import who  # here: route control brings SQLAlchemy, which dlq list avoids

    try:
        journal.event(route_id, message, "purged", detail={"archive": str(path), "by": who()})
    except TransportError:
        return False
    return True


def read_archive(path: Path) -> list[tuple[dict[str, Any], bytes]]:
    """Return the (headers, body) of every message in an archive file."""
    out = []
    for line in path.read_bytes().splitlines():
        if line.strip():
            record = orjson.loads(line)
            out.append((record["headers"], base64.b64decode(record["body_base64"])))
    return out
