"""TMF v4 conversion: canonical examples convert, validate against the SID schemas and round-trip."""

from __future__ import annotations

import copy
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from esb.model.money import MINOR_UNITS
from esb.model.states import MACHINES
from esb.model.tmf import ENTITIES, TMFConversionError, dumps, from_tmf, loads, to_tmf
from esb.model.tmf.schemas import tmf_errors, tmf_schemas_dir

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "canonical_model" / "examples"
TMF_DIR = tmf_schemas_dir(ROOT)
CASES = [
    pytest.param(name, path, id=f"{name}-{path.stem}")
    for name in sorted(ENTITIES)
    for path in sorted((EXAMPLES / f"{name}.v1" / "valid").glob("*.json"))
]


def _load(path: Path) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return doc


def _order() -> dict[str, Any]:
    path = EXAMPLES / "product_order.v1" / "valid" / "home_bundle_new.json"
    if not path.exists():
        pytest.skip(f"{path} is not written yet")
    return _load(path)


def test_there_are_examples_to_convert() -> None:
    """The canonical examples exist, so the per-entity tests below are not vacuous."""
    assert len(CASES) >= 5


@pytest.mark.parametrize(("entity", "path"), CASES)
def test_round_trip_is_exact(entity: str, path: Path) -> None:
    """canonical -> TMF -> JSON text -> TMF -> canonical gives back the same document, no warnings."""
    doc = _load(path)
    tmf = loads(dumps(to_tmf(entity, doc)))
    back, warnings = from_tmf(entity, tmf)
    assert back == doc
    assert warnings == []


@pytest.mark.parametrize(("entity", "path"), CASES)
def test_tmf_form_validates_against_sid_schema(entity: str, path: Path) -> None:
    """The TMF form of each example validates against the TM Forum SID schema of its class."""
    if not TMF_DIR.is_dir():
        pytest.skip(f"TMF SID schemas not found at {TMF_DIR} (set ESB_TMF_SCHEMAS)")
    tmf = loads(dumps(to_tmf(entity, _load(path))))
    schema_file = ENTITIES[entity].schema_files[tmf["@type"]]
    if schema_file is None:
        pytest.skip(f"{ENTITIES[entity].api} {tmf['@type']} is not published in the SID schema folder")
    assert tmf_errors(schema_file, TMF_DIR, tmf) == []


def test_money_becomes_an_exact_json_number() -> None:
    """Money is a JSON number in TMF, written from the Decimal (199.00 stays 199.00)."""
    tmf = to_tmf("product_order", _order())
    price = tmf["productOrderItem"][0]["itemPrice"][0]["price"]["taxIncludedAmount"]
    assert price == {"unit": "CNY", "value": Decimal("199.00")}
    assert dumps(price, indent=None) == '{"unit": "CNY", "value": 199.00}'


def test_canonical_only_fields_are_declared_as_tmf_extension() -> None:
    """Canonical-only fields stay, declared through @baseType and @schemaLocation (TMF630)."""
    tmf = to_tmf("product_order", _order())
    assert tmf["@schemaVersion"] == "1"
    assert tmf["externalReference"]
    assert tmf["@baseType"] == "ProductOrder"
    assert tmf["@schemaLocation"].endswith("product_order.v1.schema.json#tmf-extension-b")


def test_individual_name_is_tmf_full_name() -> None:
    """An Individual's canonical name is TMF fullName, and comes back as name."""
    path = EXAMPLES / "party.v1" / "valid" / "individual_verified.json"
    if not path.exists():
        pytest.skip(f"{path} is not written yet")
    doc = _load(path)
    tmf = to_tmf("party", doc)
    assert tmf["fullName"] == doc["name"]
    assert "name" not in tmf
    assert from_tmf("individual", tmf)[0] == doc


@pytest.mark.parametrize(
    ("sloppy", "expected"),
    [
        pytest.param("InProgress", "inProgress", id="capitalised"),
        pytest.param("IN_PROGRESS", "inProgress", id="upper-snake"),
        pytest.param("in progress", "inProgress", id="spaced"),
    ],
)
def test_sloppy_state_is_accepted_with_warning(sloppy: str, expected: str) -> None:
    """A mis-cased state is corrected and the correction is reported as a warning."""
    tmf = to_tmf("product_order", _order())
    tmf["state"] = sloppy
    tmf["productOrderItem"][0]["productOrderItem"][0]["state"] = sloppy
    doc, warnings = from_tmf("product_order", tmf)
    assert doc["state"] == expected
    assert doc["productOrderItem"][0]["productOrderItem"][0]["state"] == expected
    assert f"$.state: {sloppy!r} read as {expected!r}" in warnings
    assert any("productOrderItem[0].productOrderItem[0].state" in w for w in warnings)


def test_unknown_state_is_rejected_with_allowed_values() -> None:
    """A state that is not TMF622's is an error naming the allowed states."""
    tmf = to_tmf("product_order", _order())
    tmf["state"] = "Done"
    with pytest.raises(
        TMFConversionError, match=r"\$\.state: 'Done' is not a product_order state.*acknowledged"
    ):
        from_tmf("product_order", tmf)


def test_missing_type_is_filled_with_warning() -> None:
    """A TMF document without @type gets the entity's class, with a warning."""
    tmf = to_tmf("product_order", _order())
    del tmf["@type"]
    doc, warnings = from_tmf("product_order", tmf)
    assert doc["@type"] == "ProductOrder"
    assert "$.@type: missing; assumed 'ProductOrder'" in warnings


def test_miscased_type_is_corrected_and_wrong_type_rejected() -> None:
    """@type 'productOrder' is read as ProductOrder with a warning; 'ServiceOrder' is refused."""
    tmf = to_tmf("product_order", _order())
    tmf["@type"] = "productOrder"
    assert from_tmf("product_order", tmf)[1][0] == "$.@type: 'productOrder' read as 'ProductOrder'"
    tmf["@type"] = "ServiceOrder"
    with pytest.raises(TMFConversionError, match="not a TMF622 class"):
        from_tmf("product_order", tmf)


def test_related_party_without_referred_type_is_rejected() -> None:
    """A relatedParty missing @referredType is refused with its path, never guessed."""
    tmf = to_tmf("product_order", _order())
    del tmf["relatedParty"][0]["@referredType"]
    with pytest.raises(TMFConversionError, match=r"\$\.relatedParty\[0\]: @referredType is missing"):
        from_tmf("product_order", tmf)


def test_float_money_is_read_with_warning() -> None:
    """A TMF money value parsed as a binary float is read through its repr, with a warning."""
    tmf = to_tmf("product_order", _order())
    tmf["productOrderItem"][0]["itemPrice"][0]["price"]["taxIncludedAmount"]["value"] = 199.5
    doc, warnings = from_tmf("product_order", tmf)
    assert doc["productOrderItem"][0]["itemPrice"][0]["price"]["taxIncludedAmount"]["value"] == "199.5"
    assert any("binary float" in w for w in warnings)


def test_unknown_entity_is_an_error_with_suggestion() -> None:
    """Asking for an entity without a TMF mapping suggests the closest one."""
    with pytest.raises(TMFConversionError, match="did you mean 'product_order'"):
        to_tmf("product_ordr", {})


@pytest.mark.parametrize("entity", sorted(ENTITIES))
def test_state_fields_use_the_schema_enumeration(entity: str) -> None:
    """Each state field the reader normalises is, in the canonical schema, the machine's enumeration."""
    path = ROOT / "canonical_model" / f"{entity}.v1.schema.json"
    if not path.exists():
        pytest.skip(f"{path.name} is not written (no canonical schema for {entity} yet)")
    schema = _load(path)
    for sf in ENTITIES[entity].states:
        if sf.within is None:
            ref = schema["properties"][sf.field]["$ref"]
            assert ref.endswith(f"#/$defs/{MACHINES[sf.machine].schema_def}")


MONEY = st.builds(
    lambda v, c: {"unit": c, "value": format(v, "f")},
    st.decimals(min_value=-(10**9), max_value=10**9, places=2, allow_nan=False, allow_infinity=False),
    st.sampled_from(sorted(MINOR_UNITS)),
)


@given(money=MONEY, state=st.sampled_from(MACHINES["product_order"].states))
def test_property_order_money_and_state_round_trip(money: dict[str, str], state: str) -> None:
    """Any money amount and order state survive canonical -> TMF text -> canonical exactly."""
    doc = {"@type": "ProductOrder", "id": "PO-1", "state": state,
           "orderTotalPrice": [{"priceType": "oneTime", "price": {"taxIncludedAmount": money}}],
           "productOrderItem": [{"id": "1", "action": "add"}]}  # fmt: skip
    tmf = loads(dumps(to_tmf("product_order", copy.deepcopy(doc))))
    assert isinstance(tmf["orderTotalPrice"][0]["price"]["taxIncludedAmount"]["value"], Decimal | int)
    assert from_tmf("product_order", tmf) == (doc, [])
