"""``validate: product_order.v1``: validate the body against a canonical schema."""

from __future__ import annotations

from pydantic import Field

from esb.config.language import Strict
from esb.config.steps.kind import BuildContext, LintContext, PathKey, Processor, StepKind


class ValidateStep(Strict):
    """Validate the body against a canonical schema (``product_order.v1``); a violation is permanent."""

    validate_: str = Field(
        alias="validate", description="canonical schema name under canonical_model/, e.g. product_order.v1"
    )


def build(step: ValidateStep, ctx: BuildContext) -> Processor:
    """Return the processor validating with the schema's compiled validator."""
    from esb.processors.basic import SchemaValidator  # imported when a route is built

    return SchemaValidator(step.validate_, ctx.project.model.validator(step.validate_))


def lint(step: ValidateStep, path: PathKey, ctx: LintContext) -> None:
    """The schema must exist."""
    ctx.check_schema(step.validate_, (*path, "validate"))


KIND = StepKind("validate", ValidateStep, build, lint, order=20)
