"""The kinds of transform: rule mappings (XPath or JMESPath), XSLT, and a named Python function."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from lxml import etree

from esb.exceptions import EsbError, MappingError, MessageError
from esb.transforms.base import Header, Transform
from esb.transforms.functions import FUNCTIONS, FnContext
from esb.transforms.plan import compile_block
from esb.transforms.rules import Block, Dialect, Runner
from esb.xmlsafe import hardened_parser


class RuleTransform(Transform):
    """``kind: xpath-to-json`` and ``kind: jmespath``: a block of rules building a JSON object."""

    def __init__(
        self,
        header: Header,
        dialect: Dialect,
        block: Block | None,
        expression: Callable[[Any], Any] | None = None,
        context: str | None = None,
    ) -> None:
        super().__init__(header)
        self.block = block
        self.expression = expression
        self.runner = Runner(header.name, dialect)
        #: the rules compiled to closures (esb.transforms.plan); ``runner.block`` is the reference path
        self.plan = compile_block(self.runner, block) if block is not None else None
        self.dialect = dialect
        self.context = (context, dialect.many(context)) if context else None

    def run(self, body: Any) -> Any:
        """Evaluate the rules (or the single expression) against the parsed body."""
        if self.expression is not None:
            try:
                return self.expression(body)
            except (ValueError, TypeError, ArithmeticError, LookupError, MessageError) as exc:
                raise MappingError(self.name, "expression", "@", str(exc)) from exc
        assert self.plan is not None
        node = self._context(body) if self.context else body
        return self.plan(node, None, {})

    def _context(self, body: Any) -> Any:
        assert self.context is not None
        expr, many = self.context
        nodes = many(body)
        if len(nodes) != 1:
            what = "nothing" if not nodes else f"{len(nodes)} nodes (split the message first)"
            raise MappingError(
                self.name,
                "context",
                self.dialect.locate(body, None, expr),
                f"the context expression must select exactly one node, it selected {what}",
            )
        return nodes[0]


class XSLTTransform(Transform):
    """``kind: xslt``: an XSLT 1.0 stylesheet, compiled once, with file and network access denied."""

    def __init__(self, header: Header, stylesheet: Path, params: dict[str, str]) -> None:
        super().__init__(header)
        self.stylesheet = stylesheet
        doc = etree.parse(str(stylesheet), parser=hardened_parser())
        self.xslt = etree.XSLT(doc, access_control=etree.XSLTAccessControl.DENY_ALL)
        self.params = {k: etree.XSLT.strparam(str(v)) for k, v in params.items()}

    def run(self, body: Any) -> Any:
        """Apply the stylesheet; a failure names the stylesheet and the XSLT error."""
        try:
            result = self.xslt(body, **self.params)
        except etree.XSLTApplyError as exc:
            log = "; ".join(e.message for e in self.xslt.error_log) or str(exc)
            raise MappingError(self.name, "xslt", self.stylesheet.name, log) from exc
        if result.getroot() is None:
            raise MappingError(self.name, "xslt", self.stylesheet.name, "the stylesheet produced no element")
        return result.getroot()


class FunctionContext:
    """What a ``kind: python`` function receives besides the body: the name and the function library."""

    def __init__(self, name: str, ctx: FnContext) -> None:
        self.name = name
        self.fn_context = ctx

    def fn(self, name: str, value: Any, *args: Any, **kwargs: Any) -> Any:
        """Call mapping function ``name`` (``context.fn("money", v, "CNY")``)."""
        fdef = FUNCTIONS[name]
        if fdef.needs_ctx:
            kwargs["ctx"] = self.fn_context
        return fdef.func(value, *args, **kwargs)


class PythonTransform(Transform):
    """``kind: python``: ``func(body, context) -> body``, the escape hatch for what rules cannot say."""

    def __init__(self, header: Header, func: Callable[[Any, FunctionContext], Any], ctx: FnContext) -> None:
        super().__init__(header)
        self.func = func
        self.context = FunctionContext(header.name, ctx)

    def run(self, body: Any) -> Any:
        """Call the function; any exception that is not an EsbError becomes a MappingError."""
        try:
            return self.func(body, self.context)
        except EsbError:
            raise
        except Exception as exc:
            func_name = getattr(self.func, "__qualname__", repr(self.func))
            raise MappingError(self.name, func_name, "(python)", f"{type(exc).__name__}: {exc}") from exc
