"""JMESPath compiled to closures gives exactly what jmespath's interpreter gives (values and errors)."""

from __future__ import annotations

import json
import re
from collections import OrderedDict
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import jmespath
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from jmespath import exceptions as jexc
from jmespath import visitor as jvisitor

from esb import expressions, jmescompile
from esb.exceptions import MappingError
from esb.expressions import Expression
from esb.jmescompile import compile_ast, compile_jmespath
from esb.transforms.functions import FnContext
from esb.transforms.jmesdialect import JMESPathDialect, MappingFunctions

PROJECT = Path(__file__).resolve().parents[2]
ROUTE_KEYS = {"filter", "when", "split", "keep", "key", "recipients"}


def _transform_expressions(node: Any, out: list[str]) -> None:
    """Collect the JMESPath sources of a ``kind: jmespath`` rules block (strings, from, when, foreach)."""
    for value in node.values():
        if isinstance(value, str):
            out.append(value)
        elif isinstance(value, dict):
            sources = value.get("from", [])
            out.extend([sources] if isinstance(sources, str) else sources)
            out.extend(value[k] for k in ("when", "foreach") if isinstance(value.get(k), str))
            _transform_expressions(value.get("rules", {}), out)
            _transform_expressions(value.get("let", {}), out)


def _route_expressions(node: Any, out: list[str]) -> None:
    """Collect every expression of routes.yaml (business keys, filter, when, split...)."""
    if isinstance(node, list):
        for item in node:
            _route_expressions(item, out)
    elif isinstance(node, dict):
        out.extend(v for v in node.get("business_keys", {}).values() if isinstance(v, str))
        out.extend(v for k, v in node.items() if k in ROUTE_KEYS and isinstance(v, str))
        for value in node.values():
            _route_expressions(value, out)


def real_expressions() -> list[str]:
    """Every JMESPath expression of the project's routes.yaml and ``kind: jmespath`` transforms."""
    found: list[str] = []
    _route_expressions(yaml.safe_load((PROJECT / "routes.yaml").read_text(encoding="utf-8")), found)
    for path in sorted((PROJECT / "transforms").glob("*/*.yaml")):
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        if isinstance(doc, dict) and doc.get("kind") == "jmespath":
            found.extend(v for v in (doc.get("accepts") or {}).values() if v and "test" in doc["accepts"])
            _transform_expressions(doc.get("rules", {}), found)
    return [e for e in found if not e.startswith("a canonical")]  # drop the `describe:` texts


REAL = real_expressions()
TRICKY = [
    # tests' and check paths' expressions
    "body.k", "{order: parent.body.id, item: item}", "type == 'order'", "body.c == 'online'", "headers.to",
    "productOrderItem[*].action", "productOrderItem[0].itemPrice[0].price.taxIncludedAmount", "orderLines[0]",
    # fields, indexes, slices
    "a", "a.b.c", '"名称"', '"@type"', "a.b.c.d.e", "[0]", "[-1]", "a[5]", "a[-5]", "a[0][0]", "a[1:]",
    "a[::2]", "a[::-1]", "a[-2:]", "a[:1:-1]", "a[::0]", "@", "@.a", "@ | @[0]",
    # projections over lists and non-lists
    "a[*]", "a[*].b", "a[*].b.c", "*", "*.b", "a.*", "a.*.b", "[*][0]", "a[*][0]", "a[*].b | [0]",
    "a[*].[b, c]", "a[*].{x: b}", "a[].b", "a[][]", "a[][][]", "[]", "[][0]", "a[0:2].b",
    # filters
    "a[?b]", "a[?b == `1`]", "a[?b == 'x'].c", "[?@ == `1`]", "[?@]", "a[?b > `0`]", "a[?b < c]",
    "a[?!b]", "a[?b && c]", "a[?b || c].b", "a[?b != `null`]", "[?a == 'x'] | [0]", "a[?@ == `[0]`]",
    # comparisons of mixed types
    "true == `1`", "`1` == `true`", "`0` == `false`", "`false` == `0`", "`1.0` == `true`", "`[0]` == `[0]`",
    "`[0]` == `[false]`", "a == b", "a != b", "a < b", "a <= b", "a > b", "a >= b", "a < `1`", "a > 'x'",
    "`null` == a", "'x' == a", "c[0] < c[1]", "`true` >= `1`", "a < `true`", "`{}` == a", "a == `0`",
    "a != `1`", "`2` < `3`", "'a' < 'b'",
    # logic and literals
    "a && b", "a || b", "!a", "!!a", "!`0`", "!`0.0`", "!`[]`", "!''", "a || 'default'",
    "`[1, [2]]`", "`{\"k\": \"中文\"}`", "'raw'", "`\"\"`", "`null`",
    # pipes, multi-selects
    "a | b | c", "a | [0] | b", "(a | b)[0]", "[a, b]", "{x: a, y: b}", "a.[b, c]", "a.{x: b, y: c}",
    "[a, b][0]", "{a: a}.a", "[`null`, a]", "a.[b]",
    # functions
    "length(a)", "length(@)", "contains(a, 'x')", "contains(['web', 'app'], a)", "not_null(a, b, 'z')",
    "sort_by(a, &b)", "max_by(a, &b)", "min_by(a, &b).c", "to_number(a)", "to_number('12')",
    "to_string(a)", "join(', ', a)", "join(',', a[*].b)", "keys(@)", "values(@)", "type(a)", "type(&a)",
    "length(&a)", "map(&b, a)", "map(&[b, c], a)", "sort(a)", "max(a)", "sum(a)", "avg(a)", "abs(a)",
    "reverse(a)", "starts_with(a, 'x')", "merge(a, b)", "to_array(a)", "floor(a)", "length()", "nope(a)",
    "&a", "sort_by(a, &b)[*].c | [0]",
]
MAPPING = [
    "codelist_out(priority, 'order_priority', 'iom')", "upper(a)", "trim(a)", "default(a, 'd')",
    "integer(a)", "codelist_out(a, 'order_item_action', 'iom')", "codelist(a, 'order_item_action', 'siebel')",
    "upper()", "join(',', a)", "prefix(a, 'P-')",
]
CORPUS = list(dict.fromkeys([*REAL, *TRICKY, *MAPPING]))


def _samples() -> list[Any]:
    paths = sorted(PROJECT.glob("transforms/*/samples/*.json"))
    return [json.loads(path.read_text(encoding="utf-8")) for path in paths]


def _view(body: Any) -> dict[str, Any]:
    return {"body": body, "headers": {"priority": "high", "to": ["b.out"]}, "type": "order", "source": "crm",
            "schema": None, "id": "m1", "correlation_id": "c1", "attempt": 1}


SAMPLES = _samples()
DOCUMENTS: list[Any] = [
    None, 0, 1, True, False, "", "中文", 2.5, [], {}, [0, 1, None, False, "x", [0, [1]]],
    {"a": [{"b": 1, "c": "x"}, {"b": 0, "c": "y"}, {"b": None}, {"c": 2}, "s", 3, None, [1]], "b": True},
    {"a": [[1, 2], [3, [4, 5]], 6, [], None], "b": [1], "c": {"d": 1}},
    {"a": {"b": {"c": {"d": {"e": "深"}}}, "k": [1, 2]}, "b": {"x": 1}, "名称": "王五",
     "@type": "ProductOrder"},
    {"a": [3, 1, 2], "b": 1, "c": "x", "priority": "1"},
    {"a": ["add", "modify", "x"], "b": Decimal("1.50")},
    {"a": [{"b": "2", "c": 1}, {"b": "1", "c": 2}], "b": "  中 ", "priority": "9"},
    {"a": 1, "b": "x", "c": [True, 1, 0, False, 1.0, 0.0]},
    {"a": False, "b": [], "c": ""}, {"a": "", "b": 0, "c": {}}, {"a": [], "b": {}, "c": False},
    {"a": "x", "b": "x", "item": {"id": 1}, "parent": {"body": {"id": "P1"}}},
    {"a": [1.5, -2, 0], "b": 0, "c": None, "body": {"k": "", "c": "online", "state": "pending"}},
    *SAMPLES, *(_view(s) for s in SAMPLES), _view(None), _view({"channel": [{"id": "web"}], "state": "x"}),
]
OPTIONS = {
    "default": None,
    "mapping": jmespath.Options(custom_functions=MappingFunctions(FnContext(PROJECT, "test/jmes"))),
    "ordered": jmespath.Options(dict_cls=OrderedDict),
}
_REPR = re.compile(r"<[\w.]+ object at 0x[0-9a-f]+>")


def same(a: Any, b: Any) -> bool:
    """Equal with the same types all the way down (True is not 1) and dict keys in the same order."""
    if isinstance(a, jvisitor._Expression) and isinstance(b, jvisitor._Expression):
        return type(a).__name__ == type(b).__name__ and a.expression is b.expression
    if type(a) is not type(b):
        return False
    if isinstance(a, list):
        return len(a) == len(b) and all(map(same, a, b))
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    return bool(a == b)


def outcome(evaluate: Callable[[Any], Any], doc: Any) -> tuple[str, Any, str]:
    """("ok", result, "") or ("raised", exception type, message with object addresses blanked)."""
    try:
        return "ok", evaluate(doc), ""
    except Exception as exc:
        return "raised", type(exc), _REPR.sub("<obj>", str(exc))


def assert_identical(expression: str, options: jmespath.Options | None, docs: list[Any]) -> None:
    """The compiled expression and jmespath.search agree on every document."""
    parsed = jmespath.compile(expression)
    compiled = compile_jmespath(expression, options)
    for doc in docs:
        want = outcome(lambda d: parsed.search(d, options=options), doc)
        got = outcome(compiled, doc)
        assert got[0] == want[0], (expression, doc, got, want)
        assert got[2] == want[2], (expression, doc, got, want)
        if want[0] == "ok":
            assert same(got[1], want[1]), (expression, doc, got[1], want[1])
        else:
            assert got[1] is want[1], (expression, doc, got, want)


@pytest.mark.parametrize("options", OPTIONS.values(), ids=list(OPTIONS))
@pytest.mark.parametrize("expression", CORPUS)
def test_compiled_expression_matches_interpreter(expression: str, options: jmespath.Options | None) -> None:
    """Every corpus expression gives the interpreter's value (same types) or raises its exception type."""
    assert_identical(expression, options, DOCUMENTS)


def test_corpus_holds_the_real_expressions_and_every_node_type() -> None:
    """The corpus has the repo's real expressions and exercises every node type the compiler handles."""
    assert "body.relatedParty[?role=='customer'].id | [0]" in REAL
    assert "codelist_out(priority, 'order_priority', 'iom')" in REAL
    assert len(REAL) >= 30
    assert len(CORPUS) >= 80

    def types(node: dict[str, Any]) -> Iterator[str]:
        yield node["type"]
        for child in node.get("children", []):
            if isinstance(child, dict):
                yield from types(child)

    seen = {t for e in CORPUS for t in types(jmespath.compile(e).parsed)}
    assert seen == set(jmescompile.COMPILERS)


def test_parse_error_propagates() -> None:
    """A syntax error is jmespath's ParseError, raised when compiling."""
    with pytest.raises(jexc.ParseError):
        compile_jmespath("a.[[")


def test_a_node_type_left_out_is_evaluated_by_the_interpreter(monkeypatch: pytest.MonkeyPatch) -> None:
    """With no compiler for 'slice', the interpreter's visit_slice runs that subtree with the same result."""
    calls: list[Any] = []
    real_visit_slice = jvisitor.TreeInterpreter.visit_slice

    def spy(self: Any, node: Any, value: Any) -> Any:
        calls.append(node["children"])
        return real_visit_slice(self, node, value)

    monkeypatch.setattr(jvisitor.TreeInterpreter, "visit_slice", spy)
    monkeypatch.delitem(jmescompile.COMPILERS, "slice")
    evaluate = compile_jmespath("a[::-1].b | [0]")
    assert evaluate({"a": [{"b": 1}, {"b": 2}]}) == 2
    assert calls == [[None, None, -1]]
    for expression in ("a[::2]", "a[1:][*].b", "sort_by(a[::-1], &b)"):
        assert_identical(expression, None, DOCUMENTS)


def test_unknown_node_type_fails_at_evaluation_like_the_interpreter() -> None:
    """A node type neither side knows raises the interpreter's NotImplementedError when evaluated."""
    evaluate = compile_ast({"type": "bogus", "children": []})
    with pytest.raises(NotImplementedError, match="bogus"):
        evaluate({})


def test_expref_is_an_expref_to_jmespath_functions() -> None:
    """`&b` passed to sort_by/map runs the compiled closure and type-checks as an expref."""
    doc = {"a": [{"b": 2, "c": "二"}, {"b": 1, "c": "一"}]}
    assert compile_jmespath("sort_by(a, &b)[*].c")(doc) == ["一", "二"]
    assert compile_jmespath("map(&c, a)")(doc) == ["二", "一"]
    with pytest.raises(jexc.JMESPathTypeError, match='received: "expref"'):
        compile_jmespath("length(&b)")(doc)


def test_route_expression_wraps_runtime_errors_in_mapping_error() -> None:
    """A function's type error in a route expression is still a MappingError naming the expression."""
    with pytest.raises(MappingError, match=r"length\(body.x\)") as info:
        Expression("length(body.x)", "route r: filter").search({"body": {"x": 5}})
    assert isinstance(info.value.__cause__, jexc.JMESPathTypeError)


def test_route_expression_calls_registered_functions(monkeypatch: pytest.MonkeyPatch) -> None:
    """A Functions subclass registered for routes is called through the compiled expression."""

    class Shout(jmespath.functions.Functions):  # type: ignore[misc]  # jmespath ships no type hints
        @jmespath.functions.signature({"types": ["string"]})
        def _func_shout(self, value: str) -> str:
            return value.upper() + "!"

    monkeypatch.setattr(expressions, "_extra_functions", [])
    expressions.register_functions(Shout)
    assert Expression("shout(body.a)").search({"body": {"a": "hi"}}) == "HI!"
    assert Expression("length(body.a)").search({"body": {"a": "hi"}}) == 2


def test_dialect_treats_blank_as_missing_and_bad_syntax_as_value_error() -> None:
    """The mapping dialect still turns '' into null and a ParseError into ValueError."""
    dialect = JMESPathDialect(FnContext(PROJECT, "test/jmes"))
    assert dialect.search("a.b")({"a": {"b": ""}}) is None
    assert dialect.search("a[0]")({"a": ["", "x"]}) is None
    assert dialect.search("codelist_out(p, 'order_priority', 'iom')")({"p": "1"}) == "P1"
    with pytest.raises(ValueError, match="Incomplete expression"):
        dialect.search("a.[[")


# ---- random expressions over random documents -----------------------------------------------------------

NAMES = st.sampled_from(["a", "b", "c", '"名"'])
LEAVES = st.one_of(NAMES, st.sampled_from(["@", "`1`", "`0`", "`true`", "`false`", "`null`", "'x'", "`[0]`",
                                           "`{}`", "''", "`2.5`", "`\"中\"`"]))
UNARY = ["({})[0]", "({})[-1]", "({})[1:]", "({})[::-1]", "({})[*]", "({})[]", "({}).*", "!({})", "({}).b",
         "length({})", "to_number({})", "type({})", "keys({})", "max({})", "sort({})", "to_string({})",
         "not_null({})", "({})[?a]", "({})[*].a", "[({})]", "{{k: ({})}}", "abs({})", "join(',', {})"]
BINARY = ["({}) == ({})", "({}) != ({})", "({}) < ({})", "({}) >= ({})", "({}) && ({})", "({}) || ({})",
          "({}) | ({})", "({})[?({})]", "[({}), ({})]", "{{k: ({}), m: ({})}}", "sort_by({}, &({}))",
          "map(&({1}), {0})", "contains({}, {})", "max_by({}, &({}))", "not_null({}, {})", "merge({}, {})"]


def _grow(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    unary = st.tuples(st.sampled_from(UNARY), inner).map(lambda t: t[0].format(t[1]))
    binary = st.tuples(st.sampled_from(BINARY), inner, inner).map(lambda t: t[0].format(t[1], t[2]))
    return unary | binary


EXPRESSIONS = st.recursive(LEAVES, _grow, max_leaves=6)
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-2, 3),
                    st.decimals(min_value=-5, max_value=5, places=1),
                    st.sampled_from([0.0, 1.0, 2.5, "", "x", "中"]))
KEYS = st.sampled_from(["a", "b", "c", "名"])
JSON = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4)
                    | st.dictionaries(KEYS, inner, max_size=3), max_leaves=10)


@settings(max_examples=400, deadline=None)
@given(expression=EXPRESSIONS, docs=st.lists(JSON, min_size=1, max_size=4))
def test_random_expressions_match_interpreter(expression: str, docs: list[Any]) -> None:
    """Random expressions built from every node type agree with the interpreter on random documents."""
    assert_identical(expression, None, docs)
