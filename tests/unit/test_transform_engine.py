"""The transform engine: registry, compiler, rule semantics, failure modes, XSLT and Python kinds."""

from __future__ import annotations

from pathlib import Path

import pytest

from esb.exceptions import ConfigError, DecodeError, MappingError, UnknownMessageTypeError
from esb.message import Message
from esb.transforms import TransformRegistry
from esb.transforms.rules import parse_target

CODELISTS = """\
order_item_action:
  canonical: [add, modify, delete, noChange]
  systems:
    siebel: {Add: add, Update: modify, Delete: delete, "-": noChange}
    iom: {ADD: add, MOD: modify, DEL: delete, KEEP: noChange}
"""


def make_project(tmp_path: Path, files: dict[str, str]) -> Path:
    """Write a project with code lists and the given files under transforms/."""
    (tmp_path / "canonical_model").mkdir()
    (tmp_path / "canonical_model" / "codelists.yaml").write_text(CODELISTS, encoding="utf-8")
    for rel, text in files.items():
        path = tmp_path / "transforms" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return tmp_path


XML_MAP = """\
kind: xpath-to-json
output_schema: thing.v1
output_type: thing.created
accepts: {root: order, test: "@kind = 'new'", describe: "a new order"}
rules:
  id: {from: "@no", required: true}
  items:
    foreach: item
    rules:
      sku: {field: sku, required: true}
      action: {from: "@act", fn: [{codelist: order_item_action, system: siebel}]}
      price.value: {from: "price", fn: [{money: CNY}]}
"""


def test_parse_target_splits_names_and_indexes() -> None:
    """Target paths are dotted names with [n] indexes."""
    assert parse_target("itemPrice[0].price.@type") == ("itemPrice", 0, "price", "@type")


def test_apply_maps_body_and_sets_schema_and_type(tmp_path: Path) -> None:
    """apply() returns the same message (same id) with the mapped body, schema and type."""
    reg = TransformRegistry(make_project(tmp_path, {"a/xml_map.yaml": XML_MAP}))
    msg = Message(body=b'<order no="7" kind="new"><item act="Add" sku="S1"><price>3</price></item>'
                       b'<item><sku>S2</sku></item></order>')
    out = reg.get("a/xml_map").apply(msg)
    assert out.id == msg.id
    assert (out.schema, out.type) == ("thing.v1", "thing.created")
    assert out.body == {"id": "7", "items": [{"sku": "S1", "action": "add", "price": {"value": "3.00"}},
                                             {"sku": "S2"}]}


def test_registry_compiles_once_and_lists_names(tmp_path: Path) -> None:
    """get() caches the compiled transform; names() lists mapping files but not tests or samples."""
    project = make_project(tmp_path, {"a/xml_map.yaml": XML_MAP, "a/xml_map_test.yaml": "cases: []",
                                      "a/samples/x.yaml": "x: 1"})
    reg = TransformRegistry(project)
    assert reg.names() == ["a/xml_map"]
    assert reg.get("a/xml_map") is reg.get("a/xml_map")


def test_unknown_transform_suggests_the_closest_name(tmp_path: Path) -> None:
    """An unknown name is a ConfigError with did-you-mean."""
    reg = TransformRegistry(make_project(tmp_path, {"a/xml_map.yaml": XML_MAP}))
    with pytest.raises(ConfigError, match="did you mean 'a/xml_map'"):
        reg.get("a/xml_mapp")


@pytest.mark.parametrize(
    ("text", "where", "message"),
    [
        pytest.param("kind: xpath-to-jsn\nrules: {a: b}\n", ":1:", "did you mean 'xpath-to-json'", id="kind"),
        pytest.param("kind: jmespath\nrulez: {a: b}\n", ":2:", "did you mean 'rules'", id="top-key"),
        pytest.param("kind: jmespath\nrules:\n  a: b\n  c: {from: x, fn: [trimm]}\n", ":4:",
                     "did you mean 'trim'", id="function"),
        pytest.param("kind: xpath-to-json\nrules:\n  a: '@x ='\n", ":3:", "bad expression", id="xpath"),
        pytest.param("kind: jmespath\nrules:\n  a: {from: 'a[', required: true}\n", ":3:", "bad expression",
                     id="jmespath"),
        pytest.param("kind: jmespath\nrules:\n  a: {form: x}\n", ":3:", "did you mean 'from'", id="rule-key"),
        pytest.param("kind: jmespath\nrules:\n  a:\n    foreach: x\n    rules: {}\n", ":5:", "non-empty",
                     id="empty-foreach"),
    ],
)
def test_broken_mapping_points_at_file_and_line(tmp_path: Path, text: str, where: str, message: str) -> None:
    """A broken mapping file is a ConfigError naming file:line, and load_all() reports it as a finding."""
    reg = TransformRegistry(make_project(tmp_path, {"s/m.yaml": text}))
    with pytest.raises(ConfigError, match=message) as info:
        reg.get("s/m")
    assert f"transforms/s/m.yaml{where}" in str(info.value)
    findings = TransformRegistry(reg.project_dir).load_all()
    assert len(findings) == 1
    assert f"transforms/s/m.yaml{where}" in findings[0]


def test_failing_rule_names_rule_and_source_path(tmp_path: Path) -> None:
    """A bad code in the second item names the rule and the item's absolute path."""
    reg = TransformRegistry(make_project(tmp_path, {"a/xml_map.yaml": XML_MAP}))
    body = b'<order no="7" kind="new"><item act="Add" sku="S1"/><item act="Upgrade" sku="S2"/></order>'
    with pytest.raises(MappingError) as info:
        reg.get("a/xml_map").transform_body(body)
    err = info.value
    assert err.rule == "items[].action"
    assert err.source_path == "/order/item[2]/@act"
    assert "Upgrade" in err.detail


def test_missing_required_value_is_a_mapping_error(tmp_path: Path) -> None:
    """A required field missing as element and as attribute names both places."""
    reg = TransformRegistry(make_project(tmp_path, {"a/xml_map.yaml": XML_MAP}))
    with pytest.raises(MappingError) as info:
        reg.get("a/xml_map").transform_body(b'<order no="7" kind="new"><item act="Add"/></order>')
    assert info.value.rule == "items[].sku"
    assert info.value.source_path == "/order/item/sku|@sku"


def test_document_of_another_type_is_refused(tmp_path: Path) -> None:
    """Wrong root or a failing accepts test raises UnknownMessageTypeError saying what was expected."""
    reg = TransformRegistry(make_project(tmp_path, {"a/xml_map.yaml": XML_MAP}))
    with pytest.raises(UnknownMessageTypeError, match="accepts <order> documents, got <invoice>"):
        reg.get("a/xml_map").transform_body(b"<invoice/>")
    with pytest.raises(UnknownMessageTypeError, match='a new order; got <order kind="old"'):
        reg.get("a/xml_map").transform_body(b'<order kind="old"/>')


def test_malformed_bodies_are_decode_errors(tmp_path: Path) -> None:
    """Malformed XML and invalid JSON / UTF-8 raise DecodeError, never a bare exception."""
    reg = TransformRegistry(make_project(tmp_path, {"a/xml_map.yaml": XML_MAP,
                                                    "a/j.yaml": "kind: jmespath\nrules: {x: a}\n"}))
    with pytest.raises(DecodeError):
        reg.get("a/xml_map").transform_body(b"<order")
    with pytest.raises(DecodeError):
        reg.get("a/j").transform_body(b'{"a": "\xff"}')
    with pytest.raises(DecodeError):
        reg.get("a/j").transform_body(b"{nope")


JSON_MAP = """\
kind: jmespath
accepts: {test: "type == 'order'"}
let:
  cur: {from: currency, default: CNY}
rules:
  header.no: {from: id, required: true}
  header.action: "codelist_out(action, 'order_item_action', 'iom')"
  lines:
    foreach: items
    rules:
      n: {from: n, fn: [integer]}
      fen: {from: amount, fn: [{money: $cur}, {to_minor: $cur}]}
"""


def test_jmespath_mapping_with_functions_in_expressions_and_variables(tmp_path: Path) -> None:
    """JMESPath rules call mapping functions inside expressions; let variables reach nested rules."""
    reg = TransformRegistry(make_project(tmp_path, {"i/j.yaml": JSON_MAP}))
    items = [{"n": "1", "amount": "1200"}, {"n": 2, "amount": "5"}]
    body = {"type": "order", "id": "A1", "action": "modify", "currency": "JPY", "items": items}
    out = reg.get("i/j").transform_body(body)
    assert out["header"] == {"no": "A1", "action": "MOD"}
    assert out["lines"] == [{"n": 1, "fen": 1200}, {"n": 2, "fen": 5}]


def test_jmespath_failure_names_item_path(tmp_path: Path) -> None:
    """A failing nested JSON rule names the rule and the foreach path with the item index."""
    reg = TransformRegistry(make_project(tmp_path, {"i/j.yaml": JSON_MAP}))
    with pytest.raises(MappingError) as info:
        reg.get("i/j").transform_body(b'{"type": "order", "id": "A", "items": [{"n": 1}, {"n": "x"}]}')
    assert (info.value.rule, info.value.source_path) == ("lines[].n", "items[1].n")


def test_xslt_kind_maps_xml_to_xml_and_denies_file_access(tmp_path: Path) -> None:
    """An XSLT mapping produces XML bytes in the declared encoding; document() on a file is refused."""
    sheet = """<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform">
      <xsl:template match="/a"><b name="{@n}"><xsl:value-of select="."/></b></xsl:template>
      <xsl:template match="/evil"><x><xsl:copy-of select="document('/etc/hostname')"/></x></xsl:template>
    </xsl:stylesheet>"""
    project = make_project(tmp_path, {"x/t.yaml": "kind: xslt\nstylesheet: t.xsl\noutput_encoding: GBK\n",
                                      "x/t.xsl": sheet})
    transform = TransformRegistry(project).get("x/t")
    out = transform.transform_body('<a n="1">张伟</a>'.encode())
    assert out.startswith(b"<?xml version='1.0' encoding='GBK'?>")
    assert "张伟".encode("gbk") in out
    with pytest.raises(MappingError, match="xslt"):
        transform.transform_body(b"<evil/>")


def test_python_kind_calls_the_named_function(tmp_path: Path) -> None:
    """kind: python loads file.py:func beside the mapping; its exceptions become MappingErrors."""
    code = ("def f(body, context):\n"
            "    if 'boom' in body:\n        raise KeyError('boom')\n"
            "    return {'fen': context.fn('to_minor', body['amt'], 'CNY')}\n")
    mapping = "kind: python\ninput: json\noutput: json\nfunction: m.py:f\n"
    project = make_project(tmp_path, {"p/m.yaml": mapping, "p/m.py": code})
    transform = TransformRegistry(project).get("p/m")
    assert transform.transform_body({"amt": "1.5"}) == {"fen": 150}
    with pytest.raises(MappingError, match="KeyError"):
        transform.transform_body({"boom": 1})


def test_context_must_select_exactly_one_node(tmp_path: Path) -> None:
    """A context expression matching two nodes fails clearly instead of dropping one."""
    text = "kind: xpath-to-json\ncontext: o\nrules: {id: '@id'}\n"
    reg = TransformRegistry(make_project(tmp_path, {"c/m.yaml": text}))
    assert reg.get("c/m").transform_body(b'<r><o id="1"/></r>') == {"id": "1"}
    with pytest.raises(MappingError, match="selected 2 nodes"):
        reg.get("c/m").transform_body(b'<r><o id="1"/><o id="2"/></r>')


def test_a_literal_object_value_is_a_fresh_copy_in_every_output(tmp_path: Path) -> None:
    """A rule whose value (or default) is an object gives each message its own copy: fields written into it
    for one message never appear in the next."""
    mapping = """\
kind: jmespath
rules:
  n: {value: {}}
  n.a: {from: a}
  m: {from: missing, default: []}
  m[0]: {from: b}
"""
    transform = TransformRegistry(make_project(tmp_path, {"a/lit.yaml": mapping})).get("a/lit")
    first = transform.apply(Message(body={"a": 1, "b": 1})).body
    second = transform.apply(Message(body={})).body
    assert first == {"n": {"a": 1}, "m": [1]}
    assert second == {"n": {}, "m": []}
