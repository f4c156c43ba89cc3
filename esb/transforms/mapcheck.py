"""``esb lint`` on rule mappings: targets against the output schema, sources against the input.

Every mapping's ``output_schema`` (and ``input_schema``) must name a canonical schema. For each
``xpath-to-json`` or ``jmespath`` mapping (the other kinds are code or fixed conversions):

- every target path exists in ``output_schema`` (error);
- every required field of each object the mapping builds is written by some rule (error);
- code-list, lookup and constant outputs lie within the target field's enumeration (error);
- every source path exists in ``input_schema`` (error) or, lacking one, in the samples (warning); a
  mapping with neither gets one warning saying its sources were not checked.

Each finding reads ``file:line: rules.x.fn: problem: what to do``; warnings carry ``warning:`` first.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from esb.config.findings import warning
from esb.config.yamlpos import Located, PathKey, format_path, load_yaml
from esb.exceptions import ConfigError
from esb.transforms.functions import FnContext
from esb.transforms.kinds import RuleTransform
from esb.transforms.mapsources import Sources, json_sources, load_samples, under, variants, xml_sources
from esb.transforms.pipeline import split_step
from esb.transforms.rules import Block, Rule
from esb.transforms.schemawalk import ITEM, Segment, bind, display, follow


@dataclass
class Analysis:
    """One mapping looked at: its transform, file, sources, and the findings about it."""

    transform: RuleTransform
    doc: Located
    sources: Sources
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def error(self, path: PathKey, problem: str) -> None:
        """Record an error about ``path`` of the mapping file."""
        self.errors.append(f"{self.doc.where(path)}: {format_path(path)}: {problem}")

    def warn(self, path: PathKey, problem: str) -> None:
        """Record a warning about ``path`` of the mapping file."""
        self.warnings.append(warning(self.doc.where(path), f"{format_path(path)}: {problem}"))


def rule_mappings(project: Any) -> Iterator[tuple[str, Any]]:
    """Yield every mapping of the project made of rules (those that compile; the rest are findings)."""
    for name, transform in _compiled(project):
        if variants(transform):
            yield name, transform


def _compiled(project: Any) -> Iterator[tuple[str, Any]]:
    for name in project.transforms.names():
        try:
            yield name, project.transforms.get(name)
        except ConfigError:
            continue


def check_mappings(project: Any) -> tuple[list[str], list[str]]:
    """Return (errors, warnings) about every mapping of ``project`` (rule mappings in depth)."""
    errors: list[str] = []
    warnings: list[str] = []
    for name, transform in _compiled(project):
        if variants(transform):
            result = analyse(project, name, transform)
            errors.extend(result.errors)
            warnings.extend(result.warnings)
        elif getattr(getattr(transform, "header", None), "output_schema", None):
            _, problem = _schema(project, transform.header.output_schema)
            if problem:
                doc = load_yaml(project.transforms.path_of(name), display=transform.header.file)
                errors.append(f"{doc.where(('output_schema',))}: output_schema: {problem}")
    return errors, warnings


def analyse(project: Any, name: str, mapping: Any) -> Analysis:
    """Check one rule mapping of ``project`` against its schemas and samples."""
    path = project.transforms.path_of(name)
    doc = load_yaml(path, display=mapping.header.file)
    samples = load_samples(mapping, path)
    transform = variants(mapping)[0]  # the variants of a siebel: mapping share their rules and targets
    header = transform.header
    problems: dict[str, str] = {}
    if header.input == "xml":
        sources = xml_sources(samples)
    else:
        named = header.input_schema
        schema, problems["input_schema"] = _schema(project, named) if named else (None, "")
        sources = json_sources(transform, (named, schema) if named and schema else None, samples)
    result = Analysis(transform, doc, sources)
    _report_sources(result, bool(samples))
    top, problems["output_schema"] = (
        _schema(project, header.output_schema) if header.output_schema else (None, "")
    )
    for key, problem in problems.items():
        if problem:
            result.error((key,), problem)
    if top is not None and header.output_schema and transform.block is not None:
        TargetChecker(result, top, header.output_schema, FnContext(project.root, name)).run(transform.block)
    return result


def _schema(project: Any, name: str) -> tuple[dict[str, Any] | None, str]:
    """Return the bound schema ``name`` and "", or None and what is wrong ("" when nothing can be told)."""
    try:
        return bind(project.model.schema(name), project.model.resources()), ""
    except ConfigError as exc:
        return None, f"{str(exc).split('; known:')[0]}: fix the name"
    except (KeyError, AttributeError):  # a stand-in model without schemas (tests of other checks)
        return None, ""


def _report_sources(result: Analysis, has_samples: bool) -> None:
    sources = result.sources
    if not sources.basis:
        result.warn(
            ("input",),
            "source paths not checked: declare input_schema (JSON input) or add a test "
            "case beside the mapping (<name>_test.yaml) whose input is a sample",
        )
        return
    fields = sources.fields
    for index, entry in enumerate(result.transform.header.ignore):
        if fields and not any(under(f, entry) for f in fields):
            result.warn(
                ("ignore", index),
                f"ignored field {entry!r} is in none of the {sources.samples} sample(s): "
                "fix the path (as esb lint --coverage shows it) or remove the entry",
            )
    for missing in sources.missing:
        problem = f"source {missing.expr!r}: {missing.problem}"
        if sources.strict:
            result.error(missing.where, f"{problem} of the input schema: fix the expression or input_schema")
        else:
            hint = "fix the name, or add a test case whose input holds it" if has_samples else "fix the name"
            result.warn(missing.where, f"{problem} ({sources.basis}): {hint}")


class TargetChecker:
    """Checks the targets of one mapping's rules against its output schema."""

    def __init__(self, result: Analysis, top: dict[str, Any], schema: str, ctx: FnContext) -> None:
        self.result, self.top, self.schema, self.ctx = result, top, schema, ctx
        self.levels: dict[tuple[Segment, ...], tuple[PathKey, set[str]]] = {}

    def run(self, block: Block) -> None:
        """Check every rule, then the required fields of every object written."""
        self.block(block, (), ("rules",))
        for level, (where, written) in self.levels.items():
            found = follow(self.top, level)
            for name in sorted(found.required() - written):
                self.result.error(
                    where,
                    f"required field {display((*level, name))!r} of {self.schema} is "
                    "never written: add a rule for it (from, value or default)",
                )

    def block(self, block: Block, prefix: tuple[Segment, ...], where: PathKey) -> None:
        """Check the rules of ``block``, whose targets lie under ``prefix``."""
        self.levels.setdefault(prefix, (where, set()))
        for rule in block.rules:
            full = (*prefix, *(ITEM if isinstance(k, int) else k for k in rule.keys))
            self.written(full, rule.path)
            if rule.block is not None:
                full = (*full, ITEM)
            found = follow(self.top, full)
            if found.problem:
                self.result.error(
                    rule.path,
                    f"target {display(full)!r}: {found.problem} of output schema "
                    f"{self.schema}: fix the target path or the schema",
                )
                continue
            if rule.block is not None:
                self.block(rule.block, full, rule.path)
            else:
                self.enumeration(rule, full, found.enum())

    def written(self, full: tuple[Segment, ...], where: PathKey) -> None:
        """Note that each object on the way to ``full`` has the next name written."""
        for index, key in enumerate(full):
            if key != ITEM:
                self.levels.setdefault(full[:index], (where, set()))[1].add(str(key))

    def enumeration(self, rule: Rule, full: tuple[Segment, ...], allowed: list[Any] | None) -> None:
        """Every value the rule can give must be one the target's enumeration allows."""
        if allowed is None:
            return
        for key, what, values in self.outputs(rule):
            bad = [v for v in values if v not in allowed]
            if bad:
                choices = ", ".join(map(str, allowed))
                self.result.error(
                    (*rule.path, key),
                    f"{what} gives {', '.join(map(repr, bad))}, not allowed "
                    f"at {display(full)} of {self.schema} (allowed: {choices}): map to an "
                    "allowed value, or add the value to the schema",
                )

    def outputs(self, rule: Rule) -> Iterator[tuple[str, str, list[Any]]]:
        """Yield (key, description, values) for the outputs known at compile time."""
        spec = rule.spec
        if "fn" in spec:
            steps = spec["fn"] if isinstance(spec["fn"], list) else [spec["fn"]]
            name, args, kwargs = split_step(steps[-1]) if steps else ("", [], {})
            merged = dict(zip(("name", "system"), args, strict=False)) | kwargs
            if name in ("codelist", "codelist_out"):
                lst, system = str(merged.get("name")), str(merged.get("system"))
                try:
                    table = self.ctx.table(lst, system, name == "codelist_out")
                except LookupError:  # named through a $variable: known only per message
                    return
                yield "fn", f"code list {lst!r} ({system})", sorted(set(table.values()))
            elif name == "lookup":
                given = args[0] if args else kwargs.get("table")
                extra = [kwargs["fallback"]] if kwargs.get("fallback") is not None else []
                if isinstance(given, dict):
                    yield "fn", "the lookup table", [*given.values(), *extra]
            return
        if "value" in spec and rule.const_var is None:
            yield "value", "the value", [spec["value"]]
        if spec.get("default") is not None:
            yield "default", "the default", [spec["default"]]
