"""TMF637 Product, TMF638 Service and TMF646 Appointment: their canonical schemas and TMF conversion."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from esb.exceptions import StateTransitionError
from esb.model.registry import ModelRegistry
from esb.model.states import check_transition
from esb.model.tmf import TMFConversionError, dumps, from_tmf, loads, to_tmf

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "canonical_model" / "examples"
MODEL = ModelRegistry(ROOT / "canonical_model")


def _example(name: str, stem: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((EXAMPLES / name / "valid" / f"{stem}.json").read_text("utf-8"))
    return doc


@pytest.mark.parametrize(
    ("entity", "stem", "field", "sloppy", "expected"),
    [
        pytest.param("product", "mobile_5g_plan", "status", "Active", "active", id="product"),
        pytest.param("service", "ftth_active", "state", "ACTIVE", "active", id="service"),
        pytest.param(
            "appointment", "installation_confirmed", "status", "Confirmed", "confirmed", id="appointment"
        ),
    ],
)
def test_sloppy_state_is_read_with_a_warning(
    entity: str, stem: str, field: str, sloppy: str, expected: str
) -> None:
    """A mis-cased state of each inventory entity is corrected, reported, and the result validates."""
    tmf = loads(dumps(to_tmf(entity, _example(f"{entity}.v1", stem))))
    tmf[field] = sloppy
    doc, warnings = from_tmf(entity, tmf)
    assert doc[field] == expected
    assert warnings == [f"$.{field}: {sloppy!r} read as {expected!r}"]
    assert MODEL.validator(f"{entity}.v1").errors(doc) == []


@pytest.mark.parametrize(
    ("entity", "field", "value"),
    [
        pytest.param("product", "status", "running", id="product"),
        pytest.param("service", "state", "provisioned", id="service"),
        pytest.param("appointment", "status", "booked", id="appointment"),
    ],
)
def test_unknown_state_is_refused(entity: str, field: str, value: str) -> None:
    """A state outside the TMF enumeration is an error naming the field, never passed through."""
    with pytest.raises(TMFConversionError, match=rf"\$\.{field}: '{value}' is not a"):
        from_tmf(entity, {"id": "X1", field: value})


def test_product_money_is_an_exact_tmf_number() -> None:
    """A product's price becomes an exact JSON number in TMF and a decimal string again on the way back."""
    product = _example("product.v1", "mobile_5g_plan")
    text = dumps(to_tmf("product", product), indent=None)
    assert '"taxIncludedAmount": {"unit": "CNY", "value": 199.00}' in text
    assert from_tmf("Product", loads(text)) == (product, [])


def test_product_order_item_carries_a_product_by_value_with_a_product_status() -> None:
    """Order items use product.v1's productRefOrValue: its status is the TMF637 enumeration."""
    order = _example("product_order.v1", "home_bundle_new")
    order["productOrderItem"][0]["product"]["status"] = "pendingActive"
    assert MODEL.validator("product_order.v1").errors(order) == []
    order["productOrderItem"][0]["product"]["status"] = "Active"
    assert [p for p, _ in MODEL.validator("product_order.v1").errors(order)] == [
        "$.productOrderItem[0].product.status"
    ]


def test_work_order_carries_a_whole_appointment() -> None:
    """A work order embeds an appointment.v1, which validates on its own too."""
    work_order = _example("work_order.v1", "installation_with_appointment")
    assert MODEL.validator("appointment.v1").errors(work_order["appointment"]) == []


def test_product_lifecycle_is_enforced() -> None:
    """A terminated product cannot come back; a suspended one (停机) can be resumed."""
    check_transition("product", "suspended", "active")
    with pytest.raises(StateTransitionError, match="'terminated' is a final state"):
        check_transition("product", "terminated", "active")
