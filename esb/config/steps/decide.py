"""``decide``: look the message up in a decision table (transforms/tables/) and write the decision."""

from __future__ import annotations

from pydantic import Field

from esb.config.language import Expression, Strict
from esb.config.steps.kind import BuildContext, LintContext, PathKey, Processor, StepKind
from esb.expressions import Expression as Compiled


class DecideSpec(Strict):
    """Which table, how its inputs are read from the message, and where the decision goes."""

    table: str = Field(description="a decision table: transforms/tables/<table>.yaml")
    input: Expression | dict[str, Expression] = Field(
        description="a JMESPath expression giving the object of inputs, or input name: expression"
    )
    into: str = Field(description="the body field (dotted path) that receives the decision")
    required: bool = Field(
        default=True, description="when no rule matches: dead-letter the message (true) or write null"
    )


class DecideStep(Strict):
    """Decide with a table and write the decision into the body (see DecideSpec)."""

    decide: DecideSpec = Field(description="table, input, into, required")


def build(step: DecideStep, ctx: BuildContext) -> Processor:
    """Return the decider (the table is loaded when the route is built)."""
    from esb.processors.decide import Decider  # imported when a route is built

    spec = step.decide
    where = ctx.where("decide.input")
    inputs = (
        {name: Compiled(text, f"{where}.{name}") for name, text in spec.input.items()}
        if isinstance(spec.input, dict)
        else Compiled(spec.input, where)
    )
    return Decider(ctx.project.tables.get(spec.table), inputs, spec.into, required=spec.required)


def lint(step: DecideStep, path: PathKey, ctx: LintContext) -> None:
    """The table must exist and load; the input expressions must parse and name the table's inputs."""
    spec = step.decide
    table = ctx.check_table(spec.table, (*path, "decide", "table"))
    if isinstance(spec.input, str):
        ctx.check_expression(spec.input, (*path, "decide", "input"))
        return
    for name, text in spec.input.items():
        ctx.check_expression(text, (*path, "decide", "input", name))
        if table is not None and name not in {c.name for c in table.inputs}:
            ctx.add(
                (*path, "decide", "input", name),
                f"table {spec.table!r} has no input {name!r}; its inputs: {table.input_names()}",
            )
    if table is not None:
        missing = [c.name for c in table.inputs if c.name not in spec.input]
        if missing:
            ctx.add(
                (*path, "decide", "input"),
                f"no expression for input(s) {', '.join(missing)} of table {spec.table!r} (they would match "
                "only '-' cells): add them",
            )


KIND = StepKind("decide", DecideStep, build, lint, before_partition=False, order=75)
