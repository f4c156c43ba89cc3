"""The soap adapter: calling peripheral systems' web services (zeep) and serving the hub's (lxml).

An endpoint without ``listen`` is called (sink, enrich); an endpoint with ``listen`` is served (source).
zeep, requests and waitress are imported only when an endpoint is used.
"""

from __future__ import annotations

from typing import Any

from adapters.soap.config import SOAPEndpoint
from adapters.soap.sink import SOAPSink
from adapters.soap.source import SOAPSource
from esb.context import AdapterContext
from esb.exceptions import ConfigError

__all__ = ["SOAPAdapter", "SOAPEndpoint", "SOAPSink", "SOAPSource"]


class SOAPAdapter:
    """Makes sources and sinks for ``adapter: soap`` endpoints."""

    name = "soap"

    def endpoint_model(self) -> type[SOAPEndpoint]:
        """Return the endpoint model."""
        return SOAPEndpoint

    def source(self, endpoint: SOAPEndpoint, context: AdapterContext) -> SOAPSource:
        """Return an unconnected source (the endpoint must have ``listen``)."""
        return SOAPSource(endpoint, context)

    def sink(self, endpoint: SOAPEndpoint, context: AdapterContext) -> SOAPSink:
        """Return an unconnected sink (the endpoint must not have ``listen``)."""
        if endpoint.listen is not None:
            raise ConfigError(f"{context.endpoint} is served by the hub (listen:): it cannot be written to")
        return SOAPSink(endpoint, context)

    def health(self, endpoint: SOAPEndpoint, context: AdapterContext) -> tuple[str, str]:
        """``esb health``: the peer's service is reachable, or the hub's listener answers."""
        from adapters.soap.health import endpoint_health

        return endpoint_health(endpoint, context)

    def commands(self) -> list[Any]:
        """``esb soap operations WSDL``."""
        from adapters.soap.cli import soap

        return [soap]
