"""The soap adapter: calling peripheral systems' web services (zeep) and serving the hub's (lxml).

An endpoint without ``listen`` is called (sink, enrich); an endpoint with ``listen`` is served (source).
zeep, requests and waitress are imported only when an endpoint is used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from adapters.soap.config import SOAPEndpoint
from esb.context import AdapterContext
from esb.exceptions import ConfigError
from esb.registry import lazy_exports

if TYPE_CHECKING:
    from adapters.soap.sink import SOAPSink
    from adapters.soap.source import SOAPSource

#: The source and sink are imported on first use (their protocol libraries are heavy).
__getattr__ = lazy_exports(
    __name__, {"SOAPSink": "adapters.soap.sink", "SOAPSource": "adapters.soap.source"}
)

__all__ = ["SOAPAdapter", "SOAPEndpoint", "SOAPSink", "SOAPSource"]


class SOAPAdapter:
    """Makes sources and sinks for ``adapter: soap`` endpoints."""

    name = "soap"

    def endpoint_model(self) -> type[SOAPEndpoint]:
        """Return the endpoint model."""
        return SOAPEndpoint

    def source(self, endpoint: SOAPEndpoint, context: AdapterContext) -> SOAPSource:
        """Return an unconnected source (the endpoint must have ``listen``)."""
        from adapters.soap.source import SOAPSource

        return SOAPSource(endpoint, context)

    def sink(self, endpoint: SOAPEndpoint, context: AdapterContext) -> SOAPSink:
        """Return an unconnected sink (the endpoint must not have ``listen``)."""
        if endpoint.listen is not None:
            raise ConfigError(f"{context.endpoint} is served by the hub (listen:): it cannot be written to")
        from adapters.soap.sink import SOAPSink

        return SOAPSink(endpoint, context)

    def health(self, endpoint: SOAPEndpoint, context: AdapterContext) -> tuple[str, str]:
        """``esb health``: the peer's service is reachable, or the hub's listener answers."""
        from adapters.soap.health import endpoint_health

        return endpoint_health(endpoint, context)

    def commands(self) -> list[Any]:
        """``esb soap operations WSDL``."""
        from adapters.soap.cli import soap

        return [soap]
