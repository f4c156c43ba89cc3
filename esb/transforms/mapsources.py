"""The source side of a rule mapping, for lint and coverage: what each rule reads, and whether it exists.

JSON sources (JMESPath) are read statically (:mod:`esb.transforms.jmespaths`) and checked against the
mapping's ``input_schema`` (errors) or, lacking one, against its samples (warnings). XML sources (XPath)
are evaluated against the samples (:mod:`esb.transforms.xmlpaths`). The samples are the inputs of the
cases in ``<name>_test.yaml`` beside the mapping that do not expect an error: one way to declare them.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from esb.config.yamlpos import PathKey, load_yaml
from esb.exceptions import ConfigError, EsbError
from esb.transforms.jmespaths import navigate, reads
from esb.transforms.kinds import RuleTransform
from esb.transforms.registry import TEST_SUFFIX
from esb.transforms.rules import Block, Rule
from esb.transforms.schemawalk import ANY, ITEM, display, follow
from esb.transforms.xmlpaths import XMLSelector, sample_fields, show
from esb.transforms.xpathdialect import XPathDialect

Path_ = tuple[str, ...]
#: where a list of context nodes is named (walked through, not read as a value)
_LISTS = ("foreach", "context")


@dataclass
class Missing:
    """A source that was not found: where in the mapping, the expression, what is wrong."""

    where: PathKey
    expr: str
    problem: str


@dataclass
class Sources:
    """The source side of one mapping: its basis, the missing sources, the fields seen and those read."""

    basis: str = ""
    strict: bool = False
    samples: int = 0
    missing: list[Missing] = field(default_factory=list)
    fields: set[str] = field(default_factory=set)
    mapped: set[str] = field(default_factory=set)
    reads: set[str] = field(default_factory=set)  # JSON: the paths read as values


@dataclass
class Sample:
    """One sample input: the test file and case it comes from, and the parsed body."""

    where: str
    body: Any


def under(path: str, prefix: str) -> bool:
    """True when field ``path`` is ``prefix`` or lies below it (``a.b``, ``a[].b``, ``A/B``)."""
    return path == prefix or path.startswith((prefix + ".", prefix + "[]", prefix + "/"))


def load_samples(transform: RuleTransform, mapping_file: Path) -> list[Sample]:
    """Return the parsed inputs of the error-free cases of the mapping's ``_test.yaml`` (none if absent)."""
    test_file = mapping_file.with_name(mapping_file.stem + TEST_SUFFIX)
    if not test_file.is_file():
        return []
    try:
        data = load_yaml(test_file).data
        cases = data.get("cases") or []
    except (ConfigError, AttributeError):
        return []
    if data.get("transform") not in (None, transform.name):
        return []  # the file tests another mapping: its inputs are not this one's samples
    out: list[Sample] = []
    for index, case in enumerate(cases):
        if not isinstance(case, dict) or "error" in case:
            continue
        try:
            if "input" in case:
                body: Any = (test_file.parent / str(case["input"])).read_bytes()
            else:
                inline = case.get("input_inline")
                body = inline.encode("utf-8") if isinstance(inline, str) else inline
            parsed = transform.parse(body)
            transform.check_accepts(parsed)
        except (OSError, EsbError):
            continue
        out.append(Sample(f"{test_file.name} case {index + 1}", parsed))
    return out


def _rule_exprs(rule: Rule) -> Iterator[tuple[PathKey, str]]:
    for expr, _ in rule.sources:
        yield (*rule.path, "from"), expr
    if rule.when is not None:
        yield (*rule.path, "when"), rule.when[0]


# ----------------------------------------------------------------------------------------------- JSON
def _json_paths(value: Any, prefix: Path_, out: set[Path_], leaves: set[Path_]) -> None:
    if isinstance(value, dict) and value:
        for key, child in value.items():
            path = (*prefix, str(key))
            out.add(path)
            _json_paths(child, path, out, leaves)
    elif isinstance(value, list) and value:
        path = (*prefix, ITEM)
        out.add(path)
        for child in value:
            _json_paths(child, path, out, leaves)
    elif prefix:
        leaves.add(prefix)


def _matches(pattern: Path_, path: Path_) -> bool:
    return len(pattern) == len(path) and all(a in (b, ANY) for a, b in zip(pattern, path, strict=True))


def _covered(field_path: Path_, read: Path_) -> bool:
    return len(read) <= len(field_path) and _matches(read, field_path[: len(read)])


def json_sources(
    transform: RuleTransform, schema: tuple[str, dict[str, Any]] | None, samples: list[Sample]
) -> Sources:
    """Check every JMESPath source of ``transform`` against the input schema, else the samples."""
    seen: set[Path_] = set()
    leaves: set[Path_] = set()
    for sample in samples:
        _json_paths(sample.body, (), seen, leaves)
    result = Sources(strict=schema is not None, samples=len(samples))
    if schema is not None:
        result.basis = f"input schema {schema[0]}"
    elif samples:
        result.basis = f"{len(samples)} sample(s)"
    values: set[Path_] = set()
    lost: list[Path_] = []  # item paths of a missing foreach: the rules under it are not reported again
    for where, expr, base in _json_exprs(transform):
        if any(base[: len(b)] == b for b in lost):
            continue
        found = reads(expr, base)
        if where[-1] not in _LISTS:  # a list is walked through; its items' fields are read below
            values |= found.values
        problem = ""
        for path in sorted(found.values | found.walked, key=len):
            if schema is not None:
                problem = follow(schema[1], path).problem
            elif samples and not (path in seen or any(_matches(path, s) for s in seen if ANY in path)):
                problem = f"{display(path)} is in none of the samples"
            if problem:
                break
        if problem:
            result.missing.append(Missing(where, expr, problem))
            if where[-1] in _LISTS:
                lost.extend(navigate(expr, base))
    result.fields = {display(f) for f in leaves}
    result.reads = {display(v) for v in values if v}
    result.mapped = {display(f) for f in leaves if any(_covered(f, v) for v in values)}
    return result


def _json_exprs(transform: RuleTransform) -> Iterator[tuple[PathKey, str, Path_]]:
    bases: list[Path_] = [()]
    if transform.context is not None:
        yield ("context",), transform.context[0], ()
        bases = navigate(transform.context[0]) or [()]
    if transform.block is not None:
        yield from _json_block(transform.block, bases)


def _json_block(block: Block, bases: list[Path_]) -> Iterator[tuple[PathKey, str, Path_]]:
    for rule in [*block.lets, *block.rules]:
        for base in bases:
            if rule.block is not None and rule.each is not None:
                yield (*rule.path, "foreach"), rule.each[0], base
                yield from _json_block(rule.block, navigate(rule.each[0], base))
            else:
                for where, expr in _rule_exprs(rule):
                    yield where, expr, base


# ------------------------------------------------------------------------------------------------ XML
def xml_sources(transform: RuleTransform, samples: list[Sample]) -> Sources:
    """Evaluate every XPath source of ``transform`` against the samples: what each selects."""
    assert isinstance(transform.dialect, XPathDialect)
    siebel = transform.dialect.tag_escape == "siebel"
    selector = XMLSelector(transform.dialect)
    hits: dict[tuple[PathKey, str, str], bool] = {}
    mapped: set[tuple[str, ...]] = set()
    fields: set[tuple[str, ...]] = set()
    for sample in samples:
        fields |= sample_fields(sample.body)
        nodes = [sample.body]
        if transform.context is not None:
            nodes = transform.context[1](sample.body)
            key = (("context",), transform.context[0], transform.context[0])
            hits[key] = hits.get(key, False) or bool(nodes)
        for node in nodes:
            if transform.block is not None:
                _xml_block(transform.block, node, selector, hits, mapped)
    result = Sources(basis=f"{len(samples)} sample(s)" if samples else "", samples=len(samples))
    result.missing = [
        Missing(
            where,
            expr,
            "selects nothing in any sample" if part == expr else f"{part!r} selects nothing in any sample",
        )
        for (where, expr, part), hit in hits.items()
        if not hit
    ]
    result.fields = {show(f, siebel) for f in fields}
    result.mapped = {show(f, siebel) for f in fields & mapped}
    return result


def _xml_block(
    block: Block,
    node: Any,
    selector: XMLSelector,
    hits: dict[tuple[PathKey, str, str], bool],
    mapped: set[tuple[str, ...]],
) -> None:
    for rule in [*block.lets, *block.rules]:
        if rule.block is not None and rule.each is not None:
            items = rule.each[1](node)
            key = ((*rule.path, "foreach"), rule.each[0], rule.each[0])
            hits[key] = hits.get(key, False) or bool(items)
            for item in items:
                _xml_block(rule.block, item, selector, hits, mapped)
            continue
        for where, expr in _rule_exprs(rule):
            for part, selected in selector.select(expr, node).items():
                hits[(where, expr, part)] = hits.get((where, expr, part), False) or bool(selected)
                mapped |= selected
