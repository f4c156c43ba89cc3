"""The route language: the typed model of ``routes.yaml``.

Every model rejects unknown keys, so a typo is a finding with its ``file:line``. Expressions (``when``,
``filter``, ``split``, ``key``...) are JMESPath over ``{body, headers, type, source, id}``, never a new
language. ``esb schema routes`` prints this model's JSON Schema for editors. The steps are declared one
kind per module in :mod:`esb.config.steps`; ``Step`` is the union of the registered kinds.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from esb.config.cron import check_crontab
from esb.config.durations import Duration
from esb.config.language import ENDPOINT_REF, EndpointRef, Expression, Strict
from esb.config.steps import Step, step_kind
from esb.config.steps.aggregate import AggregateSpec, AggregateStep
from esb.config.steps.choice import ChoiceStep, OtherwiseBranch, WhenBranch
from esb.config.steps.enrich import EnrichSpec, EnrichStep
from esb.config.steps.filter import FilterStep
from esb.config.steps.log import LogSpec, LogStep
from esb.config.steps.registry import track
from esb.config.steps.set_header import HeaderExpression, HeaderValue, SetHeaderStep
from esb.config.steps.split import SplitSpec, SplitStep
from esb.config.steps.transform import TransformStep
from esb.config.steps.validate import ValidateStep
from esb.expressions import validate_expression

__all__ = [  # the step models are re-exported for the code that names them (partitioner, tests)
    "ENDPOINT_REF",
    "AggregateSpec",
    "AggregateStep",
    "ChoiceStep",
    "Destination",
    "EndpointRef",
    "EnrichSpec",
    "EnrichStep",
    "Expression",
    "FilterStep",
    "HeaderExpression",
    "HeaderValue",
    "LogSpec",
    "LogStep",
    "OnError",
    "OtherwiseBranch",
    "RawKey",
    "RecipientList",
    "Redelivery",
    "Route",
    "RoutesFile",
    "SetHeaderStep",
    "SplitSpec",
    "SplitStep",
    "Step",
    "Strict",
    "TransformStep",
    "ValidateStep",
    "WhenBranch",
    "partition_endpoint",
    "step_kind",
]


class RecipientList(Strict):
    """Deliver to the endpoints named by the message itself (a list of ``system.endpoint``)."""

    recipients: Expression
    allowed: list[EndpointRef] = Field(
        min_length=1, description="the endpoints the expression may name; anything else is a message error"
    )


class Destination(Strict):
    """One endpoint of a fixed ``to`` list with a mapping of its own (``{endpoint, transform}``).

    The transform is applied to the route's output for this endpoint only (Camel's multicast with a
    processor per branch); the other endpoints get the output as the steps left it.
    """

    endpoint: EndpointRef = Field(description="the endpoint, system.endpoint")
    transform: str = Field(
        description="a mapping under transforms/ applied for this endpoint only, "
        "e.g. iom/canonical_to_order_request"
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


class RawKey(Strict):
    """A business key read from the message as it arrived, before any step (exactly one of the two).

    ``xpath`` runs over an XML body (parsed through :mod:`esb.xmlsafe`), ``jmespath`` over
    ``{body, headers, ...}`` with a JSON body parsed: a message that fails its first mapping still
    carries the key into the journal (``esb trace``).
    """

    xpath: str | None = Field(
        default=None, min_length=1, description="XPath 1.0 over the raw XML body; the first non-empty value"
    )
    jmespath: Expression | None = Field(
        default=None, description="JMESPath over {body, headers, ...} with the raw JSON body parsed"
    )
    namespaces: dict[str, str] = Field(default_factory=dict, description="prefix -> URI for xpath")
    tag_escape: Literal["siebel"] | None = Field(
        default=None,
        description="siebel: write {Order Number} in xpath for Siebel's escaped tag (Order_spcNumber)",
    )

    @model_validator(mode="after")
    def _one_language(self) -> RawKey:
        if (self.xpath is None) == (self.jmespath is None):
            raise ValueError("give exactly one of xpath (XML sources) or jmespath (JSON sources)")
        if self.jmespath is not None and (self.namespaces or self.tag_escape):
            raise ValueError("namespaces and tag_escape apply to xpath only")
        from esb.transforms.xpathdialect import XPathDialect  # late: esb.transforms imports esb.config

        if self.xpath is not None:
            try:
                XPathDialect(self.namespaces, self.tag_escape).xpath(self.xpath)
            except ValueError as exc:
                raise ValueError(f"invalid XPath {self.xpath!r}: {exc}") from None
        elif self.jmespath is not None and (problem := validate_expression(self.jmespath)) is not None:
            raise ValueError(f"invalid JMESPath {self.jmespath!r}: {problem}")
        return self


class FullFile(Strict):
    """A whole file of what a synced target holds, written on a schedule (``esb full-file`` on demand)."""

    to: EndpointRef = Field(description="the endpoint that takes the file (a batch endpoint with outbound)")
    cron: str = Field(description="when, as crontab (e.g. '0 3 * * 0': Sundays 03:00)")
    timezone: str = Field(default="Asia/Shanghai", description="the cron's time zone")

    @field_validator("cron")
    @classmethod
    def _crontab(cls, value: str) -> str:
        try:
            check_crontab(value)
        except ValueError as exc:
            raise ValueError(f"cron {value!r}: {exc}") from None
        return value


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
    to: EndpointRef | list[EndpointRef | Destination] | RecipientList | None = Field(
        default=None,
        description="one endpoint, a list (fan-out: each item an endpoint, or {endpoint, transform} for a "
        "mapping applied for that endpoint only), a recipient list, or none (reply to the caller)",
    )
    business_keys: dict[str, Expression] = Field(
        default_factory=dict,
        description="journal index keys (order_id, msisdn, account_id) read from the message after each step",
    )
    raw_business_keys: dict[str, RawKey] = Field(
        default_factory=dict,
        description="journal index keys read from the message as it arrived (before any step), so a "
        "message whose first mapping fails is still found by esb trace; a key that cannot be read is a "
        "warning, never a failure; a name also in business_keys keeps the raw value",
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

    full_file: FullFile | None = Field(
        default=None,
        description="with a sync step: write every record the target holds as one file of `to` on `cron`, "
        "leader-only (docs/sync.md, the directories' weekly full file)",
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
        if self.full_file is not None and not any(step_kind(step) == "sync" for step in self.steps):
            raise ValueError("full_file needs a sync step (the file is read from the sync's state)")
        return self

    def destinations(self) -> list[str]:
        """Return the fixed endpoints this route writes to (empty for a recipient list or reply route)."""
        if self.to is None or isinstance(self.to, RecipientList):
            return [] if self.to is None else list(self.to.allowed)
        if isinstance(self.to, str):
            return [self.to]
        return [item if isinstance(item, str) else item.endpoint for item in self.to]

    def destination_transforms(self) -> dict[str, str]:
        """Return endpoint -> transform for the items of ``to`` that map the output for themselves."""
        if not isinstance(self.to, list):
            return {}
        return {item.endpoint: item.transform for item in self.to if isinstance(item, Destination)}


class RoutesFile(Strict):
    """The whole of ``routes.yaml``."""

    routes: list[Route] = Field(default_factory=list)


track(Route, RoutesFile)


def partition_endpoint(source: str, index: int) -> str:
    """The endpoint name of partition ``index`` of a partitioned route's source (``crm.orders_out.p3``)."""
    return f"{source}.p{index}"
