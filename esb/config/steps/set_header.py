"""``set_header``: set headers from literals, or ``{expr: ...}`` for a JMESPath result."""

from __future__ import annotations

from pydantic import Field

from esb.config.language import Expression, Strict
from esb.config.steps.kind import BuildContext, LintContext, PathKey, Processor, StepKind
from esb.expressions import Expression as Compiled


class HeaderExpression(Strict):
    """A header value computed by a JMESPath expression instead of a literal."""

    expr: Expression


HeaderValue = str | int | float | bool | HeaderExpression


class SetHeaderStep(Strict):
    """Set headers: literal values, or ``{expr: ...}`` for a JMESPath result."""

    set_header: dict[str, HeaderValue] = Field(
        min_length=1, description="header name: a literal value, or {expr: JMESPath}"
    )


def build(step: SetHeaderStep, ctx: BuildContext) -> Processor:
    """Return the header setter."""
    from esb.processors.basic import HeaderSetter  # imported when a route is built

    values = step.set_header
    literals = {k: v for k, v in values.items() if not isinstance(v, HeaderExpression)}
    exprs = {
        k: Compiled(v.expr, ctx.where(f"set_header.{k}"))
        for k, v in values.items()
        if isinstance(v, HeaderExpression)
    }
    return HeaderSetter(literals, exprs)


def lint(step: SetHeaderStep, path: PathKey, ctx: LintContext) -> None:
    """Every header expression must parse."""
    for name, value in step.set_header.items():
        if isinstance(value, HeaderExpression):
            ctx.check_expression(value.expr, (*path, "set_header", name, "expr"))


KIND = StepKind("set_header", SetHeaderStep, build, lint, order=80)
