"""The table of step kinds, and ``Step``: the type of one route step, a union built from that table.

Models that hold steps (a route, a choice branch) declare their field as ``list[Step]`` and call
:func:`track`; registering a kind rebuilds them, so the new kind parses everywhere a step may stand.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, GetCoreSchemaHandler
from pydantic.errors import PydanticUndefinedAnnotation
from pydantic_core import CoreSchema, core_schema

from esb.config.steps.kind import StepKind

_KINDS: dict[str, StepKind[Any]] = {}
_TRACKED: list[type[BaseModel]] = []
_ready = False


def kinds() -> dict[str, StepKind[Any]]:
    """Return the registered step kinds by name, in registration order."""
    return dict(_KINDS)


def kind_of(step: object) -> StepKind[Any]:
    """Return the declaration of a parsed step."""
    for kind in _KINDS.values():
        if type(step) is kind.model:
            return kind
    raise KeyError(type(step).__name__)


def step_kind(value: Any) -> str | None:
    """Return which step a raw mapping is (its first key that names a step kind), or None."""
    if isinstance(value, dict):
        return next((str(key) for key in value if key in _KINDS), None)
    return next((name for name, kind in _KINDS.items() if isinstance(value, kind.model)), None)


def unknown_step_message() -> str:
    """The error a mapping that names no step kind gets."""
    return f"not a step: a step is one of {', '.join(_KINDS)}"


def register(kind: StepKind[Any]) -> StepKind[Any]:
    """Add a step kind (replacing one of the same name) and rebuild the models that hold steps."""
    _KINDS[kind.name] = kind
    _rebuild()
    return kind


def unregister(name: str) -> None:
    """Remove a step kind (tests) and rebuild the models that hold steps."""
    _KINDS.pop(name, None)
    _rebuild()


def track(*models: type[BaseModel]) -> None:
    """Rebuild ``models`` whenever the kinds change (inner models first: a branch before its route)."""
    _TRACKED.extend(models)
    if _ready:
        for model in models:
            model.model_rebuild(force=True)


def ready() -> None:
    """Mark the built-in kinds loaded: models holding steps can be built from now on."""
    global _ready
    _ready = True
    _rebuild()


def _rebuild() -> None:
    if _ready:
        for model in _TRACKED:
            model.model_rebuild(force=True)


class Step:
    """One step of a route: exactly one of the registered kinds, told apart by its key."""

    @classmethod
    def models(cls) -> list[type[BaseModel]]:
        """Return the model of every registered kind."""
        return [kind.model for kind in _KINDS.values()]

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: GetCoreSchemaHandler) -> CoreSchema:
        """A union of the registered kinds' models, tagged by :func:`step_kind`."""
        if not _ready or not _KINDS:  # a model declared while the kinds load is built by ready()
            raise PydanticUndefinedAnnotation("Step", "the step kinds are not loaded yet")
        return core_schema.tagged_union_schema(
            {name: handler.generate_schema(kind.model) for name, kind in _KINDS.items()},
            discriminator=step_kind,
            custom_error_type="unknown_step",
            custom_error_message=unknown_step_message(),
        )
