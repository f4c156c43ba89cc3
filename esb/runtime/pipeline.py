"""Building a route's steps into processors, and running them in order with fan-out.

Each step is built by its kind's declaration (:mod:`esb.config.steps`); an aggregate splits the route in two
around the aggregator the runner feeds.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from esb.config import routes as r
from esb.config.steps import kind_of
from esb.config.steps.aggregate import AggregateStep, aggregator
from esb.exceptions import ConfigError
from esb.expressions import Expression
from esb.message import Message
from esb.processors.aggregate import Aggregator
from esb.telemetry import tracer

if TYPE_CHECKING:
    from esb.project import Project

Processor = Callable[[Message], list[Message]]


class BusinessKeys:
    """The route's business keys (order id, MSISDN, account id), taken from the message after each step."""

    def __init__(self, expressions: dict[str, Expression]) -> None:
        self.expressions = expressions
        self._names = frozenset(expressions)

    def __call__(self, message: Message) -> None:
        """Add every key the message now yields to ``message.business_keys``."""
        if not self.expressions or message.business_keys.keys() >= self._names:
            return  # none to take, or every one taken already (by an earlier step: one look-up)
        if isinstance(message.body, (bytes, bytearray)):
            return
        for name, expression in self.expressions.items():
            if name in message.business_keys:
                continue
            value = expression.evaluate(message)
            if value not in (None, "", [], {}):
                message.business_keys[name] = str(value)


class Pipeline:
    """Steps run in order; each step's outputs feed the next (a split multiplies, a filter empties)."""

    def __init__(self, processors: Sequence[Processor], keys: BusinessKeys | None = None) -> None:
        self.processors = list(processors)
        self.keys = keys

    def __call__(self, message: Message) -> list[Message]:
        """Run every step over ``message``; return what comes out of the last."""
        current = [message]
        for processor in self.processors:
            produced: list[Message] = []
            for item in current:
                produced.extend(processor(item))
            if self.keys is not None:
                for item in produced:
                    self.keys(item)
            current = produced
            if not current:
                break
        return current

    def close(self) -> None:
        """Close steps that hold connections (enrich)."""
        for processor in self.processors:
            close = getattr(processor, "close", None)
            if callable(close):
                close()


class StepBuilder:
    """Compiles route steps into processors, against a project's transforms, schemas and endpoints."""

    def __init__(self, project: Project, route_id: str, requester_factory: Callable[[str], Any]) -> None:
        self.project = project
        self.route_id = route_id
        self.requester_factory = requester_factory

    def where(self, what: str) -> str:
        """Return a location prefix for error messages."""
        return f"route {self.route_id}: {what}"

    def build(self, steps: Sequence[Any], keys: BusinessKeys | None = None) -> Pipeline:
        """Return the pipeline for ``steps`` (no aggregate allowed here)."""
        return Pipeline([self.step(step) for step in steps], keys)

    def step(self, step: Any) -> Processor:
        """Return the processor for one step (built by its kind's declaration)."""
        try:
            kind = kind_of(step)
        except KeyError:
            raise ConfigError(f"{self.where('steps')}: unsupported step {type(step).__name__}") from None
        return tracer().step(self.route_id, kind.name, kind.build(step, self))


def build_pipeline(
    project: Project, route: r.Route, requester_factory: Callable[[str], Any]
) -> tuple[Pipeline, Aggregator | None, Pipeline]:
    """Compile a route into (steps before the aggregate, the aggregator or None, steps after it)."""
    builder = StepBuilder(project, route.id, requester_factory)
    keys = BusinessKeys(
        {
            name: Expression(text, builder.where(f"business_keys.{name}"))
            for name, text in route.business_keys.items()
        }
    )
    index = next((i for i, s in enumerate(route.steps) if isinstance(s, AggregateStep)), None)
    if index is None:
        return builder.build(route.steps, keys), None, Pipeline([], keys)
    spec = route.steps[index]
    assert isinstance(spec, AggregateStep)
    before, after = route.steps[:index], route.steps[index + 1 :]
    return builder.build(before, keys), aggregator(spec, builder), builder.build(after, keys)
