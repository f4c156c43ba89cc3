"""``esb stats``: throughput, latency percentiles and error rates per route over a time window.

Read from the journal's events: a message's latency is from its ingress (``received``, or the latest
``replayed``) to the route-level final event (``delivered``, ``filtered``, ``dead_lettered``) on the
same route. Messages that entered before the window have no start in it and add no latency figure.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from esb.journal.engine import DatabaseErrors, create_journal_engine
from esb.journal.schema import events
from esb.ops.common import table

PERCENTILES = (50, 90, 99)


@dataclass
class RouteStats:
    """The figures of one route over the window."""

    route: str
    received: int = 0
    delivered: int = 0
    filtered: int = 0
    dead_lettered: int = 0
    redelivered: int = 0
    replayed: int = 0
    throughput_per_s: float = 0.0
    error_rate: float = 0.0
    latency_ms: dict[str, float] = field(default_factory=dict)
    errors_by_reason: dict[str, int] = field(default_factory=dict)

    @property
    def finished(self) -> int:
        """Messages that reached a final state in the window."""
        return self.delivered + self.filtered + self.dead_lettered


def percentile(sorted_values: list[float], pct: float) -> float:
    """Return the ``pct`` percentile of ``sorted_values`` (nearest rank; 0 for an empty list)."""
    if not sorted_values:
        return 0.0
    rank = max(1, -(-len(sorted_values) * pct // 100))  # ceil
    return sorted_values[int(min(rank, len(sorted_values))) - 1]


def _is_route_final(state: str, endpoint: str | None) -> bool:
    return state in ("filtered", "dead_lettered") or (state == "delivered" and endpoint is None)


def compute(
    url: str,
    since: datetime,
    until: datetime,
    route: str | None = None,
    *,
    routes: Sequence[str] | None = None,
    engine: Engine | None = None,
) -> list[RouteStats]:
    """Return the statistics of every route with events in ``[since, until)`` (one route if named, or
    those of ``routes``: one query that the (route, at) index serves).

    ``engine`` is a journal engine to use (a caller asking often, such as the console, keeps one);
    without it one is made for this call.
    """
    stmt = sa.select(events.c.route, events.c.message_seq, events.c.state, events.c.endpoint,
                     events.c.error_reason, events.c.at).where(events.c.at >= since, events.c.at < until)
    if route is not None:
        stmt = stmt.where(events.c.route == route)
    if routes is not None:
        stmt = stmt.where(events.c.route.in_(list(routes)))
    stmt = stmt.order_by(events.c.id)
    own = engine is None
    engine = engine or create_journal_engine(url, pool_size=1)
    stats: dict[str, RouteStats] = {}
    started: dict[tuple[str, int], datetime] = {}
    latencies: dict[str, list[float]] = {}
    try:
        with DatabaseErrors(url)("stats"), engine.connect() as conn:
            rows = conn.execute(stmt.execution_options(yield_per=2000))
            for name, seq, state, endpoint, reason, at in rows:
                s = stats.setdefault(name, RouteStats(name))
                if state in ("received", "replayed"):
                    started[(name, seq)] = at
                    s.received += state == "received"
                    s.replayed += state == "replayed"
                elif state == "redelivered":
                    s.redelivered += 1
                if reason and state in ("redelivered", "dead_lettered", "failed"):
                    s.errors_by_reason[reason] = s.errors_by_reason.get(reason, 0) + 1
                if not _is_route_final(state, endpoint):
                    continue
                setattr(s, state, getattr(s, state) + 1)
                start = started.pop((name, seq), None)
                if start is not None:
                    latencies.setdefault(name, []).append((at - start).total_seconds() * 1000)
    finally:
        if own:
            engine.dispose()
    seconds = max((until - since).total_seconds(), 1e-9)
    for name, s in stats.items():
        s.throughput_per_s = round(s.finished / seconds, 3)
        s.error_rate = round(s.dead_lettered / s.finished, 4) if s.finished else 0.0
        values = sorted(latencies.get(name, []))
        if values:
            s.latency_ms = {f"p{p}": round(percentile(values, p), 1) for p in PERCENTILES}
            s.latency_ms["max"] = round(values[-1], 1)
            s.latency_ms["count"] = len(values)
    return sorted(stats.values(), key=lambda s: s.route)


def window(since: datetime | None, until: datetime | None) -> tuple[datetime, datetime]:
    """Return the window, by default the last hour."""
    until = until or datetime.now(UTC)
    return since or until - timedelta(hours=1), until


def as_dicts(results: list[RouteStats]) -> list[dict[str, Any]]:
    """Return the statistics for ``--json``."""
    return [{**asdict(s), "finished": s.finished} for s in results]


def render(results: list[RouteStats], since: datetime, until: datetime) -> str:
    """Return a table: one line per route."""
    head = f"from {since.isoformat(timespec='seconds')} to {until.isoformat(timespec='seconds')}"
    if not results:
        return f"{head}: no messages"
    rows = [[s.route, s.received, s.delivered, s.filtered, s.dead_lettered, s.redelivered,
             f"{s.throughput_per_s:g}", f"{s.error_rate * 100:.1f}%",
             *(f"{s.latency_ms[f'p{p}']:.0f}" if s.latency_ms else "-" for p in PERCENTILES),
             f"{s.latency_ms['max']:.0f}" if s.latency_ms else "-"] for s in results]
    headers = ["ROUTE", "IN", "DELIVERED", "FILTERED", "DEAD", "RETRIES", "MSG/S", "ERRORS",
               "P50 MS", "P90 MS", "P99 MS", "MAX MS"]
    return head + "\n" + table(headers, rows)
