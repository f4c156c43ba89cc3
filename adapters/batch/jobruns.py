"""When each scheduled batch job last ran, for ``esb health`` (which runs in another process).

The table ``batch_job_runs`` lives in the endpoint's state database (``data_dir/batch/<endpoint>/
state.db``, shared by the processes of a cluster like the rest of the endpoint's state), one row per job
(``poll``, ``flush``, ``retry``)::

    job        TEXT PRIMARY KEY   poll | flush | retry (the first word of the apscheduler job id)
    last_run   TEXT               when the run ended (ISO 8601, UTC)
    scheduled  TEXT               when that run was due (ISO 8601, UTC)
    outcome    TEXT               ok | error (the job raised) | missed (too late: misfire_grace_time)
    error      TEXT               the exception's text when outcome is error
    next_run   TEXT               the scheduler's next run time after this one (ISO 8601, UTC)
    runs       INTEGER            runs recorded so far
    pid        INTEGER            the process that ran it

It is written by an apscheduler listener (:func:`record_runs`) that the scheduling side attaches to each
scheduler it starts; only the process that leads the endpoint records (a follower's job fires but does
nothing). The jobs catch and log their own transport errors (the next run retries), so ``ok`` means the
run happened, not that the peer answered: the endpoint's own health line says that.
"""

from __future__ import annotations

import os
import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from esb import files

TABLE = "batch_job_runs"
#: Seconds between two runs of an outbound endpoint's ``retry`` job (pending uploads), which
#: ``esb health`` shows beside the job: here so that it need not import the sink.
RETRY_INTERVAL = 60.0
_CREATE = (
    "CREATE TABLE IF NOT EXISTS batch_job_runs (job TEXT PRIMARY KEY, last_run TEXT, scheduled TEXT, "
    "outcome TEXT, error TEXT, next_run TEXT, runs INTEGER NOT NULL DEFAULT 0, pid INTEGER)"
)
_UPSERT = (
    "INSERT INTO batch_job_runs (job, last_run, scheduled, outcome, error, next_run, runs, pid) "
    "VALUES (:job, :last_run, :scheduled, :outcome, :error, :next_run, 1, :pid) "
    "ON CONFLICT(job) DO UPDATE SET last_run=excluded.last_run, scheduled=excluded.scheduled, "
    "outcome=excluded.outcome, error=excluded.error, next_run=excluded.next_run, runs=runs+1, "
    "pid=excluded.pid"
)
_SELECT = "SELECT * FROM batch_job_runs"


def _iso(when: datetime | None) -> str | None:
    return None if when is None else when.astimezone(UTC).isoformat(timespec="seconds")


def write_run(
    state_db: Path,
    job: str,
    *,
    outcome: str,
    scheduled: datetime | None = None,
    next_run: datetime | None = None,
    error: str | None = None,
) -> None:
    """Record one run of ``job`` in ``state_db`` (created if needed)."""
    row = {
        "job": job,
        "last_run": _iso(datetime.now(UTC)),
        "scheduled": _iso(scheduled),
        "outcome": outcome,
        "error": error,
        "next_run": _iso(next_run),
        "pid": os.getpid(),
    }
    files.create_private(state_db)  # a data file: 0600, never through a link
    conn = sqlite3.connect(state_db, timeout=10)
    try:
        with conn:
            conn.execute(_CREATE)
            conn.execute(_UPSERT, row)
    finally:
        conn.close()


def read_runs(state_db: Path) -> dict[str, dict[str, Any]]:
    """Return ``{job: row}`` from ``state_db``; empty when the database or the table does not exist."""
    if not state_db.is_file():
        return {}
    conn = sqlite3.connect(f"file:{state_db}?mode=ro", uri=True, timeout=10)
    conn.row_factory = sqlite3.Row
    try:
        rows = conn.execute(_SELECT).fetchall()
    except sqlite3.OperationalError:  # no such table: nothing ran since the table was introduced
        return {}
    finally:
        conn.close()
    return {str(r["job"]): dict(r) for r in rows}


def record_runs(scheduler: Any, state_db: Path, election: Any = None) -> None:
    """Attach a listener to ``scheduler`` that records each run of its jobs in ``state_db``.

    Only while this process leads ``election`` (always without one). Never raises into the scheduler,
    and never takes the scheduler's locks: ``shutdown(wait=True)`` holds them while it waits for the
    running job, whose listener runs in the job's thread. The next run is computed from the job's
    trigger, captured here (jobs are added before the scheduler is handed over).
    """
    from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_EXECUTED, EVENT_JOB_MISSED

    from esb.logging import get_logger  # here: esb health reads the runs without the logger

    log = get_logger("batch")
    triggers = {job.id: job.trigger for job in scheduler.get_jobs()}

    def listener(event: Any) -> None:
        if election is not None and not election.is_leader:
            return
        outcome = {EVENT_JOB_ERROR: "error", EVENT_JOB_MISSED: "missed"}.get(event.code, "ok")
        error = str(event.exception) if getattr(event, "exception", None) is not None else None
        trigger = triggers.get(event.job_id)
        try:
            upcoming = (
                None
                if trigger is None
                else trigger.get_next_fire_time(
                    event.scheduled_run_time, datetime.now(event.scheduled_run_time.tzinfo or UTC)
                )
            )
            write_run(
                state_db,
                str(event.job_id).split(" ", 1)[0],
                outcome=outcome,
                scheduled=event.scheduled_run_time,
                next_run=upcoming,
                error=error,
            )
        except (sqlite3.Error, OSError, ValueError) as exc:
            log.warning("batch job run not recorded", job=event.job_id, error=str(exc))

    scheduler.add_listener(listener, EVENT_JOB_EXECUTED | EVENT_JOB_ERROR | EVENT_JOB_MISSED)
