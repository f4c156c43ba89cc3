"""apscheduler 3.11 jobs for polling and flushing: late runs still run, overlapping runs never happen.

Every process that starts a scheduler runs every job: in a cluster, run batch endpoints on one leader.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from adapters.batch.config import ScheduleConfig


def start_scheduler(schedule: ScheduleConfig, job: Callable[[], None], name: str, *, run_now: bool) -> Any:
    """Start a BackgroundScheduler running ``job`` on ``schedule``; return it (``shutdown()`` to stop)."""
    from apscheduler.schedulers.background import BackgroundScheduler
    from apscheduler.triggers.cron import CronTrigger
    from apscheduler.triggers.interval import IntervalTrigger

    zone = ZoneInfo(schedule.timezone)
    trigger: Any
    if schedule.cron is not None:
        trigger = CronTrigger.from_crontab(schedule.cron, timezone=zone)
    else:
        assert schedule.interval is not None
        trigger = IntervalTrigger(seconds=schedule.interval, timezone=zone)
    scheduler = BackgroundScheduler(timezone=zone, daemon=True)
    extra: dict[str, Any] = {"next_run_time": datetime.now(zone)} if run_now else {}
    scheduler.add_job(
        job,
        trigger,
        id=name,
        name=name,
        misfire_grace_time=int(schedule.misfire_grace_time) or None,
        coalesce=True,
        max_instances=1,
        **extra,
    )
    scheduler.start()
    return scheduler


def run_soon(scheduler: Any, name: str) -> None:
    """Ask the scheduler to run job ``name`` now (coalesced with a run already due)."""
    job = scheduler.get_job(name) if scheduler is not None else None
    if job is not None:
        job.modify(next_run_time=datetime.now(scheduler.timezone))
