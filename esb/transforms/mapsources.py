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
from esb.transforms.siebel import ESCAPED
from esb.transforms.siebelmsg import SiebelTransform
from esb.transforms.xmlpaths import XMLSelector, field_of, sample_fields, show
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
    """One sample input: where it comes from, the node the rules run on, and the rules that map it."""

    where: str
    body: Any
    rules: RuleTransform


def variants(transform: Any) -> list[RuleTransform]:
    """Return the compiled rule sets of a rule mapping (a ``siebel:`` mapping has one per object and
    naming style; they share their rules), or [] for the other kinds."""
    if isinstance(transform, RuleTransform):
        return [transform]
    if isinstance(transform, SiebelTransform):
        return list(transform.variants.values())
    return []


def _rules_for(transform: Any, parsed: Any) -> tuple[Any, RuleTransform]:
    """Return the node the rules run on and the rule set that maps ``parsed`` (accepted already)."""
    if isinstance(transform, SiebelTransform):
        return transform.select(parsed)
    return parsed, transform


def under(path: str, prefix: str) -> bool:
    """True when field ``path`` is ``prefix`` or lies below it (``a.b``, ``a[].b``, ``A/B``)."""
    return path == prefix or path.startswith((prefix + ".", prefix + "[]", prefix + "/"))


def load_samples(transform: Any, mapping_file: Path) -> list[Sample]:
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
            node, rules = _rules_for(transform, parsed)
        except (OSError, EsbError):
            continue
        out.append(Sample(f"{test_file.name} case {index + 1}", node, rules))
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
def xml_sources(samples: list[Sample]) -> Sources:
    """Evaluate every XPath source against the samples, each with the rule set that maps it."""
    run = _XMLRun()
    for sample in samples:
        rules = sample.rules
        assert isinstance(rules.dialect, XPathDialect)
        selector = run.selectors.setdefault(id(rules), XMLSelector(rules.dialect))
        base = len(field_of(sample.body))  # a SiebelMessage inside a PropertySet: fields from the message
        escaped = getattr(rules.dialect, "style", ESCAPED) == ESCAPED
        siebel = rules.dialect.tag_escape == "siebel" and escaped
        nodes = [sample.body]
        if rules.context is not None:
            nodes = rules.context[1](sample.body)
            run.hit((("context",), 0, 0), rules.context[0], rules.context[0], bool(nodes))
        mapped: set[tuple[str, ...]] = set()
        for node in nodes:
            if rules.block is not None:
                run.block(rules.block, node, selector, mapped)
        fields = sample_fields(sample.body)
        run.fields |= {show(f[base:], siebel) for f in fields}
        run.mapped |= {show(f[base:], siebel) for f in fields & mapped}
    result = Sources(basis=f"{len(samples)} sample(s)" if samples else "", samples=len(samples))
    for (where, _, _), (expr, part, hit) in run.hits.items():
        if not hit:
            what = "selects nothing" if part == expr else f"{part!r} selects nothing"
            result.missing.append(Missing(where, expr, f"{what} in any sample"))
    result.fields, result.mapped = run.fields, run.mapped
    return result


class _XMLRun:
    """What the samples showed: per source (rule, source index, part index), whether it selected anything."""

    def __init__(self) -> None:
        self.selectors: dict[int, XMLSelector] = {}
        self.hits: dict[tuple[PathKey, int, int], tuple[str, str, bool]] = {}
        self.fields: set[str] = set()
        self.mapped: set[str] = set()

    def hit(self, key: tuple[PathKey, int, int], expr: str, part: str, found: bool) -> None:
        """Record whether the source ``key`` (shown as ``expr``, ``part``) selected anything."""
        before = self.hits.get(key)
        if before is None or (found and not before[2]):
            self.hits[key] = (expr, part, found)

    def block(self, block: Block, node: Any, selector: XMLSelector, mapped: set[tuple[str, ...]]) -> None:
        """Evaluate the sources of ``block`` at ``node``, and its foreach blocks at each item."""
        for rule in [*block.lets, *block.rules]:
            if rule.block is not None and rule.each is not None:
                items = rule.each[1](node)
                self.hit(((*rule.path, "foreach"), 0, 0), rule.each[0], rule.each[0], bool(items))
                for item in items:
                    self.block(rule.block, item, selector, mapped)
                continue
            for index, (where, expr) in enumerate(_rule_exprs(rule)):
                for part_index, (part, selected) in enumerate(selector.select(expr, node).items()):
                    self.hit((where, index, part_index), expr, part, bool(selected))
                    mapped |= selected
