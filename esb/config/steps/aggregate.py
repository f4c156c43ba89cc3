"""``aggregate``: group messages by key into one, released by size or by time.

It changes how a route runs (the messages before it are held, their deliveries settled when the aggregate
is delivered), so it stands only at the top level of a route, at most once: ``build_pipeline`` splits the
route there and hands the runner :func:`aggregator`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import Field

from esb.config.durations import Duration
from esb.config.language import Expression, Strict
from esb.config.steps.kind import BuildContext, LintContext, PathKey, Processor, StepKind
from esb.exceptions import ConfigError
from esb.expressions import Expression as Compiled

if TYPE_CHECKING:
    from esb.processors.aggregate import Aggregator


class AggregateSpec(Strict):
    """Group messages by key into one message, released by size or by time, whichever comes first."""

    key: Expression = Field(description="JMESPath giving the group key, e.g. headers.account_id")
    size: int = Field(default=100, ge=1, le=100_000, description="release a group at this many messages")
    timeout: Duration = Field(default=5.0, description="release a group this long after its first message")
    into: str = Field(default="items", description="the field of the aggregate body holding the parts")


class AggregateStep(Strict):
    """Aggregate messages (see AggregateSpec)."""

    aggregate: AggregateSpec = Field(description="key, size, timeout, into (top level of a route only)")


def aggregator(step: AggregateStep, ctx: BuildContext) -> Aggregator:
    """Return the aggregator the route runner feeds."""
    from esb.processors.aggregate import Aggregator  # imported when a route is built

    spec = step.aggregate
    return Aggregator(Compiled(spec.key, ctx.where("aggregate.key")), spec.size, spec.timeout, spec.into)


def build(step: AggregateStep, ctx: BuildContext) -> Processor:
    """An aggregate is no processor: reaching here means it stood inside a branch."""
    raise ConfigError(f"{ctx.where('aggregate')}: aggregate is allowed only at the top level of a route")


def lint(step: AggregateStep, path: PathKey, ctx: LintContext) -> None:
    """The key expression must parse."""
    ctx.check_expression(step.aggregate.key, (*path, "aggregate", "key"))


KIND = StepKind(
    "aggregate", AggregateStep, build, lint, top_level_only=True, before_partition=False, order=60
)
