"""The JSON Schemas of the project's files (``esb schema``), generated from the same models that load them.

``systems`` holds every registered adapter's endpoint options, told apart by ``adapter`` (the adapters
are found through the registry by name). Values that ``${VAR}`` interpolation fills in at load time are
accepted wherever a number or a boolean is expected, as the file is written before interpolation.
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Callable
from typing import Annotated, Any

from pydantic import BaseModel, Field, create_model

from esb.config.routes import RoutesFile
from esb.config.settings import Settings
from esb.config.systems import SystemConfig, SystemsFile
from esb.registry import endpoint_models

DIALECT = "https://json-schema.org/draft/2020-12/schema"
INTERPOLATED = {"type": "string", "pattern": r"\$\{[A-Za-z_][A-Za-z0-9_]*(:-[^}]*)?\}"}


def _document(model: type[BaseModel]) -> dict[str, Any]:
    document = model.model_json_schema(by_alias=True)
    document["$schema"] = DIALECT
    return document


def routes_schema() -> dict[str, Any]:
    """The JSON Schema of routes.yaml (every registered step kind)."""
    return _document(RoutesFile)


def settings_schema() -> dict[str, Any]:
    """The JSON Schema of config/settings*.yaml."""
    return _document(Settings)


def systems_schema() -> dict[str, Any]:
    """The JSON Schema of config/systems.yaml, with each adapter's endpoint options."""
    union: Any = functools.reduce(operator.or_, endpoint_models().values())
    endpoint: Any = Annotated[union, Field(discriminator="adapter")]
    system = create_model(
        "SystemConfig",
        __base__=SystemConfig,
        __doc__=SystemConfig.__doc__,
        endpoints=(dict[str, endpoint], Field(default_factory=dict)),
    )
    systems = create_model(
        "SystemsFile",
        __base__=SystemsFile,
        __doc__=SystemsFile.__doc__,
        systems=(dict[str, system], Field(default_factory=dict)),  # type: ignore[valid-type]  # made at run time
    )
    document = _document(systems)
    defs = document["$defs"]
    options = defs["SystemConfig"]["properties"]["endpoints"]["additionalProperties"]
    for ref in options["discriminator"]["mapping"].values():  # the loader needs `adapter`, default or not
        endpoint_def = defs[ref.rsplit("/", 1)[-1]]
        endpoint_def["required"] = ["adapter", *endpoint_def.get("required", [])]
    defs["Interpolated"] = INTERPOLATED
    result: dict[str, Any] = _allow_interpolation(document)
    return result


def _allow_interpolation(node: Any) -> Any:
    """Let every number, integer or boolean also be a ``${VAR}`` string."""
    if isinstance(node, list):
        return [_allow_interpolation(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: _allow_interpolation(value) for key, value in node.items()}
    if out.get("type") in ("number", "integer", "boolean"):
        return {"anyOf": [out, {"$ref": "#/$defs/Interpolated"}]}
    return out


SCHEMAS: dict[str, Callable[[], dict[str, Any]]] = {
    "routes": routes_schema,
    "systems": systems_schema,
    "settings": settings_schema,
}
