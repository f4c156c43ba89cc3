"""What a step kind declares: its YAML key, its config model, how it builds and how it is linted.

A kind's module holds all three (see docs/routes.md, "Adding a step kind"); the engine reaches them only
through this declaration, never by naming the kind.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

from pydantic import BaseModel

from esb.message import Message

Processor = Callable[[Message], list[Message]]
PathKey = tuple[str | int, ...]
M = TypeVar("M", bound=BaseModel)


class BuildContext(Protocol):
    """What a kind's ``build`` gets: the project, the route, and a way to build nested steps."""

    project: Any
    route_id: str
    requester_factory: Callable[[str], Any]

    def where(self, what: str) -> str:
        """Return a location prefix for error messages."""

    def build(self, steps: Sequence[Any]) -> Processor:
        """Return one processor running ``steps`` in order (for branches)."""


class LintContext(Protocol):
    """What a kind's ``lint`` gets: the project, and its checks, each adding a finding at ``path``."""

    project: Any

    def add(self, path: PathKey, problem: str) -> None:
        """Record a finding about routes.yaml at ``path``."""

    def check_expression(self, text: str, path: PathKey) -> None:
        """An expression must be valid JMESPath."""

    def check_endpoint(self, name: str, path: PathKey) -> None:
        """An endpoint must be declared in config/systems.yaml."""

    def check_transform(self, name: str, path: PathKey) -> None:
        """A transform must exist under transforms/."""

    def check_schema(self, name: str, path: PathKey) -> None:
        """A canonical schema must exist under canonical_model/."""

    def check_steps(self, steps: Sequence[Any], path: PathKey) -> None:
        """Check nested steps (a branch's)."""

    def check_table(self, name: str, path: PathKey) -> Any:
        """A decision table must exist and load: return it, or None (and a finding)."""


def no_checks(step: Any, path: PathKey, lint: LintContext) -> None:
    """The lint of a kind with nothing to cross-check beyond its model."""


@dataclass(frozen=True)
class StepKind(Generic[M]):
    """One step kind: the key that names it in routes.yaml, its model, its processor and its checks."""

    name: str
    model: type[M]
    build: Callable[[M, BuildContext], Processor]
    lint: Callable[[M, PathKey, LintContext], None] = no_checks
    top_level_only: bool = False
    """Allowed only directly in a route's ``steps`` (not inside a branch), e.g. aggregate."""
    before_partition: bool = True
    """May run before the first transform of a partitioned route (where the partition key is read)."""
    order: int = 1000
    """Where the kind stands in lists (error messages, the schema, the reference): lower first."""
