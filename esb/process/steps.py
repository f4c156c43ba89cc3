"""The step kinds of the process language, one model each, and ``ProcessStep``: the union of them.

A step is a mapping with a ``name`` (unique in its process: compensations, ``goto``, the point of no
return and idempotency keys name it) and exactly one kind key: ``call``, ``send``, ``await``, ``wait``,
``parallel``, ``foreach``, ``set_state``, ``goto`` or ``cancel``. Any step may name its undo with
``compensate: <name of a step under compensations:>``. Expressions are JMESPath (never a new language):
over the instance ``{data, keys, state, item}`` for ``items``, ``until`` and ``when``; over the reply
message ``{body, headers, type, source, id}`` for an await's ``correlate.match`` and ``success``.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Discriminator, Field, Tag, model_validator

from esb.config.durations import Duration
from esb.config.language import EndpointRef, Expression, Strict, short_form

STEP_NAME = r"^[a-z][a-z0-9_]*$"
END = "end"
"""The goto target past the last step of a list (no step may be called so)."""
StepName = Annotated[
    str,
    Field(pattern=STEP_NAME, max_length=64, description="a step's name, lower_case, unique in the process"),
]
TransformName = Annotated[
    str, Field(min_length=1, description="a transform under transforms/, e.g. rim/reserve")
]
OnPartial = Literal["complete", "compensate", "fail"]


class JoinCount(Strict):
    """Join when ``count`` branches have ended well."""

    count: int = Field(ge=1, description="how many branches must end well")


Join = Annotated[
    Literal["all", "any"] | JoinCount,
    Field(description="all: every branch; any: the first; {count: N}: the first N to end well"),
]


class StepBase(Strict):
    """What every step has: a name, a description and an optional compensation."""

    name: StepName
    description: str | None = Field(default=None, description="what the step is for")
    compensate: StepName | None = Field(
        default=None, description="the step under compensations: that undoes this one once it is done"
    )


class Retry(Strict):
    """How a call that failed transiently (transport error, retryable fault) is repeated."""

    max: int = Field(default=3, ge=0, le=100, description="retries after the first attempt")
    backoff: Literal["fixed", "exponential"] = Field(default="exponential", description="delay growth")
    initial: Duration = Field(default=1.0, description="first delay, e.g. 1s")
    max_delay: Duration = Field(default=300.0, description="cap on the delay")


class CallSpec(Strict):
    """Request-reply to an endpoint: ``request`` builds the request, ``response`` maps the reply."""

    endpoint: EndpointRef
    request: TransformName | None = Field(default=None, description="transform: instance data -> request")
    response: TransformName | None = Field(default=None, description="transform: reply -> instance data")
    into: str | None = Field(default=None, min_length=1, description="the data field receiving the reply")
    timeout: Duration = Field(default=30.0, description="how long one attempt waits for the reply")
    retry: Retry = Field(default_factory=Retry, description="retry policy for transient failures")


class CallStep(StepBase):
    """Call an endpoint and wait for its reply (SOAP, REST, direct: an endpoint that can answer)."""

    call: CallSpec


class SendSpec(Strict):
    """One-way send to an endpoint; a later ``await`` with ``reply_to`` receives the answer."""

    endpoint: EndpointRef
    request: TransformName | None = Field(default=None, description="transform: instance data -> message")
    retry: Retry = Field(default_factory=Retry, description="retry policy for transient failures")


class SendStep(StepBase):
    """Send a message one way (a queue), without waiting."""

    send: SendSpec


class Correlate(Strict):
    """How a reply finds its instance: ``match`` over the reply must equal the instance's business ``key``."""

    key: str = Field(min_length=1, description="one of the process's business_keys, e.g. order_id")
    match: Expression = Field(description="JMESPath over the reply giving the key's value, e.g. body.orderId")
    item: Expression | None = Field(
        default=None,
        description="inside a foreach: JMESPath over the reply giving the item's key (foreach.key), which "
        "picks the branch the reply is for",
    )


class OnTimeout(Strict):
    """What an await does when its deadline passes: retry (re-send), compensate, fail or alert."""

    action: Literal["retry", "compensate", "fail", "alert"] = Field(
        description="retry: send reply_to again and wait anew; compensate: undo the done steps; "
        "fail: the instance fails; alert: raise an alert and keep waiting for an operator"
    )
    max_retries: int = Field(default=0, ge=0, le=100, description="retry: how many times to re-send")
    then: Literal["compensate", "fail", "alert"] = Field(
        default="fail", description="retry: what to do when the retries are spent"
    )

    @model_validator(mode="after")
    def _retries_only_for_retry(self) -> OnTimeout:
        if self.action == "retry" and self.max_retries < 1:
            raise ValueError("on_timeout retry needs max_retries: 1 or more (and then: what to do after)")
        if self.action != "retry" and (self.max_retries or "then" in self.model_fields_set):
            raise ValueError(f"max_retries and then belong to on_timeout retry, not {self.action}")
        return self


class AwaitSpec(Strict):
    """Wait for a reply correlated by a business key, until a deadline."""

    from_: EndpointRef = Field(alias="from", description="the endpoint the replies arrive on")
    type: str | None = Field(default=None, min_length=1, description="only replies of this message type")
    reply_to: StepName | None = Field(
        default=None, description="the send step this await answers (retry sends it again)"
    )
    correlate: Correlate
    when: Expression | None = Field(
        default=None,
        description="JMESPath over the reply: only replies for which it is truthy are this await's "
        "(e.g. body.action == 'activate' on a queue that carries several kinds of result)",
    )
    deadline: Duration | None = Field(default=None, description="how long to wait (lint requires one)")
    on_timeout: Annotated[OnTimeout, short_form("action")] = Field(
        default_factory=lambda: OnTimeout(action="fail"), description="retry, compensate, fail or alert"
    )
    success: Expression | None = Field(
        default=None,
        description="JMESPath over the reply, truthy when it reports success (else the step fails)",
    )
    response: TransformName | None = Field(default=None, description="transform: reply -> instance data")
    into: str | None = Field(default=None, min_length=1, description="the data field receiving the reply")


class AwaitStep(StepBase):
    """Await a correlated reply (after a send, or an event another system starts)."""

    await_: AwaitSpec = Field(alias="await")


class WaitSpec(Strict):
    """A durable timer: ``for`` a duration, or ``until`` a time read from the instance (exactly one)."""

    for_: Duration | None = Field(default=None, alias="for", description="how long to wait, e.g. 10m")
    until: Expression | None = Field(
        default=None, description="JMESPath over the instance giving an ISO 8601 date-time"
    )

    @model_validator(mode="after")
    def _one_of(self) -> WaitSpec:
        if (self.for_ is None) == (self.until is None):
            raise ValueError("give exactly one of for (a duration) or until (an expression giving a time)")
        return self


class WaitStep(StepBase):
    """Wait on a durable timer."""

    wait: WaitSpec


class Branch(Strict):
    """One branch of a parallel step: a name and its steps."""

    name: StepName
    steps: list[ProcessStep] = Field(min_length=1)


class ParallelSpec(Strict):
    """Branches run at once; ``join`` says when the step ends, ``on_partial`` what a partial success does.

    ``all`` ends when every branch has ended, ``any`` when the first ends well, ``{count: N}`` when N have
    ended well (or no longer can). All joined branches well: success; none: failure; some: ``on_partial``.
    """

    branches: list[Branch] = Field(min_length=2)
    join: Join = "all"
    on_partial: OnPartial = Field(
        default="fail",
        description="when some of the joined branches ended well and some failed: complete (go on; the "
        "instance ends partial), compensate (undo the branches that ended well, then fail) or fail",
    )
    machine: str | None = Field(
        default=None, description="the state machine of each branch's sub-order (e.g. service_order)"
    )


class ParallelStep(StepBase):
    """Run branches in parallel."""

    parallel: ParallelSpec


class ForeachSpec(Strict):
    """One branch per item of a list in the instance's data (e.g. per component order)."""

    items: Expression = Field(description="JMESPath over the instance giving the list, e.g. data.components")
    key: Expression | None = Field(
        default=None,
        description="JMESPath over {item} naming each item stably (e.g. item.id): it is part of the "
        "idempotency keys; default: the item's position",
    )
    steps: list[ProcessStep] = Field(min_length=1)
    join: Join = "all"
    on_partial: OnPartial = Field(default="fail", description="as for parallel")
    fatal: Expression | None = Field(
        default=None,
        description="JMESPath over {data, keys, state, item} of a failed item: when it holds for one, the "
        "join fails (the instance undoes every done step) whatever on_partial says, e.g. "
        "\"item.bundle.policy == 'all_or_nothing' || item.mandatory\"",
    )
    machine: str | None = Field(
        default=None, description="the state machine of each item's sub-order (e.g. service_order)"
    )


class ForeachStep(StepBase):
    """Run the same steps for every item of a list."""

    foreach: ForeachSpec


class SetStateSpec(Strict):
    """Move the instance (or, in a branch with a machine, the branch's sub-order) to ``state``."""

    state: str = Field(min_length=1, description="a state of the machine, e.g. inProgress")


class SetStateStep(StepBase):
    """Set the TMF state of the instance or of the branch's sub-order."""

    set_state: Annotated[SetStateSpec, short_form("state")]


class GotoSpec(Strict):
    """Jump to a step of the same list (``end``: past its last step), always or ``when`` truthy."""

    step: StepName = Field(description="a step of the same list, or end: leave the list (the process ends)")
    when: Expression | None = Field(default=None, description="JMESPath over the instance; none: always")


class GotoStep(StepBase):
    """Jump to another step of the same list."""

    goto: Annotated[GotoSpec, short_form("step")]


class CancelSpec(Strict):
    """Ask a running instance of ``process`` to cancel (its on_cancel decides); the answer goes ``into``."""

    process: str = Field(min_length=1, description="the process whose instance is cancelled")
    key: str = Field(min_length=1, description="a business key of that process, e.g. order_id")
    value: Expression = Field(description="JMESPath over this instance giving the key's value")
    into: str = Field(min_length=1, description="the data field receiving {accepted, reason}")


class CancelStep(StepBase):
    """Cancel another process's instance, found by a business key."""

    cancel: CancelSpec


#: the kind key of each step model, in the order error messages and docs list them
KINDS: dict[str, type[StepBase]] = {
    "call": CallStep,
    "send": SendStep,
    "await": AwaitStep,
    "wait": WaitStep,
    "parallel": ParallelStep,
    "foreach": ForeachStep,
    "set_state": SetStateStep,
    "goto": GotoStep,
    "cancel": CancelStep,
}


#: the fields (model, field) that take a plain string for their mapping (``set_state: inProgress`` is
#: ``{state: inProgress}``): the JSON Schema accepts both
SHORT_FORMS: tuple[tuple[str, str], ...] = (
    ("SetStateStep", "set_state"),
    ("GotoStep", "goto"),
    ("AwaitSpec", "on_timeout"),
)


def step_kind(value: Any) -> str | None:
    """Return which kind a raw mapping or a parsed step is (its kind key), or None."""
    if isinstance(value, dict):
        return next((key for key in value if key in KINDS), None)
    return next((key for key, model in KINDS.items() if type(value) is model), None)


def _tag(value: Any) -> str | None:
    """The union tag of a step: ``<kind> step`` (never a YAML key, so error paths skip it)."""
    kind = step_kind(value)
    return None if kind is None else f"{kind} step"


ProcessStep = Annotated[
    Annotated[CallStep, Tag("call step")]
    | Annotated[SendStep, Tag("send step")]
    | Annotated[AwaitStep, Tag("await step")]
    | Annotated[WaitStep, Tag("wait step")]
    | Annotated[ParallelStep, Tag("parallel step")]
    | Annotated[ForeachStep, Tag("foreach step")]
    | Annotated[SetStateStep, Tag("set_state step")]
    | Annotated[GotoStep, Tag("goto step")]
    | Annotated[CancelStep, Tag("cancel step")],
    Discriminator(
        _tag,
        custom_error_type="unknown_process_step",
        custom_error_message=f"not a process step: a step has one of the keys {', '.join(KINDS)}",
    ),
]

for _model in (Branch, ParallelSpec, ParallelStep, ForeachSpec, ForeachStep):
    _model.model_rebuild()
