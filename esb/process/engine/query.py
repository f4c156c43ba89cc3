"""Read-only status queries: where an order stands, found by a business key (order number, MSISDN).

:func:`order_status` answers "where is order X" for the CRM and the 10000 hotline (flow 3 of issue 15)
from the engine's tables, without touching a lease: the instances whose business key ``name`` equals
``value`` (newest update first), each with its TMF state, status, times and current step, and one entry
per branch of its ``foreach`` or ``parallel`` (a bundle's component orders) with the branch's item, its
sub-order state, status and current step. An MSISDN key finds the whole bundle its component belongs to.

Three indexed statements per query, in one read transaction (a deferred ``BEGIN`` on SQLite, so runners
writing meanwhile never wait for it): the key on ``process_keys``' primary key (process, name, value)
joined to ``process_instances`` by its primary key, the branches on ``process_branches``' primary key
(instance_id, path), and each pinned definition by its hash (cached by the store after the first read).
The instance's other business keys are evaluated from its data (``process_keys`` has no index by
instance).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from esb.exceptions import ConfigError
from esb.journal.engine import reader
from esb.message import iso, utcnow
from esb.process.definition import Process
from esb.process.engine.branches import Fork, steps_of
from esb.process.engine.records import business_keys
from esb.process.engine.store import ENDED, ProcessStore
from esb.process.engine.tables import process_branches, process_instances, process_keys
from esb.process.engine.undo import OPEN
from esb.process.steps import ForeachStep, ParallelStep, StepBase

#: The most instances one query returns (an MSISDN may have had several orders).
MAX_LIMIT = 100


@dataclass(frozen=True)
class ComponentStatus:
    """One branch of an instance: a component order of a bundle (foreach) or a parallel branch."""

    id: str
    """The foreach item's key (``<order id>-<n>``), else the branch's path."""
    step_name: str
    """The ``foreach`` or ``parallel`` step the branch belongs to."""
    item: Any
    """The foreach item as it stands now (replies written into it included); None for a parallel branch."""
    state: str | None
    """The sub-order's TMF state (``machine`` of the step), None before its first ``set_state``."""
    status: str
    """running, compensating, cancelling, done, failed or cancelled."""
    step: str | None
    """The step the branch is at; None once it ended."""


@dataclass(frozen=True)
class OrderStatus:
    """One instance as a status query sees it."""

    instance_id: str
    process: str
    version: int
    keys: dict[str, str]
    """Its business keys now (order_id, msisdn once RIM reserved one...)."""
    state: str
    """The TMF state (ProductOrder: acknowledged, inProgress, completed, partial, failed...)."""
    status: str
    """As ``esb process list`` shows it: running, waiting, stuck, alert, compensating, cancelling, an end."""
    step: str | None
    """The top-level step it is at (a foreach's name while its components run); None once it ended."""
    created_at: datetime
    updated_at: datetime
    error: str | None
    components: list[ComponentStatus] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """The status as plain data (times in ISO 8601 UTC), for a message body or ``--json``."""
        found = asdict(self)
        found["created_at"] = iso(self.created_at)
        found["updated_at"] = iso(self.updated_at)
        return found


_t, _k, _b = process_instances.c, process_keys.c, process_branches.c
#: The statements, built once (building SQLAlchemy Core statements per call was most of a query's time).
_BY_KEY = (
    sa.select(
        _t.id,
        _t.definition_hash,
        _t.state,
        _t.status,
        _t.position,
        _t.data,
        _t.error,
        _t.wake_at,
        _t.created_at,
        _t.updated_at,
    )
    .select_from(process_keys.join(process_instances, _t.id == _k.instance_id))
    .where(
        _k.process == sa.bindparam("process"),
        _k.name == sa.bindparam("name"),
        _k.value == sa.bindparam("value"),
    )
    .order_by(_t.updated_at.desc(), _t.id.desc())
    .limit(sa.bindparam("limit"))
)
_BRANCHES = (
    sa.select(_b.instance_id, _b.path, _b.parent, _b.item_key, _b.item, _b.position, _b.status, _b.state)
    .where(_b.instance_id.in_(sa.bindparam("ids", expanding=True)))
    .order_by(_b.instance_id, _b.parent, _b.idx)
)


def shown_status(status: str, wake_at: datetime | None, now: datetime) -> str:
    """The status people see: ``waiting`` for a running instance that is not due (a timer, a reply)."""
    if status == "running" and (wake_at is None or wake_at > now):
        return "waiting"
    return status


def order_status(
    store: ProcessStore,
    process: str,
    key: str,
    value: str,
    *,
    limit: int = 10,
    now: datetime | None = None,
) -> list[OrderStatus]:
    """Return the instances of ``process`` whose business key ``key`` is ``value``, newest update first.

    An empty list means no such order (an answer, not an error). ``limit`` (1 to 100) caps how many.
    """
    if not 1 <= limit <= MAX_LIMIT:
        raise ConfigError(f"status query limit: expected 1 to {MAX_LIMIT}, got {limit}")
    if not value:
        raise ConfigError(f"status query: no value for business key {key!r}")
    now = now or utcnow()
    with store.errors("status query"), reader(store.engine).connect() as conn:
        rows = conn.execute(_BY_KEY, {"process": process, "name": key, "value": value, "limit": limit}).all()
        if not rows:
            return []
        branch_rows = conn.execute(_BRANCHES, {"ids": [r.id for r in rows]}).all()
        definitions = {r.definition_hash: store.definition(conn, r.definition_hash) for r in rows}
    by_instance: dict[str, list[Any]] = {}
    for branch in branch_rows:
        by_instance.setdefault(branch.instance_id, []).append(branch)
    return [
        _status(process, row, definitions[row.definition_hash], by_instance.get(row.id, []), now)
        for row in rows
    ]


def _status(process: str, row: Any, definition: Process, branches: list[Any], now: datetime) -> OrderStatus:
    ended = row.status in ENDED
    return OrderStatus(
        instance_id=row.id,
        process=process,
        version=definition.version,
        keys=business_keys(definition, row.data, row.state),
        state=row.state,
        status=shown_status(row.status, row.wake_at, now),
        step=None if ended else _step_at(definition.steps, row.position),
        created_at=row.created_at,
        updated_at=row.updated_at,
        error=row.error,
        components=[_component(definition, branch) for branch in branches],
    )


def _component(definition: Process, branch: Any) -> ComponentStatus:
    fork = next((s for s in definition.steps if s.name == branch.parent), None)
    step: str | None = None
    if branch.status in OPEN and isinstance(fork, ForeachStep | ParallelStep):
        step = _step_at(_branch_steps(fork, branch), branch.position)
    return ComponentStatus(
        id=branch.item_key if branch.item_key is not None else branch.path,
        step_name=branch.parent,
        item=branch.item,
        state=branch.state,
        status=branch.status,
        step=step,
    )


def _branch_steps(fork: Fork, branch: Any) -> list[StepBase]:
    """The steps of ``branch`` (an unknown parallel branch has none)."""
    try:
        return list(steps_of(fork, branch))
    except StopIteration:
        return []


def _step_at(steps: list[Any], position: int) -> str | None:
    """The name of the step at ``position``; None past the end."""
    return str(steps[position].name) if 0 <= position < len(steps) else None
