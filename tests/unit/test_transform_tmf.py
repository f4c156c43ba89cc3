"""``kind: tmf`` transforms: TMF v4 <-> canonical, sloppy input journaled as esb-warnings, clear errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from esb.exceptions import BodyTooLargeError, ConfigError, DecodeError, MessageError
from esb.message import Message
from esb.model.registry import ModelRegistry
from esb.model.tmf import TMFConversionError, loads
from esb.transforms import TransformRegistry, testrun
from esb.transforms.tmf import WARNINGS_HEADER, with_warnings

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "transforms" / "channel" / "samples"
IN_MAP = "kind: tmf\ndirection: from\nentity: ProductOrder\noutput_type: order.submitted\n"
OUT_MAP = "kind: tmf\ndirection: to\nentity: product_order\n"
ORDER = (
    b'{"@type": "ProductOrder", "id": "QD1", "state": "InProgress",'
    b' "relatedParty": [{"id": "C1", "role": "customer", "@referredType": "Customer"}],'
    b' "productOrderItem": [{"id": "1", "action": "add", "state": "IN_PROGRESS", "quantity": 1,'
    b' "productOffering": {"id": "P1"},'
    b' "product": {"productCharacteristic": [{"name": "ratio", "value": 0.5}]},'
    b' "itemPrice": [{"price": {"taxIncludedAmount": {"unit": "CNY", "value": 0.10}}}]}]}'
)


def make_project(tmp_path: Path, files: dict[str, str]) -> Path:
    """Write a project with the given files under transforms/."""
    (tmp_path / "canonical_model").mkdir()
    (tmp_path / "canonical_model" / "codelists.yaml").write_text("{}\n", encoding="utf-8")
    for rel, text in files.items():
        path = tmp_path / "transforms" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return tmp_path


@pytest.fixture
def registry(tmp_path: Path) -> TransformRegistry:
    """A project with a TMF reader (t/in) and a TMF writer (t/out)."""
    return TransformRegistry(make_project(tmp_path, {"t/in.yaml": IN_MAP, "t/out.yaml": OUT_MAP}))


def test_reader_corrects_sloppy_states_and_lists_each_warning(registry: TransformRegistry) -> None:
    """Capitalised order and item states are read as TMF's and each correction is an esb-warnings entry."""
    out = registry.get("t/in").apply(Message(body=ORDER, id="m1"))
    assert out.id == "m1"
    assert out.body["state"] == "inProgress"
    assert out.body["productOrderItem"][0]["state"] == "inProgress"
    assert out.headers[WARNINGS_HEADER] == [
        "t/in: $.state: 'InProgress' read as 'inProgress'",
        "t/in: $.productOrderItem[0].state: 'IN_PROGRESS' read as 'inProgress'",
    ]


def test_reader_keeps_money_exact_and_sets_schema_and_type(registry: TransformRegistry) -> None:
    """0.10 becomes the decimal string "0.10"; a number that is not money is a plain float; schema is set."""
    out = registry.get("t/in").apply(Message(body=ORDER))
    item = out.body["productOrderItem"][0]
    assert item["itemPrice"][0]["price"]["taxIncludedAmount"] == {"unit": "CNY", "value": "0.10"}
    assert item["product"]["productCharacteristic"][0]["value"] == 0.5
    assert type(item["product"]["productCharacteristic"][0]["value"]) is float
    assert (out.schema, out.type) == ("product_order.v1", "order.submitted")


def test_clean_input_adds_no_warnings_header(registry: TransformRegistry) -> None:
    """A document that needed no correction gets no esb-warnings header at all."""
    out = registry.get("t/in").apply(Message(body=(SAMPLES / "tmf_order.json").read_bytes()))
    assert WARNINGS_HEADER not in out.headers
    assert ModelRegistry(ROOT / "canonical_model").validator("product_order.v1").errors(out.body) == []


@pytest.mark.parametrize(
    ("existing", "expected"),
    [
        pytest.param(["earlier"], ["earlier", "new"], id="list"),
        pytest.param("earlier", ["earlier", "new"], id="single-string"),
        pytest.param(None, ["new"], id="absent"),
    ],
)
def test_warnings_are_appended_to_an_existing_header(existing: Any, expected: list[str]) -> None:
    """with_warnings appends to what an earlier step put in esb-warnings, never replacing it."""
    headers = {} if existing is None else {WARNINGS_HEADER: existing, "other": 1}
    out = with_warnings(headers, ["new"])
    assert out[WARNINGS_HEADER] == expected
    assert headers.get(WARNINGS_HEADER) == existing  # the input mapping is not modified
    assert with_warnings(headers, []) == headers


def test_two_readers_in_a_row_accumulate_warnings(registry: TransformRegistry) -> None:
    """The second transform's warnings follow the first's in the same header."""
    message = Message(body=ORDER, headers={WARNINGS_HEADER: ["siebel: code 'Upd' read as 'modify'"]})
    out = registry.get("t/in").apply(message)
    assert out.headers[WARNINGS_HEADER][0] == "siebel: code 'Upd' read as 'modify'"
    assert len(out.headers[WARNINGS_HEADER]) == 3


@pytest.mark.parametrize(
    ("body", "error", "match"),
    [
        pytest.param(
            ORDER.replace(b'"InProgress"', b'"Done"'),
            TMFConversionError,
            r"t/in: \$\.state: 'Done' is not a product_order state",
            id="unknown-state",
        ),
        pytest.param(
            ORDER.replace(b', "@referredType": "Customer"', b""),
            TMFConversionError,
            r"t/in: \$\.relatedParty\[0\]: @referredType is missing",
            id="party-referred-type",
        ),
        pytest.param(
            b'{"@type": "ServiceOrder", "id": "S1"}',
            TMFConversionError,
            "not a TMF622 class",
            id="other-class",
        ),
        pytest.param(b"[1, 2]", TMFConversionError, "must be a JSON object", id="not-an-object"),
        pytest.param(ORDER[:60], DecodeError, "t/in: body is not valid JSON", id="truncated"),
        pytest.param(b"\xff\xfe{}", DecodeError, "not valid JSON", id="not-utf8"),
    ],
)
def test_unreadable_input_is_a_clear_message_error(
    registry: TransformRegistry, body: bytes, error: type[Exception], match: str
) -> None:
    """What the reader cannot accept raises a MessageError naming the transform and the JSON path."""
    with pytest.raises(error, match=match) as info:
        registry.get("t/in").apply(Message(body=body))
    assert isinstance(info.value, MessageError)


def test_body_over_the_limit_is_refused(tmp_path: Path) -> None:
    """max_bytes applies to TMF bodies as to any JSON body."""
    reg = TransformRegistry(make_project(tmp_path, {"t/in.yaml": IN_MAP + "max_bytes: 10\n"}))
    with pytest.raises(BodyTooLargeError):
        reg.get("t/in").apply(Message(body=ORDER))


def test_writer_gives_tmf_json_bytes_with_exact_money(registry: TransformRegistry) -> None:
    """direction: to writes JSON text whose money is an exact number, and reading it back is lossless."""
    example = ROOT / "canonical_model/examples/product_order.v1/valid/home_bundle_new.json"
    doc = json.loads(example.read_text(encoding="utf-8"))
    out = registry.get("t/out").apply(Message(body=doc, schema="product_order.v1"))
    assert isinstance(out.body, bytes)
    assert b'"value": 199.00' in out.body
    assert out.schema is None  # the TMF form is not the canonical schema any more
    back = registry.get("t/in").apply(Message(body=out.body))
    assert back.body == doc
    assert WARNINGS_HEADER not in back.headers
    assert loads(out.body)["@type"] == "ProductOrder"


def test_writer_refuses_another_entity(registry: TransformRegistry) -> None:
    """A canonical document of another class is refused rather than mislabelled."""
    with pytest.raises(TMFConversionError, match=r"'Customer' is not a canonical product_order"):
        registry.get("t/out").apply(Message(body={"@type": "Customer", "id": "C1"}))


@pytest.mark.parametrize(
    ("text", "where"),
    [
        pytest.param(
            "kind: tmf\ndirection: form\nentity: ProductOrder\n",
            r"x\.yaml:2: direction: .*did you mean 'from'",
            id="direction",
        ),
        pytest.param(
            "kind: tmf\ndirection: from\nentity: ProductOrdr\n",
            r"x\.yaml:3: entity: no TMF mapping for 'ProductOrdr'",
            id="entity",
        ),
        pytest.param(
            "kind: tmf\ndirection: from\n", r"x\.yaml:1: entity: give the TMF class", id="no-entity"
        ),
        pytest.param(
            "kind: tmf\ndirection: to\nentity: party\nrules: {}\n",
            r"x\.yaml:4: rules: unknown key for kind tmf",
            id="unknown-key",
        ),
        pytest.param(
            "kind: tmf\ninput: xml\ndirection: to\nentity: party\n",
            r"x\.yaml:2: input: kind tmf maps json to json",
            id="xml-input",
        ),
    ],
)
def test_broken_mapping_file_is_a_config_error_with_its_line(tmp_path: Path, text: str, where: str) -> None:
    """A mistake in a tmf mapping file is a ConfigError pointing at file:line, with a suggestion."""
    reg = TransformRegistry(make_project(tmp_path, {"t/x.yaml": text}))
    with pytest.raises(ConfigError, match=where):
        reg.get("t/x")


def test_entity_may_be_a_tmf_class_of_a_multi_class_entity(tmp_path: Path) -> None:
    """entity: LogicalResource reads a resource and fills a missing @type with that class."""
    mapping = "kind: tmf\ndirection: from\nentity: LogicalResource\n"
    reg = TransformRegistry(make_project(tmp_path, {"t/r.yaml": mapping}))
    out = reg.get("t/r").apply(Message(body=b'{"id": "R1"}'))
    assert out.body["@type"] == "LogicalResource"
    assert out.schema == "resource.v1"
    assert out.headers[WARNINGS_HEADER] == ["t/r: $.@type: missing; assumed 'LogicalResource'"]


def test_header_equals_check_fails_when_the_warnings_differ(tmp_path: Path) -> None:
    """esb test's header_equals check compares the esb-warnings a case produced, and reports a diff."""
    right = [
        "t/in: $.state: 'InProgress' read as 'inProgress'",
        "t/in: $.productOrderItem[0].state: 'IN_PROGRESS' read as 'inProgress'",
    ]
    cases = json.dumps({"cases": [
        {"name": "right", "input_inline": ORDER.decode(),
         "checks": [{"header_equals": {"name": WARNINGS_HEADER, "value": right}}]},
        {"name": "wrong", "input_inline": ORDER.decode(),
         "checks": [{"header_equals": {"name": WARNINGS_HEADER, "value": None}}]},
    ]})  # fmt: skip
    project = make_project(tmp_path, {"t/in.yaml": IN_MAP, "t/in_test.yaml": cases})
    model = ModelRegistry(ROOT / "canonical_model")  # the output schema (product_order.v1) is checked too
    results = testrun.TestFile(project / "transforms/t/in_test.yaml", TransformRegistry(project), model).run()
    assert [r.ok for r in results] == [True, False], results[0].detail
    assert "header_equals esb-warnings" in results[1].detail


def test_channel_order_reaches_iom_through_the_project_transforms() -> None:
    """The channel route's steps: TMF order -> valid canonical -> IOM request keyed by the TMF externalId."""
    reg = TransformRegistry(ROOT)
    message = Message(body=(SAMPLES / "tmf_order_sloppy.json").read_bytes())
    canonical = reg.get("channel/tmf_product_order_in").apply(message)
    assert len(canonical.headers[WARNINGS_HEADER]) == 3
    assert ModelRegistry(ROOT / "canonical_model").validator("product_order.v1").errors(canonical.body) == []
    request = reg.get("iom/canonical_to_order_request").apply(canonical)
    assert request.body["header"]["crmOrderId"] == canonical.body["externalId"]
    assert request.body["orderLines"][0]["amountFen"] == 19900
