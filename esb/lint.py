"""``esb lint``: every check over the project, each finding ``file:line: path: problem (what to do)``.

Structure (unknown keys, types) is checked while loading (:mod:`esb.project`); this module adds the
cross-references: endpoints, transforms and schemas that routes name must exist, route ids are unique,
a choice has no duplicate ``when``, expressions parse, every route has a dead-letter endpoint. Then the
transforms compile, rule mappings are checked against their schemas and samples
(:mod:`esb.transforms.mapcheck`; :attr:`Linter.warnings` holds what does not fail lint) and the
canonical schemas are checked.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from esb.config import routes as r
from esb.config.catalog import catalog_findings
from esb.config.findings import warning
from esb.config.steps import kind_of, kinds
from esb.config.steps.sync import SyncStep
from esb.config.steps.transform import TransformStep
from esb.config.yamlpos import PathKey, format_path
from esb.decision.lint import table_findings
from esb.exceptions import ConfigError
from esb.expressions import validate_expression
from esb.process.lint import process_findings
from esb.project import Project
from esb.registry import did_you_mean, resolve_adapter
from esb.transforms.codelistcheck import check_codelist_targets
from esb.transforms.mapcheck import check_mappings
from esb.transforms.siebelobjects import declaration_findings
from esb.typing import EndpointChecker, ExtractReader, Partitionable, capability


class Linter:
    """Collects findings about one loaded project."""

    def __init__(self, project: Project) -> None:
        self.project = project
        self.findings: list[str] = list(project.findings)
        self.warnings: list[str] = []
        self._transforms = self._names(lambda: project.transforms.names(), "transforms")
        self._schemas = self._names(lambda: project.model.names(), "canonical_model")

    def _names(self, get: Any, what: str) -> set[str] | None:
        try:
            return set(get())
        except ConfigError as exc:
            self.findings.append(f"{what}: {exc}")
            return None

    def add(self, path: PathKey, problem: str) -> None:
        """Record a finding about ``routes.yaml`` at ``path``."""
        self.findings.append(f"{self.project.routes_doc.where(path)}: {format_path(path)}: {problem}")

    def run(self) -> list[str]:
        """Run every check; return the findings."""
        seen: dict[str, int] = {}
        for index, route in enumerate(self.project.routes):
            base: PathKey = ("routes", index)
            if route.id in seen:
                self.add(
                    (*base, "id"),
                    f"duplicate route id {route.id!r} (also routes[{seen[route.id]}]): rename one",
                )
            seen.setdefault(route.id, index)
            self.check_route(route, base)
        self.check_content()
        return self.findings

    def check_route(self, route: r.Route, base: PathKey) -> None:
        """Check one route's references and expressions."""
        self.check_endpoint(route.from_, (*base, "from"))
        if isinstance(route.to, r.RecipientList):
            self.check_expression(route.to.recipients, (*base, "to", "recipients"))
            for i, name in enumerate(route.to.allowed):
                self.check_endpoint(name, (*base, "to", "allowed", i))
        elif isinstance(route.to, list):
            self.check_fan_out(route, route.to, (*base, "to"))
        elif route.to is not None:
            self.check_endpoint(route.to, (*base, "to"))
        dead_letter = route.on_error.dead_letter
        if dead_letter is None:
            self.add(
                (*base, "on_error"),
                "no dead-letter endpoint: add on_error.dead_letter so failed messages are kept",
            )
        else:
            self.check_endpoint(dead_letter, (*base, "on_error", "dead_letter"))
            if dead_letter == route.from_:
                self.add(
                    (*base, "on_error", "dead_letter"),
                    "dead-letter endpoint is the route's own source: use another",
                )
        for name, text in route.business_keys.items():
            self.check_expression(text, (*base, "business_keys", name))
        self.check_ordering(route, base)
        for kind in (k for k in kinds().values() if k.top_level_only):
            found = [i for i, s in enumerate(route.steps) if isinstance(s, kind.model)]
            if len(found) > 1:
                self.add(
                    (*base, "steps", found[1]), f"only one {kind.name} step per route: split the route in two"
                )
        self.check_steps(route.steps, (*base, "steps"), top=True)

    def check_fan_out(self, route: r.Route, items: list[str | r.Destination], base: PathKey) -> None:
        """A fan-out names each endpoint once; a destination's own transform exists and reads what the
        route's steps leave (its ``input_schema`` is the schema the last ``validate`` checked, if known)."""
        seen: dict[str, int] = {}
        last_schema = schema_after(route.steps)
        for i, item in enumerate(items):
            endpoint = item if isinstance(item, str) else item.endpoint
            path: PathKey = (*base, i) if isinstance(item, str) else (*base, i, "endpoint")
            self.check_endpoint(endpoint, path)
            if endpoint in seen:
                self.add(path, f"{endpoint} is already to[{seen[endpoint]}]: name each endpoint once")
            seen.setdefault(endpoint, i)
            if isinstance(item, str):
                continue
            self.check_transform(item.transform, (*base, i, "transform"))
            if last_schema is None or self._transforms is None or item.transform not in self._transforms:
                continue
            try:
                wanted = self.project.transforms.get(item.transform).header.input_schema
            except ConfigError:
                continue  # a transform that does not compile is its own finding
            if wanted is not None and wanted != last_schema:
                self.add(
                    (*base, i, "transform"),
                    f"{item.transform} reads {wanted}, but the route's steps end with {last_schema} "
                    "(validate): map to its input first or pick the transform for this schema",
                )

    def check_ordering(self, route: r.Route, base: PathKey) -> None:
        """An ordered route's queue source must hand its messages to one consumer at a time."""
        if route.ordered_by is None:
            return
        self.check_expression(route.ordered_by, (*base, "ordered_by"))
        if route.partitions > 1:  # the partitioner runs the steps up to the first transform to read the key
            unsafe = [k.name for k in kinds().values() if not k.before_partition]
            for index, step in enumerate(route.steps):
                if isinstance(step, TransformStep):
                    break
                if not kind_of(step).before_partition:
                    self.add(
                        (*base, "steps", index),
                        "a partitioned route reads its key with the steps before its first transform: "
                        f"no {', '.join(unsafe[:-1])} or {unsafe[-1]} there",
                    )
        source = self.project.endpoints.get(route.from_)
        if source is None:
            return
        try:
            ordered = capability(resolve_adapter(source.adapter), Partitionable)
        except ConfigError:
            return  # an unknown adapter is its own finding
        problem = ordered.ordering_problem(source) if ordered is not None else None
        if problem:
            self.add((*base, "ordered_by"), f"ordered_by: {route.from_} {problem}")

    def check_steps(self, steps: Sequence[Any], base: PathKey, *, top: bool = False) -> None:
        """Check a list of steps (``top``: a route's own, else a branch's)."""
        for j, step in enumerate(steps):
            self.check_step(step, (*base, j), top=top)

    def check_step(self, step: Any, path: PathKey, *, top: bool) -> None:
        """Check one step with its kind's checks."""
        kind = kind_of(step)
        kind.lint(step, path, self)
        if kind.top_level_only and not top:
            self.add(path, f"{kind.name} is allowed only at the top level of a route's steps")

    def check_endpoint(self, name: str, path: PathKey) -> None:
        """An endpoint must be declared in config/systems.yaml."""
        if name not in self.project.endpoints:
            self.add(
                path,
                f"unknown endpoint {name!r}{did_you_mean(name, list(self.project.endpoints))}: "
                "declare it in config/systems.yaml or fix the name",
            )

    def check_name(self, name: str, known: set[str] | None, path: PathKey, what: str, where: str) -> None:
        """A transform or schema must exist."""
        if known is not None and name not in known:
            self.add(
                path,
                f"unknown {what} {name!r}{did_you_mean(name, list(known))}: add it under {where} "
                "or fix the name",
            )

    def check_transform(self, name: str, path: PathKey) -> None:
        """A transform must exist under transforms/."""
        self.check_name(name, self._transforms, path, "transform", "transforms/")

    def check_schema(self, name: str, path: PathKey) -> None:
        """A canonical schema must exist under canonical_model/."""
        self.check_name(name, self._schemas, path, "schema", "canonical_model/")

    def check_table(self, name: str, path: PathKey) -> Any:
        """A decision table must exist under transforms/tables/ and load: return it, or None."""
        tables = self.project.tables
        if name not in tables.names():
            self.check_name(name, set(tables.names()), path, "decision table", "transforms/tables/")
            return None
        try:
            return tables.get(name)
        except ConfigError:
            self.add(path, f"decision table {name!r} does not load (its findings are listed apart)")
            return None

    def check_expression(self, text: str, path: PathKey) -> None:
        """An expression must be valid JMESPath."""
        problem = validate_expression(text)
        if problem:
            self.add(path, f"invalid JMESPath expression {text!r}: {problem}")

    def check_content(self) -> None:
        """Compile every transform, check rule mappings against their schemas, check every schema."""
        if self._transforms is not None:
            self.findings.extend(_safe(lambda: self.project.transforms.load_all(), "transforms"))
            errors, self.warnings = check_mappings(self.project)
            self.findings.extend(errors)
        if self._schemas is not None:
            self.findings.extend(check_codelist_targets(self.project))
        if self._schemas is not None:
            self.findings.extend(_safe(lambda: self.project.model.check(), "canonical_model"))
        self.findings.extend(table_findings(self.project))
        self.findings.extend(declaration_findings(self.project.root))
        self.findings.extend(catalog_findings(self.project))
        self.findings.extend(process_findings(self.project))
        self.findings.extend(endpoint_findings(self.project))
        self.findings.extend(sync_findings(self.project))
        self.findings.extend(settings_findings(self.project))


def endpoint_findings(project: Project) -> list[str]:
    """What each endpoint of config/systems.yaml names, checked by its adapter (``EndpointChecker``)."""
    found: list[str] = []
    for system, config in project.systems.items():
        for name in config.endpoints:
            full = f"{system}.{name}"
            endpoint = project.endpoints.get(full)
            if endpoint is None:
                continue  # it failed to load: its own finding
            try:
                checker = capability(resolve_adapter(endpoint.adapter), EndpointChecker)
            except ConfigError:
                continue
            if checker is None:
                continue
            for path, problem in checker.endpoint_problems(endpoint, project.endpoints, project.root):
                where = project.systems_doc.where(("systems", system, "endpoints", name, *path))
                found.append(f"{where}: {format_path((full, *path))}: {problem}")
    return found


def sync_findings(project: Project) -> list[str]:
    """``sync.resync`` and ``sync.reconcile`` of the settings: each names a route's sync, an endpoint whose
    adapter reads extracts, and a transform (docs/sync.md)."""
    names = {s.sync.name for route in project.routes for s in route.steps if isinstance(s, SyncStep)}
    found: list[str] = []
    sections: list[tuple[str, dict[str, Any]]] = [
        ("resync", dict(project.settings.sync.resync)),
        ("reconcile", dict(project.settings.sync.reconcile)),
    ]
    for section, specs in sections:
        for name, spec in sorted(specs.items()):
            where = f"config/settings.yaml: sync.{section}.{name}"
            if name not in names:
                known = ", ".join(sorted(names)) or "none"
                found.append(f"{where}: no route declares sync {name!r}{did_you_mean(name, list(names))}; "
                             f"known: {known}")  # fmt: skip
            if spec.extract not in project.endpoints:
                found.append(f"{where}.extract: unknown endpoint {spec.extract!r}"
                             f"{did_you_mean(spec.extract, list(project.endpoints))}")  # fmt: skip
            elif capability(project.adapter_for(spec.extract), ExtractReader) is None:
                found.append(f"{where}.extract: {spec.extract} cannot read an extract (a batch endpoint can)")
            try:
                project.transforms.path_of(spec.transform)
            except ConfigError as exc:
                found.append(f"{where}.transform: {exc}")
    return found


def settings_findings(project: Project) -> list[str]:
    """Settings that load but defeat their purpose, as warnings: a broker prefetch below the batch size
    caps every batch at the prefetch (docs/deployment.md: with one batch in flight, 1.5-2x the batch)."""
    prefetch, batch = project.settings.broker.prefetch, project.settings.runtime.batch_size
    if prefetch >= batch:
        return []
    text = (
        f"broker.prefetch ({prefetch}) is below runtime.batch_size ({batch}): a batch never holds more than "
        f"{prefetch} deliveries; set it to at least {batch}, better {batch * 3 // 2}-{batch * 2} (one batch "
        "is in flight while the next is read)"
    )
    return [warning("settings", text)]


def schema_after(steps: Sequence[Any]) -> str | None:
    """The canonical schema a route's output has after ``steps``, when they say: the last ``validate``
    with only filter, set_header, log and choice steps (of those same kinds) after it; else None."""
    schema: str | None = None
    for step in steps:
        if isinstance(step, r.ValidateStep):
            schema = step.validate_
        elif isinstance(step, r.ChoiceStep):
            branches = [b.steps for b in step.choice if isinstance(b, r.WhenBranch)] + [
                b.otherwise for b in step.choice if isinstance(b, r.OtherwiseBranch)
            ]
            if any(not all(_keeps_schema(s) for s in branch) for branch in branches):
                schema = None
        elif not _keeps_schema(step):
            schema = None
    return schema


def _keeps_schema(step: Any) -> bool:
    """True for the steps that never change the body (they only drop it, label it, or log it)."""
    return isinstance(step, r.FilterStep | r.SetHeaderStep | r.LogStep)


def _safe(get: Any, what: str) -> Iterable[str]:
    try:
        return list(get())
    except ConfigError as exc:
        return exc.findings or [f"{what}: {exc}"]


def lint_project(root: Path, env: str | None = None) -> list[str]:
    """Return every finding about the project at ``root``, warnings included (empty when it is clean)."""
    try:
        project = Project.load(root, env, strict=False)
    except ConfigError as exc:
        return exc.findings or [str(exc)]
    linter = Linter(project)
    findings = {*linter.run(), *linter.warnings}  # one finding once, however many paths met it
    return sorted(findings, key=_position)


def _position(finding: str) -> tuple[str, int, str]:
    """Sort key: file, then line number, then text."""
    file, _, rest = finding.partition(":")
    line, _, _ = rest.partition(":")
    return (file, int(line) if line.isdigit() else 0, finding)
