"""A frame: where a run of steps stands, in the instance's own list or in one branch of a parallel/foreach.

Step kinds run on a frame and write through :meth:`Frames.move` and :meth:`Frames.fail`, so the same
code serves both: at the top level a move writes the instance's columns; in a branch it writes the
branch row (its position, item, sub-order state, ``wake_at``) and wakes the instance, which picks the
next due branch. Every write is guarded by the instance's fence.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from esb.expressions import Expression
from esb.process.definition import Process
from esb.process.engine.records import business_keys, view, with_value
from esb.process.engine.store import Claim
from esb.process.engine.tables import process_branches
from esb.process.steps import ForeachStep, StepBase

if TYPE_CHECKING:
    from esb.process.engine.runner import Runner

_KEEP: Any = object()
"""A value left unchanged by :meth:`Frames.move`."""


@dataclass(frozen=True)
class Frame:
    """The step list being run, its position and attempt, and the state its ``set_state`` moves."""

    row: Any
    definition: Process
    steps: Sequence[StepBase]
    position: int
    attempt: int
    state: str | None
    machine: str
    branch: Any = None
    own_state: bool = False

    @property
    def prefix(self) -> str:
        """The path of the branch with a dot (``components[C1].``), empty at the top level."""
        return "" if self.branch is None else f"{self.branch.path}."

    def path(self, step: StepBase) -> str:
        """The step path of ``step`` in this frame (what idempotency keys and step rows use)."""
        return self.prefix + step.name

    @property
    def item(self) -> Any:
        """The branch's item (foreach), else None."""
        return None if self.branch is None else self.branch.item

    def keys(self) -> dict[str, str]:
        """The instance's business keys now."""
        return business_keys(self.definition, self.row.data, self.row.state)

    def view(self) -> dict[str, Any]:
        """``{data, keys, state, item}``: what expressions and request transforms read.

        In a branch with a ``machine``, ``state`` is the branch's sub-order's; else the instance's.
        """
        found = view(self.row.data, self.keys(), self.state or self.row.state)
        found["item"] = self.item
        return found


def top(row: Any, definition: Process) -> Frame:
    """The frame of the instance's own step list."""
    return Frame(row, definition, definition.steps, row.position, row.attempt, row.state, definition.machine)


def items_path(step: ForeachStep) -> str | None:
    """The data field a foreach's items come from when it is a plain ``data.a.b`` path (written back)."""
    text = step.foreach.items
    parts = text.split(".")
    if parts[0] != "data" or len(parts) < 2 or not all(p.isidentifier() for p in parts[1:]):
        return None
    return ".".join(parts[1:])


def item_key(step: ForeachStep, item: Any, index: int) -> str:
    """The stable name of an item (``foreach.key`` over ``{item}``, else its position)."""
    if step.foreach.key is None:
        return str(index)
    value = Expression(step.foreach.key, f"{step.name}.foreach.key").search({"item": item})
    return str(index) if value is None else str(value)


class Frames:
    """Writes of a frame, through the runner's store and clock."""

    def __init__(self, runner: Runner) -> None:
        self.runner = runner

    def move(
        self,
        conn: sa.Connection,
        claim: Claim,
        frame: Frame,
        *,
        position: int | None = None,
        attempt: int = 0,
        wake_at: datetime | None = _KEEP,
        state: str | None = _KEEP,
        item: Any = _KEEP,
        data: Any = _KEEP,
        status: str = _KEEP,
    ) -> Any:
        """Write the frame's new position (default: unchanged), attempt, due time and what changed.

        Returns the instance's data as written (a foreach item's change is written back into its list).
        """
        now = self.runner.clock()
        due = now if wake_at is _KEEP else wake_at
        where = frame.position if position is None else position
        ahead = (
            self.runner.lease_ahead(claim, frame.steps[where])
            if wake_at is _KEEP and where < len(frame.steps)
            else {}
        )
        if frame.branch is None:
            values: dict[str, Any] = {"position": where, "attempt": attempt, "wake_at": due, **ahead}
            values.update(
                {k: v for k, v in (("state", state), ("data", data), ("status", status)) if v is not _KEEP}
            )
            self.runner.store.guard(conn, claim, **values)
            return frame.row.data if data is _KEEP else data
        branch: dict[str, Any] = {"position": where, "attempt": attempt, "wake_at": due}
        instance: dict[str, Any] = {"wake_at": now, **ahead}
        if state is not _KEEP:
            (branch if frame.own_state else instance)["state"] = state
        if status is not _KEEP:
            branch["status"] = status
        if data is not _KEEP:
            instance["data"] = data
        if item is not _KEEP:
            branch["item"] = item
            written = self._write_back(conn, frame, item, instance.get("data", frame.row.data))
            if written is not None:
                instance["data"] = written
        self.runner.store.guard(conn, claim, **instance)
        b = process_branches.c
        conn.execute(
            process_branches.update()
            .where(b.instance_id == frame.row.id, b.path == frame.branch.path)
            .values(**branch)
        )
        return instance.get("data", frame.row.data)

    def _write_back(self, conn: sa.Connection, frame: Frame, item: Any, data: Any) -> Any:
        """The data with the foreach's items list holding the branch's new item (None: not a plain path)."""
        parent = next(s for s in frame.definition.steps if s.name == frame.branch.parent)
        if not isinstance(parent, ForeachStep) or (path := items_path(parent)) is None:
            return None
        b = process_branches.c
        rows = conn.execute(
            sa.select(b.path, b.item)
            .where(b.instance_id == frame.row.id, b.parent == parent.name)
            .order_by(b.idx)
        ).all()
        items = [item if r.path == frame.branch.path else r.item for r in rows]
        return with_value(data, path, items)

    def fail(self, conn: sa.Connection, claim: Claim, frame: Frame, error: str) -> None:
        """The frame's step failed: the instance (top level) or the branch starts undoing its done steps."""
        now = self.runner.clock()
        if frame.branch is None:
            self.runner.store.guard(conn, claim, status="compensating", wake_at=now, error=error)
            return
        self.runner.store.guard(conn, claim, wake_at=now)
        b = process_branches.c
        conn.execute(
            process_branches.update()
            .where(b.instance_id == frame.row.id, b.path == frame.branch.path)
            .values(status="compensating", wake_at=now, error=error)
        )
