"""The building blocks of the route language shared by routes and step kinds.

Every model rejects unknown keys (:class:`Strict`), so a typo is a finding with its ``file:line``.
Expressions are JMESPath over ``{body, headers, type, source, id}``, never a new language.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

ENDPOINT_REF = r"^[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-.]+$"
EndpointRef = Annotated[
    str, Field(pattern=ENDPOINT_REF, description="system.endpoint from config/systems.yaml")
]
Expression = Annotated[
    str, Field(min_length=1, description="a JMESPath expression over {body, headers, ...}")
]


class Strict(BaseModel):
    """Base of every route-language model: unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


def short_form(key: str) -> BeforeValidator:
    """Read a plain string as ``{key: string}`` (``log: text``, ``split: expression``)."""

    def expand(value: Any) -> Any:
        return {key: value} if isinstance(value, str) else value

    return BeforeValidator(expand)
