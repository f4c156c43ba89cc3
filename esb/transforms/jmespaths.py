"""The source fields a JMESPath expression reads, found statically in its syntax tree (for lint).

``externalReference[?externalReferenceType=='siebel'].id | [0]`` reads ``externalReference[].id`` and
``externalReference[].externalReferenceType``. A path is a tuple of names, ``[]`` for "an item of this
list" and ``*`` for "any key" (``a.*.b``). What a path leads to when it is only walked through (the left of
``a.b``, a ``foreach`` list) is navigation; what an expression yields, compares or hands to a function is
a value read. Both must exist in the source; coverage counts the value reads (a read object maps
everything under it).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import jmespath

from esb.transforms.schemawalk import ANY, ITEM

Path = tuple[str, ...]


@dataclass
class Reads:
    """What one expression reads: ``values`` (yielded, compared, passed on) and every path walked."""

    values: set[Path] = field(default_factory=set)
    walked: set[Path] = field(default_factory=set)


#: one result of a sub-expression: its path, and whether it is already a projection (a list of items)
_Result = tuple[Path, bool]


class _Walker:
    def __init__(self) -> None:
        self.reads = Reads()

    def value(self, node: dict[str, Any], base: list[_Result]) -> list[_Result]:
        """Evaluate ``node`` as a value: its results are value reads."""
        results = self.eval(node, base)
        self.reads.values.update(p for p, _ in results)
        return results

    def eval(self, node: dict[str, Any], base: list[_Result]) -> list[_Result]:
        kind = node["type"]
        kids = node.get("children") or []
        if kind == "field":
            out = [((*p, str(node["value"])), proj) for p, proj in base]
            self.reads.walked.update(p for p, _ in out)
            return out
        if kind in ("current", "identity"):
            return base
        if kind == "subexpression":
            for kid in kids:
                base = self.eval(kid, base)
            return base
        if kind == "index_expression":
            left = self.eval(kids[0], base)
            if kids[1].get("type") == "slice":
                return [(p, False) for p, _ in left]
            return [(p if proj else (*p, ITEM), False) for p, proj in left]
        if kind == "flatten":
            return [((*p, ITEM), True) for p, _ in self.eval(kids[0], base)]
        if kind in ("projection", "filter_projection", "value_projection"):
            left = self.eval(kids[0], base)
            step = ANY if kind == "value_projection" else ITEM
            items = [(p if proj else (*p, step), True) for p, proj in left]
            if kind == "filter_projection":
                self.value(kids[2], items)
            return [(p, True) for p, _ in self.eval(kids[1], items)]
        if kind == "pipe":
            return self.eval(kids[1], self.eval(kids[0], base))
        if kind in (
            "comparator",
            "and_expression",
            "not_expression",
            "multi_select_list",
            "multi_select_dict",
            "key_val_pair",
        ):
            for kid in kids:
                self.value(kid, base)
            return []
        if kind == "or_expression":
            return [r for kid in kids for r in self.value(kid, base)]
        if kind == "function_expression":
            args: list[_Result] = []
            for kid in kids:
                if kid.get("type") == "expref":
                    items = [(p if proj else (*p, ITEM), True) for p, proj in args[:1]] or base
                    self.value(kid["children"][0], items)
                else:
                    args.extend(self.value(kid, base))
            return args
        return []  # literals and anything else read nothing


def reads(expr: str, base: Path = ()) -> Reads:
    """Return what ``expr``, evaluated at the source path ``base``, reads; empty for bad syntax."""
    try:
        tree = jmespath.compile(expr).parsed
    except jmespath.exceptions.JMESPathError:
        return Reads()
    walker = _Walker()
    walker.value(tree, [(base, False)])
    return walker.reads


def navigate(expr: str, base: Path = ()) -> list[Path]:
    """Return the item paths of a ``foreach`` or ``context`` list (``productOrderItem`` -> ``(.., '[]')``)."""
    try:
        tree = jmespath.compile(expr).parsed
    except jmespath.exceptions.JMESPathError:
        return []
    walker = _Walker()
    results = walker.eval(tree, [(base, False)])
    return [p if proj else (*p, ITEM) for p, proj in results]
