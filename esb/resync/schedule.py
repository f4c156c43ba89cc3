"""Scheduled full resyncs: each ``sync.resync.<name>.schedule`` run by the leading hub process only.

apscheduler runs a job in every process that starts a scheduler (DESIGN.md), so each resync has its own
leader election (``sync-resync:<name>``, esb/runtime/leader.py) and the job does nothing where this
process does not lead. Late runs still run (``misfire_grace_time`` one hour), overlapping runs never
happen (``max_instances=1``, ``coalesce``). A run reads the newest file in the extract endpoint's local
folder; on a remote (SFTP, FTP) folder, the adapter's :class:`~esb.typing.ExtractFetcher` stages the
newest complete file locally and never hands out one whose resync ended. A run that died (the process
was killed) is resumed by the next one over the same file (the same staged copy).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from esb.exceptions import EsbError
from esb.logging import get_logger
from esb.resync.extract import extract_blocks, newest_extract
from esb.runtime.leader import LeaderElection
from esb.typing import ExtractFetcher, FetchedExtract, capability

if TYPE_CHECKING:
    from esb.project import Project

#: Seconds a late scheduled resync may still start (a hub down at 03:00 runs it when back, within this).
MISFIRE_GRACE = 3600


class ResyncScheduler:
    """Runs the project's scheduled resyncs in this process while it leads."""

    def __init__(self, project: Project) -> None:
        self.project = project
        self.log = get_logger("sync")
        self.elections: dict[str, LeaderElection] = {}
        self._scheduler: Any = None

    @property
    def enabled(self) -> bool:
        """True when some resync has a schedule."""
        return any(spec.schedule for spec in self.project.settings.sync.resync.values())

    def start(self) -> None:
        """Start one election per scheduled resync and the scheduler."""
        from apscheduler.schedulers.background import BackgroundScheduler
        from apscheduler.triggers.cron import CronTrigger

        scheduler = BackgroundScheduler(daemon=True)
        for name, spec in sorted(self.project.settings.sync.resync.items()):
            if not spec.schedule:
                continue
            election = LeaderElection(f"sync-resync:{name}", self.project.settings)
            election.start()
            self.elections[name] = election
            scheduler.add_job(
                self.run_if_leader, CronTrigger.from_crontab(spec.schedule), args=[name], id=f"resync:{name}",
                misfire_grace_time=MISFIRE_GRACE, coalesce=True, max_instances=1,
            )  # fmt: skip
        scheduler.start()
        self._scheduler = scheduler

    def run_if_leader(self, name: str) -> None:
        """The job: resync ``name`` from the newest extract, if this process leads."""
        election = self.elections.get(name)
        if election is None or not election.is_leader:
            return
        try:
            self.run(name)
        except (EsbError, OSError) as exc:
            self.log.error("scheduled resync failed", sync=name, error=str(exc))

    def run(self, name: str) -> None:
        """Resync ``name`` now from the newest file of its extract endpoint."""
        from esb.journal import Journal
        from esb.resync.resync import Resync
        from esb.sync.store import SyncStore

        spec = self.project.settings.sync.resync[name]
        fetcher = self._fetcher(spec.extract)
        fetched = self._fetch(fetcher, spec.extract) if fetcher is not None else None
        path = fetched.path if fetched is not None else None
        if fetcher is None:
            path = newest_extract(self.project, spec.extract)
        if path is None:
            self.log.info("scheduled resync: no new extract file", sync=name, endpoint=spec.extract)
            return
        url = self.project.settings.journal.url
        error: str | None = "the resync stopped"
        try:
            with Journal(url, pool_size=2) as journal, SyncStore(url, pool_size=2) as store:
                engine = Resync(self.project, journal, store, name, spec)
                try:
                    run = engine.run(*extract_blocks(self.project, spec.extract, path), str(path.resolve()))
                finally:
                    engine.close()
            error = None if run.status == "done" else (run.error or f"run {run.id} ended {run.status}")
        except (EsbError, OSError) as exc:
            error = str(exc)
            raise
        finally:
            if fetcher is not None and fetched is not None:
                endpoint = self.project.endpoint(spec.extract)
                fetcher.extract_done(endpoint, self.project.context(spec.extract), fetched, error)
        self.log.info("scheduled resync done", sync=name, run=run.id, extract=str(path), **run.counts)

    def _fetcher(self, extract: str) -> ExtractFetcher | None:
        """The extract endpoint's fetcher when its folder is remote (None: a local folder, read in place)."""
        fetcher = capability(self.project.adapter_for(extract), ExtractFetcher)
        if fetcher is None or not fetcher.fetches_extracts(self.project.endpoint(extract)):
            return None
        return fetcher

    def _fetch(self, fetcher: ExtractFetcher, extract: str) -> FetchedExtract | None:
        """The newest complete extract of the remote folder, staged; None when there is no new one."""
        fetched = fetcher.fetch_extract(self.project.endpoint(extract), self.project.context(extract))
        if fetched is not None:
            self.log.info("scheduled resync: extract fetched", endpoint=extract, file=fetched.name)
        return fetched

    def stop(self) -> None:
        """Stop the scheduler (a running resync finishes its chunk and stops at the next) and elections."""
        if self._scheduler is not None:
            self._scheduler.shutdown(wait=False)
            self._scheduler = None
        for election in self.elections.values():
            election.stop()
        self.elections.clear()
