"""``split``: one message per element of a list (``split: body.items`` or ``{expr: ..., keep: ...}``)."""

from __future__ import annotations

from typing import Any

from pydantic import Field, field_validator

from esb.config.language import Expression, Strict
from esb.expressions import Expression as Compiled
from esb.processors.routing import Splitter
from esb.steps.kind import BuildContext, LintContext, PathKey, Processor, StepKind


class SplitSpec(Strict):
    """Split one message into one message per element of a list."""

    expr: Expression = Field(description="JMESPath yielding the list to split, e.g. body.productOrderItem")
    keep: Expression | None = Field(
        default=None, description="JMESPath over {item, parent} building each part; default: the item"
    )


class SplitStep(Strict):
    """Split a message into parts (``split: body.items`` or ``split: {expr: ..., keep: ...}``)."""

    split: SplitSpec = Field(description="an expression (the list to split), or {expr, keep}")

    @field_validator("split", mode="before")
    @classmethod
    def _short_form(cls, value: Any) -> Any:
        return {"expr": value} if isinstance(value, str) else value


def build(step: SplitStep, ctx: BuildContext) -> Processor:
    """Return the splitter."""
    keep = Compiled(step.split.keep, ctx.where("split.keep")) if step.split.keep else None
    return Splitter(Compiled(step.split.expr, ctx.where("split")), keep)


def lint(step: SplitStep, path: PathKey, ctx: LintContext) -> None:
    """The list and ``keep`` expressions must parse."""
    ctx.check_expression(step.split.expr, (*path, "split"))
    if step.split.keep is not None:
        ctx.check_expression(step.split.keep, (*path, "split", "keep"))


KIND = StepKind("split", SplitStep, build, lint, before_partition=False)
