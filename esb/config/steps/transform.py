"""``transform: crm/siebel_order_to_canonical``: apply a mapping from transforms/."""

from __future__ import annotations

from pydantic import Field

from esb.config.language import Strict
from esb.config.steps.kind import BuildContext, LintContext, PathKey, Processor, StepKind


class TransformStep(Strict):
    """Apply a mapping from transforms/ (``crm/siebel_order_to_canonical``)."""

    transform: str = Field(description="a mapping under transforms/, e.g. crm/siebel_order_to_canonical")


def build(step: TransformStep, ctx: BuildContext) -> Processor:
    """Return the processor applying the compiled mapping."""
    from esb.processors.basic import TransformStep as ApplyTransform  # imported when a route is built

    return ApplyTransform(ctx.project.transforms.get(step.transform))


def lint(step: TransformStep, path: PathKey, ctx: LintContext) -> None:
    """The transform must exist."""
    ctx.check_transform(step.transform, (*path, "transform"))


KIND = StepKind("transform", TransformStep, build, lint, order=10)
