"""Options of an endpoint pool (``adapter: pool`` in config/systems.yaml).

A pool is an endpoint whose ``members`` are other endpoints of the project (instances of one peer:
``oss.activate_a``, ``oss.activate_b``...). Routes, enrich steps and process calls name the pool; each
message goes to one member chosen by ``strategy``, skipping members that passive health has ejected.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from esb.config.durations import Duration
from esb.config.language import ENDPOINT_REF
from esb.config.systems import EndpointConfig


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _member_short_form(value: Any) -> Any:
    return {"endpoint": value} if isinstance(value, str) else value


class Member(_Strict):
    """One instance of the pool: another endpoint of the project, with its weight."""

    endpoint: str = Field(pattern=ENDPOINT_REF, description="system.endpoint of the instance")
    weight: int = Field(
        default=1, ge=1, le=1000, description="share of the traffic (weighted, and sticky's key spread)"
    )


class PassiveHealth(_Strict):
    """When a member is ejected (its circuit breaker opens) and for how long.

    A member that fails ``failures`` calls in a row is ejected for ``base_ejection`` times the number of
    times it has been ejected (capped at ``max_ejection``); each ``base_ejection`` it then stays healthy
    takes one ejection off that count. An ejected member gets one trial call (half-open) once its time
    is up: success takes it back, failure ejects it again for longer.
    """

    failures: int = Field(default=3, ge=1, description="consecutive failed calls that eject a member")
    base_ejection: Duration = Field(default=5.0, gt=0, description="ejection time of a first ejection")
    max_ejection: Duration = Field(default=300.0, gt=0, description="the longest ejection")
    max_ejected_share: float = Field(
        default=0.5,
        gt=0,
        le=1,
        description=(
            "the largest share of the members ejected at once (at least one member may always be "
            "ejected); a failing member past it stays in and its failures are shown"
        ),
    )
    trial_timeout: Duration = Field(
        default=2.0,
        gt=0,
        description=(
            "hard limit of a half-open trial call: a trial still running then counts as failed and the "
            "message goes to the next member (with the same idempotency key)"
        ),
    )


class PoolEndpoint(EndpointConfig):
    """An endpoint pool: one logical endpoint served by several instances (``members``).

    Errors that count against a member: transport errors (unreachable, connection broken, timeouts).
    A peer's refusal (a SOAP Fault, an HTTP 4xx: RemoteError) and a bad message are answers, not
    failures: they go back to the route as they are and no other member is tried. A call that failed on
    one member is tried on the next one; every call carries the header ``idempotency-key`` (the
    message's own, or its id), the same on every member, so a receiver that may have got a call whose
    answer was lost must refuse to act twice on one key.
    """

    adapter: Literal["pool"] = "pool"
    members: list[Annotated[Member, BeforeValidator(_member_short_form)]] = Field(
        min_length=1,
        description="the instances: system.endpoint names, or {endpoint, weight}",
    )
    strategy: Literal["round_robin", "weighted", "sticky", "failover"] = Field(
        default="round_robin",
        description=(
            "round_robin: each member in turn; weighted: in proportion to the weights (smooth, as "
            "nginx); sticky: one key always to one member while it is healthy (rendezvous hashing: a "
            "key returns to its member when it recovers); failover: the first healthy member in order"
        ),
    )
    sticky_key: str | None = Field(
        default=None,
        min_length=1,
        description="JMESPath over {body, headers, ...} giving the key of sticky (e.g. body.accountId)",
    )
    retry_on_next: bool = Field(
        default=True,
        description=(
            "try the next member after a member failure; false hands the failure to the route's retry "
            "policy at once (for members that cannot deduplicate by the idempotency key)"
        ),
    )
    health: PassiveHealth = Field(default_factory=PassiveHealth, description="passive health and breakers")

    @model_validator(mode="after")
    def _consistent(self) -> PoolEndpoint:
        names = [m.endpoint for m in self.members]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"members named twice: {', '.join(twice)} (use weight instead)")
        if self.strategy == "sticky" and self.sticky_key is None:
            raise ValueError("strategy sticky needs sticky_key (a JMESPath such as body.accountId)")
        if self.strategy != "sticky" and self.sticky_key is not None:
            raise ValueError(f"sticky_key is used only by strategy sticky (this pool is {self.strategy})")
        if self.health.max_ejection < self.health.base_ejection:
            raise ValueError("health.max_ejection is shorter than health.base_ejection")
        return self
