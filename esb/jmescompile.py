"""JMESPath compiled to nested Python closures, with the results of jmespath's own interpreter.

``compile_jmespath("relatedParty[?role=='customer'].id | [0]", options)`` parses with
``jmespath.compile`` (a ``ParseError`` propagates) and returns ``value -> result``. Each AST node becomes
one closure built once, so an evaluation does no ``visit`` dispatch and creates no ``TreeInterpreter``.
The closures mirror ``jmespath.visitor.TreeInterpreter`` (1.1) rule for rule: ``_is_false`` truthiness,
``_equals`` with its 0/1-against-bool case, ordering only between numbers or strings (else null),
projections dropping nulls, one-level flatten. Functions go through
``options.custom_functions.call_function`` (or a plain ``jmespath.functions.Functions``), so arity and
type checks and their errors are jmespath's. A node type this module does not know is evaluated by
``TreeInterpreter(options).visit`` for that subtree. tests/unit/test_jmescompile.py checks the results
(and the exception types) against the interpreter.

It lives in ``esb/`` rather than ``esb/transforms/`` because route expressions (``esb.expressions``) use
it too, and importing ``esb.transforms`` would load lxml and the whole transform machinery there.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from numbers import Number
from typing import Any

import jmespath
from jmespath import functions as jfunctions
from jmespath import visitor as jvisitor

Evaluator = Callable[[Any], Any]
Node = dict[str, Any]
_CHAINS = frozenset({"subexpression", "index_expression", "pipe"})
_ORDERING = {"lt": operator.lt, "gt": operator.gt, "lte": operator.le, "gte": operator.ge}


def compile_jmespath(expression: str, options: jmespath.Options | None = None) -> Evaluator:
    """Parse ``expression`` and return a function evaluating it as ``jmespath.search`` would."""
    return compile_ast(jmespath.compile(expression).parsed, options)


def compile_ast(node: Node, options: jmespath.Options | None = None) -> Evaluator:
    """Return the evaluator of an already parsed AST (``ParsedResult.parsed``)."""
    return _Compiler(options).build(node)


class _Compiler:
    """Builds closures for one expression, with the options' functions and dict class."""

    def __init__(self, options: jmespath.Options | None) -> None:
        if options is None:
            options = jmespath.Options()
        custom = options.custom_functions
        self.functions: Any = custom if custom is not None else jfunctions.Functions()
        self.dict_cls: Any = options.dict_cls
        self.interpreter = jvisitor.TreeInterpreter(options)

    def build(self, node: Node) -> Evaluator:
        """The evaluator of ``node``; the interpreter's own for a node type not compiled here."""
        make = COMPILERS.get(node["type"])
        return make(self, node) if make is not None else self.fallback(node)

    def fallback(self, node: Node) -> Evaluator:
        """Evaluate ``node`` with jmespath's TreeInterpreter (made once per compiled expression)."""
        visit = self.interpreter.visit

        def interpret(value: Any) -> Any:
            return visit(node, value)

        return interpret


# ---- jmespath's semantics, with fast paths for the exact JSON types -------------------------------------

def is_false(value: Any) -> bool:
    """``TreeInterpreter._is_false``: '', [], {}, null and false are false (0 is true)."""
    kind = type(value)
    if kind is bool or kind is str or kind is list or kind is dict:
        return not value
    if value is None:
        return True
    if kind is int or kind is float:
        return False
    return value == "" or value == [] or value == {} or value is None or value is False


def is_number(value: Any) -> bool:
    """``_is_actual_number``: a Number that is not a bool."""
    kind = type(value)
    if kind is int or kind is float:
        return True
    return kind is not bool and isinstance(value, Number)


def _comparable(value: Any) -> bool:
    """``_is_comparable``: a number (not a bool) or a string."""
    kind = type(value)
    if kind is str or kind is int or kind is float:
        return True
    return kind is not bool and isinstance(value, Number | str)


def equals(x: Any, y: Any) -> Any:
    """``_equals``: Python equality, except that 0 and 1 never equal false and true."""
    if type(x) is not type(y):  # the special case needs a bool on one side and a number on the other
        if is_number(x) and x in (0, 1):
            if isinstance(y, bool):
                return False
        elif is_number(y) and y in (0, 1) and isinstance(x, bool):
            return False
    return x == y


def _get(value: Any, key: str) -> Any:
    try:
        return value.get(key)
    except AttributeError:
        return None


def identity(value: Any) -> Any:
    """``@`` and the implicit current node."""
    return value


def _plain_literal(node: Node) -> bool:
    """A literal ``y`` for which ``_equals(x, y)`` is just ``x == y`` (not a bool, not the number 0 or 1)."""
    if node["type"] != "literal":
        return False
    constant = node["value"]
    return not isinstance(constant, bool) and not (is_number(constant) and constant in (0, 1))


class _Expression(jvisitor._Expression):  # type: ignore[misc]  # jmespath ships no type hints
    """An ``&expr`` argument: ``visit(expression, x)``, as jmespath's functions call it, runs the closure.

    The name matters: jmespath's argument checks read ``type(arg).__name__`` ('_Expression' is an expref).
    """

    def __init__(self, expression: Node, interpreter: Any, evaluate: Evaluator) -> None:
        super().__init__(expression, interpreter)
        self.evaluate = evaluate

    def visit(self, node: Node, *args: Any, **kwargs: Any) -> Any:
        """Evaluate ``node`` (the compiled closure for this reference's own expression)."""
        if node is self.expression and len(args) == 1 and not kwargs:
            return self.evaluate(args[0])
        return self.interpreter.visit(node, *args, **kwargs)


# ---- chains: subexpression, index_expression and pipe all apply each child to the previous result -------

def _chain_nodes(node: Node) -> list[Node]:
    nodes: list[Node] = []
    for child in node["children"]:
        nodes.extend(_chain_nodes(child) if child["type"] in _CHAINS else [child])
    return nodes


def _chain(c: _Compiler, node: Node) -> Evaluator:
    """A chain flattened, identities dropped and runs of field names walked in one closure."""
    stages: list[Evaluator] = []
    keys: list[str] = []
    for child in _chain_nodes(node):
        kind = child["type"]
        if kind == "field":
            keys.append(child["value"])
            continue
        if kind in ("identity", "current"):
            continue
        if keys:
            stages.append(_fields(tuple(keys)))
            keys = []
        stages.append(c.build(child))
    if keys:
        stages.append(_fields(tuple(keys)))
    return _compose(stages)


def _compose(stages: list[Evaluator]) -> Evaluator:
    if not stages:
        return identity
    if len(stages) == 1:
        return stages[0]
    if len(stages) == 2:
        first, second = stages

        def two(value: Any) -> Any:
            return second(first(value))

        return two
    steps = tuple(stages)

    def run(value: Any) -> Any:
        for step in steps:
            value = step(value)
        return value

    return run


def _fields(keys: tuple[str, ...]) -> Evaluator:
    """``a.b.c``: ``value.get(key)`` on each (null once a step has no ``get``)."""
    if len(keys) == 1:
        key = keys[0]

        def field(value: Any) -> Any:
            if type(value) is dict:
                return value.get(key)
            return None if value is None else _get(value, key)

        return field

    def fields(value: Any) -> Any:
        for key in keys:
            if type(value) is dict:
                value = value.get(key)
            elif value is None:
                return None  # every later field of null is null
            else:
                value = _get(value, key)
        return value

    return fields


# ---- leaves ----------------------------------------------------------------------------------------------

def _field(c: _Compiler, node: Node) -> Evaluator:
    return _fields((node["value"],))


def _identity(c: _Compiler, node: Node) -> Evaluator:
    return identity


def _literal(c: _Compiler, node: Node) -> Evaluator:
    constant = node["value"]  # the parser's own object, returned as the interpreter returns it

    def literal(value: Any) -> Any:
        return constant

    return literal


def _index(c: _Compiler, node: Node) -> Evaluator:
    position = node["value"]

    def index(value: Any) -> Any:
        if not isinstance(value, list):
            return None
        try:
            return value[position]
        except IndexError:
            return None

    return index


def _slice(c: _Compiler, node: Node) -> Evaluator:
    window = slice(*node["children"])  # a zero step raises ValueError on a list, as in the interpreter

    def slice_(value: Any) -> Any:
        return value[window] if isinstance(value, list) else None

    return slice_


# ---- projections -----------------------------------------------------------------------------------------

def _projection(c: _Compiler, node: Node) -> Evaluator:
    base = c.build(node["children"][0])
    right = node["children"][1]
    if right["type"] in ("identity", "current"):  # a[*], a[], a[1:2]

        def project_all(value: Any) -> Any:
            items = base(value)
            if not isinstance(items, list):
                return None
            return [item for item in items if item is not None]

        return project_all
    each = c.build(right)

    def project(value: Any) -> Any:
        items = base(value)
        if not isinstance(items, list):
            return None
        return [result for result in map(each, items) if result is not None]

    return project


def _value_projection(c: _Compiler, node: Node) -> Evaluator:
    base, each = (c.build(child) for child in node["children"])

    def project_values(value: Any) -> Any:
        items = base(value)
        try:
            items = items.values()
        except AttributeError:
            return None
        return [result for result in map(each, items) if result is not None]

    return project_values


def _filter_projection(c: _Compiler, node: Node) -> Evaluator:
    base, each, test = (c.build(child) for child in node["children"])

    def filter_(value: Any) -> Any:
        items = base(value)
        if not isinstance(items, list):
            return None
        collected = []
        for item in items:
            if not is_false(test(item)):
                result = each(item)
                if result is not None:
                    collected.append(result)
        return collected

    return filter_


def _flatten(c: _Compiler, node: Node) -> Evaluator:
    base = c.build(node["children"][0])

    def flatten(value: Any) -> Any:
        items = base(value)
        if not isinstance(items, list):
            return None
        merged: list[Any] = []
        for item in items:
            if isinstance(item, list):
                merged.extend(item)
            else:
                merged.append(item)
        return merged

    return flatten


# ---- comparisons and logic -------------------------------------------------------------------------------

def _comparator(c: _Compiler, node: Node) -> Evaluator:
    name = node["value"]
    left_node, right_node = node["children"]
    left, right = c.build(left_node), c.build(right_node)
    if name in _ORDERING:
        return _ordering(_ORDERING[name], left, right)
    if name not in ("eq", "ne"):
        return c.fallback(node)
    negate = name == "ne"
    if _plain_literal(right_node):
        constant = right_node["value"]
        if negate:
            return lambda value: not left(value) == constant  # noqa: SIM201  # `not _equals`, as jmespath
        return lambda value: left(value) == constant
    if negate:
        return lambda value: not equals(left(value), right(value))
    return lambda value: equals(left(value), right(value))


def _ordering(compare: Callable[[Any, Any], Any], left: Evaluator, right: Evaluator) -> Evaluator:
    def order(value: Any) -> Any:
        x, y = left(value), right(value)
        if _comparable(x) and _comparable(y):
            return compare(x, y)  # a number against a string raises TypeError, as in the interpreter
        return None

    return order


def _and(c: _Compiler, node: Node) -> Evaluator:
    left, right = (c.build(child) for child in node["children"])

    def and_(value: Any) -> Any:
        matched = left(value)
        return matched if is_false(matched) else right(value)

    return and_


def _or(c: _Compiler, node: Node) -> Evaluator:
    left, right = (c.build(child) for child in node["children"])

    def or_(value: Any) -> Any:
        matched = left(value)
        return right(value) if is_false(matched) else matched

    return or_


def _not(c: _Compiler, node: Node) -> Evaluator:
    operand = c.build(node["children"][0])

    def not_(value: Any) -> Any:
        result = operand(value)
        if is_number(result) and result == 0:
            return False  # !0 is false: 0 is not falsy in JMESPath (Python truthiness otherwise)
        return not result

    return not_


# ---- functions, references, multi-selects ----------------------------------------------------------------

def _function(c: _Compiler, node: Node) -> Evaluator:
    name = node["value"]
    args = tuple(c.build(child) for child in node["children"])
    call = c.functions.call_function
    if len(args) == 1:
        (only,) = args
        return lambda value: call(name, [only(value)])
    return lambda value: call(name, [arg(value) for arg in args])


def _expref(c: _Compiler, node: Node) -> Evaluator:
    target = node["children"][0]
    evaluate, interpreter = c.build(target), c.interpreter
    return lambda value: _Expression(target, interpreter, evaluate)  # a new one each time, as jmespath


def _key_val_pair(c: _Compiler, node: Node) -> Evaluator:
    return c.build(node["children"][0])


def _multi_select_list(c: _Compiler, node: Node) -> Evaluator:
    items = tuple(c.build(child) for child in node["children"])

    def select_list(value: Any) -> Any:
        return None if value is None else [item(value) for item in items]

    return select_list


def _multi_select_dict(c: _Compiler, node: Node) -> Evaluator:
    pairs = tuple((child["value"], c.build(child)) for child in node["children"])
    dict_cls = c.dict_cls
    if dict_cls is None:
        return lambda value: None if value is None else {key: item(value) for key, item in pairs}

    def select_dict(value: Any) -> Any:
        if value is None:
            return None
        collected = dict_cls()
        for key, item in pairs:
            collected[key] = item(value)
        return collected

    return select_dict


#: node type -> closure builder; a type missing here is left to ``TreeInterpreter.visit``.
COMPILERS: dict[str, Callable[[_Compiler, Node], Evaluator]] = {
    "and_expression": _and,
    "comparator": _comparator,
    "current": _identity,
    "expref": _expref,
    "field": _field,
    "filter_projection": _filter_projection,
    "flatten": _flatten,
    "function_expression": _function,
    "identity": _identity,
    "index": _index,
    "index_expression": _chain,
    "key_val_pair": _key_val_pair,
    "literal": _literal,
    "multi_select_dict": _multi_select_dict,
    "multi_select_list": _multi_select_list,
    "not_expression": _not,
    "or_expression": _or,
    "pipe": _chain,
    "projection": _projection,
    "slice": _slice,
    "subexpression": _chain,
    "value_projection": _value_projection,
}
