"""The canonical schemas: valid 2020-12, consistent ids, TMF-faithful names and states, lint findings."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from esb.exceptions import ConfigError
from esb.model.registry import BASE_URI, ModelRegistry
from esb.model.validation import meta_errors

PROJECT = Path(__file__).resolve().parents[2]
ROOT = PROJECT / "canonical_model"
TMF = PROJECT.parent / "shared" / "tmf-schemas"
REGISTRY = ModelRegistry(ROOT)
ALL = REGISTRY.common_names() + REGISTRY.names()


def test_the_project_model_has_no_lint_findings() -> None:
    """check() (what `esb lint` runs) finds nothing wrong in the committed canonical model."""
    assert REGISTRY.check() == []


@pytest.mark.parametrize("name", ALL)
def test_schema_is_valid_2020_12_with_its_canonical_id(name: str) -> None:
    """Each schema passes the 2020-12 meta-schema and its $id is the base URI plus its path."""
    schema = REGISTRY.schema(name)
    assert meta_errors(schema) == []
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"] == f"{BASE_URI}{name}.schema.json"


@pytest.mark.parametrize("name", REGISTRY.names())
def test_entity_carries_the_common_header_and_is_closed(name: str) -> None:
    """Each entity $refs the common header, requires id and @type, and rejects unknown keys."""
    schema = REGISTRY.schema(name)
    assert schema["$ref"] == "common/entity.v1.schema.json"
    assert {"id", "@type"} <= set(schema["required"])
    assert schema["properties"]["@schemaVersion"] == {
        "const": name.rsplit(".v", 1)[1],
        "description": "Major version of this canonical schema.",
    }
    assert schema["unevaluatedProperties"] is False
    header = REGISTRY.schema("common/entity.v1")["properties"]
    assert {"id", "href", "@type", "@baseType", "@schemaVersion", "lastUpdate", "externalReference"} <= set(
        header
    )


def test_names_and_lookup() -> None:
    """names() lists entity schemas, entity_names() bare entities, and lookups accept several spellings."""
    assert "product_order.v1" in REGISTRY.names()
    assert all("/" not in n for n in REGISTRY.names())
    assert "product_order" in REGISTRY.entity_names()
    assert REGISTRY.resolve_name("product_order") == "product_order.v1"
    assert REGISTRY.resolve_name("product_order.v1.schema.json") == "product_order.v1"
    assert REGISTRY.schema("common/money.v1")["title"] == "Money"
    with pytest.raises(ConfigError, match=r"did you mean 'customer\.v1'"):
        REGISTRY.schema("custmer.v1")


def _states() -> dict[str, Any]:
    defs: dict[str, Any] = REGISTRY.schema("common/states.v1")["$defs"]
    return defs


def _tmf_enum(rel: str) -> list[str]:
    if not TMF.is_dir():
        pytest.skip(f"TMF schemas not found at {TMF}")
    doc = json.loads((TMF / rel).read_text(encoding="utf-8"))
    values: list[str] = next(iter(doc["definitions"].values()))["enum"]
    return values


@pytest.mark.parametrize(
    ("state", "tmf"),
    [
        pytest.param("productOrderState", "Customer/ProductOrderStateType.schema.json", id="order"),
        pytest.param(
            "productOrderItemState", "Customer/ProductOrderItemStateType.schema.json", id="order-item"
        ),
        pytest.param("serviceOrderState", "Service/ServiceOrderStateType.schema.json", id="service-order"),
        pytest.param("troubleTicketStatus", "Common/TroubleTicketStatusType.schema.json", id="ticket"),
        pytest.param("customerBillState", "Customer/CustomerBillStateType.schema.json", id="bill"),
        pytest.param("appointmentState", "Customer/AppointmentStateType.schema.json", id="appointment"),
    ],
)
def test_state_enums_match_the_tmf_schemas(state: str, tmf: str) -> None:
    """The canonical state enumerations are exactly TMF's (same values, same order)."""
    assert _states()[state]["enum"] == _tmf_enum(tmf)


def test_partial_is_an_order_state_only() -> None:
    """partial exists for orders but not for order items (TMF622)."""
    assert "partial" in _states()["productOrderState"]["enum"]
    assert "partial" not in _states()["productOrderItemState"]["enum"]
    assert "partial" not in _states()["serviceOrderItemState"]["enum"]


def _tmf_props(rel: str) -> set[str]:
    if not TMF.is_dir():
        pytest.skip(f"TMF schemas not found at {TMF}")
    doc = json.loads((TMF / rel).read_text(encoding="utf-8"))
    return set(next(iter(doc["definitions"].values()))["properties"])


def test_product_order_uses_tmf622_names() -> None:
    """Every TMF622 ProductOrder and ProductOrderItem field we model keeps TMF's exact name."""
    order = set(REGISTRY.schema("product_order.v1")["properties"])
    item = set(REGISTRY.schema("product_order.v1")["$defs"]["productOrderItem"]["properties"])
    tmf_order = _tmf_props("Customer/ProductOrder.schema.json")
    tmf_item = _tmf_props("Customer/ProductOrderItem.schema.json")
    header = {"@type", "@schemaVersion"}
    assert order - tmf_order - header == set()
    assert item - tmf_item == {"note"}
    assert {"productOrderItem", "relatedParty", "billingAccount", "state", "channel"} <= order & tmf_order


def test_order_item_actions_agree_with_the_code_list() -> None:
    """The schema's item actions are the canonical values of codelists.yaml's order_item_action."""
    from esb.model.codelists import load_codelists

    lists = load_codelists(PROJECT)
    assert list(lists.get("order_item_action").canonical) == _states()["orderItemAction"]["enum"]


@pytest.fixture
def broken(tmp_path: Path) -> Path:
    """A copy of the model with one of each kind of mistake."""
    root = tmp_path / "canonical_model"
    shutil.copytree(ROOT / "common", root / "common")
    shutil.copy(ROOT / "product_order.v1.schema.json", root)
    shutil.copy(ROOT / "product.v1.schema.json", root)  # product_order refs its productRefOrValue
    shutil.copytree(ROOT / "examples" / "product_order.v1", root / "examples" / "product_order.v1")
    (root / "broken.v1.schema.json").write_text('{\n  "type": "object",\n  oops\n}\n', encoding="utf-8")
    bad_id = json.loads((ROOT / "customer.v1.schema.json").read_text(encoding="utf-8"))
    bad_id["$id"] = "https://elsewhere.example/customer.json"
    (root / "customer.v1.schema.json").write_text(json.dumps(bad_id), encoding="utf-8")
    dangling = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"{BASE_URI}thing.v1.schema.json",
        "type": "object",
        "properties": {"x": {"$ref": "common/nope.v1.schema.json"}, "y": {"type": "nonsense"}},
    }
    (root / "thing.v1.schema.json").write_text(json.dumps(dangling), encoding="utf-8")
    shutil.copy(ROOT / "pay_relation.v1.schema.json", root)
    (root / "examples" / "product_order.v1" / "valid" / "not_valid.json").write_text(
        '{"@type": "ProductOrder"}'
    )
    (root / "examples" / "ghost.v1").mkdir(parents=True)
    return root


def test_check_reports_each_kind_of_mistake(broken: Path) -> None:
    """Lint finds unreadable JSON (with its line), a wrong $id, a bad schema, missing and failing examples."""
    findings = "\n".join(ModelRegistry(broken).check())
    assert "broken.v1.schema.json:3: not readable JSON" in findings
    assert "$id is 'https://elsewhere.example/customer.json'" in findings
    assert "thing.v1.schema.json:1: $.properties.y.type" in findings
    assert "examples/pay_relation.v1/valid: no valid example of pay_relation.v1" in findings
    assert "examples/pay_relation.v1/invalid: no invalid example of pay_relation.v1" in findings
    assert "examples/product_order.v1/valid/not_valid.json: $:" in findings
    assert "examples for an unknown schema 'ghost.v1'" in findings


def test_check_reports_an_unresolvable_ref(tmp_path: Path) -> None:
    """A $ref to a schema that does not exist is a finding, not a network fetch."""
    root = tmp_path / "canonical_model"
    root.mkdir()
    schema = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"{BASE_URI}thing.v1.schema.json",
        "properties": {"x": {"$ref": "common/nope.v1.schema.json"}},
    }
    (root / "thing.v1.schema.json").write_text(json.dumps(schema), encoding="utf-8")
    findings = ModelRegistry(root).check()
    assert any("does not compile" in f and "common/nope.v1.schema.json" in f for f in findings), findings


def test_an_unreadable_schema_is_a_config_error_when_used(broken: Path) -> None:
    """Asking for a schema whose file does not parse raises ConfigError naming the file and line."""
    with pytest.raises(ConfigError, match=r"broken.v1.schema.json:3"):
        ModelRegistry(broken).validator("broken.v1")


def test_committed_docs_are_up_to_date_with_the_generator() -> None:
    """docs/canonical-model.md equals what esb.model.docs generates (run `python -m esb.model.docs`)."""
    from esb.model.docs import generate

    committed = (PROJECT / "docs" / "canonical-model.md").read_text(encoding="utf-8")
    assert committed == generate(ROOT), "docs/canonical-model.md is stale: run `python -m esb.model.docs`"


def test_docs_cover_every_entity_the_relations_and_the_glossary() -> None:
    """The generated reference has a section per entity, a mermaid diagram and the Chinese glossary."""
    from esb.model.docs import generate

    text = generate(ROOT)
    for name in REGISTRY.names():
        assert f"`{name}` — `canonical_model/{name}.schema.json`" in text
    assert "```mermaid" in text
    assert "subscriber -->|customer| customer" in text
    for term in ("三户", "预占", "停机", "复机", "销号", "好E家", "10000", "112", "114", "IOM", "RIM", "NCR"):
        assert term in text
