"""The hub's process service: runner threads and endpoint readers for the project's processes.

Started by :class:`~esb.runtime.hub.Hub` when ``processes/*.yaml`` define processes (nothing runs
otherwise). ``processes.runners`` threads each loop: claim a due instance, advance it until it waits or
ends, journal what it did (:mod:`.process_journal`), sleep ``processes.poll`` when none is due; a
database outage (TransportError) is waited out. One reader thread per trigger or reply endpoint reads
through the endpoint adapter's :class:`~esb.typing.Source` and hands each message to its
:class:`~esb.runtime.process_inlet.ProcessInlet`; the delivery is acked once the store (or the
dead-letter endpoint) has it, and given back when the store or journal is away. Stopping lets each
thread finish what it holds; waiting instances stay in the database for the next start.
"""

from __future__ import annotations

import contextlib
import threading
import time
from typing import TYPE_CHECKING, Any

from esb.exceptions import ConfigError, EsbError, TransportError
from esb.journal import Journal
from esb.logging import get_logger
from esb.message import utcnow
from esb.process.engine.backlog import Backlog, reply_endpoints
from esb.process.engine.inbox import wake
from esb.process.engine.resources import ProjectResources
from esb.process.engine.runner import Runner
from esb.process.engine.store import ProcessStore
from esb.process.loader import ProcessCatalog, load_processes
from esb.runtime.metrics import ProcessMetrics
from esb.runtime.process_inlet import DeadLetters, ProcessInlet, sweep_dead_replies
from esb.runtime.process_journal import ProcessJournal
from esb.typing import Delivery, QueueInspector, capability

if TYPE_CHECKING:
    from esb.project import Project

#: Seconds a thread waits before trying the database or a source again after a TransportError.
RETRY_SECONDS = 2.0
#: How often runner 0 dead-letters the replies the inbox marked dead later
#: (:func:`~esb.runtime.process_inlet.sweep_dead_replies`), and how old such a reply must be.
SWEEP_SECONDS = 30.0
SWEEP_AFTER = 60.0


def process_endpoints(catalog: ProcessCatalog) -> list[str]:
    """Return every endpoint the processes read: current triggers and every version's awaits, sorted."""
    found = {catalog.current(name).process.trigger.from_ for name in catalog.names()}
    for definition in catalog.all():
        found.update(reply_endpoints(definition.process))
    return sorted(found)


class ProcessService:
    """Runs the project's processes beside the route workers; ``start`` and ``stop`` with the hub."""

    def __init__(self, project: Project, journal: Journal, metrics: ProcessMetrics) -> None:
        self.project = project
        self.settings = project.settings.processes
        self.catalog = load_processes(project.root)
        self.store = ProcessStore(project.settings.journal.url, pool_size=self.settings.runners + 4)
        self.resources = ProjectResources(project)
        self.notes = ProcessJournal(journal, self.store, metrics)
        self.dead_letters = DeadLetters(project, journal, metrics, self.settings.dead_letter)
        self.backlog = Backlog(self.settings.backlog_grace)
        self.stop_event = threading.Event()
        self.threads: list[threading.Thread] = []
        self.log = get_logger("processes")

    @property
    def enabled(self) -> bool:
        """True when the project defines at least one process."""
        return bool(self.catalog.names())

    def start(self) -> None:
        """Open the store and start the runner threads and one reader per process endpoint."""
        if self.catalog.findings:
            raise ConfigError(
                f"{len(self.catalog.findings)} process finding(s)", findings=self.catalog.findings
            )
        self.store.connect()
        for endpoint in process_endpoints(self.catalog):
            self.backlog.behind(endpoint)  # timers due now wait until what is on the queues is read
        for index in range(self.settings.runners):
            self._thread(f"process-runner-{index}", self._run, index)
        for endpoint in process_endpoints(self.catalog):
            self._thread(f"process-reader-{endpoint}", self._read, endpoint)
        self.log.info(
            "processes started",
            processes=self.catalog.names(),
            runners=self.settings.runners,
            endpoints=process_endpoints(self.catalog),
        )

    def _thread(self, name: str, target: Any, arg: Any) -> None:
        thread = threading.Thread(target=target, args=(arg,), name=name, daemon=True)
        thread.start()
        self.threads.append(thread)

    def _runner(self, name: str) -> Runner:
        owner = f"{name}-{utcnow().strftime('%H%M%S%f')}"
        return Runner(
            self.store, self.resources, owner=owner, lease=self.settings.lease, backlog=self.backlog
        )

    # -- runners ----------------------------------------------------------------------------------------
    def _run(self, index: int) -> None:
        """Advance due instances until stopped, journaling each claim's steps."""
        runner = self._runner(f"runner-{index}")
        measured = swept = 0.0
        while not self.stop_event.is_set():
            try:
                if index == 0 and time.monotonic() - measured >= self.settings.poll:
                    measured = time.monotonic()
                    self.notes.lag()  # runner 0 measures, at most once per poll, busy or not
                if index == 0 and time.monotonic() - swept >= SWEEP_SECONDS:
                    swept = time.monotonic()
                    sweep_dead_replies(self.store, self.dead_letters, SWEEP_AFTER)
                if not self.round(runner):
                    self.stop_event.wait(self.settings.poll)
            except TransportError as exc:
                self.log.warning("process store unavailable, retrying", error=str(exc))
                self.stop_event.wait(RETRY_SECONDS)
            except Exception:
                self.log.exception("process runner: round failed; trying again")
                self.stop_event.wait(RETRY_SECONDS)

    def round(self, runner: Runner) -> bool:
        """Claim and advance one due instance and journal its steps; False when none was due."""
        with self.store.hold():  # one connection for the claim's transactions
            claim = self.store.claim(runner.owner, runner.lease)
            if claim is None:
                return False
            since = utcnow()
            runner.advance(claim)
        self.notes.advanced(claim.instance_id, since)
        return True

    # -- readers ----------------------------------------------------------------------------------------
    def _read(self, endpoint: str) -> None:
        """Read ``endpoint`` through its adapter's source until stopped; ack each message once taken."""
        json = self.project.endpoint(endpoint).format == "json"
        runner = self._runner(f"reader-{endpoint}")
        inlet = ProcessInlet(endpoint, self.catalog, runner, self.notes, self.dead_letters, json=json)
        poll = self.project.settings.runtime.poll_timeout
        source: Any = None
        while not self.stop_event.is_set():
            try:
                if source is None:
                    source = self.project.adapter_for(endpoint).source(
                        self.project.endpoint(endpoint), self.project.context(endpoint)
                    )
                    source.connect()
                delivery = source.read(poll)
                if delivery is None:
                    self._drained(endpoint)
                    continue
                self._settle(inlet, endpoint, delivery)
            except TransportError as exc:
                self.log.warning("process endpoint or store unavailable, retrying", endpoint=endpoint,
                                 error=str(exc))  # fmt: skip
                source = self._lost(source, endpoint)
            except EsbError as exc:
                self.log.error("process endpoint cannot be read", endpoint=endpoint, error=str(exc))
                source = self._lost(source, endpoint)
            except Exception:
                self.log.exception("process reader failed; trying again", endpoint=endpoint)
                source = self._lost(source, endpoint)
        _closed(source)

    def _lost(self, source: Any, endpoint: str) -> Any:
        """Close a failed source (return None, the next source): the endpoint is behind until read back."""
        _closed(source)
        self.backlog.behind(endpoint)
        self.stop_event.wait(RETRY_SECONDS)
        return None

    def _drained(self, endpoint: str) -> None:
        """After an empty read: once nothing is in flight elsewhere either, wake the instances held for it.

        A message another consumer holds (a killed hub's delivery, until its lease expires) is not
        ready, so an empty read alone does not prove it was read; the queue's ``in_flight`` count (where
        the adapter can say) must be nil too.
        """
        if not self.backlog.is_behind(endpoint):
            return
        if self.backlog.holds([endpoint]) is not None and self._held_elsewhere(endpoint):
            return  # (past the grace nothing is held any more: no need to ask the broker)
        held = self.backlog.drained(endpoint)
        self.log.info("process endpoint read back", endpoint=endpoint, woken=len(held))
        wake(self.store, held)

    def _settle(self, inlet: ProcessInlet, endpoint: str, delivery: Delivery) -> None:
        """Take the delivery's message, or dead-letter it if taking it failed; then ack it.

        A TransportError (the store, journal or dead-letter endpoint away) gives the delivery back.
        """
        try:
            try:
                inlet.take(delivery.message)
            except TransportError:
                raise
            except Exception as exc:  # a trigger transform or business key refused it, a bad expression
                if not isinstance(exc, EsbError):
                    self.log.exception("process message failed", endpoint=endpoint)
                self.dead_letters.send(endpoint, delivery.message, exc)
        except TransportError as exc:
            delivery.ack(exc)
            raise
        delivery.ack()

    def _held_elsewhere(self, endpoint: str) -> bool:
        """True when another consumer holds messages of ``endpoint`` (or the broker could not count them).

        False when the adapter cannot say (RabbitMQ gives a dead connection's deliveries back at once).
        """
        inspector = capability(self.project.adapter_for(endpoint), QueueInspector)
        if inspector is None:
            return False
        try:
            stats = inspector.queue_stats(self.project.endpoint(endpoint), self.project.context(endpoint))
        except Exception as exc:  # not known: asked again at the next empty read (the grace bounds it)
            self.log.warning("process endpoint cannot be counted", endpoint=endpoint, error=str(exc))
            return True
        return bool(stats.get("in_flight", 0))

    # -- stopping ---------------------------------------------------------------------------------------
    def stop(self, grace: float) -> None:
        """Stop every thread after what it holds, then close sinks and the store. Safe to call twice."""
        self.stop_event.set()
        for thread in self.threads:
            thread.join(grace)
        alive = [t.name for t in self.threads if t.is_alive()]
        if alive:
            self.log.warning("process threads did not stop in time", threads=alive)
        self.threads = []
        self.resources.close()
        self.dead_letters.close()
        self.store.close()


def _closed(source: Any) -> Any:
    """Close ``source`` (a broken connection may fail to close); return None, the reader's next source."""
    if source is not None:
        with contextlib.suppress(Exception):
            source.close()
    return None
