"""The direct adapter: in-process channels between routes, and handlers for request-reply."""

from __future__ import annotations

from typing import Any

from adapters.direct.channels import register_handler
from adapters.direct.config import DirectEndpoint
from adapters.direct.sink import DirectSink
from adapters.direct.source import DirectSource

__all__ = ["DirectAdapter", "DirectEndpoint", "DirectSink", "DirectSource", "register_handler"]


class DirectAdapter:
    """Makes sources and sinks for ``adapter: direct`` endpoints."""

    name = "direct"

    def endpoint_model(self) -> type[DirectEndpoint]:
        """Return the endpoint model."""
        return DirectEndpoint

    def source(self, endpoint: DirectEndpoint, context: Any) -> DirectSource:
        """Return an unconnected source."""
        return DirectSource(endpoint)

    def sink(self, endpoint: DirectEndpoint, context: Any) -> DirectSink:
        """Return an unconnected sink."""
        return DirectSink(endpoint)
