"""The process language: the typed model of one ``processes/<name>.yaml`` (one process, one version).

A process is what an engine runs durably for each order (or other business object): its ``trigger``
(the endpoint and message type that start an instance, and the transform that makes the instance's
data), its ``business_keys`` (how replies and operators find an instance), its ``steps`` (see
:mod:`esb.process.steps`), the ``compensations`` that undo done steps, and ``on_cancel``. The instance's
state follows a TM Forum state machine of :mod:`esb.model.states` (ProductOrder by default).

Every call out carries an idempotency key, :func:`idempotency_key`: ``<instance id>:<step path>``. The
step path names the step and the branches it stands in (``components[C1].reserve``), never an attempt
number, so a redo after a crash or a retry sends the same key and the peer can refuse to act twice.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Annotated, Any

from pydantic import Field, field_validator

from esb.config.language import EndpointRef, Expression, Strict
from esb.config.schemas import DIALECT
from esb.model.states import MACHINES
from esb.process.steps import (
    SHORT_FORMS,
    CallStep,
    ForeachStep,
    ParallelStep,
    ProcessStep,
    SendStep,
    StepBase,
    StepName,
    TransformName,
)
from esb.registry import did_you_mean

PROCESS_NAME = r"^[a-z][a-z0-9_]*$"
ProcessName = Annotated[str, Field(pattern=PROCESS_NAME, max_length=64, description="lower_case name")]


class Trigger(Strict):
    """What starts an instance: a message arriving on an endpoint (optionally of one type)."""

    from_: EndpointRef = Field(alias="from", description="the endpoint whose messages start instances")
    type: str | None = Field(default=None, min_length=1, description="only messages of this type")
    transform: TransformName | None = Field(
        default=None, description="transform: message -> the instance's data (canonical)"
    )


class OnCancel(Strict):
    """How a cancel request is handled: done steps are undone in reverse order, unless it is too late."""

    point_of_no_return: StepName | None = Field(
        default=None, description="once this step is done a cancel is refused with refuse_reason"
    )
    refuse_reason: str = Field(
        default="the order is past its point of no return",
        min_length=1,
        description="the reason a refused cancel gives",
    )


class Ignore(Strict):
    """Messages on an endpoint the process reads that none of its steps wants and that are no error.

    Looked at before the awaits and the trigger: such a message is acked and journaled ``filtered``
    with the reason, never fed to an instance nor dead-lettered: e.g. OSS's
    deactivation results on the queue that also carries the activation results an await takes (the
    undo's call already had its answer).
    """

    from_: EndpointRef = Field(alias="from", description="the endpoint (a trigger's or an await's from)")
    type: str | None = Field(default=None, min_length=1, description="only messages of this type")
    when: Expression | None = Field(
        default=None, description="JMESPath over the message: only messages for which it is truthy"
    )
    reason: str = Field(min_length=1, description="why these are not wanted (journaled with each one)")


class Process(Strict):
    """One version of one process definition (the whole of a process file)."""

    process: ProcessName
    version: int = Field(ge=1, description="raise it whenever the steps change (older files are kept)")
    description: str | None = Field(default=None, description="what the process is for")
    machine: str = Field(
        default="product_order",
        description="the state machine of the instance's state (esb.model.states), e.g. product_order",
    )
    initial_state: str = Field(default="acknowledged", description="the state an instance is created in")
    trigger: Trigger
    business_keys: dict[str, Expression] = Field(
        min_length=1,
        description="name -> JMESPath over the instance {data, ...}: order_id, msisdn... (replies and "
        "operators find an instance by them)",
    )
    steps: list[ProcessStep] = Field(min_length=1, description="the steps, in order")
    compensations: list[CallStep] = Field(
        default_factory=list, description="undo calls, named by the steps' compensate:"
    )
    after_undo: list[SendStep] = Field(
        default_factory=list,
        description="sends made once every undo is done, before the instance ends failed or cancelled "
        "(e.g. the CRM told the order failed); their view's state is that end state",
    )
    on_cancel: OnCancel | None = Field(default=None, description="none: a cancel request is refused")
    ignore: list[Ignore] = Field(
        default_factory=list,
        description="messages on the process's endpoints no step takes and that are no error: journaled "
        "filtered, not dead-lettered",
    )

    @field_validator("machine")
    @classmethod
    def _known_machine(cls, value: str) -> str:
        if value not in MACHINES:
            raise ValueError(
                f"unknown state machine {value!r}{did_you_mean(value, list(MACHINES))}; "
                f"known: {', '.join(MACHINES)}"
            )
        return value


def children(step: StepBase) -> list[tuple[str, Sequence[StepBase]]]:
    """Return the nested step lists of ``step`` with their path segment (``branch`` or the step's name)."""
    if isinstance(step, ParallelStep):
        return [(f"{step.name}.{branch.name}", branch.steps) for branch in step.parallel.branches]
    if isinstance(step, ForeachStep):
        return [(f"{step.name}[*]", step.foreach.steps)]
    return []


def walk(steps: Sequence[StepBase], prefix: str = "") -> Iterator[tuple[str, StepBase]]:
    """Yield ``(step path, step)`` for every step, depth first; a foreach item's segment is ``[*]``."""
    for step in steps:
        path = f"{prefix}.{step.name}" if prefix else step.name
        yield path, step
        for segment, nested in children(step):
            yield from walk(nested, f"{prefix}.{segment}" if prefix else segment)


def idempotency_key(
    instance_id: str, step_path: str, items: Sequence[str] = (), *, undo: bool = False
) -> str:
    """Return the idempotency key of a call: ``<instance id>:<step path>``, the same on every attempt.

    ``items`` fills the ``[*]`` of the foreach steps in ``step_path``, outermost first, with each item's
    key (``foreach.key``, or its position): ``o-1:components[C1].reserve``. ``undo``: the key of the
    step's compensation, ``o-1:components[C1].reserve:compensate``.
    """
    parts = step_path.split("[*]")
    if len(parts) - 1 != len(items):
        raise ValueError(f"step path {step_path!r} has {len(parts) - 1} foreach item(s), {len(items)} given")
    filled = parts[0] + "".join(f"[{item}]{rest}" for item, rest in zip(items, parts[1:], strict=True))
    return f"{instance_id}:{filled}:compensate" if undo else f"{instance_id}:{filled}"


def process_schema() -> dict[str, Any]:
    """The JSON Schema of a process file (``esb schema processes``, for editors)."""
    document = Process.model_json_schema(by_alias=True)
    document["$schema"] = DIALECT
    for model, key in SHORT_FORMS:  # the short forms: a plain string for the mapping
        prop = document["$defs"][model]["properties"][key]
        described = {"description": prop.pop("description")} if "description" in prop else {}
        ref = {k: prop.pop(k) for k in list(prop) if k not in ("default",)}
        prop.update({"anyOf": [ref, {"type": "string"}], **described})
    return document
