"""``split``: one message per element of a list (``split: body.items`` or ``{expr: ..., keep: ...}``)."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from esb.config.language import Expression, Strict, short_form
from esb.config.steps.kind import BuildContext, LintContext, PathKey, Processor, StepKind
from esb.expressions import Expression as Compiled


class SplitSpec(Strict):
    """Split one message into one message per element of a list."""

    expr: Expression = Field(description="JMESPath yielding the list to split, e.g. body.productOrderItem")
    keep: Expression | None = Field(
        default=None, description="JMESPath over {item, parent} building each part; default: the item"
    )


class SplitStep(Strict):
    """Split a message into parts (``split: body.items`` or ``split: {expr: ..., keep: ...}``)."""

    split: Annotated[SplitSpec, short_form("expr")] = Field(
        description="an expression (the list to split), or {expr, keep}"
    )


def build(step: SplitStep, ctx: BuildContext) -> Processor:
    """Return the splitter."""
    from esb.processors.routing import Splitter  # imported when a route is built

    keep = Compiled(step.split.keep, ctx.where("split.keep")) if step.split.keep else None
    return Splitter(Compiled(step.split.expr, ctx.where("split")), keep)


def lint(step: SplitStep, path: PathKey, ctx: LintContext) -> None:
    """The list and ``keep`` expressions must parse."""
    ctx.check_expression(step.split.expr, (*path, "split"))
    if step.split.keep is not None:
        ctx.check_expression(step.split.keep, (*path, "split", "keep"))


KIND = StepKind("split", SplitStep, build, lint, before_partition=False, order=50)
