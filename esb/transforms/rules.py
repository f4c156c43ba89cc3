"""Rule blocks: target paths filled from source expressions, pipelines, defaults, nested ``foreach``.

The same compiler serves XPath (XML bodies) and JMESPath (JSON bodies): a :class:`Dialect` turns an
expression into a getter once, at compile time, and says where a failing source was in the message.
"""

from __future__ import annotations

import copy
import itertools
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from esb.config.yamlpos import Located, PathKey, format_path
from esb.exceptions import ConfigError, MappingError, MessageError
from esb.registry import did_you_mean
from esb.transforms.functions import FnContext
from esb.transforms.pipeline import Step, compile_pipeline, run_pipeline

Getter = Callable[[Any], Any]
#: Where the current context node is, built lazily for error messages: (parent, expression, index).
Loc = tuple[Any, str, int] | None

RULE_KEYS = {"from", "field", "value", "fn", "default", "required", "all", "foreach", "rules", "let",
             "omit_empty", "when"}
_VAR = re.compile(r"^\$([A-Za-z_]\w*)$")
_SEGMENT = re.compile(r"^(?P<key>[^\[\]]+)?(?P<idx>(\[\d+\])*)$")


class Dialect(Protocol):
    """The expression language of one input type."""

    def scalar(self, expr: str, *, all_values: bool = False) -> Getter:
        """Return a getter giving one value (or a list with ``all_values``), None when missing."""

    def many(self, expr: str) -> Getter:
        """Return a getter giving the list of context nodes for ``foreach``."""

    def field(self, name: str) -> str:
        """Return the expression for the ``field:`` shorthand."""

    def locate(self, node: Any, loc: Loc, expr: str) -> str:
        """Return the source path of ``expr`` evaluated at ``node`` for an error message."""


@dataclass
class Rule:
    """One compiled rule (a value, or a ``foreach`` block producing a list)."""

    target: str
    keys: tuple[str | int, ...]
    sources: list[tuple[str, Getter]] = field(default_factory=list)
    const: Any = None
    const_var: str | None = None
    when: tuple[str, Getter] | None = None
    steps: list[Step] = field(default_factory=list)
    default: Any = None
    required: bool = False
    block: Block | None = None
    each: tuple[str, Getter] | None = None
    omit_empty: bool = False
    setter: Callable[[dict[str, Any], Any], None] | None = None
    #: where the rule is in its mapping file, and the rule as written (for lint's mapping checks)
    path: PathKey = ()
    spec: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.setter = make_setter(self.keys)


@dataclass
class Block:
    """Rules evaluated against one context node, with the variables they define first."""

    lets: list[Rule]
    rules: list[Rule]


def parse_target(target: str) -> tuple[str | int, ...]:
    """Split ``a.b[0].c`` into ``("a", "b", 0, "c")``."""
    keys: list[str | int] = []
    for part in target.split("."):
        m = _SEGMENT.match(part)
        if not m or not part:
            raise ValueError(f"bad target path {target!r} (use dotted names with [n] indexes)")
        if m["key"]:
            keys.append(m["key"])
        keys.extend(int(i) for i in re.findall(r"\[(\d+)\]", m["idx"] or ""))
    return tuple(keys)


class Compiler:
    """Compiles the ``rules:`` of one mapping file with a dialect; errors point at ``file:line``."""

    def __init__(self, doc: Located, dialect: Dialect, ctx: FnContext) -> None:
        self.doc, self.dialect, self.ctx = doc, dialect, ctx

    def fail(self, path: PathKey, message: str) -> ConfigError:
        """Return the ConfigError for ``message`` at ``path`` of the mapping file."""
        line = f"{self.doc.where(path)}: {format_path(path)}: {message}"
        return ConfigError(line, findings=[line])

    def block(self, rules: Any, lets: Any, path: PathKey, prefix: str) -> Block:
        """Compile a block of ``rules`` (and its ``let`` variables) found at ``path``."""
        if not isinstance(rules, dict) or not rules:
            raise self.fail(path, "rules must be a non-empty mapping of target path to source")
        let_rules = [self.rule(k, v, (*path[:-1], "let", k), k) for k, v in (lets or {}).items()]
        compiled = [self.rule(k, v, (*path, k), f"{prefix}{k}") for k, v in rules.items()]
        return Block(let_rules, compiled)

    def rule(self, target: str, spec: Any, path: PathKey, name: str) -> Rule:
        """Compile one rule ``target: spec``."""
        try:
            keys = parse_target(target)
        except ValueError as exc:
            raise self.fail(path, str(exc)) from None
        if isinstance(spec, str):
            spec = {"from": spec}
        if not isinstance(spec, dict):
            raise self.fail(path, "a rule is a source expression or a mapping (from/field/value, fn, ...)")
        unknown = sorted(set(spec) - RULE_KEYS)
        if unknown:
            raise self.fail((*path, unknown[0]), f"unknown key{did_you_mean(unknown[0], RULE_KEYS)}")
        rule = Rule(name, keys, default=spec.get("default"), required=bool(spec.get("required", False)),
                    path=path, spec=spec)
        if "foreach" in spec:
            return self._foreach(rule, spec, path)
        sources = [spec["from"]] if isinstance(spec.get("from"), str) else list(spec.get("from") or [])
        if "field" in spec:
            sources.append(self.dialect.field(str(spec["field"])))
        if "value" in spec:
            rule.const = spec["value"]
            if isinstance(rule.const, str) and (m := _VAR.match(rule.const)):
                rule.const_var = m.group(1)
        elif not sources:
            raise self.fail(path, "needs 'from', 'field', 'value' or 'foreach'")
        for expr in sources:
            try:
                rule.sources.append((expr, self.dialect.scalar(expr, all_values=bool(spec.get("all")))))
            except ValueError as exc:
                raise self.fail((*path, "from"), f"bad expression {expr!r}: {exc}") from None
        if "when" in spec:
            rule.when = self._when(spec["when"], (*path, "when"))
        if "fn" in spec:
            try:
                rule.steps = compile_pipeline(spec["fn"], self.ctx)
            except ValueError as exc:
                raise self.fail((*path, "fn"), str(exc)) from None
        return rule

    def _when(self, spec: Any, path: PathKey) -> tuple[str, Getter]:
        expr = self.dialect.field(str(spec["field"])) if isinstance(spec, dict) and "field" in spec else spec
        if not isinstance(expr, str):
            raise self.fail(path, "when takes a source expression or {field: name}")
        try:
            return expr, self.dialect.scalar(expr)
        except ValueError as exc:
            raise self.fail(path, f"bad expression {expr!r}: {exc}") from None

    def _foreach(self, rule: Rule, spec: dict[str, Any], path: PathKey) -> Rule:
        expr = str(spec["foreach"])
        try:
            rule.each = (expr, self.dialect.many(expr))
        except ValueError as exc:
            raise self.fail((*path, "foreach"), f"bad expression {expr!r}: {exc}") from None
        rule.omit_empty = bool(spec.get("omit_empty", False))
        rule.block = self.block(spec.get("rules"), spec.get("let"), (*path, "rules"), f"{rule.target}[].")
        return rule


def make_setter(keys: tuple[str | int, ...]) -> Callable[[dict[str, Any], Any], None]:
    """Return a function setting a value at ``keys``, specialised once for the common shapes."""
    if len(keys) == 1:
        key = keys[0]

        def set_one(out: dict[str, Any], value: Any) -> None:
            out[key] = value  # type: ignore[index]

        return set_one
    if all(isinstance(k, str) for k in keys):
        head, last = keys[:-1], keys[-1]

        def set_dotted(out: dict[str, Any], value: Any) -> None:
            node = out
            for key in head:
                child = node.get(key)  # type: ignore[arg-type]
                if child is None:
                    child = node[key] = {}  # type: ignore[index]
                node = child
            node[last] = value  # type: ignore[index]

        return set_dotted
    steps = [(key, isinstance(nxt, int)) for key, nxt in itertools.pairwise(keys)]
    last_key = keys[-1]

    def set_mixed(out: dict[str, Any], value: Any) -> None:
        node: Any = out
        for key, list_next in steps:
            if isinstance(key, int):
                while len(node) <= key:
                    node.append(None)
                child = node[key]
            else:
                child = node.get(key)
            if child is None:
                child = node[key] = [] if list_next else {}
            node = child
        if isinstance(last_key, int):
            while len(node) <= last_key:
                node.append(None)
        node[last_key] = value

    return set_mixed


def set_path(out: dict[str, Any], keys: tuple[str | int, ...], value: Any) -> None:
    """Set ``value`` at ``keys`` in ``out``, creating the dicts and lists on the way."""
    if len(keys) == 1:
        out[keys[0]] = value  # type: ignore[index]
        return
    node: Any = out
    for key, nxt in itertools.pairwise(keys):
        empty: Any = [] if isinstance(nxt, int) else {}
        if isinstance(key, int):
            while len(node) <= key:
                node.append(None)
            if node[key] is None:
                node[key] = empty
        elif key not in node:
            node[key] = empty
        node = node[key]
    last = keys[-1]
    if isinstance(last, int):
        while len(node) <= last:
            node.append(None)
    node[last] = value


class Runner:
    """Runs compiled blocks for one transform; every failure becomes a MappingError."""

    def __init__(self, transform: str, dialect: Dialect) -> None:
        self.transform, self.dialect = transform, dialect

    def block(self, block: Block, node: Any, loc: Loc, scope: dict[str, Any]) -> dict[str, Any]:
        """Evaluate ``block`` at ``node`` and return the object it builds."""
        if block.lets:
            scope = dict(scope)
            for let in block.lets:
                scope[str(let.keys[0])] = self.value(let, node, loc, scope)
        out: dict[str, Any] = {}
        for rule in block.rules:
            if rule.block is not None:
                self.foreach(rule, node, loc, scope, out)
                continue
            value = self.value(rule, node, loc, scope)
            if value is not None:
                rule.setter(out, value)  # type: ignore[misc]
        return out

    def foreach(self, rule: Rule, node: Any, loc: Loc, scope: dict[str, Any], out: dict[str, Any]) -> None:
        """Evaluate a ``foreach`` rule: one object per context node."""
        assert rule.each is not None
        assert rule.block is not None
        expr, many = rule.each
        try:
            items = many(node)
        except Exception as exc:
            raise MappingError(self.transform, rule.target, self.dialect.locate(node, loc, expr),
                               f"expression failed: {exc}") from exc
        results = [self.block(rule.block, item, (loc, expr, i), scope) for i, item in enumerate(items)]
        if results or not rule.omit_empty:
            rule.setter(out, results)  # type: ignore[misc]

    def value(self, rule: Rule, node: Any, loc: Loc, scope: dict[str, Any]) -> Any:
        """Evaluate one value rule: first non-missing source, else the default, then the pipeline."""
        if rule.when is not None and self._get(rule, rule.when, node, loc) is None:
            return None
        value = rule.const if rule.const_var is None else scope.get(rule.const_var)
        expr = rule.sources[0][0] if rule.sources else "(constant)"
        try:
            for expr, get in rule.sources:  # noqa: B007 - expr names the failing source below
                value = get(node)
                if value is not None:
                    break
        except Exception as exc:
            raise MappingError(self.transform, rule.target, self.dialect.locate(node, loc, expr),
                               f"expression failed: {exc}") from exc
        if value is None:
            value = rule.default
        if isinstance(value, dict | list) and (value is rule.const or value is rule.default):
            value = copy.deepcopy(value)  # a literal object is the rule's: each output gets its own copy
        if rule.steps:
            try:
                value = run_pipeline(rule.steps, value, scope)
            except (ValueError, TypeError, ArithmeticError, LookupError, MessageError) as exc:
                raise MappingError(self.transform, rule.target, self.dialect.locate(node, loc, expr),
                                   f"{exc} (value {value!r})") from exc
        if value is None and rule.required:
            where = " or ".join(self.dialect.locate(node, loc, e) for e, _ in rule.sources) or expr
            raise MappingError(self.transform, rule.target, where, "required value is missing or empty")
        return value

    def _get(self, rule: Rule, source: tuple[str, Getter], node: Any, loc: Loc) -> Any:
        try:
            return source[1](node)
        except Exception as exc:
            raise MappingError(self.transform, rule.target, self.dialect.locate(node, loc, source[0]),
                               f"expression failed: {exc}") from exc
