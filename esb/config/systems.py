"""The peripheral systems and their endpoints (``config/systems.yaml``).

Each endpoint names its ``adapter``; the adapter's own model (``adapters/<name>/config.py``) validates the
rest, so each adapter's options are checked as strictly as the route language.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class EndpointConfig(BaseModel):
    """What every endpoint has, whatever its adapter. Adapters subclass this with their own options."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    adapter: str = Field(description="which adapter serves the endpoint: queue, direct, soap, batch, memory")
    description: str | None = Field(default=None, description="what the endpoint is for")
    format: Literal["xml", "json", "text", "bytes"] = Field(
        default="json", description="what the body is on the wire; decides how the first step parses it"
    )
    encoding: str = Field(default="utf-8", description="text encoding on the wire (utf-8, gbk, gb18030)")
    max_body_bytes: int | None = Field(default=None, ge=1, description="overrides limits.max_body_bytes")


class SystemConfig(BaseModel):
    """One peripheral system: a name, a description, its endpoints (validated per adapter)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    description: str | None = None
    endpoints: dict[str, dict[str, object]] = Field(default_factory=dict)


class SystemsFile(BaseModel):
    """The whole of ``config/systems.yaml``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    systems: dict[str, SystemConfig] = Field(default_factory=dict)
