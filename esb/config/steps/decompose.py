"""``decompose``: fan a canonical product order out into its component orders by ``config/catalog.yaml``.

Like ``split``, one message per part; each part is a ``component_order.v1`` document
(:func:`esb.model.decompose.decompose`) with the headers ``parent-order-id``, ``component-kind``,
``component-index`` and ``component-count``. An order the catalogue cannot decompose (an unknown offering...)
is a DecompositionError, a message error: the route dead-letters it. See docs/catalog.md.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from pydantic import BeforeValidator, Field

from esb.config.language import Strict
from esb.config.projectdir import CATALOG_FILE
from esb.config.steps.kind import BuildContext, LintContext, PathKey, Processor, StepKind
from esb.message import Message

PARENT_ORDER_ID = "parent-order-id"
COMPONENT_KIND = "component-kind"
COMPONENT_INDEX = "component-index"
COMPONENT_COUNT = "component-count"


class DecomposeSpec(Strict):
    """Decompose a canonical product order into component orders by the catalogue."""

    type: str | None = Field(
        default=None, description="message type of each component order; default: the order's own type"
    )


def _empty(value: Any) -> Any:
    """Read ``decompose:`` with no value as ``decompose: {}``."""
    return {} if value is None else value


class DecomposeStep(Strict):
    """Decompose a product order into component orders (``decompose:`` or ``decompose: {type: ...}``)."""

    decompose: Annotated[
        DecomposeSpec, BeforeValidator(_empty, json_schema_input_type=DecomposeSpec | None)
    ] = Field(description=f"nothing, or {{type}}: the order is decomposed by {CATALOG_FILE}")


class Decomposer:
    """The processor: one message per component order, with the parent order id, kind, index and count."""

    def __init__(
        self, split_order: Callable[[Any], list[dict[str, Any]]], schema: str, message_type: str | None
    ) -> None:
        self.split_order = split_order
        self.schema = schema
        self.message_type = message_type

    def __call__(self, message: Message) -> list[Message]:
        """Return the component orders of the message's product order (none for a noChange-only order)."""
        orders = self.split_order(message.body)
        changes: dict[str, Any] = {"schema": self.schema}
        if self.message_type:
            changes["type"] = self.message_type
        parts = []
        for index, body in enumerate(orders):
            part = message.derive(body, suffix=str(index), **changes)
            part.headers.update(
                {
                    PARENT_ORDER_ID: body["productOrder"]["id"],
                    COMPONENT_KIND: body["componentKind"],
                    COMPONENT_INDEX: index,
                    COMPONENT_COUNT: len(orders),
                }
            )
            parts.append(part)
        return parts


def build(step: DecomposeStep, ctx: BuildContext) -> Processor:
    """Return the decomposer over the project's catalogue (ConfigError when it is absent or broken)."""
    from esb.config.catalog import load_catalog  # its models are needed only to build the step
    from esb.model.decompose import COMPONENT_ORDER, decompose  # esb.model imports esb.config: bind late

    catalog = load_catalog(ctx.project.root)
    return Decomposer(lambda body: decompose(body, catalog), COMPONENT_ORDER, step.decompose.type)


def lint(step: DecomposeStep, path: PathKey, ctx: LintContext) -> None:
    """The project must have a catalogue (its own findings come from the catalogue's lint)."""
    project = getattr(ctx, "project", None)  # the Linter carries the project; the protocol does not say so
    root = getattr(project, "root", None)
    if root is not None and not (root / CATALOG_FILE).is_file():
        ctx.add(
            (*path, "decompose"), f"no {CATALOG_FILE}: declare the product offerings there (docs/catalog.md)"
        )


KIND = StepKind("decompose", DecomposeStep, build, lint, before_partition=False, order=55)
