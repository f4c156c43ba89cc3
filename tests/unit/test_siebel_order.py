"""The Siebel order mapping on real SiebelMessage shapes: escapes, attributes, ListOf, GBK, hardening."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from esb.exceptions import MappingError, UnknownMessageTypeError, UnsafeXMLError
from esb.message import Message
from esb.transforms import TransformRegistry
from esb.transforms.siebel import siebel_escape, siebel_unescape

PROJECT = Path(__file__).resolve().parents[2]
SAMPLES = PROJECT / "transforms" / "crm" / "samples"
NAME = "crm/siebel_order_to_canonical"


@pytest.fixture(scope="module")
def registry() -> TransformRegistry:
    """The real project's transforms."""
    return TransformRegistry(PROJECT)


def sample(name: str) -> bytes:
    """Bytes of a sample SiebelMessage."""
    return (SAMPLES / name).read_bytes()


def test_escape_table_follows_oracle_names() -> None:
    """Siebel names escape as the EAI XML Converter writes them (_spc, _lpr, _rpr, _und, _slh...)."""
    assert siebel_escape("Order Entry (Sales)") == "Order_spcEntry_spc_lprSales_rpr"
    assert siebel_escape("Order Entry - Line Items") == "Order_spcEntry_spc-_spcLine_spcItems"
    assert siebel_unescape("Account_undName_slhx_cma_spcy") == "Account_Name/x, y"


@given(st.text(alphabet=st.sampled_from(list("Ab9 _-.()/,&#?:;'\"<>张")), max_size=25))
def test_escape_round_trips(name: str) -> None:
    """Unescaping an escaped name gives the name back (characters of Oracle's table, letters, digits)."""
    assert siebel_unescape(siebel_escape(name)) == name


def test_elements_and_attributes_give_the_same_order(registry: TransformRegistry) -> None:
    """A SiebelMessage with fields as attributes maps exactly like the same one with elements."""
    as_elements = sample("order_single_utf8.xml")
    as_attributes = (b'<SiebelMessage IntObjectName="Order Entry (Sales)">'
                     b'<ListOfOrder_spcEntry_spc_lprSales_rpr>'
                     b'<Order_spcEntry_spc-_spcOrders Id="1-2ABC3D" Order_spcNumber="SO20261125000123" '
                     b'Order_spcDate="11/25/2026 14:03:00" Account_spcId="1-8F3KD"><ListOfOrder_spcEntry_spc-'
                     b'_spcLine_spcItems><Order_spcEntry_spc-_spcLine_spcItems Line_spcNumber="1" '
                     b'Action_spcCode="Add" Product_spcId="PO-5G-129" Net_spcPrice="129" '
                     b'Price_spcType="Recurring"/></ListOfOrder_spcEntry'
                     b'_spc-_spcLine_spcItems></Order_spcEntry_spc-_spcOrders>'
                     b'</ListOfOrder_spcEntry_spc_lprSales_rpr></SiebelMessage>')
    transform = registry.get(NAME)
    full, small = transform.transform_body(as_elements), transform.transform_body(as_attributes)
    for key in ("id", "externalReference", "orderDate"):
        assert small[key] == full[key]
    assert small["productOrderItem"][0]["itemPrice"] == full["productOrderItem"][0]["itemPrice"]


def test_gbk_document_decodes_chinese(registry: TransformRegistry) -> None:
    """A GBK-declared SiebelMessage decodes its Chinese text; full-width brackets become half-width."""
    data = sample("order_gbk.xml")
    assert b'encoding="GBK"' in data
    assert "欧阳".encode("gbk") in data
    out = registry.get(NAME).transform_body(data)
    assert out["relatedParty"][0]["name"] == "欧阳娜娜(广州天河)"


def test_utf8_sample_matches_expected_and_sets_envelope(registry: TransformRegistry) -> None:
    """The UTF-8 sample maps to its expected canonical order; the message gets schema and type."""
    msg = registry.get(NAME).apply(Message(body=sample("order_single_utf8.xml"), source="crm"))
    assert msg.body == orjson.loads(sample("order_single_utf8.expected.json"))
    assert (msg.schema, msg.type) == ("product_order.v1", "order.submitted")


def test_multi_item_order_has_each_action_and_nested_attributes(registry: TransformRegistry) -> None:
    """Four line items keep their order, actions and XA attributes; an empty ListOfOrderItemXA is omitted."""
    items = registry.get(NAME).transform_body(sample("order_multi_attrs.xml"))["productOrderItem"]
    assert [i["action"] for i in items] == ["modify", "add", "delete", "noChange"]
    assert items[3]["product"]["productCharacteristic"][1] == {"name": "SIM Type", "value": "eSIM"}
    assert "productCharacteristic" not in items[2]["product"]


def test_empty_listof_gives_no_items(registry: TransformRegistry) -> None:
    """An empty ListOf of line items maps to an empty productOrderItem list, blank fields are left out."""
    out = registry.get(NAME).transform_body(sample("order_empty_listof.xml"))
    assert out["productOrderItem"] == []
    assert "description" not in out
    assert "category" not in out


def test_doctype_is_refused(registry: TransformRegistry) -> None:
    """A SiebelMessage carrying a DTD with an external entity is refused, never expanded."""
    with pytest.raises(UnsafeXMLError):
        registry.get(NAME).transform_body(sample("order_with_dtd.xml"))


def test_other_integration_object_is_unknown_type(registry: TransformRegistry) -> None:
    """A SiebelMessage that is not Order Entry (Sales) is an UnknownMessageTypeError naming what came."""
    with pytest.raises(UnknownMessageTypeError, match="Account Interface"):
        registry.get(NAME).transform_body(sample("not_an_order.xml"))


def test_bad_date_names_rule_and_field(registry: TransformRegistry) -> None:
    """An unparseable order date is a MappingError naming orderDate and the Siebel field path."""
    body = sample("order_single_utf8.xml").replace(b"11/25/2026 14:03:00", b"2026.11.25")
    with pytest.raises(MappingError) as info:
        registry.get(NAME).transform_body(body)
    assert info.value.rule == "orderDate"
    assert info.value.source_path.endswith("Order_spcEntry_spc-_spcOrders/Order_spcDate|@Order_spcDate")


def test_lint_finds_no_problem_in_project_transforms(registry: TransformRegistry) -> None:
    """Every mapping file of the project compiles."""
    assert TransformRegistry(PROJECT).load_all() == []
