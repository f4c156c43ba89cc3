"""Checking a process's states against the TM Forum state machines of :mod:`esb.model.states`.

The states an instance can be in before each step are followed through the flow (``goto`` included,
to a fixed point); then every ``set_state`` must be a transition the machine allows from each of them,
and so must the transitions the definition implies:

- a step that can fail (call, send, await, cancel, parallel, foreach) may move its instance, or its
  branch's sub-order, to ``failed``;
- before the point of no return (every step, without one) a cancel request moves the instance to
  ``assessingCancellation`` (or ``cancelled`` on a machine without it, such as TMF641's);
- with ``on_partial: complete`` somewhere, the ``set_state: completed`` that ends the instance becomes
  ``partial`` when a branch failed.

A parallel or foreach step with a ``machine`` gives each branch a sub-order of its own (TMF641 service
orders of a product order), created at the branch's first ``set_state``; without one, a branch's
``set_state`` moves the instance itself.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from esb.config.yamlpos import PathKey
from esb.exceptions import StateTransitionError
from esb.model.states import MACHINES, Machine, check_transition, machine
from esb.process.definition import Process, walk
from esb.process.steps import (
    END,
    AwaitStep,
    CallStep,
    CancelStep,
    ForeachStep,
    GotoStep,
    ParallelStep,
    SendStep,
    SetStateStep,
    StepBase,
    step_kind,
)
from esb.registry import did_you_mean

States = frozenset[str | None]
"""The states an instance (or sub-order) may be in; None: the sub-order is not created yet."""
Add = Callable[[PathKey, str], None]
_MAY_FAIL = (CallStep, SendStep, AwaitStep, CancelStep, ParallelStep, ForeachStep)


class StateFlow:
    """Follows the possible states through a process and reports the transitions the machine refuses."""

    def __init__(self, process: Process, add: Add) -> None:
        self.process = process
        self._add = add
        self._reported: set[tuple[PathKey, str]] = set()
        self.instance = machine(process.machine)
        top = [s.name for s in process.steps]
        cancel = process.on_cancel
        if cancel is None:
            self.cancellable = 0
        elif cancel.point_of_no_return in top:
            self.cancellable = top.index(cancel.point_of_no_return) + 1  # cancel refused once it is done
        else:
            self.cancellable = len(top)
        self.partial_possible = _has_partial_complete(process.steps)

    def add(self, path: PathKey, problem: str) -> None:
        """Report ``problem`` once."""
        if (path, problem) not in self._reported:
            self._reported.add((path, problem))
            self._add(path, problem)

    def run(self) -> None:
        """Check the initial state, then the whole flow."""
        initial = self.process.initial_state
        try:
            check_transition(self.instance.name, None, initial)
        except StateTransitionError as exc:
            self.add(("initial_state",), f"{exc}: start in one of them")
            return
        self.flow(self.process.steps, ("steps",), self.instance, frozenset({initial}), top=True, report=True)

    def flow(
        self, steps: Sequence[StepBase], base: PathKey, m: Machine, entry: States, *, top: bool, report: bool
    ) -> States:
        """Return the states after ``steps`` entered in ``entry``; ``report``: add the findings."""
        if not steps:
            return entry
        names = {s.name: i for i, s in enumerate(steps)}
        before: list[States] = [frozenset() for _ in steps]
        before[0] = entry
        after: States = frozenset()
        changed = True
        while changed:  # the state sets only grow, and are bounded by the machine's states: this ends
            changed = False
            for index, step in enumerate(steps):
                out = self.step(step, (*base, index), m, before[index], report=False)
                for nxt in _successors(step, index, names):
                    if nxt >= len(steps):
                        changed |= not out <= after
                        after = after | out
                    elif not out <= before[nxt]:
                        before[nxt] = before[nxt] | out
                        changed = True
        if report:
            for index, step in enumerate(steps):
                self.step(step, (*base, index), m, before[index], report=True)
                self.implied(step, index, (*base, index), m, before[index], top=top)
        return after

    def step(self, step: StepBase, path: PathKey, m: Machine, states: States, *, report: bool) -> States:
        """Return the states after ``step``; ``report``: check its transitions."""
        if not states:
            return states  # unreachable: its own finding
        if isinstance(step, SetStateStep):
            target = step.set_state.state
            if report:
                for state in sorted(states, key=str):
                    self.transition(m, state, target, (*path, "set_state"))
            return frozenset({target}) if target in m.states else states
        if isinstance(step, ParallelStep | ForeachStep):
            return self.branches(step, path, m, states, report=report)
        return states

    def branches(
        self, step: ParallelStep | ForeachStep, path: PathKey, m: Machine, states: States, *, report: bool
    ) -> States:
        """A branch with a machine follows its own sub-order; else it moves the instance."""
        if isinstance(step, ParallelStep):
            spec_machine = step.parallel.machine
            lists = [
                (b.steps, (*path, "parallel", "branches", i, "steps"))
                for i, b in enumerate(step.parallel.branches)
            ]
            key: PathKey = (*path, "parallel", "machine")
        else:
            spec_machine = step.foreach.machine
            lists = [(step.foreach.steps, (*path, "foreach", "steps"))]
            key = (*path, "foreach", "machine")
        if spec_machine is not None:
            if spec_machine not in MACHINES:
                if report:
                    hint = did_you_mean(spec_machine, list(MACHINES))
                    self.add(
                        key, f"unknown state machine {spec_machine!r}{hint}; known: {', '.join(MACHINES)}"
                    )
                return states
            own = machine(spec_machine)
            for steps, base in lists:
                self.flow(steps, base, own, frozenset({None}), top=False, report=report)
            return states
        out = states
        for steps, base in lists:
            out = out | self.flow(steps, base, m, states, top=False, report=report)
        return out

    def transition(self, m: Machine, state: str | None, target: str, path: PathKey, why: str = "") -> None:
        """Report ``state -> target`` when ``m`` does not allow it."""
        try:
            check_transition(m.name, state, target)
        except StateTransitionError as exc:
            self.add(path, f"{why}{exc}: set a state that allows it first, or change this one")

    def implied(
        self, step: StepBase, index: int, path: PathKey, m: Machine, states: States, *, top: bool
    ) -> None:
        """The transitions the definition implies: failure, cancellation, partial completion."""
        known = sorted((s for s in states if s is not None and s in m.states), key=str)
        if isinstance(step, _MAY_FAIL) and "failed" in m.states and (top or m is not self.instance):
            for state in (s for s in known if m.allowed(s)):  # an ended instance fails no more
                self.transition(m, state, "failed", path, f"{step_kind(step)} {step.name!r} can fail: ")
        if not top:
            return
        if index < self.cancellable:
            target = "assessingCancellation" if "assessingCancellation" in m.states else "cancelled"
            for state in known:
                if m.allowed(state):  # an ended instance is not cancelled
                    self.transition(m, state, target, path, f"step {step.name!r} can be cancelled: ")
        if isinstance(step, SetStateStep) and step.set_state.state == "completed" and self.partial_possible:
            for state in known:
                self.transition(
                    m, state, "partial", (*path, "set_state"), "on_partial: complete ends it partial: "
                )


def _successors(step: StepBase, index: int, names: dict[str, int]) -> list[int]:
    if isinstance(step, GotoStep):
        target = len(names) if step.goto.step == END else names.get(step.goto.step)
        jump = [] if target is None else [target]
        return jump if step.goto.when is None else [*jump, index + 1]
    return [index + 1]


def _has_partial_complete(steps: Sequence[StepBase]) -> bool:
    """True when a parallel or foreach step anywhere lets the instance complete partially."""
    for _, step in walk(steps):
        if isinstance(step, ParallelStep) and step.parallel.on_partial == "complete":
            return True
        if isinstance(step, ForeachStep) and step.foreach.on_partial == "complete":
            return True
    return False


def check_states(process: Process, add: Add) -> None:
    """Report every state or implied transition of ``process`` that its machines do not allow."""
    StateFlow(process, add).run()
