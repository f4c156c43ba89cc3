"""Raw business keys: declared in routes.yaml, read from the message as it arrived, journaled at ingress."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml
from click.testing import CliRunner
from pydantic import ValidationError

from esb.cli.main import cli
from esb.config.routes import RawKey
from esb.exceptions import MappingError
from esb.message import Message
from esb.project import Project
from esb.runtime.rawkeys import RawKeys
from esb.testing import BROKER
from tests.unit.routes_fixture import make_project
from tests.unit.test_worker import ENDPOINTS, route, run_until_settled

ROOT = Path(__file__).resolve().parents[2]

#: The Siebel order number wherever the XML converter puts it: a field element or an attribute.
ORDER_NUMBER = {
    "xpath": "//SiebelMessage/*[starts-with(local-name(), 'ListOf')]/*/@{Order Number}"
    " | //SiebelMessage/*[starts-with(local-name(), 'ListOf')]/*/{Order Number}",
    "tag_escape": "siebel",
}

ELEMENT_FORM = b"""<?xml version="1.0" encoding="UTF-8"?>
<SiebelMessage IntObjectName="Siebel Order">
  <ListOfSiebel_spcOrder><Orders><Order_spcNumber> SO-1 </Order_spcNumber></Orders></ListOfSiebel_spcOrder>
</SiebelMessage>"""

PROPERTY_SET_FORM = b"""<?xml version="1.0" encoding="UTF-8"?>
<?Siebel-Property-Set EscapeNames="true"?>
<PropertySet><SiebelMessage IntObjectName="Siebel Order">
  <ListOfSiebel_spcOrder><Orders Order_spcNumber="SO-2" Id="1-X"/></ListOfSiebel_spcOrder>
</SiebelMessage></PropertySet>"""


def keys_of(keys: dict[str, Any], message: Message) -> tuple[dict[str, str], list[str]]:
    """Apply raw keys declared as in routes.yaml to ``message``; return its keys and the warnings."""
    raw = RawKeys("r", {name: RawKey.model_validate(spec) for name, spec in keys.items()})
    warnings = raw(message)
    return message.business_keys, warnings


def test_a_raw_key_is_exactly_one_valid_xpath_or_jmespath() -> None:
    """Neither, both, bad XPath, bad JMESPath, or tag_escape on JMESPath are refused with the reason."""
    cases = [
        ({}, "exactly one of xpath"),
        ({"xpath": "/a", "jmespath": "body.a"}, "exactly one of xpath"),
        ({"xpath": "//a[", "tag_escape": "siebel"}, "invalid XPath"),
        ({"jmespath": "body.[x"}, "invalid JMESPath"),
        ({"jmespath": "body.id", "tag_escape": "siebel"}, "xpath only"),
        ({"xpath": "/a", "escape": "siebel"}, "Extra inputs"),
    ]
    for spec, expected in cases:
        with pytest.raises(ValidationError, match=expected):
            RawKey.model_validate(spec)


def test_xpath_key_reads_element_and_attribute_forms_through_a_property_set() -> None:
    """The Siebel order number is found as a trimmed element, and as an attribute in a PropertySet."""
    assert keys_of({"order_id": ORDER_NUMBER}, Message(body=ELEMENT_FORM))[0] == {"order_id": "SO-1"}
    assert keys_of({"order_id": ORDER_NUMBER}, Message(body=PROPERTY_SET_FORM))[0] == {"order_id": "SO-2"}


def test_jmespath_key_reads_a_raw_json_body_and_headers() -> None:
    """JMESPath sees {body, headers...} with JSON bytes parsed; a body already parsed works too."""
    spec = {"order_id": {"jmespath": "body.id"}, "channel": {"jmespath": "headers.channel"}}
    message = Message(body=b'{"id": "QD-1"}', headers={"channel": "wechat"})
    assert keys_of(spec, message) == ({"order_id": "QD-1", "channel": "wechat"}, [])
    assert keys_of({"order_id": {"jmespath": "body.id"}}, Message(body={"id": 7}))[0] == {"order_id": "7"}


def test_unreadable_body_is_a_warning_and_no_key() -> None:
    """Malformed XML, XML with a DTD and non-JSON bytes give a warning naming the key, never an error."""
    dtd = b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e "v">]><SiebelMessage>&e;</SiebelMessage>'
    for body in (b"<SiebelMessage><unclosed>", dtd):
        found, warnings = keys_of({"order_id": ORDER_NUMBER}, Message(body=body))
        assert found == {}
        assert len(warnings) == 1
        assert warnings[0].startswith("order_id: ")
    found, warnings = keys_of({"order_id": {"jmespath": "body.id"}}, Message(body=b"not json"))
    assert found == {}
    assert "not valid JSON" in warnings[0]


def test_a_key_the_message_already_carries_is_kept() -> None:
    """A key the message already carries is kept; the body is not even parsed for it."""
    message = Message(body=b"<not-xml", business_keys={"order_id": "SO-0"})
    assert keys_of({"order_id": ORDER_NUMBER}, message) == ({"order_id": "SO-0"}, [])


def test_only_the_keys_the_message_lacks_are_read() -> None:
    """Of two keys, the one the message carries is kept as it is and the other is read from the body."""
    message = Message(body=ELEMENT_FORM, business_keys={"order_id": "SO-0"})
    keys = {"order_id": ORDER_NUMBER, "object": {"xpath": "/SiebelMessage/@IntObjectName"}}
    assert keys_of(keys, message) == ({"order_id": "SO-0", "object": "Siebel Order"}, [])

def test_the_shipped_routes_find_order_numbers_in_the_samples() -> None:
    """routes.yaml's raw keys read the Siebel order number in every EAI form the CRM mapping accepts, the
    first MSISDN of its lines where one has an MSISDN attribute, and the channel order's id."""
    project = Project.load(ROOT, environ={})
    crm = RawKeys.for_route(project.route("crm-order-to-iom"))
    samples = ROOT / "transforms" / "crm" / "samples"
    for name, expected in (
        ("order_single_utf8.xml", {"order_id": "SO20261125000123", "msisdn": "13800138000"}),
        ("order_multi_attrs.xml", {"order_id": "SO20261125000124"}),
        ("order_gbk.xml", {"order_id": "SO20261125000126", "msisdn": "13800138000"}),
        ("eai/property_set_escaped.xml", {"order_id": "SO-PS-0001"}),
        ("eai/siebel_order_attributes.xml", {"order_id": "SO-ASI-0003"}),  # stripped names, as attributes
        # stripped names, as elements; its MSISDN under ListOfAttributes/Attributes
        ("eai/siebel_order_elements.xml", {"order_id": "SO-ASI-0002", "msisdn": "13900139000"}),
        ("eai/no_object_list.xml", {"order_id": "SO-NL-0004"}),  # no ListOf<integration object> element
        ("eai/cmcc_order_gbk.xml", {"order_id": "CM20270305000001"}),
    ):
        message = Message(body=(samples / name).read_bytes())
        assert crm(message) == []
        assert message.business_keys == expected
    channel_order = (ROOT / "transforms" / "channel" / "samples" / "tmf_order.json").read_bytes()
    for route_id in ("channel-order-to-iom", "channel-rest-order-to-iom"):
        message = Message(body=channel_order)
        RawKeys.for_route(project.route(route_id))(message)
        assert message.business_keys == {"order_id": "QD20260000000042"}


def test_an_order_whose_first_mapping_fails_is_traced_by_its_order_number(tmp_path: Path) -> None:
    """The worker journals the raw key at ingress: `esb trace SO-1` shows the order dead-lettered."""

    def refuse(body: Any) -> Any:
        raise MappingError("crm/order", "id", "/SiebelMessage", "unknown integration object")

    BROKER.reset()
    project = make_project(
        tmp_path,
        [route(steps=[{"transform": "crm/order"}], raw_business_keys={"order_id": ORDER_NUMBER})],
        ENDPOINTS,
        {"crm/order": refuse},
    )
    BROKER.feed("a.in", Message(body=ELEMENT_FORM, id="m1"))
    run_until_settled(project, 1).close()
    assert [m.id for m in BROKER.written("dlq.r")] == ["m1"]

    result = CliRunner().invoke(cli, ["--project", str(tmp_path), "trace", "SO-1", "--json"])
    assert result.exit_code == 0, result.output
    steps = orjson.loads(result.output)["steps"]
    assert [s["state"] for s in steps] == ["received", "dead_lettered"]
    assert {s["message_id"] for s in steps} == {"m1"}
    assert steps[-1]["error_reason"] == "mapping-error"


def test_lint_reports_a_bad_raw_key_with_file_and_line(tmp_path: Path) -> None:
    """A raw key with both languages is a finding at routes.yaml:line naming raw_business_keys."""
    make_project(tmp_path, [route()], ENDPOINTS)
    routes = [route(raw_business_keys={"order_id": {"xpath": "/a", "jmespath": "body.id"}})]
    (tmp_path / "routes.yaml").write_text(yaml.safe_dump({"routes": routes}, sort_keys=False))
    result = CliRunner().invoke(cli, ["--project", str(tmp_path), "lint"])
    assert result.exit_code != 0
    assert "routes.yaml:" in result.output
    assert "raw_business_keys" in result.output
    assert "exactly one of xpath" in result.output
