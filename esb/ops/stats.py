"""``esb stats``: throughput, latency percentiles and error rates per route over a time window.

Read from the per-minute figures the journal keeps (``route_minutes``, esb/journal/rollup.py): the cost is
routes x minutes of the window, not its events. A message's latency is from its ingress (``received``, or
the latest ``replayed``) to the route-level final event (``delivered``, ``filtered``, ``dead_lettered``)
on the same route, counted in the minute it ended, in a log-spaced bucket: a percentile is the upper
bound of its bucket (at most 19 % above the exact value). ``esb stats --exact`` reads every event of
the window instead (esb/ops/stats_exact.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.engine import Engine

from esb.journal import rollup
from esb.journal.engine import DatabaseErrors, create_journal_engine
from esb.ops.common import table

PERCENTILES = (50, 90, 99)
#: The counts of :class:`RouteStats` that are ``route_minutes`` figures of the same name.
COUNTED = ("received", "delivered", "filtered", "dead_lettered", "redelivered", "replayed")


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
    #: True when the latencies are upper bounds of buckets (the per-minute figures), False when exact
    latency_bucketed: bool = False

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


def finish(s: RouteStats, since: datetime, until: datetime) -> None:
    """Set the throughput and error rate of ``s`` from its counts over ``[since, until)``."""
    seconds = max((until - since).total_seconds(), 1e-9)
    s.throughput_per_s = round(s.finished / seconds, 3)
    s.error_rate = round(s.dead_lettered / s.finished, 4) if s.finished else 0.0


def bucketed_percentiles(histogram: dict[int, int]) -> dict[str, float]:
    """Return p50/p90/p99, max and count from a latency histogram ``{bucket: count}``: each the upper
    bound of the bucket holding that rank (nearest rank), so a figure is at most 19 % above the exact one."""
    count = sum(histogram.values())
    if not count:
        return {}
    order = sorted(histogram.items())
    found: dict[str, float] = {}
    for p in PERCENTILES:
        rank, seen = max(1, -(-count * p // 100)), 0
        for index, n in order:
            seen += n
            if seen >= rank:
                found[f"p{p}"] = rollup.bucket_upper_ms(index)
                break
    found["max"] = rollup.bucket_upper_ms(order[-1][0])
    found["count"] = count
    return found


def _add(s: RouteStats, figure: str, count: int, histogram: dict[int, int]) -> None:
    """Add one ``route_minutes`` figure to ``s`` (a latency bucket to ``histogram``)."""
    kind, _, name = figure.partition(":")
    if kind == "ms":
        histogram[int(name)] = histogram.get(int(name), 0) + count
    elif kind == "error":
        s.errors_by_reason[name] = s.errors_by_reason.get(name, 0) + count
    elif figure in COUNTED:
        setattr(s, figure, getattr(s, figure) + count)


def from_figures(
    rows: Sequence[tuple[Any, ...]], since: datetime, until: datetime
) -> dict[str, RouteStats]:
    """Return each route's statistics from ``(route, figure, count)`` rows over ``[since, until)``."""
    stats: dict[str, RouteStats] = {}
    histograms: dict[str, dict[int, int]] = {}
    for name, figure, count in rows:
        s = stats.setdefault(name, RouteStats(name, latency_bucketed=True))
        _add(s, figure, int(count), histograms.setdefault(name, {}))
    for name, s in stats.items():
        finish(s, since, until)
        s.latency_ms = bucketed_percentiles(histograms[name])
    return stats


def compute(
    url: str,
    since: datetime,
    until: datetime,
    route: str | None = None,
    *,
    routes: Sequence[str] | None = None,
    engine: Engine | None = None,
) -> list[RouteStats]:
    """Return the statistics of every route with figures in the window (one route if named, or those of
    ``routes``), read from the per-minute figures (``route_minutes``): routes x minutes rows.

    The window is extended back to the start of its first minute (figures are kept per minute), and the
    throughput is over the window so extended. Latency percentiles are bucketed (upper bounds of 19 %
    buckets); a journey counts in the minute it ended, whenever it started. ``engine`` is a journal
    engine to use (a caller asking often, such as the console, keeps one); without it one is made.
    """
    since = rollup.minute_of(since)
    rows = _figures(url, engine, since, until, [route] if route is not None else routes)
    return sorted(from_figures(rows, since, until).values(), key=lambda s: s.route)


def per_minute(
    url: str, route: str, since: datetime, until: datetime, engine: Engine | None = None
) -> dict[datetime, RouteStats]:
    """Return one route's statistics per minute of ``[since, until)`` (minutes without figures absent)."""
    rows = _figures(url, engine, since, until, [route], by_minute=True)
    minutes: dict[datetime, list[tuple[Any, ...]]] = {}
    for minute, *rest in rows:
        minutes.setdefault(minute, []).append(tuple(rest))
    return {
        minute: from_figures(found, minute, minute + timedelta(minutes=1))[route]
        for minute, found in minutes.items()
    }


def _figures(
    url: str,
    engine: Engine | None,
    since: datetime,
    until: datetime,
    routes: Sequence[str] | None,
    *,
    by_minute: bool = False,
) -> list[tuple[Any, ...]]:
    """Return :func:`esb.journal.rollup.read`'s rows, on ``engine`` or one made for this call."""
    own = engine is None
    engine = engine or create_journal_engine(url, pool_size=1)
    try:
        with DatabaseErrors(url)("stats"), engine.connect() as conn:
            return rollup.read(conn, since, until, routes, by_minute=by_minute)
    finally:
        if own:
            engine.dispose()


def window(since: datetime | None, until: datetime | None) -> tuple[datetime, datetime]:
    """Return the window, by default the last hour."""
    until = until or datetime.now(UTC)
    return since or until - timedelta(hours=1), until


def as_dicts(results: list[RouteStats]) -> list[dict[str, Any]]:
    """Return the statistics for ``--json``."""
    return [{**asdict(s), "finished": s.finished} for s in results]


def _ms(s: RouteStats, name: str) -> str:
    """One latency cell: ``-`` without figures, ``<=`` before a bucket's upper bound."""
    if not s.latency_ms:
        return "-"
    value = s.latency_ms[name]
    return ("<=" if s.latency_bucketed else "") + (f"{value:.0f}" if value >= 10 else f"{value:.1f}")


def render(results: list[RouteStats], since: datetime, until: datetime) -> str:
    """Return a table: one line per route."""
    head = f"from {since.isoformat(timespec='seconds')} to {until.isoformat(timespec='seconds')}"
    if not results:
        return f"{head}: no messages"
    rows = [[s.route, s.received, s.delivered, s.filtered, s.dead_lettered, s.redelivered,
             f"{s.throughput_per_s:g}", f"{s.error_rate * 100:.1f}%",
             *(_ms(s, f"p{p}") for p in PERCENTILES), _ms(s, "max")] for s in results]
    headers = ["ROUTE", "IN", "DELIVERED", "FILTERED", "DEAD", "RETRIES", "MSG/S", "ERRORS",
               "P50 MS", "P90 MS", "P99 MS", "MAX MS"]
    return head + "\n" + table(headers, rows)
