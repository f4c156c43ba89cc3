"""The pool adapter: one endpoint served by several instances (other endpoints), with passive health.

``adapter: pool`` endpoints are written to like any sink (route ``to``, ``enrich``, process ``call`` and
``send``); each message goes to one member (see :mod:`adapters.pool.sink`). A pool offers what every one
of its members offers: it answers requests when they all do.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from adapters.pool.config import Member, PassiveHealth, PoolEndpoint
from adapters.pool.shared import shared_state
from adapters.pool.sink import PoolRequester, PoolSink, member_config
from adapters.pool.status import health_line, read_status, status_dir
from esb.config.systems import EndpointConfig
from esb.context import AdapterContext
from esb.exceptions import ConfigError
from esb.expressions import validate_expression
from esb.registry import did_you_mean, resolve_adapter
from esb.typing import Requester, capability

__all__ = ["Member", "PassiveHealth", "PoolAdapter", "PoolEndpoint", "PoolRequester", "PoolSink"]


class PoolAdapter:
    """Makes sinks for ``adapter: pool`` endpoints and reports their members' health."""

    name = "pool"

    def endpoint_model(self) -> type[PoolEndpoint]:
        """Return the endpoint model."""
        return PoolEndpoint

    def source(self, endpoint: PoolEndpoint, context: Any) -> Any:
        """A pool is only written to: refuse to read from one."""
        raise ConfigError(
            f"{context.endpoint} is a pool (adapter: pool): routes write to it; read from its members instead"
        )

    def sink(self, endpoint: PoolEndpoint, context: AdapterContext) -> PoolSink:
        """Return an unconnected sink over the pool's members (a requester when every member answers)."""
        members = [member_config(context, m.endpoint) for m in endpoint.members]
        answers = all(
            capability(
                resolve_adapter(config.adapter).sink(config, _member_context(context, m.endpoint)), Requester
            )
            is not None
            for config, m in zip(members, endpoint.members, strict=True)
        )
        kind = PoolRequester if answers else PoolSink
        return kind(endpoint, context, shared_state(endpoint, context))

    def endpoint_problems(
        self,
        endpoint: PoolEndpoint,
        endpoints: Mapping[str, EndpointConfig],
        project_dir: Path | None = None,
    ) -> list[tuple[tuple[str | int, ...], str]]:
        """``esb lint``: each member is an endpoint of the project and not a pool; sticky_key parses."""
        problems: list[tuple[tuple[str | int, ...], str]] = []
        for index, member in enumerate(endpoint.members):
            config = endpoints.get(member.endpoint)
            if config is None:
                hint = did_you_mean(member.endpoint, list(endpoints))
                problems.append(
                    (
                        ("members", index),
                        f"unknown endpoint {member.endpoint!r}{hint}: "
                        "declare it in config/systems.yaml or fix the name",
                    )
                )
            elif config.adapter == self.name:
                problems.append(
                    (
                        ("members", index),
                        f"{member.endpoint} is itself a pool: name its members instead",
                    )
                )
        if endpoint.sticky_key is not None and (error := validate_expression(endpoint.sticky_key)):
            problems.append(
                (("sticky_key",), f"invalid JMESPath expression {endpoint.sticky_key!r}: {error}")
            )
        return problems

    def health(self, endpoint: PoolEndpoint, context: AdapterContext) -> tuple[str, str]:
        """Each member's breaker as the running hubs see it: ejected members and why."""
        return health_line([m.endpoint for m in endpoint.members], read_status(status_dir(context)))


def _member_context(context: AdapterContext, name: str) -> AdapterContext:
    from dataclasses import replace

    return replace(context, endpoint=name)
