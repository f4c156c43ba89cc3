"""The scheduled full files: each route's ``full_file`` (a directory's weekly file) written on its cron.

Every process that starts a scheduler runs every job, so each route's job joins the leader election
``full-file:<route>`` (``esb/runtime/leader.py``: a PostgreSQL advisory lock, or a file lock in data_dir)
and only the leader writes the file; another process takes over when it dies. The scheduler coalesces
missed runs and gives a late run an hour (apscheduler 3.11's default of one second would drop it). The
file itself is :func:`esb.ops.full_file.write_full_file`, as ``esb full-file`` writes it on demand.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from esb.logging import get_logger

if TYPE_CHECKING:
    from esb.ops.full_file import FullFile
    from esb.project import Project

#: a run that could not start on time still runs within this many seconds
MISFIRE_GRACE = 3600


class FullFileScheduler:
    """Runs the ``full_file`` of the given routes on their cron, in the process that leads each."""

    def __init__(self, project: Project, route_ids: list[str]) -> None:
        self.project = project
        self.routes = [r for r in project.routes if r.id in route_ids and r.full_file is not None]
        self.elections: dict[str, Any] = {}
        self.scheduler: Any = None
        self.log = get_logger("full-file")

    @property
    def enabled(self) -> bool:
        """True when one of the routes has a full file."""
        return bool(self.routes)

    def start(self) -> None:
        """Join each route's election and schedule its job."""
        from apscheduler.schedulers.background import BackgroundScheduler
        from apscheduler.triggers.cron import CronTrigger

        from esb.services import HubServices

        services = HubServices(self.project.settings, self.project.root)
        self.scheduler = BackgroundScheduler(daemon=True)
        for route in self.routes:
            spec = route.full_file
            assert spec is not None
            self.elections[route.id] = services.elect(f"full-file:{route.id}")
            trigger = CronTrigger.from_crontab(spec.cron, timezone=ZoneInfo(spec.timezone))
            self.scheduler.add_job(
                self.run, trigger, args=[route.id], id=f"full-file:{route.id}",
                coalesce=True, max_instances=1, misfire_grace_time=MISFIRE_GRACE,
            )  # fmt: skip
        self.scheduler.start()

    def next_runs(self) -> dict[str, str]:
        """Route id -> the next run time (ISO), for logs and tests."""
        if self.scheduler is None:
            return {}
        jobs = {job.id: job for job in self.scheduler.get_jobs()}
        return {
            route.id: jobs[f"full-file:{route.id}"].next_run_time.isoformat()
            for route in self.routes
            if jobs.get(f"full-file:{route.id}") is not None and jobs[f"full-file:{route.id}"].next_run_time
        }

    def run(self, route_id: str) -> FullFile | None:
        """Write ``route_id``'s full file if this process leads its election (None when it does not)."""
        from esb.ops.full_file import write_full_file
        from esb.sync import SyncStore

        election = self.elections.get(route_id)
        if election is not None and not election.is_leader:
            self.log.info("full file left to the leader", route=route_id)
            return None
        route = self.project.route(route_id)
        assert route.full_file is not None
        try:
            with SyncStore(self.project.settings.journal.url) as store:
                result = write_full_file(self.project, route_id, route.full_file.to, store)
        except Exception as exc:  # a scheduled job must not die silently: logged, tried at the next run
            self.log.error("full file failed", route=route_id, error=f"{type(exc).__name__}: {exc}")
            return None
        self.log.info("full file written", route=route_id, file=result.file, records=result.records,
                      excluded=result.excluded, endpoint=result.endpoint)  # fmt: skip
        return result

    def stop(self) -> None:
        """Stop the schedule and give every lock up. Safe to call twice."""
        if self.scheduler is not None:
            self.scheduler.shutdown(wait=False)
            self.scheduler = None
        for election in self.elections.values():
            election.stop()
        self.elections.clear()
