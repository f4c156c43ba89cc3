"""The repo's JMESPath expressions: compiled closures (esb.jmescompile) against jmespath's interpreter.

Run: .venv/bin/python bench/jmespath_bench.py [--n 20000] [--rounds 7]
Per expression, µs per evaluation of ``ParsedResult.search(doc, options)`` (what the hub called before: a
new TreeInterpreter per search) and of the compiled closure, on the same document in the same run; rounds
are interleaved and the best of each side kept. Results are checked equal before timing. Then the whole
IOM mapping (iom/canonical_to_order_request, ``Transform.run``) with the previous dialect (dotted names
walked directly, the rest through the interpreter) against the compiled one.
"""

from __future__ import annotations

import argparse
import json
import re
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import jmespath

from esb.expressions import message_view
from esb.jmescompile import compile_jmespath
from esb.message import Message
from esb.transforms import TransformRegistry
from esb.transforms.functions import FnContext
from esb.transforms.jmesdialect import JMESPathDialect, MappingFunctions

PROJECT = Path(__file__).resolve().parent.parent
ORDER = PROJECT / "transforms" / "iom" / "samples" / "product_order_multi_attrs.json"
ROUTES = [  # routes.yaml: business keys, filter, choice
    "body.id", "body.billingAccount.id", "body.relatedParty[?role=='customer'].id | [0]",
    "body.state != 'pending'", "contains(['web', 'app', 'wechat'], body.channel[0].id)",
]
MAPPING = [  # transforms/iom/canonical_to_order_request.yaml and billing/canonical_to_create_account.yaml
    "\"@type\" == 'ProductOrder'", "externalReference[?externalReferenceType=='siebel'].id | [0]",
    "channel[0].id", "codelist_out(priority, 'order_priority', 'iom')", "note[0].text",
    "relatedParty[?role=='customer'].id | [0]", "relatedParty[?role=='customer'].name | [0]",
    "billingAccount.id", "productOrderItem[0].itemPrice[0].price.taxIncludedAmount",
    "productOrderItem[*].action",
]
_DOTTED = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")


def best_pair(a: Callable[[], Any], b: Callable[[], Any], n: int, rounds: int) -> tuple[float, float]:
    """Best µs per call of ``a`` and ``b`` over interleaved rounds of ``n`` calls."""
    best = [float("inf"), float("inf")]
    for _ in range(rounds):
        for side, func in enumerate((a, b)):
            start = time.perf_counter()
            for _ in range(n):
                func()
            best[side] = min(best[side], (time.perf_counter() - start) / n * 1e6)
    return best[0], best[1]


def expressions_table(n: int, rounds: int) -> None:
    """Print one line per expression and the totals."""
    order = json.loads(ORDER.read_text(encoding="utf-8"))
    view = message_view(Message(body=order, id="m1", type="order.submitted", source="crm"))
    options = jmespath.Options(custom_functions=MappingFunctions(FnContext(PROJECT, "bench/jmes")))
    print(f"{'expression':<64} {'interp µs':>10} {'compiled µs':>12} {'ratio':>7}")
    totals = [0.0, 0.0]
    for expression, doc in [(e, view) for e in ROUTES] + [(e, order) for e in MAPPING]:
        parsed, compiled = jmespath.compile(expression), compile_jmespath(expression, options)
        assert compiled(doc) == parsed.search(doc, options=options), expression
        old, new = best_pair(partial(parsed.search, doc, options=options), partial(compiled, doc), n, rounds)
        totals[0] += old
        totals[1] += new
        print(f"{expression[:64]:<64} {old:>10.2f} {new:>12.2f} {old / new:>6.1f}x")
    print(f"{'total (' + str(len(ROUTES) + len(MAPPING)) + ' expressions)':<64} {totals[0]:>10.2f} "
          f"{totals[1]:>12.2f} {totals[0] / totals[1]:>6.1f}x")


def previous_search(self: JMESPathDialect, expr: str) -> Callable[[Any], Any]:
    """JMESPathDialect.search as it was: dotted names walked directly, the rest through the interpreter."""
    if _DOTTED.match(expr):
        keys = tuple(expr.split("."))

        def walk(node: Any) -> Any:
            for key in keys:
                if not isinstance(node, dict):
                    return None
                node = node.get(key)
            return None if node == "" else node

        return walk
    parsed, options = self.compile(expr), self.options

    def get(node: Any) -> Any:
        result = parsed.search(node, options=options)
        return None if result == "" else result

    return get


def mapping_line(n: int, rounds: int) -> None:
    """Print the whole IOM mapping with the previous dialect against the compiled one."""
    order = json.loads(ORDER.read_text(encoding="utf-8"))
    name = "iom/canonical_to_order_request"
    compiled = TransformRegistry(PROJECT).get(name)
    current = JMESPathDialect.search
    JMESPathDialect.search = previous_search  # type: ignore[method-assign]
    try:
        previous = TransformRegistry(PROJECT).get(name)
    finally:
        JMESPathDialect.search = current  # type: ignore[method-assign]
    assert previous.run(order) == compiled.run(order), "outputs differ"
    old, new = best_pair(lambda: previous.run(order), lambda: compiled.run(order), n, rounds)
    print(f"\nwhole mapping {name} on {ORDER.name} ({len(order['productOrderItem'])} items), µs per run:")
    print(f"  previous dialect {old:,.1f}   compiled {new:,.1f}   ratio {old / new:.2f}x")


def main() -> None:
    """Parse the arguments and print both measurements."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20000, help="evaluations per round and expression")
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    expressions_table(args.n, args.rounds)
    mapping_line(max(args.n // 50, 50), args.rounds)


if __name__ == "__main__":
    main()
