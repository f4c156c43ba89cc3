"""TMF documents as TM Forum publishes them: the user-guide shapes, CancelProductOrder, TMF's own values."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from esb.cli.main import cli
from esb.exceptions import ConfigError
from esb.message import Message
from esb.model.registry import ModelRegistry
from esb.model.tmf import TMFConversionError, dumps, from_tmf, loads, to_tmf
from esb.model.tmf.bundle import bundled_schema
from esb.model.tmf.schemas import tmf_errors, tmf_schemas_dir
from esb.transforms import TransformRegistry
from esb.transforms.tmf import WARNINGS_HEADER

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "tmf"
EXAMPLES = ROOT / "canonical_model" / "examples"
TMF_DIR = tmf_schemas_dir(ROOT)
MODEL = ModelRegistry(ROOT / "canonical_model")
HOST_PORT = "https://host:port/productOrderingManagement/v4/productOrder/3774"


def _fixture(name: str) -> dict[str, Any]:
    doc: dict[str, Any] = loads((FIXTURES / name).read_text(encoding="utf-8"))
    return doc


def _valid(schema: str, doc: dict[str, Any]) -> list[tuple[str, str]]:
    return MODEL.validator(schema).errors(json.loads(dumps(doc)))


def _needs_sid() -> None:
    if not TMF_DIR.is_dir():
        pytest.skip(f"TMF SID schemas not found at {TMF_DIR} (set ESB_TMF_SCHEMAS)")


@pytest.mark.parametrize(
    ("name", "schema_file"),
    [
        pytest.param("product_order_userguide.json", "Customer/ProductOrder", id="ProductOrder"),
        pytest.param("cancel_product_order_userguide.json", "Product/CancelProductOrder", id="Cancel"),
    ],
)
def test_fixtures_are_valid_tmf(name: str, schema_file: str) -> None:
    """The fixtures written from TM Forum's user guide are valid against the SID schema (not vacuous)."""
    _needs_sid()
    assert tmf_errors(schema_file, TMF_DIR, _fixture(name)) == []


def test_published_product_order_converts_and_keeps_tmf_values() -> None:
    """TMF622's sample order reads into a valid canonical order; TMF's values and ref fields are kept."""
    tmf = _fixture("product_order_userguide.json")
    order, warnings = from_tmf("ProductOrder", tmf, MODEL)
    assert _valid("product_order.v1", order) == []
    assert order["state"] == "acknowledged"
    assert order["priority"] == "1"
    assert order["href"] == HOST_PORT
    bundle_member = order["productOrderItem"][1]
    assert bundle_member["product"]["productSpecification"]["version"] == "1"
    assert bundle_member["productOffering"]["@referredType"] == "ProductOffering"
    assert order["relatedParty"][0]["@referredType"] == "Individual"
    assert order["orderTotalPrice"][0]["price"]["taxIncludedAmount"] == {"unit": "EUR", "value": "12.0"}
    assert not [w for w in warnings if "dropped" in w], warnings


def test_published_product_order_round_trips_exactly() -> None:
    """TMF -> canonical -> TMF gives back TMF's sample, plus only the extension markers."""
    tmf = _fixture("product_order_userguide.json")
    order, _ = from_tmf("ProductOrder", tmf, MODEL)
    back = loads(dumps(to_tmf("product_order", order)))
    assert back.pop("@baseType") == "ProductOrder"
    assert back.pop("@schemaLocation").endswith("product_order.v1.schema.json#tmf-extension-b")
    assert back == tmf


def test_host_port_href_is_a_warning_and_kept() -> None:
    """An href as TMF's examples write it (https://host:port/...) is kept, with a warning naming it."""
    order, warnings = from_tmf("ProductOrder", _fixture("product_order_userguide.json"), MODEL)
    assert order["href"] == HOST_PORT
    assert f'$.href: "{HOST_PORT}" is not a URI reference (RFC 3986); kept as it came' in warnings
    hrefs = (FIXTURES / "product_order_userguide.json").read_text(encoding="utf-8").count("host:port")
    assert len([w for w in warnings if "is not a URI reference" in w]) == hrefs == 9


def test_conforming_href_has_no_warning() -> None:
    """A real URL in href is read without a warning."""
    tmf = _fixture("cancel_product_order_userguide.json")
    tmf["href"] = "https://api.example.org/productOrderingManagement/v4/cancelProductOrder/789"
    tmf["productOrder"]["href"] = "/productOrderingManagement/v4/productOrder/3774"
    assert from_tmf("CancelProductOrder", tmf, MODEL)[1] == []


def test_published_cancel_product_order_converts_both_ways() -> None:
    """TMF622's CancelProductOrder sample reads into a valid cancel_product_order.v1 and back."""
    tmf = _fixture("cancel_product_order_userguide.json")
    cancel, warnings = from_tmf("CancelProductOrder", tmf, MODEL)
    assert _valid("cancel_product_order.v1", cancel) == []
    assert cancel["productOrder"] == {
        "id": "3774",
        "href": HOST_PORT,
        "@referredType": "ProductOrder",
    }
    assert cancel["state"] == "done"
    assert [w for w in warnings if "host:port" not in w] == []
    back = loads(dumps(to_tmf("cancel_product_order", cancel)))
    assert {k: v for k, v in back.items() if k not in ("@baseType", "@schemaLocation")} == tmf


def test_canonical_cancel_product_order_to_tmf_is_sid_valid() -> None:
    """Our CancelProductOrder example becomes SID-valid TMF (acknowledged written as the SID's accepted)."""
    _needs_sid()
    path = EXAMPLES / "cancel_product_order.v1" / "valid" / "customer_cancels.json"
    canonical = json.loads(path.read_text(encoding="utf-8"))
    tmf = loads(dumps(to_tmf("cancel_product_order", canonical)))
    assert tmf["state"] == "accepted"
    assert tmf_errors("Product/CancelProductOrder", TMF_DIR, tmf) == []
    assert from_tmf("cancel_order", tmf, MODEL) == (canonical, [])


def test_cancel_product_order_state_is_normalised_and_checked() -> None:
    """A sloppy cancel state is corrected with a warning; one outside TaskStateType is refused."""
    tmf = _fixture("cancel_product_order_userguide.json")
    tmf["state"] = "InProgress"
    cancel, warnings = from_tmf("CancelProductOrder", tmf, MODEL)
    assert cancel["state"] == "inProgress"
    assert "$.state: 'InProgress' read as 'inProgress'" in warnings
    tmf["state"] = "completed"
    with pytest.raises(TMFConversionError, match=r"'completed' is not a cancel_product_order state"):
        from_tmf("CancelProductOrder", tmf, MODEL)


@pytest.mark.parametrize(
    ("entity", "example", "field", "canonical_value", "tmf_value"),
    [
        pytest.param(
            "product", "product.v1/valid/mobile_5g_plan.json", "status", "aborted", "aborted ", id="aborted"
        ),
        pytest.param(
            "party",
            "party.v1/valid/individual_verified.json",
            "status",
            "deceased",
            "deceaded",
            id="deceaded",
        ),
    ],
)
def test_tmf_spelt_states_are_read_and_written_tmf_way(
    entity: str, example: str, field: str, canonical_value: str, tmf_value: str
) -> None:
    """TMF's own enumeration values spelt oddly ("aborted ", "deceaded") are kept, without a warning."""
    canonical = json.loads((EXAMPLES / example).read_text(encoding="utf-8"))
    canonical[field] = canonical_value
    tmf = to_tmf(entity, canonical)
    assert tmf[field] == tmf_value
    assert from_tmf(entity, tmf, MODEL) == (canonical, [])


def test_nested_product_status_in_an_order_item_is_normalised() -> None:
    """An order item's product carries TMF637's status: TMF's "aborted " is read as aborted."""
    tmf = _fixture("product_order_userguide.json")
    tmf["productOrderItem"][1]["product"]["status"] = "aborted "
    order, _ = from_tmf("ProductOrder", tmf, MODEL)
    assert order["productOrderItem"][1]["product"]["status"] == "aborted"
    assert to_tmf("product_order", order)["productOrderItem"][1]["product"]["status"] == "aborted "


def test_unknown_fields_are_dropped_with_their_value_in_the_warning() -> None:
    """A field the canonical model has no place for leaves with a warning that carries its value."""
    tmf = _fixture("cancel_product_order_userguide.json")
    tmf["productOrder"]["orderNumber"] = "X-1"
    tmf["channelCode"] = {"code": 7}
    cancel, warnings = from_tmf("CancelProductOrder", tmf, MODEL)
    assert "orderNumber" not in cancel["productOrder"]
    assert "channelCode" not in cancel
    assert (
        '$.productOrder.orderNumber: not a field of the canonical cancel_product_order.v1; dropped: "X-1"'
        in warnings
    )
    assert (
        '$.channelCode: not a field of the canonical cancel_product_order.v1; dropped: {"code":7}' in warnings
    )


def test_missing_required_field_is_named_not_invented() -> None:
    """A TMF-valid order without id is read; the warning says the canonical model requires it."""
    tmf = _fixture("product_order_userguide.json")
    del tmf["id"]
    order, warnings = from_tmf("ProductOrder", tmf, MODEL)
    assert "id" not in order
    assert "$: 'id' is a required property in the canonical product_order.v1; the document is incomplete" in (
        warnings
    )


def test_array_item_warnings_name_the_place_as_it_came() -> None:
    """When an invalid array item leaves, later warnings still name items by their place in the input."""
    tmf = _fixture("cancel_product_order_userguide.json")
    tmf["relatedParty"] = [7, {"id": "C1", "@referredType": "Customer", "rank": 1}]
    cancel, warnings = from_tmf("CancelProductOrder", tmf, MODEL)
    assert cancel["relatedParty"] == [{"id": "C1", "@referredType": "Customer"}]
    assert [w.split(":")[0] for w in warnings if "host:port" not in w] == [
        "$.relatedParty[0]",
        "$.relatedParty[1].rank",
    ]


def test_item_lacking_a_required_field_is_kept_and_named() -> None:
    """An order item the canonical model cannot take whole stays (not dropped); the warning names it."""
    tmf = _fixture("product_order_userguide.json")
    del tmf["productOrderItem"][2]["id"]
    order, warnings = from_tmf("ProductOrder", tmf, MODEL)
    assert len(order["productOrderItem"]) == 3
    assert (
        "$.productOrderItem[2]: 'id' is a required property in the canonical product_order.v1; "
        "the document is incomplete" in warnings
    )
    assert [p for p, _ in _valid("product_order.v1", order)] == ["$.productOrderItem[2]"]


def test_subclass_type_is_read_as_its_base_with_a_warning() -> None:
    """A TMF630 sub-class (@type X, @baseType ProductOrder) is read as ProductOrder, saying so."""
    tmf = _fixture("product_order_userguide.json")
    tmf["@type"] = "MobileProductOrder"
    tmf["@baseType"] = "ProductOrder"
    order, warnings = from_tmf("ProductOrder", tmf, MODEL)
    assert order["@type"] == "ProductOrder"
    expected = "is a sub-class of 'ProductOrder' (its @baseType); read as 'ProductOrder'"
    assert f"$.@type: 'MobileProductOrder' {expected}" in warnings


def test_sid_service_order_item_name_is_read_as_service_order_item() -> None:
    """The SID's ServiceOrder.orderItem is read as serviceOrderItem (TMF641's API name), with a warning."""
    path = EXAMPLES / "service_order.v1" / "valid"
    canonical = json.loads(sorted(path.glob("*.json"))[0].read_text(encoding="utf-8"))
    tmf = to_tmf("service_order", canonical)
    tmf["orderItem"] = tmf.pop("serviceOrderItem")
    back, warnings = from_tmf("ServiceOrder", loads(dumps(tmf)), MODEL)
    assert back == canonical
    assert warnings == [
        "$.orderItem: read as 'serviceOrderItem' (the name the canonical model and TMF API use)"
    ]


def test_bundle_resolves_cross_file_refs_offline() -> None:
    """The bundled ProductOrder schema has no $ref left and still describes TMF's order items."""
    _needs_sid()
    bundled = bundled_schema("Customer/ProductOrder", TMF_DIR, 3)
    text = json.dumps(bundled)
    assert "$ref" not in text
    assert '"productOrderItem"' in text
    assert '"assessingCancellation"' in text


def test_route_transform_journals_what_it_dropped(tmp_path: Path) -> None:
    """A ``kind: tmf`` reader fits TMF's document to the project's schema; each drop is an esb-warning."""
    shutil.copytree(ROOT / "canonical_model", tmp_path / "canonical_model")
    mapping = tmp_path / "transforms" / "t" / "in.yaml"
    mapping.parent.mkdir(parents=True)
    mapping.write_text("kind: tmf\ndirection: from\nentity: CancelProductOrder\n", encoding="utf-8")
    tmf = _fixture("cancel_product_order_userguide.json")
    tmf["channelCode"] = "web"
    body = dumps(tmf).encode("utf-8")
    out = TransformRegistry(tmp_path).get("t/in").apply(Message(body=body, id="m1"))
    assert "channelCode" not in out.body
    assert (
        out.body["productOrder"]["href"] == "https://host:port/productOrderingManagement/v4/productOrder/3774"
    )
    assert (
        't/in: $.channelCode: not a field of the canonical cancel_product_order.v1; dropped: "web"'
        in out.headers[WARNINGS_HEADER]
    )


def _cli(*args: str) -> Any:
    return CliRunner().invoke(cli, ["--project", str(ROOT), "model", *args])


def test_cli_from_tmf_reads_the_published_order_with_warnings() -> None:
    """`esb model from-tmf` prints the canonical order (exit 0), each host:port href a stderr warning."""
    result = _cli("from-tmf", "ProductOrder", str(FIXTURES / "product_order_userguide.json"))
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["href"] == HOST_PORT
    assert result.stderr.count("is not a URI reference (RFC 3986); kept as it came") == 9


def test_cli_from_tmf_names_what_an_incomplete_order_lacks(tmp_path: Path) -> None:
    """An order without id is read but reported incomplete: a warning, the schema error, exit 1."""
    tmf = _fixture("product_order_userguide.json")
    del tmf["id"]
    path = tmp_path / "order.json"
    path.write_text(dumps(tmf), encoding="utf-8")
    result = _cli("from-tmf", "ProductOrder", str(path))
    assert result.exit_code == 1
    assert "'id' is a required property in the canonical product_order.v1; the document is incomplete" in (
        result.stderr
    )
    assert "not a valid product_order.v1" in result.stderr


def test_cli_to_tmf_writes_cancel_product_order() -> None:
    """`esb model to-tmf cancel_product_order` prints the TMF622 task, SID-valid."""
    _needs_sid()
    path = EXAMPLES / "cancel_product_order.v1" / "valid" / "customer_cancels.json"
    result = _cli("to-tmf", "cancel_product_order", str(path))
    assert result.exit_code == 0, result.output
    tmf = loads(result.stdout)
    assert tmf["@type"] == "CancelProductOrder"
    assert tmf_errors("Product/CancelProductOrder", TMF_DIR, tmf) == []


def test_bundle_refuses_references_outside_the_folder(tmp_path: Path) -> None:
    """A $ref to a URL or out of the schema folder is a clear error, never fetched nor read."""
    folder = tmp_path / "sid" / "Customer"
    folder.mkdir(parents=True)
    for name, ref in (("Web", "https://example.org/x.schema.json#X"), ("Out", "../../outside.schema.json#X")):
        schema = {"definitions": {name: {"$id": f"#{name}", "properties": {"x": {"$ref": ref}}}}}
        (folder / f"{name}.schema.json").write_text(json.dumps(schema), encoding="utf-8")
    (tmp_path / "outside.schema.json").write_text('{"definitions": {}}', encoding="utf-8")
    with pytest.raises(ConfigError, match="not a relative file reference"):
        bundled_schema("Customer/Web", tmp_path / "sid")
    with pytest.raises(ConfigError, match="leaves the schema folder"):
        bundled_schema("Customer/Out", tmp_path / "sid")


def test_bundle_cuts_recursion_with_false(tmp_path: Path) -> None:
    """A class that holds itself (an order item's items) is unfolded once, then allows nothing."""
    folder = tmp_path / "Customer"
    folder.mkdir()
    item = {"$id": "#Item", "properties": {"child": {"type": "array", "items": {"$ref": "#Item"}}}}
    (folder / "Item.schema.json").write_text(json.dumps({"definitions": {"Item": item}}), encoding="utf-8")
    assert bundled_schema("Customer/Item", tmp_path) == {
        "properties": {"child": {"type": "array", "items": False}}
    }


def test_a_value_only_the_compiled_validator_refuses_is_dropped_with_a_warning() -> None:
    """An email python-jsonschema lets through but the hub's compiled validator refuses ("@") is dropped
    with a warning, so the converted party is valid (found by test_tmf_properties)."""
    model = MODEL
    doc = {"@type": "Individual", "id": "P1", "contactMedium": [{"characteristic": {"emailAddress": "@"}}]}
    canonical, warnings = from_tmf("party", doc, model)
    assert "emailAddress" not in json.dumps(canonical)
    assert any("emailAddress" in w and "dropped" in w for w in warnings), warnings
    assert not [
        e for e in model.validator("party.v1").errors(canonical) if "email" in e[0] or "email" in e[1]
    ]
