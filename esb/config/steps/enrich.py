"""``enrich``: call an endpoint with a request built from the message and merge its reply into the body."""

from __future__ import annotations

from pydantic import Field

from esb.config.durations import Duration
from esb.config.language import EndpointRef, Strict
from esb.config.steps.kind import BuildContext, LintContext, PathKey, Processor, StepKind


class EnrichSpec(Strict):
    """Call an endpoint with a request built from the message and merge its reply into the body."""

    endpoint: EndpointRef
    request: str | None = Field(default=None, description="transform building the request from the message")
    response: str | None = Field(default=None, description="transform applied to the reply before merging")
    into: str = Field(description="the body field that receives the (transformed) reply")
    timeout: Duration = Field(default=30.0, description="how long to wait for the reply")
    faults: list[str] = Field(
        default_factory=list,
        description="fault codes the route handles itself (e.g. BIL-1004, not found): such a refusal is "
        "merged at `into` as {fault: {code, message}} instead of failing the message",
    )


class EnrichStep(Strict):
    """Request-reply enrichment (see EnrichSpec)."""

    enrich: EnrichSpec = Field(description="endpoint, request, response, into, timeout")


def build(step: EnrichStep, ctx: BuildContext) -> Processor:
    """Return the enricher (its requester is opened on the first message)."""
    from esb.processors.routing import Enricher  # imported when a route is built

    spec = step.enrich
    transforms = ctx.project.transforms
    return Enricher(
        lambda: ctx.requester_factory(spec.endpoint),
        transforms.get(spec.request) if spec.request else None,
        transforms.get(spec.response) if spec.response else None,
        spec.into,
        spec.timeout,
        frozenset(spec.faults),
    )


def lint(step: EnrichStep, path: PathKey, ctx: LintContext) -> None:
    """The endpoint and the request/response transforms must exist."""
    ctx.check_endpoint(step.enrich.endpoint, (*path, "enrich", "endpoint"))
    for key in ("request", "response"):
        name = getattr(step.enrich, key)
        if name:
            ctx.check_transform(name, (*path, "enrich", key))


KIND = StepKind("enrich", EnrichStep, build, lint, before_partition=False, order=70)
