"""``parallel`` and ``foreach``: branches forked into ``process_branches``, run one step at a time, joined.

Forking writes one row per branch (a foreach item's path is ``<step>[<item key>]``, a parallel
branch's ``<step>.<branch>``), all due at once. Each tick runs the first due branch's next step on its
own frame (:mod:`.frame`), so the branches' waits overlap while one runner holds the instance. A branch
whose step fails undoes its own done steps and ends ``failed``. The join (``all``, ``any``, ``{count:
N}``) decides once enough branches ended: branches still running after an ``any``/``count`` join are
cancelled (their done steps undone); then all joined branches well is success, none is failure, some is
``on_partial`` (``complete`` goes on and the instance ends ``partial``; ``compensate`` and ``fail`` fail
the instance, which undoes every done step).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from esb.expressions import Expression, is_truthy
from esb.process.definition import Process
from esb.process.engine import undo
from esb.process.engine.frame import Frame, item_key, top
from esb.process.engine.records import DONE, FAILED, add_step, business_keys, view
from esb.process.engine.store import Claim
from esb.process.engine.tables import process_branches
from esb.process.steps import ForeachStep, JoinCount, ParallelStep, StepBase

if TYPE_CHECKING:
    from esb.process.engine.runner import Runner

Fork = ParallelStep | ForeachStep


def spec_of(step: Fork) -> Any:
    """The step's parallel or foreach spec (join, on_partial, machine)."""
    return step.parallel if isinstance(step, ParallelStep) else step.foreach


def steps_of(step: Fork, branch: Any) -> Sequence[StepBase]:
    """The steps a branch runs."""
    if isinstance(step, ForeachStep):
        return step.foreach.steps
    return next(b.steps for b in step.parallel.branches if f"{step.name}.{b.name}" == branch.path)


def load(conn: sa.Connection, instance_id: str, parent: str) -> list[Any]:
    """The branches of step ``parent``, in order."""
    b = process_branches.c
    query = (
        sa.select(process_branches).where(b.instance_id == instance_id, b.parent == parent).order_by(b.idx)
    )
    return list(conn.execute(query).all())


def tick(runner: Runner, claim: Claim, row: Any, definition: Process, step: Fork) -> bool:
    """Fork, run the next due branch's step, or join; True to go on at once."""
    with runner.store.begin("branches") as conn:
        rows = load(conn, row.id, step.name)
    if not rows:
        return _fork(runner, claim, row, definition, step)
    now = runner.clock()
    due = [r for r in rows if r.status in undo.OPEN and r.wake_at is not None and r.wake_at <= now]
    if due:
        return _run_branch(runner, claim, row, definition, step, due[0])
    return _join(runner, claim, row, definition, step, rows)


def _fork(runner: Runner, claim: Claim, row: Any, definition: Process, step: Fork) -> bool:
    frame = top(row, definition)
    if isinstance(step, ForeachStep):
        items = Expression(step.foreach.items, f"{step.name}.foreach.items").search(frame.view())
        if not isinstance(items, list):
            return runner.kinds.fail(
                claim, frame, step.name, f"foreach.items gave {type(items).__name__}, expected a list"
            )
        named: list[tuple[str, str | None, Any]] = [
            (f"{step.name}[{item_key(step, item, i)}]", item_key(step, item, i), item)
            for i, item in enumerate(items)
        ]
        if len({path for path, _, _ in named}) != len(named):
            return runner.kinds.fail(
                claim, frame, step.name, "foreach.key gives two items the same key: keys must be unique"
            )
    else:
        named = [(f"{step.name}.{b.name}", None, None) for b in step.parallel.branches]
    now = runner.clock()
    with runner.store.begin("fork") as conn:
        if not named:  # nothing to do: a join of no branches succeeds
            runner.frames.move(conn, claim, frame, position=frame.position + 1)
            add_step(conn, row.id, step.name, DONE, result={"well": 0, "of": 0})
            return True
        runner.store.guard(conn, claim, wake_at=now)
        conn.execute(
            process_branches.insert(),
            [
                {
                    "instance_id": row.id,
                    "path": path,
                    "parent": step.name,
                    "idx": i,
                    "item_key": key,
                    "item": item,
                    "position": 0,
                    "attempt": 0,
                    "status": "running",
                    "state": None,
                    "wake_at": now,
                    "error": None,
                }
                for i, (path, key, item) in enumerate(named)
            ],
        )
    return True


def _run_branch(runner: Runner, claim: Claim, row: Any, definition: Process, step: Fork, branch: Any) -> bool:
    if branch.status in ("compensating", "cancelling"):
        return undo.branch_step(runner, claim, row, definition, step, branch)
    steps = steps_of(step, branch)
    machine = spec_of(step).machine
    if branch.position >= len(steps):
        with runner.store.begin("branch") as conn:
            runner.store.guard(conn, claim, wake_at=runner.clock())
            b = process_branches.c
            conn.execute(
                process_branches.update()
                .where(b.instance_id == row.id, b.path == branch.path)
                .values(status="done", wake_at=None)
            )
        return True
    frame = Frame(
        row,
        definition,
        steps,
        branch.position,
        branch.attempt,
        branch.state if machine else row.state,
        machine or definition.machine,
        branch=branch,
        own_state=machine is not None,
    )
    return runner.kinds.run(claim, frame, steps[branch.position])


def _fatal(row: Any, definition: Process, step: Fork, rows: list[Any]) -> str | None:
    """Return the path of the first failed item the foreach's ``fatal`` holds for (None: none, or no
    ``fatal``)."""
    if not isinstance(step, ForeachStep) or step.foreach.fatal is None:
        return None
    check = Expression(step.foreach.fatal, f"{step.name}.foreach.fatal")
    keys = business_keys(definition, row.data, row.state)
    for branch in rows:
        if branch.status != "failed":
            continue
        found = view(row.data, keys, branch.state or row.state)
        found["item"] = branch.item
        if is_truthy(check.search(found)):
            return str(branch.path)
    return None


def _need(step: Fork, total: int) -> int:
    join = spec_of(step).join
    if isinstance(join, JoinCount):
        return min(join.count, total)
    return total if join == "all" else 1


def _join(runner: Runner, claim: Claim, row: Any, definition: Process, step: Fork, rows: list[Any]) -> bool:
    total, need = len(rows), _need(step, len(rows))
    well = sum(r.status == "done" for r in rows)
    running = [r for r in rows if r.status == "running"]
    still = [r for r in rows if r.status in undo.OPEN]
    joined = not still if spec_of(step).join == "all" else (well >= need or well + len(running) < need)
    with runner.store.begin("join") as conn:
        if joined and running:  # any / count decided: the rest are cancelled and undone
            b = process_branches.c
            conn.execute(
                process_branches.update()
                .where(b.instance_id == row.id, b.path.in_([r.path for r in running]))
                .values(status="cancelling", wake_at=runner.clock())
            )
            runner.store.guard(conn, claim, wake_at=runner.clock())
            return True
        if still:  # waiting for branches: the instance is due at the earliest branch's time
            wakes = [r.wake_at for r in still if r.wake_at is not None]
            runner.store.guard(conn, claim, wake_at=min(wakes) if wakes else None)
            return False
        frame = top(row, definition)
        result = {"well": well, "of": total, "needed": need}
        partial = 0 < well < need
        fatal = _fatal(row, definition, step, rows) if partial else None
        if fatal is not None:
            error = f"{well} of {total} branch(es) ended well, but {fatal} failed and it is fatal"
            runner.frames.fail(conn, claim, frame, f"step {step.name}: {error}")
            add_step(conn, row.id, step.name, FAILED, result=result, error=error)
            return True
        if well >= need or (partial and spec_of(step).on_partial == "complete"):
            runner.frames.move(conn, claim, frame, position=frame.position + 1)
            if partial:
                runner.store.guard(conn, claim, partial=True)
            add_step(conn, row.id, step.name, DONE, result=result)
            return True
        error = f"{well} of {total} branch(es) ended well; the join needs {need}"
        runner.frames.fail(conn, claim, frame, f"step {step.name}: {error}")
        add_step(conn, row.id, step.name, FAILED, result=result, error=error)
    return True
