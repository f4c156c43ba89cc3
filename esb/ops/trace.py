"""``esb trace KEY``: the path of a message or business key through every route and system, in time order.

KEY is a message id, a correlation id or any business key value (order id, MSISDN, account id);
:meth:`Journal.trace` follows correlation and causation ids to the whole conversation.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from esb.journal.coldread import read_trace
from esb.journal.constants import FINAL_STATES
from esb.journal.records import EventRecord
from esb.ops.common import iso, open_journal, table

if TYPE_CHECKING:
    from esb.config.settings import Settings
    from esb.journal import Journal
    from esb.project import Project

_INGRESS = ("received", "redelivered", "replayed")


@dataclass
class Step:
    """One event of the trace, with where it happened and how long after the first event."""

    at: str
    elapsed_ms: float
    route: str
    message_id: str
    state: str
    system: str
    endpoint: str | None
    error_reason: str | None
    error: str | None
    detail: dict[str, Any] | None


@dataclass
class Journey:
    """One message on one route: its last state and how long it took from ingress to that state."""

    message_id: str
    route: str
    state: str
    took_ms: float | None
    events: int


@dataclass
class Trace:
    """The whole trace: every step in time order and one summary line per message and route."""

    key: str
    steps: list[Step] = field(default_factory=list)
    journeys: list[Journey] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """Return the trace for ``--json``."""
        return asdict(self)


def _system(sources: Mapping[str, str], route_id: str, event: EventRecord) -> str:
    if event.endpoint:
        return event.endpoint.split(".", 1)[0]
    if event.state in _INGRESS and route_id in sources:
        return sources[route_id].split(".", 1)[0]
    return "hub"


def _is_final(event: EventRecord) -> bool:
    return event.state in FINAL_STATES and not (event.state == "delivered" and event.endpoint)


def build_trace(
    journal: Journal,
    key: str,
    project: Project | None = None,
    *,
    sources: Callable[[], Mapping[str, str]] | None = None,
) -> Trace:
    """Return the trace of ``key`` (empty when the journal knows nothing about it).

    An ingress event names the system of its route's source: the routes come from ``project``, or
    from ``sources`` (route id -> source endpoint, asked for only when the journal knows ``key``).
    """
    return assemble(key, journal.trace(key), project, sources=sources)


def trace_journal(settings: Settings, key: str, *, sources: Callable[[], Mapping[str, str]]) -> Trace:
    """Return the trace of ``key`` from the journal of ``settings``: at the head schema read through
    ``sqlite3`` or psycopg (no SQLAlchemy to import: :mod:`esb.journal.coldread`), else through
    :class:`Journal`."""
    events = read_trace(settings.journal.url, key)
    if events is not None:
        return assemble(key, events, sources=sources)
    with open_journal(settings) as journal:
        return build_trace(journal, key, sources=sources)


def assemble(
    key: str,
    events: list[EventRecord],
    project: Project | None = None,
    *,
    sources: Callable[[], Mapping[str, str]] | None = None,
) -> Trace:
    """Return the trace of ``key`` made of its ``events`` (in time order), as :func:`build_trace` says."""
    trace = Trace(key)
    if not events:
        return trace
    if sources is not None:
        by_route = sources()
    else:
        by_route = {} if project is None else {r.id: r.from_ for r in reversed(project.routes)}
    first = events[0].at
    started: dict[tuple[str, str], Any] = {}
    last: dict[tuple[str, str], EventRecord] = {}
    counts: dict[tuple[str, str], int] = {}
    for event in events:
        trace.steps.append(
            Step(
                at=iso(event.at),
                elapsed_ms=round((event.at - first).total_seconds() * 1000, 1),
                route=event.route,
                message_id=event.message_id,
                state=event.state,
                system=_system(by_route, event.route, event),
                endpoint=event.endpoint,
                error_reason=event.error_reason,
                error=event.error_text,
                detail=event.detail,
            )
        )
        ident = (event.message_id, event.route)
        counts[ident] = counts.get(ident, 0) + 1
        if event.state == "replayed" or ident not in started:
            started[ident] = event.at  # a replay starts the clock again
        if not (event.state == "delivered" and event.endpoint):
            last[ident] = event
    for ident, event in last.items():
        took = (event.at - started[ident]).total_seconds() * 1000 if _is_final(event) else None
        trace.journeys.append(
            Journey(ident[0], ident[1], event.state, None if took is None else round(took, 1), counts[ident])
        )
    return trace


def render(trace: Trace) -> str:
    """Return the trace as tables: the steps, then one line per message and route."""
    if not trace.steps:
        return f"nothing in the journal for {trace.key!r}"
    rows = []
    for step in trace.steps:
        note = step.error_reason or ""
        if step.error:
            note = f"{note}: {step.error.splitlines()[0][:80]}" if note else step.error.splitlines()[0][:80]
        elif step.detail:
            note = ", ".join(f"{k}={v}" for k, v in step.detail.items())
        rows.append([step.at, f"+{step.elapsed_ms:.0f}ms", step.route, step.message_id, step.state,
                     step.endpoint or step.system, note])
    out = [table(["TIME", "ELAPSED", "ROUTE", "MESSAGE", "STATE", "SYSTEM/ENDPOINT", "NOTE"], rows), ""]
    summary = [
        [j.message_id, j.route, j.state, "-" if j.took_ms is None else f"{j.took_ms:.0f}ms", j.events]
        for j in trace.journeys
    ]
    out.append(table(["MESSAGE", "ROUTE", "LAST STATE", "TOOK", "EVENTS"], summary))
    return "\n".join(out)
