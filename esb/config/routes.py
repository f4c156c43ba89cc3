"""The route language: the typed model of ``routes.yaml``.

Every model rejects unknown keys, so a typo is a finding with its ``file:line``. Expressions (``when``,
``filter``, ``split``, ``key``...) are JMESPath over ``{body, headers, type, source, id}``, never a new
language. ``esb schema routes`` prints this model's JSON Schema for editors.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, field_validator, model_validator

from esb.config.durations import Duration

ENDPOINT_REF = r"^[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-.]+$"
EndpointRef = Annotated[
    str, Field(pattern=ENDPOINT_REF, description="system.endpoint from config/systems.yaml")
]
Expression = Annotated[
    str, Field(min_length=1, description="a JMESPath expression over {body, headers, ...}")
]


class Strict(BaseModel):
    """Base of every route-language model: unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class HeaderExpression(Strict):
    """A header value computed by a JMESPath expression instead of a literal."""

    expr: Expression


HeaderValue = str | int | float | bool | HeaderExpression


class TransformStep(Strict):
    """Apply a mapping from transforms/ (``crm/siebel_order_to_canonical``)."""

    transform: str


class ValidateStep(Strict):
    """Validate the body against a canonical schema (``product_order.v1``); a violation is permanent."""

    validate_: str = Field(alias="validate")


class FilterStep(Strict):
    """Keep the message only when the expression is truthy; otherwise it ends as ``filtered``."""

    filter: Expression


class WhenBranch(Strict):
    """One branch of a choice: the first branch whose ``when`` is truthy runs its steps."""

    when: Expression
    steps: list[Step] = Field(default_factory=list)


class OtherwiseBranch(Strict):
    """The branch of a choice taken when no ``when`` matched."""

    otherwise: list[Step]


class ChoiceStep(Strict):
    """Content-based routing inside a route: ``when`` branches in order, then ``otherwise``."""

    choice: list[WhenBranch | OtherwiseBranch] = Field(min_length=1)

    @model_validator(mode="after")
    def _otherwise_last(self) -> ChoiceStep:
        kinds = [isinstance(b, OtherwiseBranch) for b in self.choice]
        if any(kinds[:-1]):
            raise ValueError("'otherwise' must be the last branch of a choice, and there can be only one")
        return self


class SplitSpec(Strict):
    """Split one message into one message per element of a list."""

    expr: Expression = Field(description="JMESPath yielding the list to split, e.g. body.productOrderItem")
    keep: Expression | None = Field(
        default=None, description="JMESPath over {item, parent} building each part; default: the item"
    )


class SplitStep(Strict):
    """Split a message into parts (``split: body.items`` or ``split: {expr: ..., keep: ...}``)."""

    split: SplitSpec

    @field_validator("split", mode="before")
    @classmethod
    def _short_form(cls, value: Any) -> Any:
        return {"expr": value} if isinstance(value, str) else value


class AggregateSpec(Strict):
    """Group messages by key into one message, released by size or by time, whichever comes first."""

    key: Expression = Field(description="JMESPath giving the group key, e.g. headers.account_id")
    size: int = Field(default=100, ge=1, le=100_000)
    timeout: Duration = Field(default=5.0, description="release a group this long after its first message")
    into: str = Field(default="items", description="the field of the aggregate body holding the parts")


class AggregateStep(Strict):
    """Aggregate messages (see AggregateSpec)."""

    aggregate: AggregateSpec


class EnrichSpec(Strict):
    """Call an endpoint with a request built from the message and merge its reply into the body."""

    endpoint: EndpointRef
    request: str | None = Field(default=None, description="transform building the request from the message")
    response: str | None = Field(default=None, description="transform applied to the reply before merging")
    into: str = Field(description="the body field that receives the (transformed) reply")
    timeout: Duration = 30.0


class EnrichStep(Strict):
    """Request-reply enrichment (see EnrichSpec)."""

    enrich: EnrichSpec


class SetHeaderStep(Strict):
    """Set headers: literal values, or ``{expr: ...}`` for a JMESPath result."""

    set_header: dict[str, HeaderValue] = Field(min_length=1)


class LogSpec(Strict):
    """Write a log line (never the body); ``fields`` are JMESPath expressions."""

    message: str
    level: Literal["debug", "info", "warning", "error"] = "info"
    fields: dict[str, Expression] = Field(default_factory=dict)


class LogStep(Strict):
    """Log a line about the message."""

    log: LogSpec

    @field_validator("log", mode="before")
    @classmethod
    def _short_form(cls, value: Any) -> Any:
        return {"message": value} if isinstance(value, str) else value


def step_kind(value: Any) -> str | None:
    """Return which step a raw mapping is (its first key that names a step kind), or None."""
    if isinstance(value, dict):
        for key in value:
            if key in STEP_KINDS:
                return str(key)
        return None
    for kind, model in STEP_KINDS.items():
        if isinstance(value, model):
            return kind
    return None


Step = Annotated[
    Annotated[TransformStep, Tag("transform")]
    | Annotated[ValidateStep, Tag("validate")]
    | Annotated[FilterStep, Tag("filter")]
    | Annotated[ChoiceStep, Tag("choice")]
    | Annotated[SplitStep, Tag("split")]
    | Annotated[AggregateStep, Tag("aggregate")]
    | Annotated[EnrichStep, Tag("enrich")]
    | Annotated[SetHeaderStep, Tag("set_header")]
    | Annotated[LogStep, Tag("log")],
    Discriminator(
        step_kind,
        custom_error_type="unknown_step",
        custom_error_message="not a step: a step is one of transform, validate, filter, choice, split, "
        "aggregate, enrich, set_header, log",
    ),
]
STEP_KINDS: dict[str, type[Strict]] = {
    "transform": TransformStep,
    "validate": ValidateStep,
    "filter": FilterStep,
    "choice": ChoiceStep,
    "split": SplitStep,
    "aggregate": AggregateStep,
    "enrich": EnrichStep,
    "set_header": SetHeaderStep,
    "log": LogStep,
}


class RecipientList(Strict):
    """Deliver to the endpoints named by the message itself (a list of ``system.endpoint``)."""

    recipients: Expression
    allowed: list[EndpointRef] = Field(
        min_length=1, description="the endpoints the expression may name; anything else is a message error"
    )


class Redelivery(Strict):
    """How transient failures are retried before the message is dead-lettered."""

    max: int = Field(default=5, ge=0, le=100, description="retries after the first attempt")
    backoff: Literal["fixed", "exponential"] = Field(default="exponential", description="delay growth")
    initial: Duration = Field(default=1.0, description="first delay, e.g. 1s")
    max_delay: Duration = Field(default=60.0, description="cap on the delay")
    jitter: bool = Field(
        default=True, description="randomise each delay by up to -50% (avoids thundering herds)"
    )


class OnError(Strict):
    """The route's error policy: redeliver transient failures, dead-letter permanent ones."""

    redeliver: Redelivery = Field(
        default_factory=Redelivery, description="retry policy for transient failures"
    )
    dead_letter: EndpointRef | None = Field(
        default=None, description="endpoint that receives failed messages with the error (lint requires one)"
    )


class Route(Strict):
    """One flow: ``from`` a source, through ``steps``, ``to`` one or more sinks."""

    id: str = Field(
        pattern=r"^[a-z0-9][a-z0-9_\-]*$",
        max_length=100,
        description="unique, lower-case, e.g. crm-order-to-iom",
    )
    description: str | None = Field(default=None, description="what the route is for")
    from_: EndpointRef = Field(alias="from", description="the source endpoint, system.endpoint")
    steps: list[Step] = Field(default_factory=list, description="processors in order (see the step models)")
    to: EndpointRef | list[EndpointRef] | RecipientList | None = Field(
        default=None,
        description="one endpoint, a list (fan-out), a recipient list, or none (reply to the caller)",
    )
    business_keys: dict[str, Expression] = Field(
        default_factory=dict,
        description="journal index keys (order_id, msisdn, account_id) read from the message after each step",
    )
    concurrency: int = Field(default=1, ge=1, le=64, description="worker threads consuming for this route")
    on_error: OnError = Field(default_factory=OnError, description="redelivery and dead letter")
    enabled: bool = Field(default=True, description="false: the route is loaded and checked but not run")
    ordered_by: Expression | None = Field(
        default=None,
        description="the key whose messages must be applied in order (e.g. body.billingAccount.id): the "
        "route runs one worker (or one per partition, see partitions) and its source queue needs "
        "single_active_consumer (docs/deployment.md)",
    )

    partitions: int = Field(
        default=1,
        ge=1,
        le=256,
        description="with ordered_by: split the source queue into this many partition queues by a hash of "
        "the key, each read in order by one worker, so different keys run in parallel across workers and "
        "processes (docs/deployment.md)",
    )

    @model_validator(mode="after")
    def _ordered_needs_one_worker(self) -> Route:
        if self.ordered_by is not None and self.concurrency != 1:
            raise ValueError(
                "ordered_by needs concurrency: 1 (several workers would reorder a key's messages; "
                "spread an ordered route with partitions: N)"
            )
        if self.partitions > 1 and self.ordered_by is None:
            raise ValueError("partitions needs ordered_by (the key that picks a message's partition)")
        return self

    def destinations(self) -> list[str]:
        """Return the fixed endpoints this route writes to (empty for a recipient list or reply route)."""
        if self.to is None or isinstance(self.to, RecipientList):
            return [] if self.to is None else list(self.to.allowed)
        return [self.to] if isinstance(self.to, str) else list(self.to)


class RoutesFile(Strict):
    """The whole of ``routes.yaml``."""

    routes: list[Route] = Field(default_factory=list)


WhenBranch.model_rebuild()
OtherwiseBranch.model_rebuild()
ChoiceStep.model_rebuild()
RoutesFile.model_rebuild()


def partition_endpoint(source: str, index: int) -> str:
    """The endpoint name of partition ``index`` of a partitioned route's source (``crm.orders_out.p3``)."""
    return f"{source}.p{index}"
