"""The routes page's figures: rate, errors and latency percentiles per route, and their charts as SVG."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.engine import Engine

from esb.exceptions import EsbError
from esb.journal.rollup import minute_of
from esb.ops import dlq, stats
from esb.project import Project

#: The window of the live figures (the routes page and /api/figures): what a route does now.
WINDOW = timedelta(minutes=5)
#: The window of a route's rate chart, and its buckets (the minutes of the per-minute figures).
CHART_WINDOW = timedelta(minutes=15)
STEP = timedelta(minutes=1)
BUCKETS = 15


@dataclass
class RouteFigures:
    """One route's figures over the window (from ``esb.ops.stats``) and its dead letters waiting."""

    route: str
    enabled: bool
    stats: stats.RouteStats
    waiting: int | None

    def as_dict(self) -> dict[str, Any]:
        """Return the figures for the JSON endpoint."""
        s = self.stats
        return {"route": self.route, "received": s.received, "delivered": s.delivered,
                "filtered": s.filtered, "dead_lettered": s.dead_lettered, "retries": s.redelivered,
                "rate": s.throughput_per_s, "error_rate": s.error_rate, "latency_ms": s.latency_ms,
                "waiting": self.waiting}


def route_figures(
    project: Project, url: str, engine: Engine | None = None, now: datetime | None = None
) -> list[RouteFigures]:
    """Return every route's figures over the last :data:`WINDOW` (from the start of its first minute: one
    read of the per-minute figures)."""
    until = now or datetime.now(UTC)
    found = {s.route: s for s in stats.compute(url, until - WINDOW, until,
                                                 routes=[r.id for r in project.routes], engine=engine)}
    return [RouteFigures(r.id, r.enabled, found.get(r.id) or stats.RouteStats(r.id),
                         _waiting(project, r.id) if r.on_error.dead_letter else None) for r in project.routes]


class FiguresCache:
    """The last figures, reused for ``ttl`` seconds by every page and browser asking.

    Computing them reads the routes' per-minute figures of the window (``esb.ops.stats``: routes x
    minutes rows, whatever the traffic); ten operators polling every 5 s cost one computation per
    ``ttl``, not ten.
    """

    def __init__(self, ttl: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl, self.clock = ttl, clock
        self._lock = threading.Lock()
        self._kept: tuple[Project, float, list[RouteFigures]] | None = None

    def get(self, project: Project, url: str, engine: Engine | None = None) -> list[RouteFigures]:
        """Return the figures of ``project``: the kept ones while fresh, else computed now."""
        with self._lock:
            kept = self._kept
            if kept is not None and kept[0] is project and self.clock() - kept[1] < self.ttl:
                return kept[2]
        figures = route_figures(project, url, engine)
        with self._lock:
            self._kept = (project, self.clock(), figures)
        return figures


def _waiting(project: Project, route_id: str) -> int | None:
    try:
        return dlq.waiting(project, route_id)
    except EsbError:
        return None


def rate_series(
    url: str, route_id: str, engine: Engine | None = None, now: datetime | None = None
) -> list[tuple[datetime, int, int]]:
    """Return (minute, messages finished, dead-lettered) per minute of the window for one route (the
    current minute last): one read of the route's per-minute figures."""
    until = now or datetime.now(UTC)
    first = minute_of(until) - CHART_WINDOW + STEP
    found = stats.per_minute(url, route_id, first, until, engine=engine)
    series = []
    for index in range(BUCKETS):
        start = first + STEP * index
        s = found.get(start) or stats.RouteStats(route_id)
        series.append((start, s.finished, s.dead_lettered))
    return series


def bars(values: list[tuple[str, float, float]], width: int = 300, height: int = 60) -> dict[str, Any]:
    """Return the geometry of a bar chart of (label, total, errors): bars scaled to the highest total.

    The template draws it as inline SVG (no script, no library): each bar a ``rect``, errors in red.
    """
    top = max((v[1] for v in values), default=0.0) or 1.0
    slot = width / max(len(values), 1)
    rects = []
    for index, (label, total, errors) in enumerate(values):
        h = height * total / top
        e = height * errors / top
        rects.append({"x": round(index * slot + 1, 1), "w": round(max(slot - 2, 1), 1),
                      "y": round(height - h, 1), "h": round(h, 1), "ey": round(height - e, 1),
                      "eh": round(e, 1), "label": label, "total": total, "errors": errors})
    return {"width": width, "height": height, "rects": rects, "top": top}
