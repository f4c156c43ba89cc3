"""The hub: opens the journal, starts a worker per route (times its concurrency), stops them cleanly.

While running it also follows operators: routes suspended with ``esb route suspend`` (read every
``runtime.control_interval``), edited project files (SIGHUP, or noticed every ``runtime.watch_interval``:
applied only when they lint clean), and it serves health and metrics on loopback (``monitoring``).
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any

from esb import telemetry
from esb.config.routes import partition_endpoint
from esb.exceptions import ConfigError, EsbError
from esb.files import make_folder, tighten_tree
from esb.journal import Journal
from esb.logging import get_logger
from esb.project import Project
from esb.runtime.control import RouteControl
from esb.runtime.full_files import FullFileScheduler
from esb.runtime.jobs import scheduled_jobs
from esb.runtime.metrics import MeteredJournal, Metrics
from esb.runtime.monitoring import MonitoringServer
from esb.runtime.partitioner import Partitioner
from esb.runtime.partitions import Membership
from esb.runtime.process_service import ProcessService
from esb.runtime.reload import changed_routes, content_changed, fingerprint, load_checked
from esb.runtime.worker import RouteWorker, wait_ready


class Hub:
    """Runs the routes of one project in this process."""

    def __init__(
        self,
        project: Project,
        *,
        route_ids: list[str] | None = None,
        loader: Callable[[], Project] | None = None,
        processes: bool | None = None,
    ) -> None:
        self.project = project
        self.route_ids = route_ids
        #: run the process service: None (default) when every route runs, True also beside chosen routes
        self.with_processes = route_ids is None if processes is None else processes
        self.journal = Journal(project.settings.journal.url, keep_bodies=project.settings.journal.keep_bodies)
        self.metrics = Metrics()
        self.control = RouteControl(project.settings.journal.url)
        self.monitoring: MonitoringServer | None = None
        self.console: Any = None  # esb.console.server.ConsoleServer when console.enabled
        env = project.settings.env
        env_name = None if env == "default" else env
        self.loader = loader or (lambda: Project.load(project.root, env_name, strict=False))
        self.workers: list[RouteWorker] = []
        self.stopped = threading.Event()
        self.started = threading.Event()
        self.reload_requested = threading.Event()
        self.last_reload: dict[str, Any] = {}
        self._lock = threading.RLock()
        self._suspended: set[str] = set()
        self._fingerprint: dict[str, tuple[float, int]] = {}
        self._telemetry: telemetry.Tracer | None = None
        self._supervisor: threading.Thread | None = None
        self._memberships: dict[str, Membership] = {}
        #: the project's processes (processes/*.yaml), None when it defines none
        self.processes: ProcessService | None = None
        #: the routes' scheduled full files (route full_file), None when none of them has one
        self.full_files: FullFileScheduler | None = None
        self.resyncs: Any = None  # esb.resync.schedule.ResyncScheduler when a resync is scheduled
        #: the scheduled journal prune and its leader election (journal.retention), None when not wanted
        self.pruner: Any = None
        self.log = get_logger("hub")

    def _wanted(self, project: Project) -> list[Any]:
        return [r for r in project.routes if r.enabled and (self.route_ids is None or r.id in self.route_ids)]

    def _worker(self, project: Project, route: Any, index: int, source: str | None = None) -> RouteWorker:
        worker = RouteWorker(project, route, MeteredJournal(self.journal, self.metrics), index, source=source)
        if route.id in self._suspended:
            worker.suspended.set()
        return worker

    def _start_routes(self, project: Project, route_ids: set[str] | None, wait: float) -> None:
        started: list[Any] = []
        for route in self._wanted(project):
            if route_ids is not None and route.id not in route_ids:
                continue
            if route.partitions > 1:
                started.append(self._start_partitioned(project, route))
                continue
            started.extend(self._worker(project, route, index) for index in range(route.concurrency))
        for worker in started:
            worker.start()
        self.workers.extend(started)
        wait_ready(started, wait)

    def _start_partitioned(self, project: Project, route: Any) -> Partitioner:
        """A partitioned route: its partitioner here, and workers for the partitions this process owns."""
        partitioner = Partitioner(project, route)
        if route.id in self._suspended:
            partitioner.suspended.set()

        def assign(owned: frozenset[int]) -> None:
            self._assign_partitions(route.id, owned)

        membership = Membership(route.id, project.settings, partitions=route.partitions, on_change=assign)
        self._memberships[route.id] = membership
        membership.start()
        return partitioner

    def _assign_partitions(self, route_id: str, owned: frozenset[int]) -> None:
        """Run workers for exactly the ``owned`` partitions of a route (called when the split changes)."""
        with self._lock:
            if self.stopped.is_set() or route_id not in self._memberships:
                return
            project = self.project
            route = project.route(route_id)
            wanted = {partition_endpoint(route.from_, index): index for index in owned}
            current = [w for w in self.workers if isinstance(w, RouteWorker) and w.route.id == route_id]
            leaving = [w for w in current if w.source_name not in wanted]
            for worker in leaving:
                worker.stop()
            for worker in leaving:
                worker.join(project.settings.runtime.shutdown_grace)
            have = {w.source_name for w in current}
            joining = [self._worker(project, route, i, name)
                       for name, i in wanted.items() if name not in have]  # fmt: skip
            for worker in joining:
                worker.start()
            self.workers = [w for w in self.workers if w not in leaving] + joining
        self.metrics.partitions.labels(route_id).set(len(owned))
        self.log.info("partitions assigned", route=route_id, partitions=sorted(owned))

    def start(self, *, wait: float = 30.0) -> None:
        """Open the journal and start every enabled route's workers; wait until their sources connected."""
        self._secure_data_dir()
        if self.project.settings.telemetry.enabled:  # off: whatever tracer is installed stays (NOOP)
            self._telemetry = telemetry.configure(self.project.settings.telemetry)
        self.journal.connect()
        self.control.connect()
        self._suspended = self.control.suspended()
        self._start_routes(self.project, None, wait)
        failed = [w for w in self.workers if w.failure is not None and not w.is_alive()]
        if failed:  # a route that cannot start (a missing secret...): fail fast, naming every one
            self.stop()
            findings = sorted({f"route {w.route.id}: {w.failure}" for w in failed})
            if all(isinstance(w.failure, EsbError) for w in failed):
                raise ConfigError(f"{len(findings)} route(s) cannot start", findings=findings)
            raise RuntimeError("; ".join(findings))
        self._start_processes()
        self._start_full_files()
        self._start_resyncs()
        self._start_pruner()
        self._fingerprint = fingerprint(self.project.root)
        if self.project.settings.monitoring.enabled:
            monitoring = MonitoringServer(self.project.settings, self.metrics.exposition, self.readiness)
            try:
                monitoring.start()
                self.monitoring = monitoring
            except ConfigError as exc:  # the routes matter more than their metrics: run, and say so loudly
                self.log.error("monitoring not served", error=str(exc))
        self._start_console()
        self._supervisor = threading.Thread(target=self._supervise, name="hub-supervisor", daemon=True)
        self._supervisor.start()
        self.log.info(
            "hub started",
            routes=sorted({w.route.id for w in self.workers}),
            workers=len(self.workers),
            suspended=sorted(self._suspended),
            settings=self.project.settings.masked(),
        )
        self.started.set()

    def _start_full_files(self) -> None:
        """Schedule the ``full_file`` of the routes this hub runs (leader-only jobs: docs/sync.md)."""
        route_ids = [r.id for r in self._wanted(self.project)]
        scheduler = FullFileScheduler(self.project, route_ids)
        if scheduler.enabled:
            scheduler.start()
            self.full_files = scheduler

    def _start_pruner(self) -> None:
        """Start the scheduled journal prune (leader only) when ``journal.retention`` asks for it."""
        from esb.ops.retention import LEADER_LOCK, ScheduledPrune
        from esb.runtime.leader import LeaderElection

        if not ScheduledPrune.wanted(self.project.settings):
            return
        election = LeaderElection(LEADER_LOCK, self.project.settings)
        election.start()
        self.pruner = ScheduledPrune(self.journal, self.project.settings, election)
        self.pruner.start()

    def _start_processes(self, *, reloading: bool = False) -> None:
        """Start the process service beside the routes when the project defines processes.

        At start a service that cannot start stops the hub; on a reload it is logged and raised to
        :meth:`reload`, and the routes keep running.
        """
        if not self.with_processes:
            return  # esb run --route X: only the routes named
        service = ProcessService(self.project, self.journal, self.metrics.process)
        if not service.enabled:
            return
        try:
            service.start()
        except Exception:
            service.stop(0)
            if not reloading:
                self.stop()
            raise
        self.processes = service

    def _start_resyncs(self) -> None:
        """Start the scheduled full resyncs (each run by the leading process only: esb/resync/schedule.py)."""
        if not self.with_processes:
            return  # esb run --route X: only the routes named
        from esb.resync.schedule import ResyncScheduler  # it runs routes' steps: esb.resync uses esb.runtime

        scheduler = ResyncScheduler(self.project)
        if scheduler.enabled:
            scheduler.start()
            self.resyncs = scheduler

    def _restart_processes(self) -> str | None:
        """Stop the process service and start it on the reloaded project; return why it failed, or None.

        Runners finish the step they hold and readers the message they hold; waiting instances are rows,
        so the new service carries on with them (each on the definition it started on), new instances
        start on the definitions now on disk.
        """
        old, self.processes = self.processes, None
        if old is not None:
            old.stop(self.project.settings.runtime.shutdown_grace)
        try:
            self._start_processes(reloading=True)
        except Exception as exc:
            self.log.error("processes not restarted after the reload", error=str(exc))
            return str(exc)
        return None

    def _secure_data_dir(self) -> None:
        """Create the data folder, or tighten it and what an older version left in it to the data modes."""
        data_dir = make_folder(self.project.settings.data_dir)
        changed = tighten_tree(data_dir)
        if changed:
            self.log.warning(
                "data files were readable by others: modes tightened", files=changed, data_dir=str(data_dir)
            )

    # -- following operators ------------------------------------------------------------------------
    def _supervise(self) -> None:
        runtime = self.project.settings.runtime
        waited = 0.0
        while not self.stopped.wait(runtime.control_interval):
            try:
                self.apply_control()
                waited += runtime.control_interval
                due = runtime.watch_project and waited >= runtime.watch_interval
                if self.reload_requested.is_set() or due:
                    waited = 0.0
                    self.reload_if_changed(force=self.reload_requested.is_set())
            except Exception:
                self.log.exception("hub supervisor: check failed; trying again")

    def apply_control(self) -> None:
        """Suspend or resume workers as the route control table says."""
        suspended = self.control.suspended()
        with self._lock:
            for route_id in suspended ^ self._suspended:
                self.log.info("route suspended" if route_id in suspended else "route resumed", route=route_id)
            self._suspended = suspended
            for worker in self.workers:
                if worker.route.id in suspended:
                    worker.suspended.set()
                else:
                    worker.suspended.clear()
            for route in self._wanted(self.project):
                self.metrics.suspended.labels(route.id).set(1 if route.id in suspended else 0)
                self.metrics.workers.labels(route.id).set(
                    sum(1 for w in self.workers if w.route.id == route.id and w.is_alive())
                )

    def reload_if_changed(self, *, force: bool = False) -> list[str] | None:
        """Reload when a watched file changed (or ``force``); return the findings, None if nothing to do."""
        current = fingerprint(self.project.root)
        if not force and current == self._fingerprint:
            return None
        self.reload_requested.clear()
        previous, self._fingerprint = self._fingerprint, current
        return self.reload(everything=content_changed(previous, current))

    def reload(self, *, everything: bool = True) -> list[str]:
        """Apply the project on disk if it lints clean; return the findings (empty when applied)."""
        new, findings = load_checked(self.loader)
        if new is None:
            self.last_reload = {"applied": False, "findings": findings}
            self.log.error(
                "reload refused: the edited project has findings; the old routes keep running",
                findings=findings,
            )
            return findings
        with self._lock:
            stop, start = changed_routes(self._wanted(self.project), self._wanted(new), everything=everything)
            self._stop_memberships(stop)
            leaving = [w for w in self.workers if w.route.id in stop]
            for worker in leaving:
                worker.stop()
            grace = self.project.settings.runtime.shutdown_grace
            for worker in leaving:
                worker.join(grace)
            self.workers = [w for w in self.workers if w not in leaving]
            self.project = new
            self._start_routes(new, start, 30.0)
            processes = self._restart_processes() if everything else None
        self.last_reload = {"applied": True, "stopped": sorted(stop), "started": sorted(start)}
        if everything and self.route_ids is None:
            self.last_reload["processes"] = processes or "restarted"
        self.log.info("reloaded", stopped=sorted(stop), started=sorted(start))
        return []

    def readiness(self) -> tuple[bool, dict[str, Any]]:
        """Return (ready, detail) for /health/ready: journal reachable, every route's workers alive."""
        routes: dict[str, Any] = {}
        with self._lock:
            for worker in self.workers:
                entry = routes.setdefault(worker.route.id, {"workers": 0, "alive": 0, "suspended": False})
                entry["workers"] += 1
                entry["alive"] += int(worker.is_alive() and worker.ready.is_set())
                # effective once the worker let go of its source (a read in progress finishes first)
                entry["suspended"] = worker.suspended.is_set() and worker.source is None
        try:
            self.journal.outcome("-", "-")
            journal = "ok"
        except Exception as exc:
            journal = f"unreachable: {exc}"
        for route_id, membership in list(self._memberships.items()):  # partitioned: this process's share
            routes.setdefault(route_id, {"workers": 0, "alive": 0, "suspended": False})["partitions"] = {
                "owned": sorted(membership.owned()),
                "member_slot": membership.slot,
                "live_members": len(membership.live()),
            }
        ready = journal == "ok" and all(r["alive"] == r["workers"] for r in routes.values())
        return ready, {"journal": journal, "routes": routes, "reload": self.last_reload, "jobs": self._jobs()}

    def _jobs(self) -> dict[str, list[dict[str, Any]]]:
        """Scheduled jobs (batch polls and flushes) with their last and next run, dates as ISO text."""
        try:
            jobs = scheduled_jobs(self.project)
        except Exception as exc:  # readiness must answer even if a probe breaks
            return {"error": [{"job": "?", "error": str(exc)}]}
        return {
            endpoint: [
                {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in job.items()} for job in rows
            ]
            for endpoint, rows in jobs.items()
        }

    def _start_console(self) -> None:
        """Serve the operators' console (console.enabled); like monitoring, a failure is logged loudly and
        the routes run anyway."""
        if not self.project.settings.console.enabled:
            return
        from esb.console.server import ConsoleServer  # late: Flask is imported only when the console runs

        console = ConsoleServer(lambda: self.project)
        try:
            console.start()
            self.console = console
        except EsbError as exc:
            self.log.error("console not served", error=str(exc))

    # -- stopping -----------------------------------------------------------------------------------
    def stop(self, timeout: float | None = None) -> None:
        """Stop every worker after the message in hand, then close the journal. Safe to call twice."""
        if self.stopped.is_set():
            return
        self.stopped.set()
        if self._supervisor is not None:
            self._supervisor.join(10)
        if self.monitoring is not None:
            self.monitoring.stop()
        if self.console is not None:
            self.console.stop()
        grace = self.project.settings.runtime.shutdown_grace if timeout is None else timeout
        self._stop_memberships(set(self._memberships))
        with self._lock:
            for worker in self.workers:
                worker.stop()
            for worker in self.workers:
                worker.join(grace)
            alive = [w.name for w in self.workers if w.is_alive()]
        if alive:
            self.log.warning("workers did not stop in time", workers=alive)
        if self.processes is not None:
            self.processes.stop(grace)
        if self.full_files is not None:
            self.full_files.stop()
        if self.resyncs is not None:
            self.resyncs.stop()
        if self.pruner is not None:
            self.pruner.stop()
            self.pruner.election.stop()
            self.pruner.join(grace)
        self.control.close()
        self.journal.close()
        if self._telemetry is not None:
            telemetry.shutdown()  # exports the spans still buffered
            self._telemetry = None
        self.log.info("hub stopped")

    def _stop_memberships(self, route_ids: set[str]) -> None:
        """Leave the partition split of these routes (their slots free up for the other processes)."""
        for route_id in route_ids:
            membership = self._memberships.pop(route_id, None)
            if membership is not None:
                membership.stop()

    def run_forever(self) -> None:
        """Run until SIGINT or SIGTERM; SIGHUP reloads the project (after lint)."""
        done = threading.Event()

        def on_signal(signum: int, frame: FrameType | None) -> None:
            self.log.info("signal received, stopping", signal=signal.Signals(signum).name)
            done.set()

        def on_hup(signum: int, frame: FrameType | None) -> None:
            self.reload_requested.set()

        previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
        previous[signal.SIGHUP] = signal.signal(signal.SIGHUP, on_hup)
        try:
            self.start()
            while not done.wait(1.0):
                with self._lock:
                    dead = self.workers and not any(w.is_alive() for w in self.workers)
                if dead:
                    self.log.error("every route worker has stopped")
                    break
        finally:
            self.stop()
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def __enter__(self) -> Hub:
        self.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()
