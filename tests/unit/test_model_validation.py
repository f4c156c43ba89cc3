"""The canonical validator: every error with its JSON path, formats checked, compiled once."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from esb.exceptions import ConfigError, SchemaValidationError
from esb.model.registry import ModelRegistry
from esb.model.validation import CanonicalValidator, json_path

ROOT = Path(__file__).resolve().parents[2] / "canonical_model"


@pytest.fixture(scope="module")
def registry() -> ModelRegistry:
    return ModelRegistry(ROOT)


def crm_order() -> dict[str, Any]:
    """The TMF622 shape the Siebel mapping (transforms/crm) produces."""
    return {
        "id": "1-ABC12",
        "externalReference": [{"id": "1-ABC12", "name": "S_ORDER", "externalReferenceType": "siebel"}],
        "category": "新装",
        "description": "手机新装",
        "priority": "1",
        "channel": [{"id": "CH01", "name": "天河营业厅"}],
        "requestedStartDate": "2026-03-01T09:00:00+08:00",
        "orderDate": "2026-02-27T11:30:00Z",
        "state": "acknowledged",
        "relatedParty": [{"id": "1-CUST", "name": "张三", "role": "customer", "@referredType": "Customer"}],
        "billingAccount": {"id": "1-ACC", "@referredType": "BillingAccount"},
        "productOrderItem": [
            {
                "id": "1-ITEM1",
                "action": "add",
                "quantity": 1,
                "productOffering": {"id": "OFR-1", "name": "畅享套餐"},
                "itemPrice": [{"price": {"taxIncludedAmount": {"unit": "CNY", "value": "59.00"}}}],
                "product": {"productCharacteristic": [{"name": "msisdn", "value": "13912345678"}]},
            }
        ],
        "note": [{"text": "无"}],
        "@type": "ProductOrder",
        "lastUpdate": "2026-02-27T11:30:05+08:00",
    }


def test_json_path_renders_identifiers_indexes_and_odd_keys() -> None:
    """Paths read like $.a[0].b, and keys that are not identifiers are bracketed and escaped."""
    assert json_path([]) == "$"
    assert json_path(["productOrderItem", 0, "action"]) == "$.productOrderItem[0].action"
    assert json_path(["@type"]) == "$['@type']"
    assert json_path(["name", "zh-CN"]) == "$.name['zh-CN']"
    assert json_path(["it's"]) == "$['it\\'s']"


def test_crm_mapping_output_shape_is_valid(registry: ModelRegistry) -> None:
    """The TMF622 fields the Siebel mapping produces conform to product_order.v1."""
    registry.validator("product_order.v1").validate(crm_order())


def test_validate_reports_every_error_with_its_path(registry: ModelRegistry) -> None:
    """validate raises SchemaValidationError carrying all errors, each with a JSON path."""
    order = crm_order()
    order["productOrderItem"][0]["action"] = "update"
    order["orderDate"] = "yesterday"
    order["productOrderItem"][0]["itemPrice"][0]["price"]["taxIncludedAmount"]["value"] = 59
    with pytest.raises(SchemaValidationError) as info:
        registry.validator("product_order.v1").validate(order)
    paths = [p for p, _ in info.value.errors]
    assert paths == [
        "$.orderDate",
        "$.productOrderItem[0].action",
        "$.productOrderItem[0].itemPrice[0].price.taxIncludedAmount.value",
    ]
    assert info.value.schema == "product_order.v1"
    assert "update" in dict(info.value.errors)["$.productOrderItem[0].action"]


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("2026-13-45T99:00:00Z", id="impossible-month-day-hour"),
        pytest.param("2026-02-30T10:00:00+08:00", id="february-30"),
        pytest.param("2026-02-27 11:30:00", id="no-offset-space"),
        pytest.param("2026-02-27", id="date-only"),
    ],
)
def test_date_time_format_is_really_checked(registry: ModelRegistry, value: str) -> None:
    """A malformed or impossible date-time is rejected, not passed through as a string."""
    order = crm_order()
    order["orderDate"] = value
    assert registry.validator("product_order.v1").errors(order) == [
        ("$.orderDate", f'"{value}" is not a "date-time"')
    ]


def test_reference_implementation_also_rejects_impossible_dates(registry: ModelRegistry) -> None:
    """python-jsonschema with its format extras checks date-time too (so lint and tests agree)."""
    order = crm_order()
    order["orderDate"] = "2026-13-45T99:00:00Z"
    assert [p for p, _ in registry.reference_validator("product_order.v1").errors(order)] == ["$.orderDate"]


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        pytest.param("59.00", True, id="two-decimals"),
        pytest.param("-0.5", True, id="negative"),
        pytest.param("0", True, id="zero"),
        pytest.param(59.0, False, id="json-number"),
        pytest.param("59,00", False, id="comma"),
        pytest.param("059", False, id="leading-zero"),
        pytest.param("1e3", False, id="exponent"),
    ],
)
def test_money_value_is_a_decimal_string(registry: ModelRegistry, value: Any, ok: bool) -> None:
    """Money values are decimal strings, never JSON numbers or localized text."""
    order = crm_order()
    order["productOrderItem"][0]["itemPrice"][0]["price"]["taxIncludedAmount"]["value"] = value
    assert registry.validator("product_order.v1").is_valid(order) is ok


def test_errors_is_empty_for_a_valid_document(registry: ModelRegistry) -> None:
    """errors() returns [] and validate() returns None for a conforming order."""
    validator = registry.validator("product_order.v1")
    assert validator.errors(crm_order()) == []
    assert validator.validate(crm_order()) is None


def test_many_errors_are_all_reported_in_document_order(registry: ModelRegistry) -> None:
    """Twelve bad items give twelve errors, ordered by index ([2] before [10])."""
    order = crm_order()
    item = order["productOrderItem"][0]
    order["productOrderItem"] = [dict(copy.deepcopy(item), id=str(n), action="bad") for n in range(12)]
    errors = registry.validator("product_order.v1").errors(order)
    assert [p for p, _ in errors] == [f"$.productOrderItem[{n}].action" for n in range(12)]
    with pytest.raises(SchemaValidationError, match=r"12 error\(s\).*\(\+2 more\)"):
        registry.validator("product_order.v1").validate(order)


def test_validator_is_compiled_once_and_cached(registry: ModelRegistry) -> None:
    """The same validator object is returned for the versioned and the bare entity name."""
    first = registry.validator("product_order.v1")
    assert registry.validator("product_order.v1") is first
    assert registry.validator("product_order") is first


def test_unknown_schema_name_suggests_the_closest(registry: ModelRegistry) -> None:
    """A misspelt schema name is a ConfigError that says 'did you mean'."""
    with pytest.raises(ConfigError, match=r"did you mean 'product_order.v1'"):
        registry.validator("product_ordr.v1")


def test_ref_outside_the_project_is_refused_without_network() -> None:
    """A $ref to a schema not in canonical_model/ fails at compile time; nothing is fetched."""
    schema = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://esb.example/canonical/x.v1.schema.json",
        "$ref": "https://example.invalid/remote.schema.json",
    }
    with pytest.raises(ConfigError, match="does not compile"):
        CanonicalValidator("x.v1", schema, {schema["$id"]: schema})


def test_error_kinds_cover_required_and_unevaluated(registry: ModelRegistry) -> None:
    """Missing required fields and unknown fields are reported at the object that holds them."""
    order = crm_order()
    del order["productOrderItem"][0]["action"]
    order["billingAcount"] = {"id": "1"}
    errors = registry.validator("product_order.v1").errors(order)
    assert ("$.productOrderItem[0]", '"action" is a required property') in errors
    assert any(p == "$" and "billingAcount" in m for p, m in errors)


def test_schema_validation_error_is_permanent(registry: ModelRegistry) -> None:
    """A schema violation is a non-retryable MessageError (it goes straight to dead letter)."""
    with pytest.raises(SchemaValidationError) as info:
        registry.validator("product_order.v1").validate({"@type": "ProductOrder"})
    assert info.value.retryable is False
    assert json.loads(json.dumps(info.value.errors)) == [list(e) for e in info.value.errors]
