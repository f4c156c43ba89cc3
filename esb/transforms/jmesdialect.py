"""JMESPath over JSON bodies, with the mapping functions callable inside expressions.

``codelist_out(action, 'order_item_action', 'iom')`` in an expression calls the same function as the
pipeline step ``{codelist_out: order_item_action, system: iom}``. Expressions are compiled to closures
(:mod:`esb.jmescompile`) that give what jmespath's interpreter gives; plain dotted names (``a.b.c``)
become one closure walking the dicts (missing is null).
"""

from __future__ import annotations

import re
from typing import Any

import jmespath
from jmespath import exceptions as jexc
from jmespath import functions as jfunctions

from esb.jmescompile import compile_ast
from esb.transforms.functions import FUNCTIONS, FnContext
from esb.transforms.rules import Getter, Loc

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_DOTTED = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")


class MappingFunctions(jfunctions.Functions):  # type: ignore[misc]  # jmespath ships no type hints
    """JMESPath's built-in functions plus every mapping function (value first, then the arguments)."""

    def __init__(self, ctx: FnContext) -> None:
        self.ctx = ctx

    def call_function(self, function_name: str, resolved_args: list[Any]) -> Any:
        """Dispatch to a built-in, else to the mapping function ``function_name``."""
        if function_name in self.FUNCTION_TABLE or function_name not in FUNCTIONS:
            return super().call_function(function_name, resolved_args)
        fdef = FUNCTIONS[function_name]
        if not resolved_args:
            raise jexc.ArityError(1, 0, function_name)
        value, *args = resolved_args
        if value is None and not fdef.none_ok:
            return None
        if fdef.needs_ctx:
            return fdef.func(value, *args, ctx=self.ctx)
        return fdef.func(value, *args)


class JMESPathDialect:
    """Compiles JMESPath expressions for the rule compiler."""

    def __init__(self, ctx: FnContext) -> None:
        self.options = jmespath.Options(custom_functions=MappingFunctions(ctx))

    def compile(self, expr: str) -> Any:
        """Compile ``expr``; ValueError for bad syntax."""
        try:
            return jmespath.compile(expr)
        except jexc.ParseError as exc:
            raise ValueError(str(exc).replace("\n", " ")) from None

    def search(self, expr: str) -> Getter:
        """Return a getter evaluating ``expr`` with the mapping functions available (blank is null)."""
        evaluate = compile_ast(self.compile(expr).parsed, self.options)

        def get(node: Any) -> Any:
            result = evaluate(node)
            return None if result == "" else result

        if _NAME.match(expr):  # a plain name: esb.transforms.plansource writes it out as dict.get
            get.dict_key = expr  # type: ignore[attr-defined]
        elif _DOTTED.match(expr):  # a dotted name: written out as a chain of dict.get
            get.dict_path = tuple(expr.split("."))  # type: ignore[attr-defined]
        return get

    def scalar(self, expr: str, *, all_values: bool = False) -> Getter:
        """Return a getter for the value of ``expr`` (blank strings count as missing)."""
        return self.search(expr)

    def field(self, name: str) -> str:
        """``field: orderDate`` -> the JMESPath identifier (quoted when it needs to be)."""
        return name if _DOTTED.match(name) else '"' + name.replace('"', '\\"') + '"'

    def many(self, expr: str) -> Getter:
        """Return a getter for the item list of a ``foreach`` (null is an empty list)."""
        get = self.search(expr)

        def items(node: Any) -> list[Any]:
            result = get(node)
            if result is None:
                return []
            if not isinstance(result, list):
                raise ValueError(f"foreach needs a list, got {type(result).__name__}")
            return result

        return items

    def locate(self, node: Any, loc: Loc, expr: str) -> str:
        """Return ``productOrderItem[1].action``-style paths from the foreach chain."""
        parts: list[str] = []
        while loc is not None:
            loc, each, index = loc
            parts.append(f"{each}[{index}]")
        return ".".join([*reversed(parts), expr])
