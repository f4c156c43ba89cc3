"""Minute arithmetic of the per-minute route figures (``route_minutes``): importable without SQLAlchemy."""

from __future__ import annotations

from datetime import datetime, timedelta

MINUTE = timedelta(minutes=1)


def minute_of(at: datetime) -> datetime:
    """Return the minute ``at`` falls in."""
    return at.replace(second=0, microsecond=0)


def whole_minutes_from(since: datetime) -> datetime:
    """Return the first minute wholly at or after ``since``: ``since`` itself on a minute's start, else the
    next minute (the events of ``[since, whole_minutes_from(since))`` are not a whole minute's figures)."""
    start = minute_of(since)
    return start if start == since else start + MINUTE
