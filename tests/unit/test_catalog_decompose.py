"""Decomposing a canonical product order by the catalogue, and the ``decompose`` step in a route."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from esb.config.catalog import CATALOG_FILE, load_catalog
from esb.config.routes import RoutesFile
from esb.config.steps.decompose import DecomposeSpec, DecomposeStep
from esb.exceptions import ConfigError, MessageError
from esb.message import Message
from esb.model.decompose import COMPONENT_ORDER, DecompositionError, decompose
from esb.model.registry import ModelRegistry
from esb.runtime.pipeline import build_pipeline
from esb.testing import BROKER
from tests.unit.routes_fixture import make_project
from tests.unit.test_worker import ENDPOINTS, route, run_until_settled

PROJECT = Path(__file__).resolve().parents[2]
CATALOG = load_catalog(PROJECT)
VALIDATOR = ModelRegistry(PROJECT / "canonical_model").validator(COMPONENT_ORDER)
EXAMPLE = PROJECT / "canonical_model" / "examples" / "product_order.v1" / "valid" / "home_bundle_new.json"


def hej_order() -> dict[str, Any]:
    """The 好E家 199 example order (mobile, broadband, IPTV members) plus a fixed-line member."""
    order: dict[str, Any] = json.loads(EXAMPLE.read_text(encoding="utf-8"))
    members = order["productOrderItem"][0]["productOrderItem"]
    members.append(
        {"id": "01.4", "action": "add", "productOffering": {"id": "PO-FIX-HEJ", "name": "好E家 固话成员"}}
    )
    return order


def order_of(*items: dict[str, Any]) -> dict[str, Any]:
    """A small canonical order with ``items``."""
    return {
        "id": "SO20261125000123",
        "@type": "ProductOrder",
        "billingAccount": {"id": "1-8F3KE", "@referredType": "BillingAccount"},
        "relatedParty": [{"id": "1-8F3KD", "name": "张伟", "role": "customer", "@referredType": "Customer"}],
        "productOrderItem": list(items),
    }


def item(item_id: str, offering: str, action: str = "add", **extra: Any) -> dict[str, Any]:
    """An order item ordering ``offering``."""
    return {"id": item_id, "action": action, "productOffering": {"id": offering}, **extra}


def test_home_bundle_becomes_broadband_mobile_iptv_and_fixed_line_orders() -> None:
    """A 好E家 bundle with four member items gives four component orders carrying what each takes."""
    parts = decompose(hej_order(), CATALOG)
    assert [p["componentKind"] for p in parts] == ["mobile", "broadband", "iptv", "fixedLine"]
    assert [p["id"] for p in parts] == [f"PO-20260105-000123-{n}" for n in (1, 2, 3, 4)]
    assert [p["productOrderItem"]["id"] for p in parts] == ["01.1", "01.2", "01.3", "01.4"]
    assert [p["mandatory"] for p in parts] == [True, True, False, False]
    for part in parts:
        assert VALIDATOR.errors(part) == []
        assert part["productOrder"] == {"id": "PO-20260105-000123", "@referredType": "ProductOrder"}
        assert part["bundle"]["productOrderItemId"] == "01"
        assert part["bundle"]["productOffering"]["name"] == "好E家 199元融合套餐"
        assert part["bundle"]["policy"] == "partial_allowed"
        assert part["billingAccount"]["id"] == "ACCT-2000123456"
        assert "productOrderItem" not in part["productOrderItem"]
    mobile, broadband, iptv, fixed = parts
    assert mobile["reservationItem"] == [{"id": "1", "category": "msisdn", "quantity": 1}]
    assert [r["category"] for r in broadband["reservationItem"]] == ["port"]
    assert broadband["service"]["serviceSpecification"]["id"] == "SS-FTTH"
    assert broadband["productOrderItem"]["product"]["place"][0]["address"]["district"] == "天河区"
    assert "reservationItem" not in iptv
    assert iptv["service"]["serviceSpecification"]["id"] == "SS-IPTV-HD"
    assert fixed["reservationItem"][0]["category"] == "fixedNumber"
    assert [p["createSubscriber"] for p in parts] == [True, True, False, True]


def test_a_bundle_line_alone_stands_for_its_mandatory_members() -> None:
    """A CRM bundle line without member items is one component order per mandatory member, from that line."""
    parts = decompose(order_of(item("1", "PO-HB-299")), CATALOG)
    assert [p["componentKind"] for p in parts] == ["mobile", "broadband", "iptv"]
    assert {p["productOrderItem"]["id"] for p in parts} == {"1"}
    assert [p["productOrderItem"]["productOffering"]["id"] for p in parts] == [
        "PO-MOB-HEJ",
        "PO-BB-300M",
        "PO-ITV-HD",
    ]
    assert {p["bundle"]["policy"] for p in parts} == {"all_or_nothing"}
    assert all(VALIDATOR.errors(p) == [] for p in parts)


def test_a_bundle_line_alone_gives_its_members_its_installation_address() -> None:
    """The bundle line's places (where it is installed) are each implicit member's: RIM holds a port there."""
    line = item("1", "PO-HB-299")
    line["product"] = {"place": [{"role": "installationAddress", "name": "浙江省杭州市西湖区文三路90号"}]}
    parts = decompose(order_of(line), CATALOG)
    assert [p["productOrderItem"]["product"]["place"][0]["name"] for p in parts] == [
        "浙江省杭州市西湖区文三路90号"
    ] * 3
    parts[0]["productOrderItem"]["product"]["place"][0]["name"] = "changed"
    assert parts[1]["productOrderItem"]["product"]["place"][0]["name"] == "浙江省杭州市西湖区文三路90号"
    assert all(VALIDATOR.errors(p) == [] for p in parts)
    assert "product" not in decompose(order_of(item("1", "PO-HB-299")), CATALOG)[0]["productOrderItem"]


def test_a_single_product_is_one_mandatory_component_order() -> None:
    """A 5G plan decomposes into one mobile component order with no bundle, keeping the item's data."""
    characteristic = {"productCharacteristic": [{"name": "msisdn", "value": "13800138000"}]}
    [part] = decompose(order_of(item("1", "PO-5G-129", product=characteristic)), CATALOG)
    assert part["componentKind"] == "mobile"
    assert part["mandatory"] is True
    assert "bundle" not in part
    assert part["productOrderItem"]["product"] == characteristic
    assert part["service"] == {
        "serviceSpecification": {"id": "SS-MOBILE-5G", "@referredType": "ServiceSpecification"},
        "serviceType": "mobileVoice",
        "name": "5G移动语音及数据",
    }
    assert part["relatedParty"][0]["name"] == "张伟"
    assert VALIDATOR.errors(part) == []


def test_a_pool_in_the_catalogue_becomes_the_resource_specification(tmp_path: Path) -> None:
    """A resource with a pool is reserved from that RIM resource specification, as many as it says."""
    text = (PROJECT / CATALOG_FILE).read_text(encoding="utf-8")
    (tmp_path / "config").mkdir()
    (tmp_path / CATALOG_FILE).write_text(
        text.replace(
            "resources: [{category: port}]", "resources: [{category: ont, pool: POOL-ONT-HGU, quantity: 2}]"
        ),
        encoding="utf-8",
    )
    [part] = decompose(order_of(item("1", "PO-BB-100M")), load_catalog(tmp_path))
    assert part["reservationItem"] == [
        {
            "id": "1",
            "category": "ont",
            "quantity": 2,
            "resourceSpecification": {"id": "POOL-ONT-HGU", "@referredType": "ResourceSpecification"},
        }
    ]
    assert VALIDATOR.errors(part) == []


def test_component_orders_do_not_share_data_with_the_order() -> None:
    """Changing a component order leaves the order and its sibling component orders as they were."""
    order = hej_order()
    before = copy.deepcopy(order)
    first, second, *_ = decompose(order, CATALOG)
    first["relatedParty"][0]["name"] = "王芳"
    second["productOrderItem"]["product"]["place"][0]["address"]["room"] = "0000室"
    assert order == before
    assert second["relatedParty"][0]["name"] == "张伟"


def test_unchanged_items_yield_nothing_and_other_actions_pass_through() -> None:
    """noChange items have nothing to fulfil; modify and delete items become component orders as they are."""
    order = order_of(
        item("1", "PO-5G-129", "modify"),
        item("2", "PO-VAS-RBT", "delete"),
        item("3", "PO-DEV-SIM", "noChange"),
    )
    parts = decompose(order, CATALOG)
    assert [(p["productOrderItem"]["id"], p["productOrderItem"]["action"]) for p in parts] == [
        ("1", "modify"),
        ("2", "delete"),
    ]
    assert decompose(order_of(item("1", "PO-HB-299", "noChange")), CATALOG) == []


@pytest.mark.parametrize(
    ("order", "message"),
    [
        pytest.param(
            order_of(item("1", "PO-5G-129"), item("2", "PO-VAS-CLIPP")),
            "item '2': unknown product offering 'PO-VAS-CLIPP': not in config/catalog.yaml "
            "(did you mean 'PO-VAS-CLIP'?): add it to the catalogue or fix the order",
            id="unknown-offering",
        ),
        pytest.param(
            order_of(
                item(
                    "1",
                    "PO-HB-299",
                    productOrderItem=[item("1.1", "X9", productOffering={"id": "X9", "name": "宽带加速包"})],
                )
            ),
            "item '1.1': unknown product offering 'X9' (宽带加速包): not in config/catalog.yaml",
            id="unknown-member-offering",
        ),
        pytest.param(
            order_of(item("1", "PO-HB-299", productOrderItem=[item("1.1", "PO-5G-129")])),
            "item '1.1': offering 'PO-5G-129' is not a member of bundle 'PO-HB-299'",
            id="not-a-member",
        ),
        pytest.param(
            order_of(
                item("1", "PO-HB-299", productOrderItem=[item("1.1", "PO-MOB-HEJ"), item("1.2", "PO-ITV-HD")])
            ),
            "item '1' (PO-HB-299): adds the bundle without its mandatory member 'PO-BB-300M' (broadband)",
            id="mandatory-member-missing",
        ),
        pytest.param(
            order_of(
                item(
                    "1", "PO-HB-299", productOrderItem=[item("1.1", "PO-BB-300M"), item("1.2", "PO-BB-300M")]
                )
            ),
            "item '1' (PO-HB-299): 2 items of 'PO-BB-300M', the bundle allows at most 1",
            id="too-many-members",
        ),
        pytest.param(
            order_of(item("1", "PO-5G-129", quantity=2)),
            "quantity 2: order one item per line",
            id="quantity",
        ),
        pytest.param(
            order_of(item("1", "PO-5G-129", productOrderItem=[item("1.1", "PO-VAS-CLIP")])),
            "item '1': has child items, but 'PO-5G-129' is not a bundle",
            id="children-of-a-single-product",
        ),
        pytest.param(
            order_of({"id": "1", "action": "delete"}), "item '1': no productOffering.id", id="no-offering"
        ),
        pytest.param({"productOrderItem": []}, "the product order has no id", id="no-order-id"),
        pytest.param(
            b"<SiebelMessage/>", "expected a canonical product order (a JSON object), got bytes", id="bytes"
        ),
    ],
)
def test_an_order_the_catalogue_cannot_decompose_is_refused(order: Any, message: str) -> None:
    """Each order the catalogue cannot place is a permanent DecompositionError saying what and where."""
    with pytest.raises(DecompositionError) as caught:
        decompose(order, CATALOG)
    assert message in str(caught.value)
    assert isinstance(caught.value, MessageError)
    assert caught.value.retryable is False
    assert caught.value.reason == "decomposition-error"


#: the canonical orders the CRM's and the channel's mapping tests expect
ORDER_SAMPLES = sorted(
    p
    for folder in ("crm", "channel")
    for p in (PROJECT / "transforms" / folder).rglob("*order*.expected.json")
)


@pytest.mark.parametrize("sample", ORDER_SAMPLES, ids=lambda p: p.name)
def test_the_shipped_order_samples_decompose(sample: Path) -> None:
    """Every canonical order the CRM and channel samples map to decomposes into valid component orders."""
    assert len(ORDER_SAMPLES) >= 4
    parts = decompose(json.loads(sample.read_text(encoding="utf-8")), CATALOG)
    assert parts
    assert all(VALIDATOR.errors(p) == [] for p in parts)


def test_every_offering_the_simulated_crm_sells_is_in_the_catalogue() -> None:
    """The CRM simulator's offers (the demo's orders, 好E家 299 included) are all in config/catalog.yaml."""
    from simulators.crm import OFFERS

    assert [o for o, _, _ in OFFERS if o not in CATALOG.offerings] == []


def test_step_takes_no_value_or_a_type() -> None:
    """`decompose:` with no value reads as the defaults; `{type: ...}` sets the parts' message type."""
    steps = (
        RoutesFile.model_validate(
            {
                "routes": [
                    {
                        "id": "r",
                        "from": "a.in",
                        "steps": [{"decompose": None}, {"decompose": {"type": "order.component"}}],
                    }
                ]
            }
        )
        .routes[0]
        .steps
    )
    assert steps == [
        DecomposeStep(decompose=DecomposeSpec()),
        DecomposeStep(decompose=DecomposeSpec(type="order.component")),
    ]


def test_routes_schema_accepts_both_forms_of_the_step() -> None:
    """`esb schema routes` accepts `decompose:` with no value and with {type}, and refuses an unknown key."""
    import jsonschema
    from click.testing import CliRunner

    from esb.cli.main import cli

    result = CliRunner().invoke(cli, ["schema", "routes"])
    validator = jsonschema.Draft202012Validator(json.loads(result.output))
    steps: list[Any] = [{"decompose": None}, {"decompose": {"type": "order.component"}}]
    assert validator.is_valid({"routes": [{"id": "r", "from": "a.in", "steps": steps}]})
    assert not validator.is_valid(
        {"routes": [{"id": "r", "from": "a.in", "steps": [{"decompose": {"typ": "x"}}]}]}
    )


def write_catalogue(root: Path) -> None:
    """Copy the shipped catalogue into the project at ``root``."""
    (root / "config").mkdir(exist_ok=True)
    (root / CATALOG_FILE).write_text((PROJECT / CATALOG_FILE).read_text(encoding="utf-8"), encoding="utf-8")


def test_step_makes_one_message_per_component_order_with_its_headers(tmp_path: Path) -> None:
    """Each part carries a component order, its schema and type, and parent id, kind, index and count."""
    write_catalogue(tmp_path)
    steps = [{"decompose": {"type": "order.component"}}]
    project = make_project(tmp_path, [route(steps=steps)], ENDPOINTS)
    pipeline, _, _ = build_pipeline(project, project.routes[0], lambda name: None)
    parts = pipeline(Message(body=hej_order(), id="m1", type="order.submitted"))
    assert [p.id for p in parts] == ["m1:0", "m1:1", "m1:2", "m1:3"]
    assert {(p.schema, p.type, p.causation_id) for p in parts} == {(COMPONENT_ORDER, "order.component", "m1")}
    assert [
        (
            p.headers["parent-order-id"],
            p.headers["component-kind"],
            p.headers["component-index"],
            p.headers["component-count"],
        )
        for p in parts
    ] == [
        ("PO-20260105-000123", "mobile", 0, 4),
        ("PO-20260105-000123", "broadband", 1, 4),
        ("PO-20260105-000123", "iptv", 2, 4),
        ("PO-20260105-000123", "fixedLine", 3, 4),
    ]


def test_step_does_not_build_without_a_catalogue(tmp_path: Path) -> None:
    """A route that decomposes refuses to start in a project without config/catalog.yaml."""
    project = make_project(tmp_path, [route(steps=[{"decompose": None}])], ENDPOINTS)
    with pytest.raises(ConfigError, match=r"config/catalog\.yaml: file not found"):
        build_pipeline(project, project.routes[0], lambda name: None)


def test_route_delivers_the_components_and_dead_letters_an_unknown_offering(tmp_path: Path) -> None:
    """In a running route, a bundle fans out to its component orders; an unknown offering is dead-lettered."""
    write_catalogue(tmp_path)
    orders = {
        b"good": hej_order(),
        b"bad": order_of(
            item("1", "PO-5G-129"),
            item("2", "PO-UNKNOWN", productOffering={"id": "PO-UNKNOWN", "name": "神秘套餐"}),
        ),
    }
    project = make_project(
        tmp_path,
        [route(steps=[{"transform": "t/order"}, {"decompose": None}])],
        ENDPOINTS,
        {"t/order": lambda body: copy.deepcopy(orders[body])},
    )
    BROKER.feed("a.in", Message(body=b"good", id="m1"))
    BROKER.feed("a.in", Message(body=b"bad", id="m2"))
    journal = run_until_settled(project, 2)
    assert [m.headers["component-kind"] for m in BROKER.written("b.out")] == [
        "mobile",
        "broadband",
        "iptv",
        "fixedLine",
    ]
    [dead] = BROKER.written("dlq.r")
    assert dead.headers["esb-error-reason"] == "decomposition-error"
    assert "unknown product offering 'PO-UNKNOWN' (神秘套餐)" in dead.headers["esb-error"]
    assert journal.outcome("r", "m2") == "dead_lettered"
