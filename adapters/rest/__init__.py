"""The rest adapter: TMF Open API v4 resources served by the hub (cheroot), and peers' REST APIs called
(requests).

An endpoint with ``listen`` is served (a source: TMF622 ``productOrder``, the event hub) and its sink
changes the state of the resources it created; an endpoint with ``base_url`` is a peer's API (a sink
and a requester). cheroot and requests are imported only when an endpoint is used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from adapters.rest.config import RESTEndpoint
from esb.context import AdapterContext
from esb.registry import lazy_exports

if TYPE_CHECKING:
    from adapters.rest.sink import RESTSink
    from adapters.rest.source import RESTSource

#: The source and sink are imported on first use (their protocol libraries are heavy).
__getattr__ = lazy_exports(
    __name__, {"RESTSink": "adapters.rest.sink", "RESTSource": "adapters.rest.source"}
)

__all__ = ["RESTAdapter", "RESTEndpoint", "RESTSink", "RESTSource"]


class RESTAdapter:
    """Makes sources and sinks for ``adapter: rest`` endpoints."""

    name = "rest"

    def endpoint_model(self) -> type[RESTEndpoint]:
        """Return the endpoint model."""
        return RESTEndpoint

    def source(self, endpoint: RESTEndpoint, context: AdapterContext) -> RESTSource:
        """Return an unconnected source (the endpoint must have ``listen``)."""
        from adapters.rest.source import RESTSource

        return RESTSource(endpoint, context)

    def jobs(self, endpoint: RESTEndpoint, context: AdapterContext) -> list[dict[str, Any]]:
        """``esb health``: a served endpoint's store prune job, with its last and next run."""
        from adapters.rest.retention import endpoint_jobs

        return endpoint_jobs(endpoint, context)

    def sink(self, endpoint: RESTEndpoint, context: AdapterContext) -> RESTSink:
        """Return an unconnected sink: a client of ``base_url``, or the state changes of served resources."""
        from adapters.rest.sink import RESTSink

        return RESTSink(endpoint, context)
