"""``esb stats --exact``: the figures of :mod:`esb.ops.stats` computed by reading every event of the window.

Its cost grows with the events in the window (~8 µs each), which the per-minute figures
(``route_minutes``) spare the console and ``esb stats``; it stays for a user who needs the exact latency
percentiles and the window to the second. A message's latency is from its ingress (``received``, or the
latest ``replayed``) to the route-level final event on the same route; messages that entered before the
window have no start in it and add no latency figure.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from esb.journal.engine import DatabaseErrors, create_journal_engine
from esb.journal.rollup import is_ending
from esb.journal.schema import events
from esb.ops.stats import PERCENTILES, RouteStats, finish, percentile


def compute_exact(
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
                if not is_ending(state, endpoint):
                    continue
                setattr(s, state, getattr(s, state) + 1)
                start = started.pop((name, seq), None)
                if start is not None:
                    latencies.setdefault(name, []).append((at - start).total_seconds() * 1000)
    finally:
        if own:
            engine.dispose()
    for name, s in stats.items():
        finish(s, since, until)
        values = sorted(latencies.get(name, []))
        if values:
            s.latency_ms = {f"p{p}": round(percentile(values, p), 1) for p in PERCENTILES}
            s.latency_ms["max"] = round(values[-1], 1)
            s.latency_ms["count"] = len(values)
    return sorted(stats.values(), key=lambda s: s.route)
