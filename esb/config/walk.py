"""Walking a model's fields to the models nested in them (for did-you-mean and the reference)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from esb.config.steps import Step


def nested_models(model: Any, *, into_steps: bool) -> list[type[BaseModel]]:
    """Return ``model`` and every model its fields hold, depth first, each once.

    ``into_steps``: a ``Step`` field stands for every registered step kind's model (else it is a leaf).
    """
    out: list[type[BaseModel]] = []
    _walk(model, into_steps, out)
    return out


def _walk(model: Any, into_steps: bool, out: list[type[BaseModel]]) -> None:
    if not (isinstance(model, type) and issubclass(model, BaseModel)) or model in out:
        return
    out.append(model)
    for field in model.model_fields.values():
        for arg in field_types(field.annotation, into_steps=into_steps):
            _walk(arg, into_steps, out)


def field_types(annotation: Any, *, into_steps: bool) -> list[Any]:
    """Return the plain types inside an annotation (unions, lists, dicts and Annotated unwrapped)."""
    if annotation is Step:
        return list(Step.models()) if into_steps else [Step]
    args = getattr(annotation, "__args__", None)
    if not args:
        meta = getattr(annotation, "__metadata__", None)
        origin = getattr(annotation, "__origin__", None)
        return field_types(origin, into_steps=into_steps) if meta and origin else [annotation]
    out: list[Any] = []
    for arg in args:
        out.extend(field_types(arg, into_steps=into_steps))
    return out
