"""Options of a direct (in-process) endpoint."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from esb.config.systems import EndpointConfig


class DirectEndpoint(EndpointConfig):
    """An in-process channel: hops between routes of one hub, and Python handlers for request-reply.

    Not durable: use it only where losing in-flight messages on a crash is acceptable (tests, lookups).
    """

    adapter: Literal["direct"] = "direct"
    channel: str = Field(min_length=1, description="the channel name shared by writers and readers")
    capacity: int = Field(default=1000, ge=1, description="messages buffered before writers block")
