"""Retention of the listener's resource store: settled event rows and ended orders go after a while.

Every ``store.prune_every`` the endpoint's leading hub process (an election named
``rest-store:<system.endpoint>`` through the context's services: one process of those sharing the store)
deletes, in statements of ``store.prune_batch`` rows with a pause between them (each a short write lock,
so the other processes' POSTs and the notifier go in between):

- event rows delivered or given up more than ``events_keep`` ago. The row is not the only record: the
  notifier journals each outcome (``delivered``, ``dead_lettered``) on ``rest-events:<system.endpoint>``
  before it settles the row, so ``esb trace <order id>`` still shows it;
- resources whose order reached a final state more than ``resources_keep`` ago (GET answers 404 for them
  from then on), never one whose inbox row is still there or with an event still pending or held;

then, when the file is incremental auto_vacuum (an operator switched it on), gives the freed pages back
to the file system; otherwise SQLite reuses them for new rows (docs/rest.md, "File size").
Each run is recorded in the store's ``jobs`` table (``esb health`` and the tests read it).
"""

from __future__ import annotations

import os
import socket
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from adapters.rest.config import RESTEndpoint, StoreOptions
from adapters.rest.store import ResourceStore, store_path
from esb.context import AdapterContext

#: The job's name in the store's ``jobs`` table and in ``esb health``.
JOB = "prune"
#: Free pages given back per statement (4 KiB each: 2 MiB; ~0.1 s of write lock, bench/README.md).
VACUUM_PAGES = 512


@dataclass
class PruneResult:
    """What one prune removed."""

    events: int = 0
    resources: int = 0
    pages: int = 0
    stopped: bool = False
    """True when the prune was stopped before it finished (the endpoint is closing)."""


def prune(
    store: ResourceStore, options: StoreOptions, now: float | None = None, stop: threading.Event | None = None
) -> PruneResult:
    """Delete what ``options`` lets go from ``store`` in short statements; return what went."""
    now = time.time() if now is None else now
    stop = stop or threading.Event()
    result = PruneResult()
    if options.events_keep is not None:
        result.events = _batches(store.prune_events, now - options.events_keep, options, stop)
    if options.resources_keep is not None and not stop.is_set():
        result.resources = _batches(store.prune_resources, now - options.resources_keep, options, stop)
    while (result.events or result.resources) and not stop.is_set():
        freed = store.free_pages(VACUUM_PAGES)
        result.pages += freed
        if freed < VACUUM_PAGES:
            break
        stop.wait(options.prune_pause)
    result.stopped = stop.is_set()
    return result


def _batches(
    delete: Callable[[float, int], int], before: float, options: StoreOptions, stop: threading.Event
) -> int:
    """Run ``delete(before, batch)`` until a statement deletes less than a batch; return the total."""
    total = 0
    while not stop.is_set():
        deleted = delete(before, options.prune_batch)
        total += deleted
        if deleted < options.prune_batch:
            break
        stop.wait(options.prune_pause)
    return total


class Pruner:
    """The endpoint's prune job: scheduled in every process serving it, run by the elected one."""

    def __init__(self, store: ResourceStore, options: StoreOptions, context: AdapterContext) -> None:
        self.store = store
        self.options = options
        self.context = context
        self.owner = f"{socket.gethostname()}:{os.getpid()}"
        self.stop_event = threading.Event()
        from esb.logging import get_logger  # here: esb health reads endpoint_jobs without structlog

        self.log = get_logger("rest-store")
        self._election: Any = None
        self._scheduler: Any = None

    def start(self) -> None:
        """Join the endpoint's election and schedule the job (nothing to do when nothing expires)."""
        if self.options.events_keep is None and self.options.resources_keep is None:
            return
        from apscheduler.schedulers.background import BackgroundScheduler
        from apscheduler.triggers.interval import IntervalTrigger

        self._election = self.context.services.elect(f"rest-store:{self.context.endpoint}")
        every = self.options.prune_every
        self._scheduler = BackgroundScheduler(daemon=True)
        self._scheduler.add_job(
            self.scheduled, IntervalTrigger(seconds=every), id=JOB, name=f"{JOB} {self.context.endpoint}",
            coalesce=True, max_instances=1, misfire_grace_time=max(1, int(every)),
        )  # fmt: skip
        self._scheduler.start()

    def scheduled(self) -> None:
        """The scheduler's job: prune when this process leads the endpoint's election."""
        if self._election is not None and self._election.is_leader:
            self.run()

    def run(self) -> PruneResult | None:
        """Prune once and record the run; None when it failed (logged, recorded; the next run retries)."""
        started = time.time()
        try:
            result = prune(self.store, self.options, stop=self.stop_event)
        except Exception as exc:  # a locked or full store: the next run tries again
            self.log.error("store prune failed", endpoint=self.context.endpoint, error=str(exc))
            self._record(started, "error", str(exc))
            return None
        detail = f"{result.events} events, {result.resources} resources, {result.pages} pages freed"
        self.log.info("store pruned", endpoint=self.context.endpoint, events=result.events,
                      resources=result.resources, pages=result.pages, stopped=result.stopped)  # fmt: skip
        self._record(started, "stopped" if result.stopped else "ok", detail)
        return result

    def _record(self, started: float, outcome: str, detail: str) -> None:
        try:
            self.store.record_run(JOB, self.owner, started, outcome, detail)
            if self.options.events_keep is not None:
                self.store.forget_runs(time.time() - self.options.events_keep)
        except Exception as exc:  # the record is for health: a failure to write it ends nothing
            self.log.warning("store prune not recorded", endpoint=self.context.endpoint, error=str(exc))

    def stop(self) -> None:
        """Stop a prune in progress after its statement, the schedule, and the candidacy."""
        self.stop_event.set()
        if self._scheduler is not None:
            self._scheduler.shutdown(wait=True)
            self._scheduler = None
        if self._election is not None:
            self._election.stop()
            self._election = None


def endpoint_jobs(endpoint: RESTEndpoint, context: AdapterContext) -> list[dict[str, Any]]:
    """``esb health``: the served endpoint's prune job with its last run (by whichever process ran it) and
    the next one due; none when the endpoint keeps everything. Reads the store without writing to it."""
    if endpoint.listen is None:
        return []
    options = endpoint.listen.store
    if options.events_keep is None and options.resources_keep is None:
        return []
    last: tuple[Any, ...] | None = None
    path = store_path(context)
    if path.is_file():
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
        try:
            last = db.execute(
                "SELECT last_run, outcome, detail, runs FROM jobs WHERE name = ? "
                "ORDER BY last_run DESC LIMIT 1",
                (JOB,),
            ).fetchone()
        except sqlite3.OperationalError:  # a store older than the jobs table: never pruned yet
            last = None
        finally:
            db.close()
    job: dict[str, Any] = {
        "job": JOB, "schedule": f"every {options.prune_every:g}s (the elected process)", "last_run": None,
        "outcome": None, "error": None, "runs": 0, "next_run": None, "overdue": False,
    }  # fmt: skip
    if last is not None:
        ran = datetime.fromtimestamp(float(last[0]), UTC)
        job.update(
            last_run=ran,
            outcome=last[1],
            runs=int(last[3]),
            next_run=ran + timedelta(seconds=options.prune_every),
        )
        job["error"] = last[2] if last[1] == "error" else None
        late = job["next_run"] + timedelta(seconds=max(60.0, options.prune_every))
        job["overdue"] = late < datetime.now(UTC)
    return [job]
