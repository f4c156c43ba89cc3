"""``filter: <expression>``: keep the message only when the expression is truthy."""

from __future__ import annotations

from esb.config.language import Expression, Strict
from esb.config.steps.kind import BuildContext, LintContext, PathKey, Processor, StepKind
from esb.expressions import Expression as Compiled


class FilterStep(Strict):
    """Keep the message only when the expression is truthy; otherwise it ends as ``filtered``."""

    filter: Expression


def build(step: FilterStep, ctx: BuildContext) -> Processor:
    """Return the filter."""
    from esb.processors.basic import MessageFilter  # imported when a route is built

    return MessageFilter(Compiled(step.filter, ctx.where("filter")))


def lint(step: FilterStep, path: PathKey, ctx: LintContext) -> None:
    """The expression must parse."""
    ctx.check_expression(step.filter, (*path, "filter"))


KIND = StepKind("filter", FilterStep, build, lint, order=30)
