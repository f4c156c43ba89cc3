"""``log``: write a log line about the message (never its body)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from esb.config.language import Expression, Strict, short_form
from esb.config.steps.kind import BuildContext, LintContext, PathKey, Processor, StepKind
from esb.expressions import Expression as Compiled


class LogSpec(Strict):
    """Write a log line (never the body); ``fields`` are JMESPath expressions."""

    message: str = Field(description="the log line's text")
    level: Literal["debug", "info", "warning", "error"] = Field(default="info", description="log level")
    fields: dict[str, Expression] = Field(
        default_factory=dict, description="extra log fields: name: JMESPath over the message"
    )


class LogStep(Strict):
    """Log a line about the message."""

    log: Annotated[LogSpec, short_form("message")] = Field(
        description="the message text, or {message, level, fields}"
    )


def build(step: LogStep, ctx: BuildContext) -> Processor:
    """Return the log writer."""
    from esb.processors.basic import LogWriter  # imported when a route is built

    fields = {k: Compiled(v, ctx.where(f"log.{k}")) for k, v in step.log.fields.items()}
    return LogWriter(ctx.route_id, step.log.message, step.log.level, fields)


def lint(step: LogStep, path: PathKey, ctx: LintContext) -> None:
    """Every field expression must parse."""
    for name, text in step.log.fields.items():
        ctx.check_expression(text, (*path, "log", "fields", name))


KIND = StepKind("log", LogStep, build, lint, order=90)
