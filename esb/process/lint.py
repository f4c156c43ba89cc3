"""``esb lint`` over ``processes/``: loading, each definition's own checks, then the project's references.

Against the project: the endpoints and transforms a process names exist; no route reads the trigger's
endpoint (they would share its messages); a ``call`` goes to an endpoint
that answers (its sink is a :class:`~esb.typing.Requester`), a ``send`` to one the hub can write to; a
``cancel`` names a process, and one of its business keys, that accepts cancels; a definition whose
content changed since its version was recorded in ``processes/.versions.lock`` had its version raised.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from esb.config.findings import warning
from esb.config.yamlpos import PathKey, format_path
from esb.exceptions import ConfigError
from esb.process.checks import check_definition, located_steps
from esb.process.loader import Definition, ProcessCatalog, load_processes
from esb.process.steps import AwaitStep, CallSpec, CallStep, CancelStep, SendStep, StepBase
from esb.process.versions import LOCK_FILE, fingerprint, read_lock
from esb.registry import did_you_mean, resolve_adapter
from esb.typing import Requester, capability

if TYPE_CHECKING:
    from esb.project import Project


class ProcessLinter:
    """Checks one project's process definitions against the project."""

    def __init__(self, project: Project, catalog: ProcessCatalog, transforms: set[str] | None) -> None:
        self.project = project
        self.catalog = catalog
        self.transforms = transforms
        self.findings: list[str] = list(catalog.findings)
        self._answers: dict[str, str | None] = {}
        self.definition: Definition | None = None

    def add(self, path: PathKey, problem: str) -> None:
        """Record a finding at ``path`` of the definition being checked."""
        assert self.definition is not None
        self.findings.append(f"{self.definition.doc.where(path)}: {format_path(path)}: {problem}")

    def run(self) -> list[str]:
        """Check every loaded version; return the findings."""
        for definition in self.catalog.all():
            self.definition = definition
            self.findings.extend(check_definition(definition))
            self.check_references(definition)
        self.check_lock()
        return self.findings

    def check_references(self, definition: Definition) -> None:
        """Endpoints, transforms and processes named by one definition exist and fit their use."""
        process = definition.process
        self.check_endpoint(process.trigger.from_, ("trigger", "from"))
        self.check_trigger_source(process.trigger.from_)
        self.check_transform(process.trigger.transform, ("trigger", "transform"))
        steps: list[tuple[PathKey, StepBase]] = [*located_steps(process)]
        steps += [(("compensations", i), s) for i, s in enumerate(process.compensations)]
        steps += [(("after_undo", i), s) for i, s in enumerate(process.after_undo)]
        for path, step in steps:
            if isinstance(step, CallStep):
                self.check_call(step.call, (*path, "call"))
            elif isinstance(step, SendStep):
                self.check_endpoint(step.send.endpoint, (*path, "send", "endpoint"), "send")
                self.check_transform(step.send.request, (*path, "send", "request"))
            elif isinstance(step, AwaitStep):
                self.check_endpoint(step.await_.from_, (*path, "await", "from"))
                self.check_transform(step.await_.response, (*path, "await", "response"))
            elif isinstance(step, CancelStep):
                self.check_cancel(step, (*path, "cancel"))
        read = {process.trigger.from_} | {s.await_.from_ for _, s in steps if isinstance(s, AwaitStep)}
        for index, rule in enumerate(process.ignore):
            if rule.from_ not in read:
                self.add(
                    ("ignore", index, "from"),
                    f"{rule.from_} is not read by this process (its trigger's or an await's from: "
                    f"{', '.join(sorted(read))}): the rule would never apply",
                )

    def check_trigger_source(self, name: str) -> None:
        """A trigger's endpoint is read by the process alone (a route reading it would share its messages)."""
        readers = [route.id for route in self.project.routes if route.from_ == name]
        if readers:
            self.add(
                ("trigger", "from"),
                f"{name} is also the source of route {readers[0]}: each message would go to one of them; "
                "give the process an endpoint of its own (the route can write to it)",
            )

    def check_call(self, spec: CallSpec, path: PathKey) -> None:
        """A call's endpoint must answer; its transforms must exist."""
        if self.check_endpoint(spec.endpoint, (*path, "endpoint"), "call"):
            problem = self.answers(spec.endpoint)
            if problem:
                self.add((*path, "endpoint"), problem)
        self.check_transform(spec.request, (*path, "request"))
        self.check_transform(spec.response, (*path, "response"))

    def check_endpoint(self, name: str, path: PathKey, use: str = "") -> bool:
        """An endpoint must be declared in config/systems.yaml (and writable for a call or send)."""
        if name not in self.project.endpoints:
            self.add(
                path,
                f"unknown endpoint {name!r}{did_you_mean(name, list(self.project.endpoints))}: "
                "declare it in config/systems.yaml or fix the name",
            )
            return False
        if use and (problem := self._sink_problem(name)) is not None and problem != _ONE_WAY:
            self.add(path, f"a {use} writes to {name}, which {problem}: name an endpoint the hub writes to")
            return False
        return True

    def answers(self, name: str) -> str | None:
        """Return why ``name`` cannot serve a call (None when it answers requests)."""
        if self._sink_problem(name) == _ONE_WAY:
            adapter = self.project.endpoints[name].adapter
            return (
                f"{name} is one-way ({adapter}: it does not answer): a call needs a reply; use send and "
                "an await correlated by a business key"
            )
        return None

    def _sink_problem(self, name: str) -> str | None:
        if name not in self._answers:
            config = self.project.endpoints[name]
            try:  # constructors store configuration only: no I/O here (esb.typing)
                sink = resolve_adapter(config.adapter).sink(config, self.project.context(name))
            except ConfigError as exc:
                self._answers[name] = f"cannot be written to ({exc})"
            else:
                self._answers[name] = None if capability(sink, Requester) is not None else _ONE_WAY
        return self._answers[name]

    def check_transform(self, name: str | None, path: PathKey) -> None:
        """A transform must exist under transforms/."""
        if name is not None and self.transforms is not None and name not in self.transforms:
            self.add(
                path,
                f"unknown transform {name!r}{did_you_mean(name, list(self.transforms))}: add it under "
                "transforms/ or fix the name",
            )

    def check_cancel(self, step: CancelStep, path: PathKey) -> None:
        """A cancel names a process that accepts cancels, by one of its business keys."""
        spec = step.cancel
        if spec.process not in self.catalog.current_version:
            hint = did_you_mean(spec.process, self.catalog.names())
            self.add((*path, "process"), f"unknown process {spec.process!r}{hint}: add it under processes/")
            return
        target = self.catalog.current(spec.process).process
        if spec.key not in target.business_keys:
            hint = did_you_mean(spec.key, list(target.business_keys))
            self.add(
                (*path, "key"),
                f"{spec.process} has no business key {spec.key!r}{hint}: use one of "
                f"{', '.join(target.business_keys)}",
            )
        if target.on_cancel is None:
            self.add(path, f"{spec.process} has no on_cancel: every cancel would be refused; add one to it")

    def check_lock(self) -> None:
        """A recorded version whose content changed must have been given a new version number."""
        try:
            lock = read_lock(self.project.root)
        except ConfigError as exc:
            self.findings.extend(exc.findings or [str(exc)])
            return
        if lock is None:
            return
        for definition in self.catalog.all():
            self.definition = definition
            name, version = definition.process.process, definition.process.version
            recorded = lock.get(name, {}).get(version)
            if recorded is None:
                self.findings.append(
                    warning(
                        definition.doc.where(("version",)),
                        f"version: {version} of {name} is not recorded in {LOCK_FILE}: run "
                        "python -m esb.process.versions once it is final",
                    )
                )
            elif recorded != fingerprint(definition.process):
                self.add(
                    ("version",),
                    f"{name} changed since version {version} was recorded in {LOCK_FILE}, but its version "
                    f"was not raised: move this file to processes/{name}/v{version}.yaml (instances "
                    f"running on it need it), raise version to {version + 1}, then run "
                    "python -m esb.process.versions",
                )


_ONE_WAY = "is one-way"


def process_findings(project: Project) -> list[str]:
    """Return every finding about the project's ``processes/`` (empty without processes)."""
    catalog = load_processes(project.root)
    if not catalog.all() and not catalog.findings:
        return []
    try:
        transforms: set[str] | None = set(project.transforms.names())
    except ConfigError:
        transforms = None  # the transforms' own finding is reported by the project lint
    return ProcessLinter(project, catalog, transforms).run()
