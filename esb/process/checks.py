"""The checks of one process definition on its own (no project needed), each finding ``file:line``.

Names: duplicate step names; ``compensate``, ``point_of_no_return``, ``goto`` and ``reply_to`` naming
steps that do not exist (or stand where they cannot be reached); unused compensations; unreachable steps
(after an unconditional ``goto`` and never jumped to). Waiting: an await without a deadline, a
correlation on a key the process does not have, a join count larger than the branches, a compensation
on a one-way send whose reply is never awaited. States: :mod:`esb.process.statecheck`.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from esb.config.yamlpos import PathKey, format_path
from esb.expressions import validate_expression
from esb.process.definition import Process
from esb.process.loader import Definition
from esb.process.statecheck import check_states
from esb.process.steps import (
    END,
    AwaitStep,
    CancelStep,
    ForeachStep,
    GotoStep,
    JoinCount,
    ParallelStep,
    SendStep,
    SetStateStep,
    StepBase,
    WaitStep,
    step_kind,
)
from esb.registry import did_you_mean

StepList = tuple[PathKey, Sequence[StepBase]]


def step_lists(steps: Sequence[StepBase], base: PathKey = ("steps",)) -> Iterator[StepList]:
    """Yield every list of steps of a process with its YAML path, the top-level list first."""
    yield base, steps
    for index, step in enumerate(steps):
        here = (*base, index)
        if isinstance(step, ParallelStep):
            for b, branch in enumerate(step.parallel.branches):
                yield from step_lists(branch.steps, (*here, "parallel", "branches", b, "steps"))
        elif isinstance(step, ForeachStep):
            yield from step_lists(step.foreach.steps, (*here, "foreach", "steps"))


def located_steps(process: Process) -> Iterator[tuple[PathKey, StepBase]]:
    """Yield every step of the flow (not the compensations) with its YAML path."""
    for base, steps in step_lists(process.steps):
        for index, step in enumerate(steps):
            yield (*base, index), step


class DefinitionChecker:
    """Collects the findings about one definition."""

    def __init__(self, definition: Definition) -> None:
        self.definition = definition
        self.process = definition.process
        self.findings: list[str] = []
        self.steps = dict(_first_by_name(located_steps(self.process)))
        self.by_path = dict(located_steps(self.process))
        self.compensations = {s.name: ("compensations", i) for i, s in enumerate(self.process.compensations)}

    def add(self, path: PathKey, problem: str) -> None:
        """Record a finding at ``path`` of the definition's file."""
        self.findings.append(f"{self.definition.doc.where(path)}: {format_path(path)}: {problem}")

    def run(self) -> list[str]:
        """Run every check; return the findings."""
        self.check_names()
        self.check_expressions()
        for base, steps in step_lists(self.process.steps):
            self.check_list(base, steps)
        for path, step in located_steps(self.process):
            self.check_step(path, step)
        self.check_on_cancel()
        check_states(self.process, self.add)
        return self.findings

    def check_names(self) -> None:
        """Step names (flow, compensations and after_undo) are unique in the process."""
        seen: dict[str, PathKey] = {}
        named = [*located_steps(self.process)]
        named += [(("compensations", i), s) for i, s in enumerate(self.process.compensations)]
        named += [(("after_undo", i), s) for i, s in enumerate(self.process.after_undo)]
        for path, step in named:
            if step.name == END:
                self.add((*path, "name"), f"{END!r} is reserved (goto: {END} leaves a list): rename the step")
            if step.name in seen:
                self.add(
                    (*path, "name"),
                    f"duplicate step name {step.name!r} (also {format_path(seen[step.name])}): rename one",
                )
            seen.setdefault(step.name, path)
        used = {s.compensate for _, s in located_steps(self.process) if s.compensate}
        for name, path in self.compensations.items():
            if name not in used:
                self.add(
                    (*path, "name"),
                    f"compensation {name!r} is never used: name it in a compensate: or remove it",
                )

    def check_expressions(self) -> None:
        """Every JMESPath expression parses."""
        for key, text in self.process.business_keys.items():
            self.check_expression(text, ("business_keys", key))
        for path, step in located_steps(self.process):
            for sub, text in _expressions(step):
                self.check_expression(text, (*path, *sub))
        for index, rule in enumerate(self.process.ignore):
            if rule.when:
                self.check_expression(rule.when, ("ignore", index, "when"))

    def check_expression(self, text: str, path: PathKey) -> None:
        """An expression must be valid JMESPath."""
        problem = validate_expression(text)
        if problem:
            self.add(path, f"invalid JMESPath expression {text!r}: {problem}")

    def check_list(self, base: PathKey, steps: Sequence[StepBase]) -> None:
        """Jumps stay in their list; steps after an unconditional goto must be jumped to."""
        names = {s.name: i for i, s in enumerate(steps)}
        targets: set[str] = set()
        for index, step in enumerate(steps):
            if isinstance(step, GotoStep):
                targets.add(step.goto.step)
                self.check_target(step.goto.step, names, (*base, index, "goto", "step"), "goto")
            if isinstance(step, AwaitStep) and step.await_.reply_to is not None:
                self.check_reply_to(step, steps[:index], (*base, index, "await", "reply_to"))
        reachable = True
        for index, step in enumerate(steps):
            reachable = reachable or step.name in targets
            if not reachable:
                self.add(
                    (*base, index),
                    f"step {step.name!r} is unreachable (after an unconditional goto and never jumped to): "
                    "remove it or jump to it",
                )
                reachable = True  # one finding per run of unreachable steps
                continue
            if isinstance(step, GotoStep) and step.goto.when is None:
                reachable = False

    def check_target(self, name: str, names: dict[str, int], path: PathKey, what: str) -> None:
        """A jump names a step of its own list (or ``end``)."""
        if name in names or name == END:
            return
        if name in self.steps:
            self.add(path, f"{what} {name!r} is in another list of steps: a {what} jumps within its own list")
        else:
            self.add(path, f"unknown step {name!r}{did_you_mean(name, list(names))}: fix the name")

    def check_reply_to(self, step: AwaitStep, before: Sequence[StepBase], path: PathKey) -> None:
        """``reply_to`` names a send step earlier in the same list."""
        name = step.await_.reply_to
        assert name is not None
        earlier = {s.name: s for s in before}
        if name not in earlier:
            hint = did_you_mean(name, [s.name for s in before if isinstance(s, SendStep)])
            self.add(
                path, f"reply_to {name!r} is not a send step before this await in its list{hint}: fix it"
            )
        elif not isinstance(earlier[name], SendStep):
            self.add(path, f"reply_to {name!r} is not a send step: an await answers a send")

    def check_step(self, path: PathKey, step: StepBase) -> None:
        """The per-step checks: compensation, deadline, correlation key, join count."""
        if step.compensate is not None:
            self.check_compensate(path, step)
        if isinstance(step, AwaitStep):
            spec = step.await_
            if spec.deadline is None:
                self.add(
                    (*path, "await"),
                    "an await without a deadline can wait forever: add deadline: (e.g. 30m) and on_timeout:",
                )
            if spec.correlate.key not in self.process.business_keys:
                known = list(self.process.business_keys)
                self.add(
                    (*path, "await", "correlate", "key"),
                    f"unknown business key {spec.correlate.key!r}{did_you_mean(spec.correlate.key, known)}: "
                    f"correlate on one of {', '.join(known)}",
                )
            if spec.on_timeout.action == "retry" and spec.reply_to is None:
                self.add(
                    (*path, "await", "on_timeout"),
                    "on_timeout retry sends reply_to again, and this await has none: name the send step "
                    "in reply_to, or choose compensate, fail or alert",
                )
            if spec.correlate.item is not None:
                self.check_item(path, spec.correlate.item)
        if isinstance(step, ParallelStep) and isinstance(step.parallel.join, JoinCount):
            count, branches = step.parallel.join.count, len(step.parallel.branches)
            if count > branches:
                self.add(
                    (*path, "parallel", "join", "count"),
                    f"join count {count} is larger than the {branches} branches: it can never be met",
                )

    def check_item(self, path: PathKey, item: str) -> None:
        """``correlate.item`` picks a foreach branch by its key: the await stands in a foreach with one."""
        where = (*path, "await", "correlate", "item")
        if "foreach" not in path:
            self.add(where, "correlate.item picks a foreach branch, and this await is in none: remove it")
            return
        owner = self.by_path[path[: len(path) - path[::-1].index("foreach") - 1]]
        if isinstance(owner, ForeachStep) and owner.foreach.key is None:
            self.add(
                where,
                f"correlate.item is matched against the item's key, and foreach {owner.name!r} has none "
                "(its items are numbered): add foreach.key (e.g. item.id)",
            )

    def check_compensate(self, path: PathKey, step: StepBase) -> None:
        """``compensate`` names a compensation, on a step that does something a reply confirms."""
        name = step.compensate
        assert name is not None
        where = (*path, "compensate")
        if name not in self.compensations:
            hint = did_you_mean(name, list(self.compensations))
            self.add(
                where, f"unknown compensation {name!r}{hint}: add it under compensations: or fix the name"
            )
        if isinstance(step, SetStateStep | GotoStep | WaitStep | CancelStep):
            self.add(where, f"a {step_kind(step)} step changes nothing in another system: remove compensate")
        elif isinstance(step, SendStep) and not self._awaited(step.name):
            self.add(
                where,
                f"{step.name!r} sends one way and no await has reply_to: {step.name}: nothing tells whether "
                "it was done, so it cannot be compensated; await its reply or use call",
            )

    def _awaited(self, name: str) -> bool:
        return any(
            isinstance(s, AwaitStep) and s.await_.reply_to == name for _, s in located_steps(self.process)
        )

    def check_on_cancel(self) -> None:
        """The point of no return is a step of the top-level list."""
        cancel = self.process.on_cancel
        if cancel is None or cancel.point_of_no_return is None:
            return
        name, path = cancel.point_of_no_return, ("on_cancel", "point_of_no_return")
        top = [s.name for s in self.process.steps]
        if name in top:
            return
        if name in self.steps:
            self.add(path, f"point_of_no_return {name!r} is inside a branch: name a top-level step")
        else:
            self.add(path, f"unknown step {name!r}{did_you_mean(name, top)}: name a top-level step")


def _first_by_name(items: Iterator[tuple[PathKey, StepBase]]) -> Iterator[tuple[str, PathKey]]:
    seen: set[str] = set()
    for path, step in items:
        if step.name not in seen:
            seen.add(step.name)
            yield step.name, path


def _expressions(step: StepBase) -> list[tuple[PathKey, str]]:
    """The JMESPath expressions of one step, with their path below the step."""
    out: list[tuple[PathKey, str]] = []
    if isinstance(step, AwaitStep):
        out.append((("await", "correlate", "match"), step.await_.correlate.match))
        if step.await_.correlate.item:
            out.append((("await", "correlate", "item"), step.await_.correlate.item))
        if step.await_.when:
            out.append((("await", "when"), step.await_.when))
        if step.await_.success:
            out.append((("await", "success"), step.await_.success))
    elif isinstance(step, WaitStep) and step.wait.until:
        out.append((("wait", "until"), step.wait.until))
    elif isinstance(step, ForeachStep):
        out.append((("foreach", "items"), step.foreach.items))
        if step.foreach.key:
            out.append((("foreach", "key"), step.foreach.key))
        if step.foreach.fatal:
            out.append((("foreach", "fatal"), step.foreach.fatal))
    elif isinstance(step, GotoStep) and step.goto.when:
        out.append((("goto", "when"), step.goto.when))
    elif isinstance(step, CancelStep):
        out.append((("cancel", "value"), step.cancel.value))
    return out


def check_definition(definition: Definition) -> list[str]:
    """Return the findings about one definition on its own."""
    return DefinitionChecker(definition).run()
