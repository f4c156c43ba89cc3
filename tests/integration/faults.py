"""Fault scenarios on real servers: CRM orders through `esb run --env production` while something breaks.

One scenario: a fresh RabbitMQ vhost and PostgreSQL database, the simulated IOM (an idempotent
receiver that reconnects and counts duplicates), ``hubs`` hub processes, the planned CRM orders
published from a background thread, and one fault while they flow:

- ``kill``: a hub process is SIGKILLed and restarted ``kills`` times, alternating between processes;
- ``rabbitmq``: the RabbitMQ node is stopped and started again;
- ``postgres``: the PostgreSQL server is stopped and started again on the same port.

Then every message must have ended as planned (journal), IOM must have received each delivered order
(and nothing else), and the journal's counts must match what IOM received. :meth:`Outcome.report`
prints the counts. Used by ``tests/integration/test_faults.py`` (a small count) and
``bench/fault_run.py`` (10,000 per scenario).
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from esb.exceptions import TransportError
from esb.journal.schema import events, messages
from simulators.crm import CRMSimulator, PlannedMessage, order_scenario
from simulators.iom import IOMSimulator
from tests.integration.cluster import ProductionHub, production_environ, production_project
from tests.waiting import wait_for_count

ROUTE = "crm-order-to-iom"
FINAL = ("delivered", "filtered", "dead_lettered")


class ResilientIOM(IOMSimulator):
    """The simulated IOM, reconnecting when the broker goes away (records each order id once)."""

    def run(self) -> None:
        """Consume until stopped, reconnecting after a lost connection."""
        while not self.stop_event.is_set():
            source = self.project.adapter_for(self.endpoint).source(
                self.project.endpoint(self.endpoint), self.project.context(self.endpoint)
            )
            try:
                source.connect()
                self.ready.set()
                while not self.stop_event.is_set():
                    delivery = source.read(0.2)
                    if delivery is not None:
                        self.accept(delivery.message)
                        delivery.ack()
            except TransportError:
                time.sleep(0.5)
            finally:
                source.close()


def journal_outcomes(url: str) -> tuple[dict[str, str], int, int, list[str]]:
    """Return (message id -> final state, number of route-level final events, delivery rows to IOM,
    ids that ended twice with DIFFERENT states)."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                sa.select(messages.c.id, events.c.state)
                .join(messages, messages.c.seq == events.c.message_seq)
                .where(events.c.route == ROUTE, events.c.state.in_(FINAL))
                .where(sa.or_(events.c.endpoint.is_(None), events.c.state != "delivered"))
                .order_by(events.c.id)
            ).all()
            rows_to_iom = conn.execute(  # messages with a delivery to IOM (a delivered event naming it)
                sa.select(sa.func.count(sa.distinct(events.c.message_seq))).where(
                    events.c.route == ROUTE,
                    events.c.state == "delivered",
                    events.c.endpoint == "iom.orders_in",
                )
            ).scalar_one()
    finally:
        engine.dispose()
    states: dict[str, set[str]] = {}
    for mid, state in rows:
        states.setdefault(mid, set()).add(state)
    conflicting = sorted(mid for mid, seen in states.items() if len(seen) > 1)
    return {mid: state for mid, state in rows}, len(rows), int(rows_to_iom), conflicting


@dataclass
class Outcome:
    """What one scenario produced, and what it should have."""

    fault: str
    plan: list[PlannedMessage]
    outcomes: dict[str, str]
    final_events: int
    delivery_rows: int
    conflicting: list[str]
    received: set[str]
    duplicates: int
    malformed: list[str]
    faults_done: list[str]
    seconds: float
    notes: list[str] = field(default_factory=list)

    def expected(self) -> dict[str, str]:
        """Message id -> planned outcome."""
        return {p.message.id: p.expected for p in self.plan}

    def problems(self) -> list[str]:
        """Everything that went wrong; empty when the delivery guarantees held."""
        expected = self.expected()
        out = list(self.notes)
        wrong = {m: (self.outcomes.get(m), e) for m, e in expected.items() if self.outcomes.get(m) != e}
        if wrong:
            out.append(f"{len(wrong)} messages ended wrong (got, planned), e.g. {sorted(wrong.items())[:3]}")
        delivered = {m for m, e in expected.items() if e == "delivered"}
        if self.received != delivered:
            out.append(
                f"IOM missing {len(delivered - self.received)}, unexpected {len(self.received - delivered)}"
            )
        # At-least-once: a message whose consumer lost its connection mid-work is handed to another
        # process, and both may finish it (the receiver absorbs the copy). Ending twice the same way is
        # that; ending in two different ways, or never, is a failure.
        if self.conflicting:
            out.append(
                f"{len(self.conflicting)} messages ended in two different states: {self.conflicting[:3]}"
            )
        if self.final_events < len(expected):
            out.append(f"{self.final_events} route-level final events for {len(expected)} messages")
        if self.delivery_rows != len(self.received):
            out.append(
                f"journal records {self.delivery_rows} deliveries to IOM, IOM got {len(self.received)}"
            )
        if self.malformed:
            out.append(f"IOM got {len(self.malformed)} malformed requests")
        return out

    def report(self) -> str:
        """The counts, one scenario per paragraph."""
        planned = Counter(p.expected for p in self.plan)
        ended = Counter(self.outcomes.values())
        lines = [
            f"scenario {self.fault}: {len(self.plan)} messages in {self.seconds:.0f}s; "
            f"faults: {self.faults_done}",
            "  planned   " + ", ".join(f"{k} {planned[k]}" for k in FINAL),
            "  journal   "
            + ", ".join(f"{k} {ended[k]}" for k in FINAL)
            + f"; route-level final events {self.final_events} ({self.final_events - len(self.outcomes)} "
            + f"messages finished twice around the fault); delivery rows to IOM {self.delivery_rows}",
            f"  IOM       distinct orders {len(self.received)}, duplicates absorbed by message id "
            f"{self.duplicates}, malformed {len(self.malformed)}",
            f"  verdict   {'OK' if not self.problems() else 'FAILED: ' + '; '.join(self.problems())}",
        ]
        return "\n".join(lines)


@dataclass
class Servers:
    """The real servers a scenario runs on: ``new_broker_url()`` / ``new_journal_url()`` give fresh ones."""

    new_broker_url: Callable[[], str]
    new_journal_url: Callable[[], str]
    stop_broker: Callable[[], None]
    start_broker: Callable[[], None]
    stop_database: Callable[[], None]
    start_database: Callable[[], None]


def run_scenario(
    servers: Servers, fault: str, count: int, workdir: Path, *, hubs: int = 2, kills: int = 3
) -> Outcome:
    """Run one scenario and return its outcome (see the module docstring)."""
    environ = production_environ(workdir / "var", servers.new_broker_url(), servers.new_journal_url())
    project = production_project(environ)
    plan = order_scenario(count, run=f"fault-{fault}")
    delivered = sum(1 for p in plan if p.expected == "delivered")
    iom = ResilientIOM(project)
    iom.start()
    iom.ready.wait(30)
    procs = [ProductionHub(environ, workdir / f"hub{i}.log") for i in range(hubs)]
    for proc in procs:
        proc.start()
    publisher = threading.Thread(target=_publish, args=(project, plan), daemon=True)
    start = time.monotonic()
    publisher.start()
    faults_done: list[str] = []
    notes: list[str] = []
    try:
        _inject(fault, servers, procs, iom, delivered, kills, faults_done, notes)
        publisher.join(600)
        _wait_until(lambda: iom.count() >= delivered, 600)
        wait_for_outcomes(environ["ESB_JOURNAL__URL"], len(plan))
    finally:
        codes = [proc.stop() for proc in procs]
        iom.stop()
        iom.join(10)
    seconds = time.monotonic() - start
    if any(code != 0 for code in codes):
        notes.append(f"hub exit codes {codes}")
    for i in range(hubs):
        log = (workdir / f"hub{i}.log").read_text(errors="replace")
        if "route worker failed" in log:
            notes.append(f"hub{i}.log: a route worker crashed")
    outcomes, final_events, rows, conflicting = journal_outcomes(environ["ESB_JOURNAL__URL"])
    return Outcome(fault, plan, outcomes, final_events, rows, conflicting, set(iom.received), iom.duplicates,
                   list(iom.malformed), faults_done, seconds, notes)  # fmt: skip


def _publish(project: Any, plan: list[PlannedMessage]) -> None:
    with CRMSimulator(project) as crm:
        for planned in plan:
            crm.send(planned.message)


def _inject(
    fault: str, servers: Servers, procs: list[ProductionHub], iom: ResilientIOM, delivered: int, kills: int,
    done: list[str], notes: list[str],
) -> None:  # fmt: skip
    """Apply the fault while messages flow; note it if the flow finished first."""
    if fault == "kill":
        for k in range(kills):
            _wait_until(lambda k=k: iom.count() >= delivered * (k + 1) // (kills + 2), 600)  # type: ignore[misc]
            if iom.count() >= delivered:
                notes.append("the flow finished before every kill: raise the count")
                return
            victim = procs[k % len(procs)]
            victim.kill()
            done.append(f"SIGKILL hub{k % len(procs)} at {iom.count()} received")
            started = victim.starts()
            victim.start()
            victim.wait_started(previous=started)  # a hub stopped while starting up exits by the signal
        return
    _wait_until(lambda: iom.count() >= delivered // 3, 600)
    if iom.count() >= delivered:
        notes.append("the flow finished before the fault: raise the count")
    stop, start = {
        "rabbitmq": (servers.stop_broker, servers.start_broker),
        "postgres": (servers.stop_database, servers.start_database),
    }[fault]
    at = iom.count()
    stop()
    time.sleep(2)
    start()
    done.append(f"{fault} stopped and started at {at} received")


def _wait_until(condition: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)
    return True


def wait_for_outcomes(url: str, count: int) -> None:
    """Wait until ``count`` messages have a final outcome in the journal at ``url``; give up only when no
    more ended for a while (tests/waiting.py). Tables not created yet or a server restarting count as no
    progress."""

    def finished() -> int:
        return len(journal_outcomes(url)[0])

    wait_for_count(finished, count, "the journal's outcomes", tolerate=(sa.exc.DBAPIError,))
