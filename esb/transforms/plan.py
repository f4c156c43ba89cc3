"""Rule blocks compiled to closures: the runner's work per message without its per-rule decisions.

:class:`esb.transforms.rules.Runner` interprets each rule on every message (is there a ``when``, a
variable, several sources, a pipeline, a default...). :func:`compile_block` takes those decisions once,
when the mapping is loaded, and returns one closure per block that does only what its rules need. The
closures have no error path of their own: when anything goes wrong (a source or a function raises, a
required value is missing) they run the rule again through the runner, which raises its usual
MappingError naming the rule and the source path. Getters and mapping functions are pure, so the second
run fails as the first did. tests/unit/test_hot_path.py checks that both paths give the same outputs and
the same errors over the repository's orders and every mapping test case.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from esb.exceptions import MessageError
from esb.transforms.pipeline import Step, run_pipeline
from esb.transforms.rules import Block, Loc, Rule, Runner
from esb.transforms.xpathdialect import children, indexed_field

#: A compiled block: (context node, its location, the variables in scope) -> the object it builds.
BlockFn = Callable[[Any, Loc, dict[str, Any]], dict[str, Any]]
#: The index of an XML node's children (esb.transforms.xpathdialect.children), None when not indexed.
Kids = dict[str, Any] | None
#: A compiled value rule: (node, its children's index, location, scope) -> the value, None when missing.
ValueFn = Callable[[Any, Kids, Loc, dict[str, Any]], Any]
#: A compiled rule of a block: sets its value (or list) in the output object when there is one.
FillFn = Callable[[Any, Kids, Loc, dict[str, Any], dict[str, Any]], None]

#: What a mapping function may raise for a bad value (the runner turns these into a MappingError).
_FUNCTION_ERRORS = (ValueError, TypeError, ArithmeticError, LookupError, MessageError)


def compile_block(runner: Runner, block: Block) -> BlockFn:
    """Return the closure evaluating ``block`` as ``runner.block`` does."""
    # XML fields (``field:``) of a block read the node's children from one index when there are several
    indexed = sum(_field_tag(r) is not None for r in (*block.lets, *block.rules)) >= _INDEX_FROM
    lets = [(str(let.keys[0]), compile_value(runner, let, indexed)) for let in block.lets]
    fills = [_foreach(runner, r) if r.block is not None else _fill(runner, r, indexed) for r in block.rules]

    def run(node: Any, loc: Loc, scope: dict[str, Any]) -> dict[str, Any]:
        kids = children(node) if indexed else None
        if lets:
            scope = dict(scope)
            for name, value in lets:
                scope[name] = value(node, kids, loc, scope)
        out: dict[str, Any] = {}
        for fill in fills:
            fill(node, kids, loc, scope, out)
        return out

    return run


#: Fields a block reads before its node's children are indexed once instead of searched for each.
_INDEX_FROM = 2


def _field_tag(rule: Rule) -> str | None:
    """The tag of a rule whose one source is an XML ``field:`` (esb.transforms.xpathdialect), else None."""
    if len(rule.sources) != 1:
        return None
    tag: str | None = getattr(rule.sources[0][1], "field_tag", None)
    return tag


def _fill(runner: Runner, rule: Rule, indexed: bool) -> FillFn:
    value = compile_value(runner, rule, indexed)
    setter = rule.setter
    assert setter is not None

    def fill(node: Any, kids: Kids, loc: Loc, scope: dict[str, Any], out: dict[str, Any]) -> None:
        found = value(node, kids, loc, scope)
        if found is not None:
            setter(out, found)

    return fill


def _foreach(runner: Runner, rule: Rule) -> FillFn:
    assert rule.each is not None
    assert rule.block is not None
    expr, many = rule.each
    inner = compile_block(runner, rule.block)
    setter, omit_empty = rule.setter, rule.omit_empty
    assert setter is not None

    def fill(node: Any, kids: Kids, loc: Loc, scope: dict[str, Any], out: dict[str, Any]) -> None:
        try:
            items = many(node)
        except Exception:
            runner.foreach(rule, node, loc, scope, out)  # raises the runner's MappingError
            raise
        results = [inner(item, (loc, expr, i), scope) for i, item in enumerate(items)]
        if results or not omit_empty:
            setter(out, results)

    return fill


def compile_value(runner: Runner, rule: Rule, indexed: bool = False) -> ValueFn:
    """Return the closure evaluating a value rule as ``runner.value`` does (``indexed``: its block
    passes the index of the node's children, which an XML ``field:`` source then reads)."""
    slow = runner.value
    steps = _steps(rule.steps)
    default, required = rule.default, rule.required
    copy_default = isinstance(default, dict | list)
    when = rule.when[1] if rule.when is not None else None
    getters = [get for _, get in rule.sources]
    if not getters:
        return _constant(runner, rule, steps)
    single = getters[0] if len(getters) == 1 else None
    tag = _field_tag(rule) if indexed else None
    field = indexed_field(tag) if tag is not None else None

    def value(node: Any, kids: Kids, loc: Loc, scope: dict[str, Any]) -> Any:
        try:
            if when is not None and when(node) is None:
                return None
            if field is not None and kids is not None:
                found = field(node, kids)
            elif single is not None:
                found = single(node)
            else:
                for get in getters:
                    found = get(node)
                    if found is not None:
                        break
        except Exception:
            return slow(rule, node, loc, scope)  # raises the runner's MappingError
        if found is None:
            found = copy.deepcopy(default) if copy_default else default
        if steps is not None:
            try:
                found = steps(found, scope)
            except _FUNCTION_ERRORS:
                return slow(rule, node, loc, scope)
        if found is None and required:
            return slow(rule, node, loc, scope)
        return found

    return value


def _constant(runner: Runner, rule: Rule, steps: Callable[[Any, Any], Any] | None) -> ValueFn:
    """A rule without sources: a literal or a ``$variable``, through its pipeline."""
    if rule.when is not None or steps is not None or rule.required or rule.const_var is not None:
        return lambda node, kids, loc, scope: runner.value(rule, node, loc, scope)
    const = rule.const if rule.const is not None else rule.default
    if isinstance(const, dict | list):
        return lambda node, kids, loc, scope: copy.deepcopy(const)
    return lambda node, kids, loc, scope: const


def _steps(steps: list[Step]) -> Callable[[Any, Any], Any] | None:
    """The pipeline as one call: specialised for one plain step, else ``run_pipeline``."""
    if not steps:
        return None
    if len(steps) == 1 and not steps[0].var_args:
        call, none_ok = steps[0].call, steps[0].none_ok
        if none_ok:
            return lambda value, scope: call(value)
        return lambda value, scope: value if value is None else call(value)
    return lambda value, scope: run_pipeline(steps, value, scope)
