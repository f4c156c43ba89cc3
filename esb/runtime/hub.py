"""The hub: opens the journal, starts a worker per route (times its concurrency), stops them cleanly."""

from __future__ import annotations

import signal
import threading
from types import FrameType
from typing import Any

from esb.journal import Journal
from esb.logging import get_logger
from esb.project import Project
from esb.runtime.worker import RouteWorker, wait_ready


class Hub:
    """Runs the routes of one project in this process."""

    def __init__(self, project: Project, *, route_ids: list[str] | None = None) -> None:
        self.project = project
        self.route_ids = route_ids
        self.journal = Journal(project.settings.journal.url, keep_bodies=project.settings.journal.keep_bodies)
        self.workers: list[RouteWorker] = []
        self.stopped = threading.Event()
        self.log = get_logger("hub")

    def start(self, *, wait: float = 30.0) -> None:
        """Open the journal and start every enabled route's workers; wait until their sources connected."""
        self.project.settings.data_dir.mkdir(parents=True, exist_ok=True)
        self.journal.connect()
        for route in self.project.routes:
            if not route.enabled or (self.route_ids is not None and route.id not in self.route_ids):
                continue
            for index in range(route.concurrency):
                worker = RouteWorker(self.project, route, self.journal, index)
                self.workers.append(worker)
        for worker in self.workers:
            worker.start()
        wait_ready(self.workers, wait)
        self.log.info(
            "hub started",
            routes=sorted({w.route.id for w in self.workers}),
            workers=len(self.workers),
            settings=self.project.settings.masked(),
        )

    def stop(self, timeout: float | None = None) -> None:
        """Stop every worker after the message in hand, then close the journal. Safe to call twice."""
        if self.stopped.is_set():
            return
        grace = self.project.settings.runtime.shutdown_grace if timeout is None else timeout
        for worker in self.workers:
            worker.stop()
        for worker in self.workers:
            worker.join(grace)
        alive = [w.name for w in self.workers if w.is_alive()]
        if alive:
            self.log.warning("workers did not stop in time", workers=alive)
        self.journal.close()
        self.stopped.set()
        self.log.info("hub stopped")

    def run_forever(self) -> None:
        """Run until SIGINT or SIGTERM."""
        done = threading.Event()

        def on_signal(signum: int, frame: FrameType | None) -> None:
            self.log.info("signal received, stopping", signal=signal.Signals(signum).name)
            done.set()

        previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            self.start()
            while not done.wait(1.0):
                if self.workers and not any(w.is_alive() for w in self.workers):
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
