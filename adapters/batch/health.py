"""``esb health`` for batch endpoints: the remote folder can be reached, and the endpoint's jobs.

- SFTP: connect, verify the host key against ``known_hosts`` (unknown or changed: down, never added),
  authenticate, list the folder.
- FTP/FTPS: connect (FTPS: certificate and host name verified), log in, list the folder.
- local: the folder exists and this process may write into it; a missing one is ok when it can be
  created (the hub creates its local folders when the endpoint connects); nothing is created here.

Then the endpoint's folders are listed (inbox, ``done/``, ``error/``, ``reply/`` of an inbound endpoint;
the upload folder of an outbound one): an entry that is not a plain file (a symbolic link, a fifo, a
folder other than the endpoint's own) makes the endpoint ``degraded``, each named in the detail; the hub
refuses such entries and never follows them, and an operator should remove them.

Nothing is downloaded, moved or written. :func:`endpoint_jobs` gives each scheduled job (``poll``,
``flush``, ``retry``) with its schedule, last run (from :mod:`adapters.batch.jobruns`) and next run.
"""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from adapters.batch.acks import late_acks, miscounted_acks
from adapters.batch.config import BatchEndpoint, ScheduleConfig
from adapters.batch.errors import HostKeyError
from adapters.batch.jobruns import RETRY_INTERVAL as RETRY_EVERY
from adapters.batch.jobruns import read_runs
from adapters.batch.remote import Remote, make_remote, plain_files
from esb.config.cron import next_fire_time
from esb.context import AdapterContext
from esb.exceptions import TransportError

OK, DEGRADED, DOWN = "ok", "degraded", "down"


def endpoint_health(endpoint: BatchEndpoint, context: AdapterContext) -> tuple[str, str]:
    """Return ``(status, detail)`` for the endpoint's remote folder and what it holds, and (``outbound.ack``)
    the sent files whose ack is overdue: ``degraded``, each named."""
    status, detail = folder_health(endpoint, context)
    ack = endpoint.outbound.ack if endpoint.outbound is not None else None
    if ack is None:
        return status, detail
    findings = []
    late = late_acks(endpoint, context)
    if late:
        names = ", ".join(f.name for f in late[:10]) + (
            f" and {len(late) - 10} more" if len(late) > 10 else ""
        )
        findings.append(
            f"{len(late)} sent file(s) without their ack ({ack.name}, picked up by {ack.endpoint}) after "
            f"{ack.within / 3600:g} h: {names}"
        )
    miscounted = miscounted_acks(endpoint, context)
    if miscounted:
        findings.append(
            f"{len(miscounted)} ack(s) counting other than what was sent: {', '.join(miscounted[:10])}"
        )
    if not findings:
        return status, detail
    return (DOWN if status == DOWN else DEGRADED), "; ".join([detail, *findings])


def folder_health(endpoint: BatchEndpoint, context: AdapterContext) -> tuple[str, str]:
    """Return ``(status, detail)`` for the endpoint's remote folder and what it holds."""
    cfg = endpoint.remote
    if cfg.protocol == "local":
        status, detail = local_health(Path(cfg.path), context.project_dir)
        path = Path(cfg.path) if Path(cfg.path).is_absolute() else context.project_dir / cfg.path
        if status != OK or not path.is_dir():
            return status, detail
    remote = make_remote(cfg, context.project_dir)
    started = time.monotonic()
    try:
        remote.connect()
        entries = remote.list()
        odd = unexpected_entries(endpoint, remote)
    except HostKeyError as exc:
        return DOWN, f"{cfg.display()}: {exc}"
    except TransportError as exc:
        return DOWN, f"{cfg.display()}: {exc}"
    finally:
        remote.close()
    took = round((time.monotonic() - started) * 1000)
    if odd:
        shown = ", ".join(odd[:10]) + (f" and {len(odd) - 10} more" if len(odd) > 10 else "")
        return DEGRADED, (
            f"{cfg.display()}: {len(odd)} unexpected entr{'y' if len(odd) == 1 else 'ies'} refused "
            f"(never followed; remove them): {shown}"
        )
    if cfg.protocol == "local":
        return OK, detail
    checked = {"sftp": "host key verified, logged in", "ftps": "certificate verified, logged in"}
    return OK, (
        f"{cfg.display()}: {checked.get(cfg.protocol, 'logged in')}, "
        f"{len(plain_files(entries))} file(s) listed in {took} ms"
    )


def unexpected_entries(endpoint: BatchEndpoint, remote: Remote) -> list[str]:
    """Return ``folder/name (kind)`` for each entry of the endpoint's folders that is not a plain file
    (the inbox's own ``done``/``error``/``reply`` folders apart); a missing subfolder is not a finding."""
    inbound = endpoint.inbound
    folders = [""]
    if inbound is not None:
        folders += [inbound.done_dir, inbound.error_dir] + (
            [inbound.reply.dir] if inbound.reply.enabled else []
        )
    own = {f.split("/", 1)[0] for f in folders if f}
    found = []
    for folder in folders:
        try:
            entries = remote.list(folder)
        except TransportError:
            if not folder:
                raise
            continue  # not created yet (the hub creates it when it connects), or refused: shown below
        for entry in entries:
            if entry.kind == "file" or (not folder and entry.kind == "folder" and entry.name in own):
                continue
            found.append(f"{folder + '/' if folder else ''}{entry.name!r} ({entry.kind})")
    return found


def local_health(folder: Path, project_dir: Path) -> tuple[str, str]:
    """The local exchange folder exists and is writable (it is not created here)."""
    path = folder if folder.is_absolute() else project_dir / folder
    if path.exists() and not path.is_dir():
        return DOWN, f"local:{path}: is not a folder"
    if not path.is_dir():
        parent = next((p for p in path.parents if p.exists()), None)
        if parent is not None and parent.is_dir() and os.access(parent, os.W_OK | os.X_OK):
            return OK, f"local:{path}: not there yet; the hub creates it when the endpoint connects"
        return DOWN, f"local:{path}: no such folder, and it cannot be created ({parent} is not writable)"
    if not os.access(path, os.W_OK | os.X_OK):
        return DOWN, f"local:{path}: not writable by this user"
    return OK, f"local:{path}: exists and is writable"


def describe(schedule: ScheduleConfig) -> str:
    """Return a schedule for people (``every 30s``, ``cron '0 2 * * *' Asia/Shanghai``)."""
    if schedule.cron is not None:
        return f"cron '{schedule.cron}' {schedule.timezone}"
    return f"every {schedule.interval:g}s"


def next_from_config(schedule: ScheduleConfig, now: datetime) -> datetime | None:
    """Return the next cron fire time after ``now`` (None for an interval: it depends on the last run)."""
    if schedule.cron is None:
        return None
    zone = ZoneInfo(schedule.timezone)
    return next_fire_time(schedule.cron, zone, now.astimezone(zone))  # apscheduler only if not plain


def _parse(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


def endpoint_jobs(
    endpoint: BatchEndpoint, context: AdapterContext, now: datetime | None = None
) -> list[dict[str, Any]]:
    """Return the endpoint's scheduled jobs: ``job``, ``schedule``, ``last_run``, ``outcome``, ``next_run``.

    ``next_run`` is the cron's next fire time, else the one the scheduler recorded after the last run
    (an interval), else None (not run yet). Times are aware UTC datetimes.
    """
    now = now or datetime.now(UTC)
    settings = context.settings.resolve_paths(context.project_dir)
    runs = read_runs(Path(settings.data_dir) / "batch" / context.endpoint / "state.db")
    schedules: dict[str, tuple[str, ScheduleConfig | None]] = {}
    if endpoint.inbound is not None:
        schedules["poll"] = (describe(endpoint.inbound.poll), endpoint.inbound.poll)
    if endpoint.outbound is not None:
        if endpoint.outbound.schedule is not None:
            schedules["flush"] = (describe(endpoint.outbound.schedule), endpoint.outbound.schedule)
        schedules["retry"] = (f"every {RETRY_EVERY:g}s (pending uploads)", None)
    jobs = []
    for job, (text, schedule) in schedules.items():
        run = runs.get(job, {})
        recorded = _parse(run.get("next_run"))
        next_run = next_from_config(schedule, now) if schedule is not None else None
        overdue = False
        if next_run is None and recorded is not None:
            next_run = recorded
            every = schedule.interval if schedule is not None and schedule.interval else RETRY_EVERY
            overdue = recorded + timedelta(seconds=max(60.0, 2 * every)) < now
        jobs.append(
            {
                "job": job,
                "schedule": text,
                "last_run": _parse(run.get("last_run")),
                "outcome": run.get("outcome"),
                "error": run.get("error"),
                "runs": run.get("runs", 0),
                "next_run": next_run,
                "overdue": overdue,
            }
        )
    return jobs
