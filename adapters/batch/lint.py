"""``esb lint`` for batch endpoints: the ack endpoint an outbound endpoint names, and the layout file.

An outbound endpoint's ``outbound.ack.endpoint`` must be an inbound batch endpoint of the project (the one
that picks the peer's acks up); each endpoint's layout must load, so that a broken layout is a finding with
its file and line instead of a failure when the hub starts.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from adapters.batch.config import BatchEndpoint
from adapters.batch.layouts import load_layout
from esb.config.systems import EndpointConfig
from esb.exceptions import ConfigError

Problem = tuple[tuple[str | int, ...], str]


def ack_problems(endpoint: BatchEndpoint, endpoints: Mapping[str, EndpointConfig]) -> list[Problem]:
    """``outbound.ack.endpoint`` names an endpoint of the project that is an inbound batch endpoint."""
    ack = endpoint.outbound.ack if endpoint.outbound is not None else None
    if ack is None:
        return []
    where = ("outbound", "ack", "endpoint")
    named = endpoints.get(ack.endpoint)
    if named is None:
        problem = (
            f"unknown endpoint {ack.endpoint!r}: declare the inbound batch endpoint that picks the acks up "
            "in config/systems.yaml, or fix the name"
        )
        return [(where, problem)]
    if not isinstance(named, BatchEndpoint) or named.inbound is None:
        batch = isinstance(named, BatchEndpoint)
        kind = "a batch endpoint without inbound" if batch else f"an endpoint of adapter {named.adapter}"
        return [(where, f"{ack.endpoint} is {kind}: acks are picked up by an inbound batch endpoint")]
    return []


def layout_problems(endpoint: BatchEndpoint, project_dir: Path | None) -> list[Problem]:
    """The endpoint's layout file exists and is a valid layout (each finding with the layout's file:line)."""
    try:
        load_layout(endpoint.layout, project_dir)
    except ConfigError as error:
        return [(("layout",), finding) for finding in (error.findings or [str(error)])]
    return []
