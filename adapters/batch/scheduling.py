"""apscheduler 3.11 jobs for polling and flushing: late runs still run, overlapping runs never happen.

Every process that starts a scheduler runs every job, so a scheduled batch endpoint first joins an
election (``esb.runtime.leader``: a PostgreSQL advisory lock when the journal is on PostgreSQL, a file
lock under ``data_dir`` otherwise) named ``batch:<system.endpoint>``; its jobs run, and its source hands
out records, only in the process that leads. Another process takes over within the election's interval
when the leader dies.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from adapters.batch.config import ScheduleConfig
from esb.context import AdapterContext

#: How long ``connect`` waits for the first election result, so that a lone process polls at once.
FIRST_ELECTION_WAIT = 2.0


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


def join_election(context: AdapterContext) -> Any:
    """Start this process's candidacy to lead endpoint ``context.endpoint``; return the election.

    Waits up to FIRST_ELECTION_WAIT seconds for the first result (a lone process leads at once).
    """
    return context.services.elect(f"batch:{context.endpoint}", wait=FIRST_ELECTION_WAIT)


def when_leader(election: Any, job: Callable[[], None]) -> Callable[[], None]:
    """``job``, run only while this process leads (always when there is no election)."""

    def run() -> None:
        if election is None or election.is_leader:
            job()

    return run
