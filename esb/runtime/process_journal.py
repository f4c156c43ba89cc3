"""Process instances in the hub's journal, so ``esb trace <order id>`` shows their steps beside the routes.

Each instance is journaled on the route ``process:<name>`` under its trigger message's id, with the
instance's business keys: ``received`` when it starts, one ``transformed`` event per step row the
runner wrote (detail: the step's path, its row state, the instance), and at its end ``delivered``
(completed, partial, cancelled) or ``failed`` (failed, stuck, with the error). Step rows are read back
from ``process_steps`` after each claim, so the engine itself needs no journal calls. Counts go to
:class:`~esb.runtime.metrics.ProcessMetrics` at the same time.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa

from esb.journal import Journal
from esb.message import Message, utcnow
from esb.process.engine.records import FAILED, TIMED_OUT
from esb.process.engine.store import ENDED, LIVE, STUCK, ProcessStore
from esb.process.engine.tables import process_instances, process_keys, process_steps
from esb.process.engine.undo import UNDO
from esb.runtime.metrics import ProcessMetrics

#: The journal route of a process's instances.
ROUTE_PREFIX = "process:"
#: Instance statuses journaled as a failure (the others that end it are ``delivered``).
_FAILURES = ("failed", STUCK)


def process_route(process: str) -> str:
    """Return the journal route of ``process``'s instances (``process:order_to_activation``)."""
    return f"{ROUTE_PREFIX}{process}"


class ProcessJournal:
    """Writes instances' starts, steps and ends to the journal and counts them."""

    def __init__(self, journal: Journal, store: ProcessStore, metrics: ProcessMetrics) -> None:
        self.journal = journal
        self.store = store
        self.metrics = metrics

    def started(self, process: str, instance_id: str, trigger: Message) -> None:
        """Journal the trigger as the start of ``instance_id`` (once per trigger message id)."""
        keys = self._keys(instance_id)
        message = trigger.replace(business_keys={**trigger.business_keys, **keys})
        if self.journal.received(process_route(process), message):
            self.journal.event(
                process_route(process),
                message,
                "transformed",
                detail={"instance": instance_id, "step": "start"},
            )
            self.metrics.instances.labels(process, "started").inc()

    def advanced(self, instance_id: str, since: datetime) -> None:
        """Journal the step rows the instance wrote or closed since ``since``, and its end if it ended."""
        t, s = process_instances.c, process_steps.c
        with self.store.errors("journal steps"), self.store.engine.connect() as conn:
            row = conn.execute(
                sa.select(t.process, t.trigger_id, t.status, t.state, t.error).where(t.id == instance_id)
            ).first()
            if row is None:
                return
            touched = sa.or_(s.started_at >= since, s.ended_at >= since)
            steps = conn.execute(
                sa.select(s.path, s.attempt, s.state, s.error, s.started_at, s.ended_at)
                .where(s.instance_id == instance_id, touched)
                .order_by(sa.func.coalesce(s.ended_at, s.started_at), s.id)
            ).all()
        message = Message(
            body=None, id=row.trigger_id, correlation_id=row.trigger_id, business_keys=self._keys(instance_id)
        )
        route = process_route(row.process)
        for step in steps:
            self._step(row.process, route, message, instance_id, step)
        if row.status in ENDED or row.status == STUCK:
            self._ended(row, route, message, instance_id)

    def _step(self, process: str, route: str, message: Message, instance_id: str, step: Any) -> None:
        """Journal and count one step row."""
        detail = {
            "instance": instance_id,
            "step": step.path,
            "step_state": step.state,
            "attempt": step.attempt,
        }
        self.journal.event(route, message, "transformed", detail=detail, error=step.error)
        self.metrics.steps.labels(process, step.state).inc()
        if step.state == TIMED_OUT:
            self.metrics.await_timeouts.labels(process).inc()
        if step.state == FAILED and step.path.endswith(UNDO):
            self.metrics.undo_failures.labels(process).inc()

    def _ended(self, row: Any, route: str, message: Message, instance_id: str) -> None:
        """Journal the instance's end: ``delivered`` when it ended as designed, ``failed`` otherwise."""
        detail = {"instance": instance_id, "status": row.status, "state": row.state}
        if row.status in _FAILURES:
            self.journal.event(route, message, "failed", detail=detail, error=row.error or row.status)
        else:
            self.journal.event(route, message, "delivered", detail=detail)
        self.metrics.instances.labels(row.process, row.status).inc()

    def _keys(self, instance_id: str) -> dict[str, str]:
        """Return the instance's business keys (name -> value)."""
        k = process_keys.c
        with self.store.errors("read keys"), self.store.engine.connect() as conn:
            rows = conn.execute(sa.select(k.name, k.value).where(k.instance_id == instance_id)).all()
        return {r.name: r.value for r in rows}

    def lag(self, now: datetime | None = None) -> float:
        """Set and return the seconds the oldest due, unclaimed instance has waited (0 when none)."""
        now = now or utcnow()
        t = process_instances.c
        free = sa.or_(t.lease_until.is_(None), t.lease_until < now)
        query = (
            sa.select(t.wake_at)
            .where(t.status.in_(LIVE), t.wake_at <= now, free)
            .order_by(t.wake_at)
            .limit(1)
        )
        with self.store.errors("lag"), self.store.engine.connect() as conn:
            oldest = conn.execute(query).scalar()
        seconds = 0.0 if oldest is None else max((now - oldest).total_seconds(), 0.0)
        self.metrics.lag.set(seconds)
        return seconds
