"""The option reference in docs/, generated from the models so it is never written twice.

``python -m esb.config.reference > docs/reference.md`` regenerates it; a test fails when it is stale.
Routes come from :mod:`esb.config.routes` and the step kinds' declarations, endpoints from each
adapter's endpoint model (found through the adapter registry by name), settings from the settings model.
"""

from __future__ import annotations

from types import UnionType
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel
from pydantic_core import PydanticUndefined

from esb.config import routes as r
from esb.config.settings import Settings
from esb.config.steps import Step, kinds
from esb.config.systems import EndpointConfig
from esb.config.walk import nested_models
from esb.registry import endpoint_models

ROUTE_MODELS: list[type[BaseModel]] = [r.Route, r.OnError, r.Redelivery, r.RecipientList, r.Destination]


def _type_name(annotation: Any) -> str:
    origin = get_origin(annotation)
    args = get_args(annotation)
    if annotation is Step:
        return "step"
    if origin is Annotated:
        return _type_name(args[0])
    if origin in (Union, UnionType):
        return " or ".join(_type_name(a) for a in args)
    if origin is Literal:
        return " / ".join(repr(a) for a in args)
    if origin in (list, dict):
        return f"{origin.__name__}[{', '.join(_type_name(a) for a in args)}]"
    if annotation is type(None):
        return "null"
    return getattr(annotation, "__name__", str(annotation))


def _default(field: Any) -> str:
    if field.is_required():
        return "required"
    if field.default is not PydanticUndefined:
        return f"`{field.default!r}`" if field.default is not None else "none"
    value = field.default_factory()
    if isinstance(value, BaseModel):
        changed = value.model_dump(exclude_defaults=True)
        return f"`{changed!r}`" if changed else "its defaults"
    return f"`{value!r}`"


def _inherited(model: type[BaseModel], name: str) -> bool:
    """True for an endpoint option shown once, in EndpointConfig: a common one the adapter leaves as it is,
    and ``adapter`` (the section's title names its value)."""
    if model is EndpointConfig or name not in EndpointConfig.model_fields:
        return False
    mine, common = model.model_fields[name], EndpointConfig.model_fields[name]
    same = (mine.annotation, mine.default) == (common.annotation, common.default)
    return (same and mine.description in (None, common.description)) or name == "adapter"


def model_table(model: type[BaseModel], level: str = "###") -> str:
    """Return a markdown table of ``model``'s fields (an endpoint model's own, beside the common ones)."""
    lines = [
        f"{level} {model.__name__}",
        "",
        (model.__doc__ or "").strip().splitlines()[0],
        "",
        "| key | type | default | description |",
        "| --- | --- | --- | --- |",
    ]
    for name, field in model.model_fields.items():
        if _inherited(model, name):
            continue
        key = field.alias or name
        description = (field.description or "").replace("|", "\\|")
        kind = _type_name(field.annotation).replace("|", "\\|")
        lines.append(f"| `{key}` | {kind} | {_default(field)} | {description} |")
    return "\n".join(lines) + "\n"


def _settings_models() -> list[type[BaseModel]]:
    out: list[type[BaseModel]] = [Settings]
    for field in Settings.model_fields.values():
        if isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel):
            out.append(field.annotation)
    return out


def step_sections() -> list[str]:
    """One section per registered step kind: its model and the models nested in it."""
    parts = ["## routes.yaml: steps", "", "A step is a mapping whose key names its kind.", ""]
    for name, kind in kinds().items():
        parts += [f"### `{name}`", ""]
        parts += [model_table(m, "####") for m in nested_models(kind.model, into_steps=False)]
    return parts


def adapter_sections() -> list[str]:
    """One section per registered adapter: its endpoint options and the models nested in them."""
    parts = [
        "## config/systems.yaml: what every endpoint has",
        "",
        model_table(EndpointConfig),
    ]
    for name, model in endpoint_models().items():
        parts += [
            f"## config/systems.yaml: `adapter: {name}`",
            "",
            "Besides the common options above (those the adapter changes are listed again).",
            "",
        ]
        parts += [model_table(m) for m in nested_models(model, into_steps=False)]
    return parts


def generate() -> str:
    """Return docs/reference.md."""
    parts = [
        "# Option reference",
        "",
        "Generated from the models by `python -m esb.config.reference`; do not edit by hand.",
        "",
        "## routes.yaml",
        "",
    ]
    parts += [model_table(m) for m in ROUTE_MODELS]
    parts += step_sections()
    parts += adapter_sections()
    parts += ["## config/settings.yaml", ""]
    parts += [model_table(m) for m in _settings_models()]
    return "\n".join(parts)


if __name__ == "__main__":
    print(generate(), end="")
