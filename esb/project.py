"""The integration project: settings, systems with their endpoints, routes, transforms, canonical model.

``Project.load`` reads and checks the structure of every file (unknown keys, wrong types), resolving each
endpoint through its adapter's own model; ``esb.lint`` adds the cross-reference checks. Transforms and
schemas are compiled lazily by their registries, once.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from esb.config.findings import findings_from_validation
from esb.config.projectdir import ROUTES_FILE, SYSTEMS_FILE, project_settings
from esb.config.routes import Route, RoutesFile, partition_endpoint
from esb.config.settings import Settings, interpolate
from esb.config.systems import EndpointConfig, SystemConfig, SystemsFile
from esb.config.yamlpos import Located, load_yaml
from esb.context import AdapterContext
from esb.exceptions import ConfigError
from esb.registry import did_you_mean, resolve_adapter
from esb.startup import end_startup
from esb.typing import Partitionable, capability

__all__ = ["ROUTES_FILE", "SYSTEMS_FILE", "Project"]


@dataclass
class Project:
    """Everything loaded from one project directory."""

    root: Path
    settings: Settings
    systems: dict[str, SystemConfig]
    endpoints: dict[str, EndpointConfig]
    routes: list[Route]
    routes_doc: Located
    systems_doc: Located
    findings: list[str] = field(default_factory=list)

    @classmethod
    def load(
        cls,
        root: Path,
        env: str | None = None,
        *,
        strict: bool = True,
        environ: dict[str, str] | None = None,
    ) -> Project:
        """Load the project at ``root``; raise ConfigError with every finding when ``strict``.

        ``environ`` replaces ``os.environ`` as the environment source of settings (tests, ``esb demo``).
        """
        root, settings = project_settings(root, env, environ)
        findings: list[str] = []
        systems_doc = load_yaml(root / SYSTEMS_FILE, display=SYSTEMS_FILE)
        systems_doc.data = interpolate(
            systems_doc.data, SYSTEMS_FILE, dict(os.environ if environ is None else environ)
        )
        systems, endpoints = _load_systems(systems_doc, findings)
        routes_doc = load_yaml(root / ROUTES_FILE, display=ROUTES_FILE)
        routes = _load_routes(routes_doc, findings)
        endpoints.update(_partition_endpoints(routes, endpoints, findings))
        project = cls(root, settings, systems, endpoints, routes, routes_doc, systems_doc, findings)
        end_startup()  # the command's start is over: see esb/startup.py
        if strict and findings:
            raise ConfigError(f"{len(findings)} problem(s) in the project", findings=findings)
        return project

    def endpoint(self, name: str) -> EndpointConfig:
        """Return the endpoint called ``system.endpoint``."""
        try:
            return self.endpoints[name]
        except KeyError:
            raise ConfigError(
                f"unknown endpoint {name!r}{did_you_mean(name, list(self.endpoints))}"
            ) from None

    def context(self, endpoint: str) -> AdapterContext:
        """Return the AdapterContext for ``endpoint``."""
        return AdapterContext(
            settings=self.settings, project_dir=self.root, endpoint=endpoint, endpoints=self.endpoints
        )

    def adapter_for(self, endpoint: str) -> Any:
        """Return the adapter serving ``endpoint``."""
        return resolve_adapter(self.endpoint(endpoint).adapter)

    def route(self, route_id: str) -> Route:
        """Return the route with id ``route_id``."""
        for route in self.routes:
            if route.id == route_id:
                return route
        raise ConfigError(f"unknown route {route_id!r}{did_you_mean(route_id, [r.id for r in self.routes])}")

    @cached_property
    def transforms(self) -> Any:
        """The project's TransformRegistry (mappings compiled once, on first use)."""
        from esb.transforms import TransformRegistry

        return TransformRegistry(self.root)

    @cached_property
    def tables(self) -> Any:
        """The project's TableRegistry (decision tables under transforms/tables/, loaded once)."""
        from esb.decision import TableRegistry

        return TableRegistry(self.root)

    @cached_property
    def model(self) -> Any:
        """The project's ModelRegistry (canonical schemas, validators compiled once)."""
        from esb.model.registry import ModelRegistry

        return ModelRegistry(self.root / "canonical_model")

    def route_line(self, index: int, *path: str | int) -> str:
        """Return ``routes.yaml:N`` for ``routes[index].<path>``."""
        return self.routes_doc.where(("routes", index, *path))


def _load_systems(
    doc: Located, findings: list[str]
) -> tuple[dict[str, SystemConfig], dict[str, EndpointConfig]]:
    try:
        parsed = SystemsFile.model_validate(doc.data or {})
    except ValidationError as exc:
        findings.extend(findings_from_validation(exc, doc, SystemsFile))
        return {}, {}
    endpoints: dict[str, EndpointConfig] = {}
    for system_name, system in parsed.systems.items():
        for endpoint_name, raw in system.endpoints.items():
            full = f"{system_name}.{endpoint_name}"
            path = ("systems", system_name, "endpoints", endpoint_name)
            adapter_name = raw.get("adapter") if isinstance(raw, dict) else None
            if not isinstance(adapter_name, str):
                findings.append(f"{doc.where(path)}: {full}: missing 'adapter' (queue, soap, batch, direct)")
                continue
            try:
                model = resolve_adapter(adapter_name).endpoint_model()
            except ConfigError as exc:
                findings.append(f"{doc.where((*path, 'adapter'))}: {full}.adapter: {exc}")
                continue
            try:
                endpoints[full] = model.model_validate(raw)
            except ValidationError as exc:
                findings.extend(findings_from_validation(exc, doc, model, prefix=path))
    return dict(parsed.systems), endpoints


def _partition_endpoints(
    routes: list[Route], endpoints: dict[str, EndpointConfig], findings: list[str]
) -> dict[str, EndpointConfig]:
    """The partition endpoints of partitioned routes: ``<source>.p<i>``, made by the source's adapter
    (``Partitionable``: a queue's are ``<queue>.p<i>``), each read by one consumer at a time (see
    esb/runtime/partitioner.py)."""
    made: dict[str, EndpointConfig] = {}
    for route in routes:
        source = endpoints.get(route.from_)
        if route.partitions < 2 or source is None:
            continue
        try:
            splitter = capability(resolve_adapter(source.adapter), Partitionable)
        except ConfigError:
            continue  # an unknown adapter is its own finding
        if splitter is None:
            findings.append(
                f"{ROUTES_FILE}: route {route.id}: partitions needs a source that can be partitioned, "
                f"such as a queue ({route.from_} is {source.adapter})"
            )
            continue
        for index in range(route.partitions):
            made[partition_endpoint(route.from_, index)] = splitter.partition(source, index)
    return made


def _load_routes(doc: Located, findings: list[str]) -> list[Route]:
    try:
        return list(RoutesFile.model_validate(doc.data or {}).routes)
    except ValidationError as exc:
        findings.extend(findings_from_validation(exc, doc, RoutesFile))
        return []
